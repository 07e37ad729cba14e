"""Field-work benchmark: POST /visits under wrk, a grid's patrol coverage for a day of tracks, and
the county-wide "not visited in 30 days" layer, each with a peer from the same run.

    .venv/bin/python bench/bench_fieldwork.py [--seconds 30] [--peer-seconds 15] [--connections 8] [--keep]

Data: a throwaway database (``gridmap_bench_fieldwork``) with the map benchmark's synthetic
Jiashan-sized county (bench/mapbench_data.py: 760 grids, one grid worker each, 20,000 rental
buildings), topped up to ~106,000 buildings (Jiashan's count) and 60 days of visits (10 a day
per worker, ~456,000). Dropped at the end unless --keep.

Runs (the API under uvicorn, 2 workers, rate limit off):
1. ``POST /visits``, one visit per request, unique client ids, by wrk; peer: ``POST /incidents``
   on the same server (the intake, issue 4's path). Target: >= 300/s with p99 <= 50 ms.
2. A patrol of one grid with 2,000 GPS points (sent as 10 batches of 200 through
   ``POST /patrols/{id}/points``, timed too), then ``GET /patrols/{id}/coverage`` and the
   in-process ``grid_patrol_coverage`` repeated; peer: shapely computing the same share in Python
   from the same rows (read, projected, distance). Target: <= 100 ms.
3. ``GET /visits/not-visited.geojson`` (every building not visited in 30 days, county-wide) and
   its per-grid form; peer: ``GET /maps/data/buildings.geojson`` (the rental buildings layer) on
   the same server. Target: <= 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import mapbench_data  # noqa: E402
from bench.bench_intake import LUA as INCIDENT_LUA  # noqa: E402
from bench.bench_intake import Result, _drop, _serve, _stop, _wrk  # noqa: E402
from gis.core import db  # noqa: E402
from gis.core.vocab import COUNTY_TZ  # noqa: E402
from gis.incidents.rules import CATEGORIES, SOURCES  # noqa: E402
from gis.people.keys import create_key  # noqa: E402

BENCH_DB = "gridmap_bench_fieldwork"
TARGET_BUILDINGS = 106_000
HISTORY_DAYS = 60

VISIT_LUA = (
    r"""
local people = {%(people)s}
local buildings = {%(buildings)s}
local kinds = {"routine", "night", "care", "follow_up"}
local counter = 0
local tag = "%(tag)s"

