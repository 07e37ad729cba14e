"""Inspection benchmark: ``POST /buildings/{id}/inspections`` sustained by wrk, with the live
incident intake ``POST /incidents`` as the peer measured in the same run on the same server.

    .venv/bin/python bench/bench_inspections.py [--seconds 30] [--peer-seconds 15] [--connections 8]

What it does:
1. Makes a throwaway database (dropped at the end) with the mini test county, ``--buildings``
   rental buildings at random points in its grids, and a joint team (a grid worker and an
   auxiliary police officer) per grid.
2. Starts the API with uvicorn (2 workers, no access log, rate limit off) and a reporter key.
3. Drives ``POST /buildings/{id}/inspections`` with wrk: each request a random building, the
   team of its grid, the rental-safety checklist's eleven items, each failing with probability
   ``--fail-rate`` (a failure opens a hazard and its deadline job; a later pass rectifies it).
   Prints throughput and p50/p95/p99 latency, and checks the stored row count.
4. The peer: ``POST /incidents`` (one-statement intake, the fastest write of the service) for
   ``--peer-seconds`` on the same server.

Targets (issue 17): at least 300 inspections/s with p99 at most 50 ms on this machine.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_intake import LUA as INTAKE_LUA  # noqa: E402
from bench.bench_intake import _drop, _extent, _script, _serve, _stop, _wrk  # noqa: E402
from gis.core import db  # noqa: E402
from gis.people.keys import create_key  # noqa: E402

THROWAWAY = "gridmap_bench_inspections"
ITEMS = (
    "escape_window", "ebike_indoor", "fly_line", "wiring", "extinguisher", "smoke_alarm", "gas",
    "kitchen_bedroom", "people_per_room", "tenant_registration", "responsibility_letter",
)  # fmt: skip

# The request builder; wrk's summary line (``done``) is the intake benchmark's.
LUA = (
    r"""
local buildings = {%(buildings)s}
local items = {%(items)s}
local fail_rate = %(fail_rate).4f

function init(args)
  math.randomseed(%(seed)d)
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-API-Key"] = "%(key)s"
end

function request()
  local b = buildings[math.random(#buildings)]
  local results = {}
  for i, code in ipairs(items) do
    local result = "pass"
    if math.random() < fail_rate then result = "fail" end
    results[i] = string.format('{"code": "%%s", "result": "%%s"}', code, result)
  end
  local body = string.format(
    '{"inspectors": [%%d, %%d], "lon": %%.6f, "lat": %%.6f, "results": [%%s], "notes": "bench"}',
    b[2], b[3], b[4], b[5], table.concat(results, ", "))
  return wrk.format("POST", "/buildings/" .. b[1] .. "/inspections", nil, body)
end
"""
    + "function done"
    + INTAKE_LUA.split("function done")[1]
)


def _setup(dev_url: str, n_buildings: int) -> tuple[str, list[tuple[int, int, int, float, float]]]:
    """The throwaway database: mini county, rental buildings, a team per grid."""
    from boundaries.generations import publish_layers
    from boundaries.sample import build_mini_county

    _drop(dev_url, THROWAWAY)
    url = make_url(dev_url).set(database=THROWAWAY).render_as_string(hide_password=False)
    db.ensure_database(url)
    db.migrate(url)
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with db.transaction(engine) as session:
        publish_layers(session.connection(), build_mini_county(), note="bench: mini county", author="bench")
    minx, miny, maxx, maxy = _extent(engine)
    rows: list[tuple[int, int, int, float, float]] = []
    with engine.begin() as conn:
        teams: dict[str, tuple[int, int]] = {}
        for code in conn.execute(sa.text("SELECT code FROM areas WHERE layer = 'grid'")).scalars():
            ids = []
            for name, role in (("网格员", "grid_worker"), ("辅警", "aux_police")):
                person = conn.execute(
                    sa.text("INSERT INTO people (name) VALUES (:n) RETURNING id"), {"n": f"{name}{code[-3:]}"}
                ).scalar_one()
                ids.append(
                    conn.execute(
                        sa.text(
                            "INSERT INTO postings (person_id, role, layer, area_code, starts_on) "
                            "VALUES (:p, :r, 'grid', :a, DATE '2020-01-01') RETURNING id"
                        ),
                        {"p": person, "r": role, "a": code},
                    ).scalar_one()
                )
            teams[code] = (ids[0], ids[1])
        for k in range(n_buildings):
            lon, lat = random.uniform(minx, maxx), random.uniform(miny, maxy)
            bid, grid = conn.execute(
                sa.text(
                    "INSERT INTO buildings (code, is_rental, geom) VALUES (:c, true, "
                    "ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id, grid_code"
                ),
                {"c": f"BENCH-{k}", "x": lon, "y": lat},
            ).one()
            if grid in teams:
                rows.append((int(bid), *teams[grid], lon, lat))
    engine.dispose()
    return url, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=30, help="duration of the inspection run")
    parser.add_argument("--peer-seconds", type=int, default=15, help="duration of the POST /incidents run; 0 = skip")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (closed loop)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--buildings", type=int, default=2000)
    parser.add_argument("--fail-rate", type=float, default=0.03, help="probability that an item fails")
    parser.add_argument("--port", type=int, default=8733)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    dev_url = db.database_url()
    url, buildings = _setup(dev_url, args.buildings)
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with db.transaction(engine) as session:
        key = create_key(session, "reporter", "bench_inspections")
    script = LUA % {
        "buildings": ", ".join(f"{{{b}, {w}, {p}, {x:.6f}, {y:.6f}}}" for b, w, p, x, y in buildings),
        "items": ", ".join(f'"{c}"' for c in ITEMS),
        "fail_rate": args.fail_rate,
        "seed": random.randrange(1, 2**31),
        "key": key,
    }
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0", "PYTHONPATH": str(ROOT)}
    results = []
    try:
        proc = _serve("api.main:app", args.port, args.workers, env)
        try:
            base = f"http://127.0.0.1:{args.port}"
            _wrk("warm-up", f"{base}/", 3, args.connections, script, proc)
            with engine.connect() as conn:
                before = conn.execute(sa.text("SELECT count(*) FROM inspections")).scalar_one()
            ours = _wrk("gridmap POST /buildings/{id}/inspections", f"{base}/", args.seconds, args.connections,
                        script, proc, engine)  # fmt: skip
            results.append(ours)
            with engine.connect() as conn:
                stored = conn.execute(sa.text("SELECT count(*) FROM inspections")).scalar_one() - before
                hazards = conn.execute(sa.text("SELECT count(*) FROM hazards")).scalar_one()
            if args.peer_seconds > 0:
                extent = _extent(engine)
                peer = _script(key, extent, "/incidents")
                results.append(
                    _wrk(
                        "peer: POST /incidents",
                        f"{base}/incidents",
                        args.peer_seconds,
                        args.connections,
                        peer,
                        proc,
                        engine,
                    )  # fmt: skip
                )
        finally:
            _stop(proc)
    finally:
        engine.dispose()
        _drop(dev_url, THROWAWAY)
    print(f"\n{args.buildings} rental buildings, item fail rate {args.fail_rate}, {args.connections} connections")
    for r in results:
        print(r.line())
    answered = ours.requests - ours.non2xx
    print(f"stored inspections: {stored} (answered 2xx: {answered}); hazards in the database: {hazards}")
    ok = ours.rate >= 300 and ours.p99_ms <= 50 and ours.non2xx == 0
    print(f"target ≥300/s with p99 ≤50 ms: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
