"""Interoperability benchmark: an OGC API grids page and a county-zoom incident tile, over real HTTP.

Targets (issue 9): a grids items page of 100 features with geometry < 50 ms; a tile at county zoom
with all incidents of a year < 200 ms. Each figure is printed next to a peer measured in the same
run: the same grids page as one plain ``ST_AsGeoJSON`` FeatureCollection query, and for the tile
both a naive ``ST_AsMVT`` of every point and tipg's own tile of the same view.

Data: the dev database when it holds the demo (grids and incidents, migrated to head); otherwise
a throwaway database with a synthetic county (``--grids`` grids with realistic vertex counts and
``--incidents`` incidents per year over two years), dropped at the end. The tile's window is the
year that ends with the last day holding incidents (the demo's dates follow the day it was seeded).

No tile is cached anywhere: every timed request runs the tile query in PostgreSQL.

    .venv/bin/python bench/bench_interop.py [--runs 30] [--incidents 300000]
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gis.core import db  # noqa: E402
from gis.people.keys import create_key  # noqa: E402

BBOX = (120.75, 30.78, 121.05, 31.02)  # roughly Jiashan county

Timing = tuple[float, float, float]  # median, p95, best (ms)


def timed(fn: Callable[[], object], runs: int) -> Timing:
    fn()  # warm-up: connections, caches, plans
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)], samples[0]


def has_demo(url: str) -> bool:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            ok = conn.execute(sa.text("SELECT to_regclass('ogc.grids') IS NOT NULL")).scalar()
            if not ok:
                return False
            grids = conn.execute(sa.text("SELECT count(*) FROM ogc.grids")).scalar() or 0
            incidents = conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar() or 0
            return grids >= 100 and incidents >= 10_000
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def build_synthetic(url: str, n_grids: int, per_year: int) -> None:
    """A county of ``n_grids`` grids (each ~200 vertices) and ``per_year`` incidents in 2023 and in 2024."""
    cols = math.ceil(math.sqrt(n_grids * 1.25))
    rows = math.ceil(n_grids / cols)
    engine = db.make_engine(url)
    with engine.begin() as conn:
        gen = conn.execute(
            sa.text("INSERT INTO generations (layers, note, author, published_at) VALUES ('grid', 'bench', 'bench', "
                    "'2020-01-01') RETURNING id")
        ).scalar()  # fmt: skip
        conn.execute(
            sa.text(
                "INSERT INTO areas (layer, code, name, parent_code, households, geom, gen_from) "
                "SELECT 'grid', '330421' || lpad(i::text, 6, '0'), '网格' || i, '330421', 400, "
                "ST_Multi(ST_Segmentize(ST_MakeEnvelope(:x0 + (i % :cols) * :dx, :y0 + (i / :cols) * :dy, "
                ":x0 + (i % :cols + 1) * :dx, :y0 + (i / :cols + 1) * :dy, 4326), :seg)), :gen "
                "FROM generate_series(0, :n - 1) AS i"
            ),
            {
                "x0": BBOX[0], "y0": BBOX[1], "dx": (BBOX[2] - BBOX[0]) / cols, "dy": (BBOX[3] - BBOX[1]) / rows,
                "cols": cols, "n": n_grids, "gen": gen, "seg": (BBOX[2] - BBOX[0]) / cols / 50,
            },
        )  # fmt: skip
        # Rows go in in time order, as real incidents arrive. The bulk flag skips the assignment
        # trigger: the tile and the page do not read assignments.
        conn.execute(sa.text("SET LOCAL gridmap.bulk = 'on'"))
        for year in (2023, 2024):
            conn.execute(
                sa.text(
                    "INSERT INTO incidents (category, source, reported_at, geom) "
                    "SELECT (ARRAY['垃圾堆放','占道经营','违章搭建','噪音扰民'])[1 + i % 4], 'bench', "
                    "make_timestamptz(:year, 1, 1, 0, 0, 0, 'Asia/Shanghai') + random() * interval '364 days', "
                    "ST_SetSRID(ST_MakePoint(:x0 + random() * :w, :y0 + random() * :h), 4326) "
                    "FROM generate_series(1, :n) AS i ORDER BY 3"
                ),
                {"year": year, "n": per_year, "x0": BBOX[0], "y0": BBOX[1],
                 "w": BBOX[2] - BBOX[0], "h": BBOX[3] - BBOX[1]},
            )  # fmt: skip
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE incidents"))
        conn.execute(sa.text("VACUUM ANALYZE areas"))
    engine.dispose()


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def start_server(url: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("uvicorn did not start")


PLAIN_PAGE = """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(f), '[]'::json))::text
FROM (SELECT json_build_object('type', 'Feature', 'id', code, 'geometry', ST_AsGeoJSON(geom)::json,
        'properties', json_build_object('code', code, 'name', name, 'parent_code', parent_code,
                                        'households', households, 'generation', generation)) AS f
      FROM ogc.grids ORDER BY code LIMIT 100) t
"""
NAIVE_TILE = """
SELECT ST_AsMVT(t.*, 'incidents', 4096, 'geom') FROM (
  SELECT id, category, ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(:z, :x, :y), 4096, 64, true) AS geom
  FROM incidents WHERE reported_at >= :a AND reported_at < :b
    AND geom && ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326)) t
