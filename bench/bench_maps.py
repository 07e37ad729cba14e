"""Benchmark of the command-centre map over a year of incidents, measured in headless Chromium.

    .venv/bin/python bench/bench_maps.py                 # 282,347 incidents (the demo's year)
    .venv/bin/python bench/bench_maps.py --million       # then again at 1,000,000

Uses the dev database when it already holds at least that many incidents (the Jiashan demo);
otherwise a throwaway database ``gridmap_bench_maps`` with a Jiashan-sized synthetic county
(bench/mapbench_data.py), dropped at the end unless --keep. For each size it starts the API with
uvicorn, opens /maps/command-center over the whole period and reports:

* bytes of HTML and data (the page and every GeoJSON it fetches; scripts/styles counted apart),
* time from navigation start until the heat canvas has painted pixels,
* wall time of ``gridmap map command-center --out FILE`` (a fresh process, imports included);
* the peer in the same run: a plain Folium ``HeatMap`` of every incident of the period, built and
  weighed (its page fetches Leaflet from a CDN, so it is not opened offline).

Targets (issue 7): 282,347 -> <= 3 MB and <= 3 s; 1,000,000 -> <= 5 MB and <= 4 s; file < 5 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import mapbench_data  # noqa: E402

from gis.core import db  # noqa: E402
from gis.people.keys import create_key  # noqa: E402
from maps import headless  # noqa: E402

BENCH_DB = "gridmap_bench_maps"
YEAR = 282_347
MILLION = 1_000_000
TARGETS = {YEAR: (3.0, 3.0), MILLION: (5.0, 4.0)}  # MB, seconds
PAINT_JS = f"() => ({headless.HEAT_PIXELS_JS})() > 0 ? performance.now() : 0"


def _count(url: str) -> int:
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one())
    except sa.exc.SQLAlchemyError:
        return 0
    finally:
        engine.dispose()


def _scratch(base: str) -> str:
    url = make_url(base)
    scratch = url.set(database=BENCH_DB).render_as_string(hide_password=False)
    admin = db.make_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
    admin.dispose()
    db.ensure_database(scratch)
    db.migrate(scratch)
    engine = db.make_engine(scratch, pool_size=1, max_overflow=0)
    began = time.perf_counter()
    with engine.begin() as conn:
        mapbench_data.load_county(conn)
    print(f"  synthetic county loaded in {time.perf_counter() - began:.1f} s", flush=True)
    engine.dispose()
    return scratch


def _grow(url: str, target: int, seed: int) -> None:
    have = _count(url)
    if have >= target:
        return
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    began = time.perf_counter()
    with engine.begin() as conn:
        mapbench_data.add_incidents(conn, target - have, dt.datetime.now(dt.UTC), seed)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE incidents"))
    engine.dispose()
    print(f"  {target - have:,} incidents added in {time.perf_counter() - began:.1f} s", flush=True)


def _period(url: str) -> tuple[str, str]:
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        lo, hi = conn.execute(sa.text("SELECT min(reported_at), max(reported_at) FROM incidents")).one()
    engine.dispose()
    tz = dt.timezone(dt.timedelta(hours=8))
    return lo.astimezone(tz).date().isoformat(), hi.astimezone(tz).date().isoformat()


def _viewer_key(url: str) -> str:
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with engine.begin() as conn:
        key = create_key(conn, "viewer", "bench-maps")
    engine.dispose()
    return key


def _serve(url: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/health", timeout=2)
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the API server did not start")


def _measure_page(browser: Any, url: str) -> dict[str, float]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    finished: list[Any] = []
    page.on("requestfinished", lambda request: finished.append(request))
    page.goto(url, wait_until="commit")
    painted = page.wait_for_function(PAINT_JS, timeout=60_000, polling="raf").json_value()
    page.wait_for_load_state("networkidle")
    data = assets = 0.0
    for request in finished:
        size = request.sizes()["responseBodySize"]
        if request.resource_type in ("document", "fetch", "xhr"):
            data += size
        else:
            assets += size
    page.close()
    return {"paint_s": painted / 1000, "data_mb": data / 1e6, "assets_mb": assets / 1e6}


def _standalone(url: str, start: str, end: str) -> tuple[float, float]:
    out = ROOT / "var" / "artifacts" / "bench-command-center.html"
    began = time.perf_counter()
    subprocess.run(
        [
            str(Path(sys.executable).parent / "gridmap"),
            "map",
            "command-center",
            "--from",
            start,
            "--to",
            end,
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env={**os.environ, "GRIDMAP_DATABASE_URL": url},
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - began, out.stat().st_size / 1e6


def _naive(url: str, start: str, end: str) -> tuple[float, float]:
    """The peer: what a user would write first with Folium, every incident of the period in one
    ``HeatMap`` (points embedded in the HTML). Its page loads Leaflet from a CDN, so it is only
    built and weighed here, not opened in the offline browser."""
    import folium
    from folium.plugins import HeatMap

    out = ROOT / "var" / "artifacts" / "bench-naive-heatmap.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        points = conn.execute(
            sa.text(
                "SELECT ST_Y(geom), ST_X(geom) FROM incidents "
                "WHERE reported_at >= CAST(:a AS date) AND reported_at < CAST(:b AS date) + 1"
            ),
            {"a": start, "b": end},
        ).all()
    engine.dispose()
    fmap = folium.Map(location=[30.84, 120.92], zoom_start=11)
    HeatMap([[lat, lon] for lat, lon in points]).add_to(fmap)
    fmap.save(str(out))
    return time.perf_counter() - began, out.stat().st_size / 1e6


def run(url: str, size: int, runs: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    start, end = _period(url)
    key = _viewer_key(url)
    proc, base = _serve(url)
    try:
        page_url = f"{base}/maps/command-center?from={start}&to={end}&key={key}"
        httpx.get(page_url, timeout=120)  # the first request pays for imports and layer caches
        with sync_playwright() as p:
            browser = headless.launch(p)
            results = [_measure_page(browser, page_url) for _ in range(runs)]
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    build_s, file_mb = _standalone(url, start, end)
    naive_s, naive_mb = _naive(url, start, end)
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    mb, secs = TARGETS.get(size, (float("nan"), float("nan")))
    paints = ", ".join(f"{r['paint_s']:.2f}" for r in results)
    print(
        f"{size:>9,} incidents ({start}..{end}): HTML+data {med['data_mb']:.2f} MB (target <= {mb:g}), "
        f"scripts/styles {med['assets_mb']:.2f} MB, heat painted {med['paint_s']:.2f} s (target <= {secs:g}; "
        f"runs {paints}), standalone file {build_s:.1f} s "
        f"({file_mb:.1f} MB; target < 5 s)",
        flush=True,
    )
    print(
        f"{'':>9}  peer: folium HeatMap of every point, built in {naive_s:.1f} s: {naive_mb:.1f} MB of HTML "
        f"(against gridmap's page {med['data_mb']:.2f} MB of HTML and data)",
        flush=True,
    )
    return {**med, "build_s": build_s, "file_mb": file_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=YEAR)
    parser.add_argument("--million", action="store_true", help="also measure at 1,000,000 incidents")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database")
    args = parser.parse_args()
    base = db.database_url()
    print(f"machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    own = _count(base) < args.incidents
    url = _scratch(base) if own else base
    try:
        if own:
            _grow(url, args.incidents, seed=1)
        run(url, args.incidents, args.runs)
        if args.million:
            if not own:  # never add synthetic incidents to the demo database
                url, own = _scratch(base), True
                _grow(url, args.incidents, seed=1)
            _grow(url, MILLION, seed=2)
            run(url, MILLION, args.runs)
    finally:
        if own and not args.keep:
            admin = db.make_engine(make_url(base).set(database="postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
