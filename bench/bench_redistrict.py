"""Benchmark of a redistricting proposal (target: one town, ~100 grids from ~600 micro-grids, <= 2
minutes as a job, with progress; the API stays responsive meanwhile).

The dev database (GRIDMAP_DATABASE_URL, the Jiashan demo) is only READ: the town's boundaries,
buildings, addresses and incidents (open ones and the last 90 days) are copied into a throwaway
database (``<db>_bench_redistrict``, dropped at the end), where a real API server and a real
``gridmap worker`` run the job: POST /analysis/redistrict, then GET /analysis/redistrict/{id}
polled for progress while GET /health is timed. Peers in the same run: /health latency before the
job, and the town's grids in force (households spread, Polsby-Popper compactness) beside the
proposal's. Also printed: spopt's import time and its first max-p solve (spopt and libpysal use
no numba: nothing is compiled on first call).

    .venv/bin/python bench/bench_redistrict.py [--town 330421103] [--balance households|workload]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import httpx
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gis.core import db
from gis.core.notify import conninfo_from_url
from gis.core.predicates import is_open
from gis.core.settings import get_settings

# Copied per table: the rows the proposal, its validation and its impact preview read.
OPEN_OR_RECENT = f"({is_open()} OR reported_at >= now() - interval '90 days')"
TABLES = {
    "generations": "TRUE",
    "areas": "TRUE",
    "buildings": "town_code = %(t)s",
    "addresses": "town_code = %(t)s",
    "incidents": f"town_code = %(t)s AND {OPEN_OR_RECENT}",
}


@contextmanager
def throwaway(source_url: str) -> Iterator[str]:
    url = make_url(source_url)
    name = f"{url.database}_bench_redistrict"
    target = url.set(database=name).render_as_string(hide_password=False)
    admin = db.make_engine(url.set(database="postgres"), pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    try:
        db.ensure_database(target)
        db.migrate(target)
        yield target
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def copy_town(source_url: str, target_url: str, town: str) -> dict[str, int]:
    """Copy the town's rows (binary COPY; the source is only read, in a read-only transaction)."""
    counts = {}
    with (
        psycopg.connect(conninfo_from_url(source_url)) as src,
        psycopg.connect(conninfo_from_url(target_url)) as dst,
    ):
        src.execute("SET TRANSACTION READ ONLY")
        dst.execute("SET session_replication_role = replica")  # no FK checks: a subset of the rows
        for table, where in TABLES.items():
            cols = [
                r[0]
                for r in src.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                    "AND table_name = %s AND is_generated = 'NEVER' ORDER BY ordinal_position",
                    (table,),
                )
            ]
            names = ", ".join(f'"{c}"' for c in cols)
            select = f"COPY (SELECT {names} FROM {table} WHERE {where}) TO STDOUT (FORMAT binary)"  # noqa: S608
            with (
                src.cursor().copy(select, {"t": town}) as out,
                dst.cursor().copy(f"COPY {table} ({names}) FROM STDIN (FORMAT binary)") as into,
            ):
                for chunk in out:
                    into.write(chunk)
            counts[table] = int(dst.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]  # noqa: S608
        for table in TABLES:
            # Identity columns continue after the copied ids.
            dst.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"GREATEST((SELECT max(id) FROM {table}), 1))"
            )
        dst.commit()
    return counts