"""


def run(url: str, runs: int) -> None:
    engine = db.make_engine(url)
    with engine.begin() as conn:
        key = create_key(conn, "viewer", "bench-interop")
        # The year up to the end of the last day with incidents, so that the tile holds a full year.
        year_start, year_end = conn.execute(
            sa.text("SELECT e - interval '1 year', e FROM (SELECT date_trunc('day', max(reported_at)) "
                    "+ interval '1 day' AS e FROM incidents) t")
        ).one()  # fmt: skip
        year_count = conn.execute(
            sa.text("SELECT count(*) FROM incidents WHERE reported_at >= :a AND reported_at < :b"),
            {"a": year_start, "b": year_end},
        ).scalar()
        center = conn.execute(sa.text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) AS c "
                                      "FROM ogc.grids) t")).one()  # fmt: skip
    z = 10
    x, y = tile_xy(center[0], center[1], z)
    proc, base = start_server(url)
    try:
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:
            page = client.get("/ogc/collections/ogc.grids/items", params={"limit": 100})
            assert page.status_code == 200 and len(page.json()["features"]) == 100, page.text[:300]
            page_ms = timed(lambda: client.get("/ogc/collections/ogc.grids/items", params={"limit": 100}), runs)
            tile_params = {"start": year_start.isoformat(), "end": year_end.isoformat()}
            tile = client.get(f"/tiles/incidents/{z}/{x}/{y}.mvt", params=tile_params)
            assert tile.status_code == 200
            tile_ms = timed(lambda: client.get(f"/tiles/incidents/{z}/{x}/{y}.mvt", params=tile_params), runs)
            tipg_path = f"/ogc/collections/ogc.incidents/tiles/WebMercatorQuad/{z}/{x}/{y}"
            tipg_params = {"datetime": f"{year_start.isoformat()}/{year_end.isoformat()}"}
            tipg_ms = timed(lambda: client.get(tipg_path, params=tipg_params), max(5, runs // 3))
        with engine.connect() as conn:
            plain = conn.execute(sa.text(PLAIN_PAGE)).scalar() or ""
            plain_ms = timed(lambda: conn.execute(sa.text(PLAIN_PAGE)).scalar(), runs)
            naive_params = {"z": z, "x": x, "y": y, "a": year_start, "b": year_end}
            naive = conn.execute(sa.text(NAIVE_TILE), naive_params).scalar() or b""
            naive_ms = timed(lambda: conn.execute(sa.text(NAIVE_TILE), naive_params).scalar(), max(5, runs // 3))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE api_keys SET revoked_at = now() WHERE name = 'bench-interop'"))
        engine.dispose()

    def line(label: str, ms: Timing, extra: str = "") -> None:
        print(f"  {label:<58} median {ms[0]:7.1f} ms  p95 {ms[1]:7.1f} ms  best {ms[2]:7.1f} ms {extra}")

    print(f"grids items page (100 features with geometry), {runs} runs over HTTP:")
    line("GET /ogc/collections/ogc.grids/items?limit=100 (tipg)", page_ms, f"{len(page.content) / 1024:.0f} KiB")
    line("peer: plain ST_AsGeoJSON FeatureCollection (SQL only)", plain_ms, f"{len(plain) / 1024:.0f} KiB")
    print(f"county-zoom tile z{z}/{x}/{y}, {year_count} incidents in {year_start:%Y-%m-%d} .. {year_end:%Y-%m-%d}, "
          "no tile cache (every request runs the query):")  # fmt: skip
    line("GET /tiles/incidents (pixel clusters with counts)", tile_ms, f"{len(tile.content) / 1024:.0f} KiB")
    line("peer: naive ST_AsMVT of every point (SQL only)", naive_ms, f"{len(naive) / 1024:.0f} KiB")
    line("peer: tipg's own tile (capped at 10000 features)", tipg_ms)
    verdict_page = "PASS" if page_ms[0] < 50 else "FAIL"
    verdict_tile = "PASS" if tile_ms[0] < 200 else "FAIL"
    print(f"targets: page < 50 ms {verdict_page}; tile < 200 ms {verdict_tile}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--grids", type=int, default=800)
    parser.add_argument("--incidents", type=int, default=300_000, help="synthetic incidents per year")
    args = parser.parse_args()
    dev = db.database_url()
    if has_demo(dev):
        print(f"data: the dev database ({make_url(dev).database})")
        run(dev, args.runs)
        return
    url = make_url(dev)
    name = f"{url.database}_bench_interop"
    scratch = url.set(database=name).render_as_string(hide_password=False)
    admin = db.make_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    try:
        db.ensure_database(scratch)
        db.migrate(scratch)
        t0 = time.perf_counter()
        build_synthetic(scratch, args.grids, args.incidents)
        print(f"data: synthetic, {args.grids} grids, {args.incidents} incidents/year x 2 years "
              f"(built in {time.perf_counter() - t0:.0f} s, throwaway database {name})")  # fmt: skip
        run(scratch, args.runs)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
