"""Throughput of GET /lookup by coordinate, against tipg answering the same question.

Starts gridmap (uvicorn, 2 workers) and tipg (uvicorn, 2 workers, restricted to the ``ogc.grids``
view: the grids of the generation in force) on the same database, and loads each in turn with
``wrk`` (keep-alive) sending random points across the county:

* gridmap: ``GET /lookup?lon=..&lat=..`` (with a viewer key unless ``--open``);
* tipg: ``GET /collections/ogc.grids/items?filter-lang=cql2-text&filter=S_INTERSECTS(geom,POINT(x y))
  &geom-column=none`` (properties only).

Uses the dev database (``gridmap db url``) when it has published boundaries; otherwise the
mini sample county is published into a throwaway database, dropped at the end.

    .venv/bin/python bench/bench_lookup.py --duration 60

Targets (issue 5): gridmap >= 2,000 req/s with p99 <= 20 ms, and >= 5x tipg's throughput.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gis.core import cluster, db  # noqa: E402
from gis.core.settings import get_settings  # noqa: E402

SCRATCH_DB = "gridmap_bench_lookup"
VENV_BIN = Path(sys.executable).parent

LUA = """
math.randomseed(%(seed)d)
local x0, x1, y0, y1 = %(x0).6f, %(x1).6f, %(y0).6f, %(y1).6f
%(headers)s
request = function()
  local x = x0 + math.random() * (x1 - x0)
  local y = y0 + math.random() * (y1 - y0)
  return wrk.format("GET", string.format("%(path)s", x, y))