function init(args)
  math.randomseed(%(seed)d)
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-API-Key"] = "%(key)s"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"client_id": "bench-%%s-%%d", "person_id": %%d, "building_id": %%d, "kind": "%%s", ' ..
    '"knows": {"people": true, "family": true, "address": true, "situation": false}}',
    tag, counter, people[math.random(#people)], buildings[math.random(#buildings)], kinds[math.random(#kinds)])
  return wrk.format("POST", "/visits", nil, body)
end
"""
    + "function done"
    + INCIDENT_LUA.split("function done")[1]
)


def _load(url: str) -> None:
    """The synthetic county, buildings up to Jiashan's count, and 60 days of visits."""
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    began = time.perf_counter()
    rng = np.random.default_rng(11)
    with engine.begin() as conn:
        mapbench_data.load_county(conn)
        n = TARGET_BUILDINGS - int(conn.scalar(sa.text("SELECT count(*) FROM buildings")) or 0)
        lon, lat = mapbench_data.incident_points(n, rng)
        frame = pd.DataFrame(
            {"code": [f"BENCH-H{i}" for i in range(n)], "households": rng.integers(1, 7, n), "lon": lon, "lat": lat}
        )
        mapbench_data._copy(conn, "buildings", mapbench_data._with_assignment(conn, frame, None))
        conn.execute(sa.text("UPDATE buildings SET households = 1 + (id % 6) WHERE households = 0"))
        # Each grid worker visits 10 buildings of their grid a day (random ones), for 60 days.
        conn.execute(sa.text("SET LOCAL gridmap.bulk = 'on'"))
        conn.execute(
            sa.text(
                "WITH w AS (SELECT DISTINCT ON (area_code) person_id, area_code FROM postings "
                "           WHERE role = 'grid_worker' ORDER BY area_code, id), "
                "nb AS MATERIALIZED (SELECT id, geom, town_code, village_code, grid_code, micro_grid_code, "
                "  station_code, beat_code, generation_id, assign_status, "
                "  row_number() OVER (PARTITION BY grid_code ORDER BY id) AS rn, "
                "  count(*) OVER (PARTITION BY grid_code) AS n FROM buildings WHERE grid_code IS NOT NULL), "
                "slots AS (SELECT w.person_id, w.area_code, d, k, "
                "  abs(hashtext(w.person_id || '-' || d || '-' || k)) AS h FROM w "
                "  CROSS JOIN generate_series(0, :days - 1) d CROSS JOIN generate_series(1, 10) k) "
                "INSERT INTO visits (client_id, person_id, building_id, kind, knows_people, knows_family, "
                "knows_address, knows_situation, at, recorded_by, geom, town_code, village_code, grid_code, "
                "micro_grid_code, station_code, beat_code, generation_id, assign_status) "
                "SELECT 'hist-' || s.person_id || '-' || s.d || '-' || s.k, s.person_id, b.id, 'routine', true, "
                "true, true, (s.k % 2 = 0), now() - make_interval(days => s.d, hours => s.k), 'bench', b.geom, "
                "b.town_code, b.village_code, b.grid_code, b.micro_grid_code, b.station_code, b.beat_code, "
                "b.generation_id, b.assign_status "
                "FROM slots s JOIN (SELECT DISTINCT grid_code, n FROM nb) c ON c.grid_code = s.area_code "
                "JOIN nb b ON b.grid_code = s.area_code AND b.rn = 1 + s.h % c.n"
            ),
            {"days": HISTORY_DAYS},
        )
    with engine.connect() as conn:
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("buildings", "visits", "postings"):
            auto.execute(sa.text(f"VACUUM ANALYZE {table}"))
        counts = auto.execute(sa.text("SELECT (SELECT count(*) FROM buildings), (SELECT count(*) FROM visits)")).one()
    engine.dispose()
    print(f"  loaded in {time.perf_counter() - began:.1f} s: {counts[0]:,} buildings, {counts[1]:,} visits", flush=True)


def _walk(grid_geom_wkt: str, n: int, rng: random.Random) -> list[tuple[float, float]]:
    """A walk of ``n`` points at ~1.5 m/s (a fix every 5 s), kept inside the grid's bounds."""
    import shapely

    grid = shapely.from_wkt(grid_geom_wkt)
    x0, y0, x1, y1 = grid.bounds
    point = grid.representative_point()
    lon, lat, heading = point.x, point.y, rng.uniform(0, 6.28)
    out = []
    for _ in range(n):
        heading += rng.gauss(0, 0.4)
        nx, ny = lon + 0.00008 * np.cos(heading), lat + 0.00007 * np.sin(heading)
        if x0 < nx < x1 and y0 < ny < y1:
            lon, lat = nx, ny
        else:  # at the grid's edge: turn back, stay put for this fix
            heading += np.pi
        out.append((lon, lat))
    return out


def _timed(fn: Any, repeat: int) -> tuple[float, float, Any]:
    times, out = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), max(times), out


def _shapely_coverage(url: str, patrol_id: int, grid: str) -> float:
    """The peer: the same share computed in Python from the same rows."""
    import shapely

    from gis.spatial.crs import to_metric

    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        pts = conn.execute(
            sa.text("SELECT ST_X(geom), ST_Y(geom) FROM patrol_points WHERE patrol_id = :p AND NOT flagged ORDER BY t"),
            {"p": patrol_id},
        ).all()
        bld = conn.execute(
            sa.text("SELECT ST_X(geom), ST_Y(geom) FROM buildings WHERE grid_code = :g"), {"g": grid}
        ).all()
    engine.dispose()
    px, py = to_metric(np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
    bx, by = to_metric(np.array([b[0] for b in bld]), np.array([b[1] for b in bld]))
    line = shapely.LineString(np.column_stack([px, py]))
    d = shapely.distance(shapely.points(np.column_stack([bx, by])), line)
    return float(np.sum(d <= 50.0) / len(bld))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=30, help="duration of the POST /visits run")
    parser.add_argument("--peer-seconds", type=int, default=15, help="duration of the POST /incidents peer run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8741)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    dev_url = db.database_url()
    url = make_url(dev_url).set(database=BENCH_DB).render_as_string(hide_password=False)
    _drop(dev_url, BENCH_DB)
    db.ensure_database(url)
    db.migrate(url)
    _load(url)
    engine = db.make_engine(url, pool_size=2, max_overflow=0)
    with db.transaction(engine) as session:
        key = create_key(session, "reporter", "bench_fieldwork")
    with engine.connect() as conn:
        people = list(conn.execute(sa.text("SELECT DISTINCT person_id FROM postings LIMIT 500")).scalars())
        buildings = list(conn.execute(sa.text("SELECT id FROM buildings ORDER BY random() LIMIT 2000")).scalars())
        grid, wkt = conn.execute(
            sa.text(
                "SELECT code, ST_AsText(geom) FROM areas WHERE layer = 'grid' AND gen_to IS NULL "
                "ORDER BY (SELECT count(*) FROM buildings b WHERE b.grid_code = areas.code) DESC LIMIT 1"
            )
        ).one()
        person = conn.scalar(sa.text("SELECT person_id FROM postings WHERE area_code = :g LIMIT 1"), {"g": grid})
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0", "PYTHONPATH": str(ROOT)}
    results: list[Result] = []
    lines: list[str] = []
    proc = _serve("api.main:app", args.port, args.workers, env)
    try:
        base = f"http://127.0.0.1:{args.port}"
        fill = {
            "people": ", ".join(map(str, people)),
            "buildings": ", ".join(map(str, buildings)),
            "key": key,
            "seed": random.randrange(1, 2**31),
        }
        _wrk("warm-up", f"{base}/visits", 3, args.connections, VISIT_LUA % {**fill, "tag": "warm"}, proc)
        visits_run = VISIT_LUA % {**fill, "tag": uuid.uuid4().hex[:10]}
        results.append(_wrk("gridmap POST /visits", f"{base}/visits", args.seconds, args.connections, visits_run, proc))
        if args.peer_seconds > 0:
            extent = mapbench_data.CENTRE[0] - 0.05, mapbench_data.CENTRE[1] - 0.05
            incident_run = INCIDENT_LUA % {
                "points": "",
                "categories": ", ".join(f'"{c}"' for c in CATEGORIES),
                "sources": ", ".join(f'"{s}"' for s in SOURCES),
                "minx": extent[0],
                "miny": extent[1],
                "maxx": extent[0] + 0.1,
                "maxy": extent[1] + 0.1,
                "key": key,
                "path": "/incidents",
                "tag": uuid.uuid4().hex[:12],
                "seed": random.randrange(1, 2**31),
            }
            results.append(
                _wrk(
                    "peer: POST /incidents",
                    f"{base}/incidents",
                    args.peer_seconds,
                    args.connections,
                    incident_run,
                    proc,
                )
            )

        headers = {"X-API-Key": key}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
            patrol = client.post(
                "/patrols", json={"person_id": person, "grid_code": grid, "started_at": start.isoformat()}
            )
            patrol.raise_for_status()
            pid = patrol.json()["id"]
            walk = _walk(wkt, 2000, random.Random(5))
            batch_ms = []
            for b in range(10):
                chunk = [
                    {"lon": x, "lat": y, "t": (start + dt.timedelta(seconds=5 * (b * 200 + i))).isoformat()}
                    for i, (x, y) in enumerate(walk[b * 200 : (b + 1) * 200])
                ]
                began = time.perf_counter()
                client.post(f"/patrols/{pid}/points", json={"points": chunk}).raise_for_status()
                batch_ms.append((time.perf_counter() - began) * 1000)
            lines.append(
                f"POST /patrols/{{id}}/points, 10 batches of 200 (up to 2,000 stored): "
                f"median {statistics.median(batch_ms):.1f} ms, last {batch_ms[-1]:.1f} ms a batch"
            )
            med, worst, cov = _timed(lambda: client.get(f"/patrols/{pid}/coverage").json(), 20)
            lines.append(
                f"GET /patrols/{{id}}/coverage (2,000 points, {cov['buildings']} buildings, share {cov['share']}): "
                f"median {med:.1f} ms, max {worst:.1f} ms  [target <= 100 ms: {'MET' if med <= 100 else 'NOT MET'}]"
            )
            from gis.fieldwork import coverage
            from gis.people.scope import WHOLE_COUNTY

            day = start.astimezone(COUNTY_TZ).date()
            with engine.connect() as conn:
                med, worst, _ = _timed(lambda: coverage.grid_patrol_coverage(conn, grid, day, WHOLE_COUNTY), 20)
            lines.append(f"in-process grid_patrol_coverage (SQL): median {med:.1f} ms, max {worst:.1f} ms")
            med, worst, share = _timed(lambda: _shapely_coverage(url, pid, grid), 5)
            lines.append(
                f"peer: shapely in Python, same rows (share {share:.4f}): median {med:.1f} ms, max {worst:.1f} ms"
            )

            med, worst, layer = _timed(lambda: client.get("/visits/not-visited.geojson", params={"days": 30}), 5)
            n = len(layer.json()["features"])
            lines.append(
                f"GET /visits/not-visited.geojson county-wide ({n:,} buildings, {len(layer.content) / 1e6:.1f} MB): "
                f"median {med:.0f} ms, max {worst:.0f} ms  [target <= 1 s: {'MET' if med <= 1000 else 'NOT MET'}]"
            )
            med, worst, _ = _timed(lambda: client.get("/visits/not-visited.geojson", params={"by": "grid"}), 5)
            lines.append(
                f"GET /visits/not-visited.geojson?by=grid (760 grids): median {med:.0f} ms, max {worst:.0f} ms"
            )
            med, worst, peer = _timed(lambda: client.get("/maps/data/buildings.geojson"), 5)
            lines.append(
                f"peer: GET /maps/data/buildings.geojson ({len(peer.json()['features']):,} rental buildings): "
                f"median {med:.0f} ms, max {worst:.0f} ms"
            )
    finally:
        _stop(proc)
        engine.dispose()
        if not args.keep:
            _drop(dev_url, BENCH_DB)
    print()
    print(f"field work on {os.cpu_count()} cores; uvicorn {args.workers} workers; wrk {args.connections} connections")
    for r in results:
        print("  " + r.line())
    ours = results[0]
    ok = ours.rate >= 300 and ours.p99_ms <= 50 and ours.non2xx + ours.socket_errors == 0
    print(f"  POST /visits target >= 300/s with p99 <= 50 ms and no errors: {'MET' if ok else 'NOT MET'}")
    for line in lines:
        print("  " + line)


if __name__ == "__main__":
    main()