def roads_from_addresses(target_url: str, town: str) -> int:
    """Road centrelines for the throwaway database, approximated from the town's addressed houses:
    the dev database stores road NAMES only (the demo's road lines are not stored), so each road is
    the principal axis of its addresses' points, from the first to the last address along it."""
    import numpy as np
    from shapely.geometry import LineString

    from gis.spatial.crs import METRIC_EPSG
    from gis.spatial.roads import store_roads

    engine = db.make_engine(target_url, pool_size=1, max_overflow=0)
    with engine.begin() as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT road, ST_X(ST_Transform(geom, {METRIC_EPSG})), ST_Y(ST_Transform(geom, {METRIC_EPSG})) "  # noqa: S608
                "FROM addresses WHERE town_code = :t AND road IS NOT NULL AND precision <> 'room'"
            ),
            {"t": town},
        ).all()
        per: dict[str, list[tuple[float, float]]] = {}
        for road, x, y in rows:
            per.setdefault(road, []).append((x, y))
        lines = []
        for road, pts in sorted(per.items()):
            xy = np.asarray(pts)
            if len(xy) < 10:
                continue
            centre = xy.mean(axis=0)
            axis = np.linalg.svd(xy - centre, full_matrices=False)[2][0]
            t = (xy - centre) @ axis
            lines.append((road, LineString([centre + t.min() * axis, centre + t.max() * axis])))
        geoms = gpd.GeoSeries([g for _n, g in lines], crs=METRIC_EPSG).to_crs(4326)
        n = store_roads(conn, [(n, g) for (n, _l), g in zip(lines, geoms, strict=True)], source="bench: addresses")
    engine.dispose()
    return n