end
"""


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_ms_per_request: float = float("nan")


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its children (uvicorn's workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    total = 0.0
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0, headers: dict[str, str] | None = None) -> bytes:
    end = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < end:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=5) as resp:
                return bytes(resp.read())
        except Exception as exc:
            last = exc
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s: {last}")


@contextlib.contextmanager
def server(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    name: str,
    base: str,
    path: str,
    bbox: tuple[float, ...],
    opts: argparse.Namespace,
    headers: str,
    duration: int,
    pid: int | None = None,
) -> Result:
    x0, y0, x1, y1 = bbox
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA % {"seed": 42, "x0": x0, "x1": x1, "y0": y0, "y1": y1, "path": path, "headers": headers})
        script = f.name
    cpu_before = cpu_seconds(pid) if pid else 0.0
    try:
        out = subprocess.run(
            ["wrk", f"-t{opts.threads}", f"-c{opts.connections}", f"-d{duration}s", "--latency", "-s", script, base],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(int(g) for g in sockets.groups()) if sockets else 0)
    cpu = (cpu_seconds(pid) - cpu_before) * 1000 / total if pid and total else float("nan")
    return Result(name, rps, p50, p99, errors, total, cpu)


@contextlib.contextmanager
def target_database(keep: bool) -> Iterator[str]:
    """The dev database if it has published boundaries, else a throwaway one with the sample county."""
    settings = get_settings()
    url = db.database_url(settings)
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            published = conn.scalar(sa.text("SELECT count(*) FROM generations WHERE published_at IS NOT NULL"))
    finally:
        engine.dispose()
    if published:
        print(f"database: {make_url(url).database} (dev, {published} published generation(s))")
        yield url
        return
    import datetime as dt

    from boundaries.generations import publish_layers
    from boundaries.sample import build_mini_county

    scratch = make_url(url).set(database=SCRATCH_DB).render_as_string(hide_password=False)
    admin = db.make_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)'))
    db.ensure_database(scratch)
    db.migrate(scratch)
    eng = db.make_engine(scratch, pool_size=1, max_overflow=0)
    with eng.begin() as conn:
        publish_layers(
            conn, build_mini_county(), note="bench", author="bench", published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        )
        conn.execute(
            sa.text(
                "INSERT INTO staff (grid_code, role, name, phone) "
                "SELECT code, r, '测试' || r, '13900000000' "
                "FROM areas, unnest(ARRAY['grid_leader', 'grid_worker', 'aux_police']) r "
                "WHERE layer = 'grid' AND gen_to IS NULL"
            )
        )
    eng.dispose()
    print(f"database: {SCRATCH_DB} (throwaway: the dev database has no published boundaries; mini county)")
    try:
        yield scratch
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)'))
        admin.dispose()


def county_bbox(url: str) -> tuple[float, float, float, float]:
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM areas "
                "WHERE layer = 'town' AND gen_to IS NULL) s"
            )
        ).one()
    engine.dispose()
    return tuple(float(v) for v in row)  # type: ignore[return-value]


@contextlib.contextmanager
def viewer_key(url: str) -> Iterator[str]:
    from gis.people.keys import create_key

    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with engine.begin() as conn:
        key = create_key(conn, "viewer", "bench_lookup")
    try:
        yield key
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE api_keys SET revoked_at = now() WHERE prefix = :p"), {"p": key.split("_")[1]})
        engine.dispose()


def tipg_dsn(url: str) -> str:
    settings = get_settings()
    parsed = make_url(url)
    if settings.uses_local_cluster:
        return cluster.tcp_url(settings, parsed.database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=60, help="seconds of load per server (default 60)")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of unmeasured load first")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per server")
    parser.add_argument("--open", action="store_true", help="no API key (settings.open_coordinate_lookups)")
    parser.add_argument("--skip-tipg", action="store_true")
    parser.add_argument("--keep-db", action="store_true", help="keep the throwaway database")
    opts = parser.parse_args()

    results = []
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    with target_database(opts.keep_db) as url, viewer_key(url) as key:
        bbox = county_bbox(url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            "GRIDMAP_DATABASE_URL": url,
            "GRIDMAP_OPEN_COORDINATE_LOOKUPS": "true" if opts.open else "false",
            # One key sends every request here; the per-key limit would turn most into 429s.
            "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0",
        }
        uvicorn = [str(VENV_BIN / "uvicorn"), "--port", str(port), "--workers", str(opts.workers)]
        uvicorn += ["--no-access-log", "--log-level", "warning"]
        headers = "" if opts.open else f'wrk.headers["X-API-Key"] = "{key}"'
        with server([*uvicorn, "api.main:app"], env) as proc:
            sample = f"/lookup?lon={(bbox[0] + bbox[2]) / 2:.6f}&lat={(bbox[1] + bbox[3]) / 2:.6f}"
            answer = wait_http(base + sample, headers={} if opts.open else {"X-API-Key": key})
            print(f"gridmap sample answer: {answer[:160].decode(errors='replace')}...")
            run_wrk("warmup", base, "/lookup?lon=%.6f&lat=%.6f", bbox, opts, headers, opts.warmup)
            results.append(
                run_wrk("gridmap", base, "/lookup?lon=%.6f&lat=%.6f", bbox, opts, headers, opts.duration, proc.pid)
            )

        if not opts.skip_tipg:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            tipg_env = {
                "DATABASE_URL": tipg_dsn(url),
                "TIPG_DB_SCHEMAS": '["ogc"]',
                "TIPG_DB_TABLES": '["ogc.grids"]',
                "TIPG_DB_FUNCTIONS": "[]",
                "TIPG_DB_SPATIAL_EXTENT": "false",
                "TIPG_DB_DATETIME_EXTENT": "false",
            }
            uvicorn = [str(VENV_BIN / "uvicorn"), "--port", str(port), "--workers", str(opts.workers)]
            uvicorn += ["--no-access-log", "--log-level", "warning"]
            path = (
                "/collections/ogc.grids/items?filter-lang=cql2-text"
                "&filter=S_INTERSECTS(geom,POINT(%.6f%%20%.6f))&geom-column=none"
            )
            with server([*uvicorn, "tipg.main:app"], tipg_env) as proc:
                x, y = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
                answer = wait_http(base + path % (x, y))
                print(f"tipg sample answer: {answer[:160].decode(errors='replace')}...")
                run_wrk("warmup", base, path, bbox, opts, "", opts.warmup)
                results.append(run_wrk("tipg", base, path, bbox, opts, "", opts.duration, proc.pid))

    print()
    print(f"wrk -t{opts.threads} -c{opts.connections} -d{opts.duration}s, {opts.workers} uvicorn workers each, 2 cores")
    print(f"load average before the run: {load_before}")
    print(f"{'server':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'requests':>11}{'errors':>8}{'CPU ms/req':>12}")
    for r in results:
        print(
            f"{r.name:<10}{r.rps:>10.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.requests:>11}{r.errors:>8}"
            f"{r.cpu_ms_per_request:>12.3f}"
        )
    if len(results) == 2:
        ratio = results[0].rps / results[1].rps
        print(f"gridmap / tipg throughput: {ratio:.1f}x")
    gm = results[0]
    ok = gm.rps >= 2000 and gm.p99_ms <= 20 and gm.errors == 0 and (len(results) < 2 or gm.rps >= 5 * results[1].rps)
    print("targets (>= 2,000 req/s, p99 <= 20 ms, >= 5x tipg):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