def spopt_costs() -> dict[str, float]:
    """Import time of spopt and one small max-p solve (the first call, and a second)."""
    import geopandas as gpd
    from shapely.geometry import box

    t = time.perf_counter()
    from libpysal.weights import Queen
    from spopt.region import MaxPHeuristic

    out = {"import_s": time.perf_counter() - t}
    xs = [i * 100.0 for i in range(9)]
    cells = [box(xs[i], xs[j], xs[i + 1], xs[j + 1]) for i in range(8) for j in range(8)]
    frame = gpd.GeoDataFrame({"hh": [60.0] * 64, "x": [c.centroid.x for c in cells]}, geometry=cells)
    w = Queen.from_dataframe(frame, use_index=False, silence_warnings=True)
    for key in ("first_solve_s", "second_solve_s"):
        t = time.perf_counter()
        m = MaxPHeuristic(frame, w, ["x"], "hh", 300.0, top_n=2, max_iterations_construction=3, max_iterations_sa=1)
        m.solve()
        out[key] = time.perf_counter() - t
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def health_probe(base: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(base_url=base, timeout=10) as c:
        while not stop.is_set():
            t = time.perf_counter()
            c.get("/health").raise_for_status()
            out.append((time.perf_counter() - t) * 1000)
            time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--town", default="330421103", help="西塘镇: 96 grids, 687 micro-grids in the demo")
    ap.add_argument("--balance", default="households", choices=("households", "workload"))
    ap.add_argument("--limit-s", type=float, default=120.0)
    ap.add_argument("--layer", default="grid", choices=("grid", "micro_grid"))
    ap.add_argument("--area", default=None, help="the area to propose for (default: the town)")
    ap.add_argument("--no-roads", action="store_true", help="propose without roads (peer of the default)")
    args = ap.parse_args()
    from tests.conftest import api_server
    from tests.gis.test_jobs import Worker

    costs = spopt_costs()
    print(f"spopt: import {costs['import_s']:.1f} s, first max-p solve (64 cells) {costs['first_solve_s']:.2f} s, "
          f"second {costs['second_solve_s']:.2f} s (no numba: no compile on first call)")  # fmt: skip
    source = db.database_url(get_settings())
    with throwaway(source) as target:
        t = time.perf_counter()
        counts = copy_town(source, target, args.town)
        print(f"copied the town in {time.perf_counter() - t:.1f} s: {counts}")
        print(f"roads approximated from the town's addresses: {roads_from_addresses(target, args.town)}")
        engine = db.make_engine(target, pool_size=1, max_overflow=0)
        from gis.people.keys import create_key

        with engine.begin() as conn:
            key = create_key(conn, "planner", "bench-redistrict", None)
        engine.dispose()
        env = {"GRIDMAP_DATABASE_URL": target}
        with tempfile.TemporaryDirectory() as tmp, api_server(env, Path(tmp) / "api.log") as base:
            before: list[float] = []
            stop = threading.Event()
            probe = threading.Thread(target=health_probe, args=(base, stop, before))
            probe.start()
            time.sleep(5)
            stop.set()
            probe.join()
            os.environ["GRIDMAP_DATABASE_URL"] = target
            worker = Worker(target, Path(tmp) / "worker.log")
            during: list[float] = []
            stop = threading.Event()
            probe = threading.Thread(target=health_probe, args=(base, stop, during))
            try:
                with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as c:
                    probe.start()
                    t0 = time.perf_counter()
                    body = {"area_code": args.area or args.town, "balance": args.balance, "layer": args.layer}
                    print(f"load average at the start: {os.getloadavg()}")
                    r = c.post("/analysis/redistrict", json={**body, "roads": not args.no_roads})
                    post_ms = (time.perf_counter() - t0) * 1000
                    r.raise_for_status()
                    run_id = r.json()["id"]
                    seen: list[tuple[float, str, float]] = []
                    while True:
                        got = c.get(f"/analysis/redistrict/{run_id}")
                        if got.status_code != 200:
                            raise SystemExit(f"GET /analysis/redistrict/{run_id}: {got.status_code} {got.text[:500]}")
                        run = got.json()
                        if not seen or seen[-1][1:] != (run["status"], run["progress"]):
                            seen.append((round(time.perf_counter() - t0, 1), run["status"], run["progress"]))
                        if run["status"] not in ("queued", "running") or time.perf_counter() - t0 > 600:
                            break
                        time.sleep(0.25)
                    wall = time.perf_counter() - t0
                    print(f"load average at the end: {os.getloadavg()}")
            finally:
                stop.set()
                if probe.is_alive():
                    probe.join()
                worker.stop()
    print(f"POST /analysis/redistrict answered 202 in {post_ms:.0f} ms")
    print("progress seen (s, status, progress):", seen[:3], "...", seen[-3:], f"({len(seen)} distinct states)")
    print(f"job: {run['status']} in {wall:.1f} s wall (limit {args.limit_s:.0f} s): {run['message'][:300]}")
    print(f"GET /health before the job: p50 {statistics.median(before):.1f} ms, p95 {pct(before, 0.95):.1f} ms "
          f"(n={len(before)})")  # fmt: skip
    print(f"GET /health during the job: p50 {statistics.median(during):.1f} ms, p95 {pct(during, 0.95):.1f} ms, "
          f"max {max(during):.1f} ms (n={len(during)})")  # fmt: skip
    rep = run.get("report") or {}
    if rep:
        for label, fig in (("current grids (peer)", rep["current"]), ("proposal", rep["proposal"])):
            hh, pp, wl = fig["households"], fig.get("polsby_popper", {}), fig["workload"]
            print(f"{label}: {fig['units']} units, households min {hh['min']:.0f} max {hh['max']:.0f} "
                  f"spread {hh['spread']:.0f} (in a village {hh['within_village_spread']:.0f}); "
                  f"incidents/90 d spread {wl['spread']:.0f} (in a village {wl['within_village_spread']:.0f}); "
                  f"Polsby-Popper min {pp.get('min')} mean {pp.get('mean')}")  # fmt: skip
        if args.layer == "grid":
            print(f"{rep['micro_grids']} micro-grids in {rep['villages']} villages; addresses changing grid: "
                  f"{rep['addresses_changing_grid']}; moves {rep['repair_moves']}, splits {rep['splits']}")  # fmt: skip
        else:
            changing = rep["addresses_changing_micro_grid"]
            print(f"{rep['buildings']} buildings ({rep['cells']} cells) in {rep['grids']} grids; households "
                  f"{rep['households']}; addresses changing micro-grid {changing}")  # fmt: skip
        roads = rep["borders_on_roads"]
        print(f"borders on roads ({roads['roads']} roads): proposal {roads['proposal']}, current {roads['current']}; "
              f"{roads['notes'][:3]}")  # fmt: skip
    ok = run["status"] in ("done", "infeasible") and wall <= args.limit_s
    print("PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
