"""Bulk import benchmark: 1,000,000 incidents from CSV, gridmap against the pipeline a user would write.

Run: ``.venv/bin/python bench/bench_bulk_import.py [--rows N]``

In one run, on a throwaway database holding the boundaries of the configured database's current
generation (the Jiashan demo when it is loaded, else the small test county):

(a) ``gridmap import incidents FILE`` end to end (read, validate, assign all six units in
    process, COPY, every index rebuilt, commit) into an empty incidents table;
(b) the plain pipeline: ``pandas.read_csv`` → three ``geopandas.sjoin`` (town, grid, beat) →
    ``GeoDataFrame.to_postgis`` into a fresh table (GeoAlchemy2 creates the GiST index).

Targets (issue 4): (a) at least 60,000 rows/s and at least 5x (b).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boundaries.generations import publish_layers
from gis.bulk import ImportOptions, import_file
from gis.core import db
from gis.core.models import LAYERS
from gis.incidents.rules import CATEGORIES, SOURCES
from gis.spatial.areas import current_generation, load_layer

SCRATCH_SUFFIX = "_bench_bulk"


def source_layers(url: str) -> tuple[dict[str, gpd.GeoDataFrame], str]:
    """The configured database's current boundaries, or the mini test county when it has none."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            gen = current_generation(conn)
            if gen is not None:
                layers = {layer: load_layer(conn, layer, gen) for layer in LAYERS}
                if len(layers["micro_grid"]) or len(layers["grid"]):
                    return {k: v for k, v in layers.items() if len(v)}, f"generation {gen} of {make_url(url).database}"
    except sa.exc.OperationalError:
        pass
    finally:
        engine.dispose()
    from boundaries.sample import build_mini_county

    return build_mini_county(), "the mini test county (no boundaries in the configured database)"


def scratch_database(url: str) -> str:
    base = make_url(url)
    name = f"{base.database}{SCRATCH_SUFFIX}"
    admin = db.make_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    scratch = base.set(database=name).render_as_string(hide_password=False)
    db.ensure_database(scratch)
    db.migrate(scratch)
    return scratch


def drop_database(url: str) -> None:
    base = make_url(url)
    admin = db.make_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{base.database}" WITH (FORCE)'))
    admin.dispose()


def _inside(county: gpd.GeoDataFrame, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` uniform points inside the county (rejection sampling from its bounding box)."""
    shape = county.geometry.union_all()
    x0, y0, x1, y1 = shape.bounds
    found = np.empty((0, 2))
    while len(found) < count:
        xy = np.column_stack([rng.uniform(x0, x1, count), rng.uniform(y0, y1, count)])
        found = np.vstack([found, xy[shapely.contains_xy(shape, xy[:, 0], xy[:, 1])]])
    return found[:count]


def write_csv(path: Path, rows: int, county: gpd.GeoDataFrame, seed: int = 1) -> None:
    """Incidents over the county: 70% around 40 hotspots, the rest uniform over it (0.2% outside)."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = county.total_bounds
    centres = _inside(county, 40, rng)
    hot = rng.integers(0, 40, rows)
    spread = _inside(county, rows, rng)
    clustered = rng.random(rows) < 0.7
    lon = np.where(clustered, centres[hot, 0] + rng.normal(0, 0.006, rows), spread[:, 0])
    lat = np.where(clustered, centres[hot, 1] + rng.normal(0, 0.005, rows), spread[:, 1])
    away = rng.random(rows) < 0.002
    lon[away], lat[away] = x1 + rng.uniform(0.001, 0.05, away.sum()), rng.uniform(y0, y1, away.sum())
    start = pd.Timestamp("2025-11-01T00:00:00")
    seconds = np.sort(rng.integers(0, 365 * 86400, rows))
    reported = (start + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%d %H:%M:%S")
    frame = pd.DataFrame(
        {
            "external_id": [f"B{i:08d}" for i in range(rows)],
            "category": rng.choice(list(CATEGORIES), rows),
            "source": rng.choice(list(SOURCES), rows),
            "reported_at": reported,
            "lon": lon.round(6),
            "lat": lat.round(6),
            "status": np.where(rng.random(rows) < 0.993, "closed", "in_progress"),
            "address_text": "嘉善县魏塘街道中山路" + pd.Series(rng.integers(1, 400, rows)).astype(str) + "号",
            "description": rng.choice(["居民反映", "巡查发现", "群众来电", "网格员上报"], rows),
        }
    )
    frame.to_csv(path, index=False)


def run_gridmap(engine: Engine, path: Path) -> tuple[float, dict[str, float], int]:
    started = time.perf_counter()
    result = import_file(engine, "incidents", path, ImportOptions(actor="bench"))
    elapsed = time.perf_counter() - started
    return elapsed, result.timings, result.inserted


def run_plain(url: str, path: Path, layers: dict[str, gpd.GeoDataFrame]) -> tuple[float, int]:
    """What a GIS analyst would write with pandas and geopandas."""
    engine = sa.create_engine(url)
    started = time.perf_counter()
    frame = pd.read_csv(path)
    points = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326")
    for layer, column in (("town", "town_code"), ("grid", "grid_code"), ("beat", "beat_code")):
        polys = layers[layer][["code", "geometry"]].rename(columns={"code": column})
        points = gpd.sjoin(points, polys, how="left", predicate="within").drop(columns="index_right")
        points = points[~points.index.duplicated()]
    points.to_postgis("plain_incidents", engine, if_exists="replace", index=False)
    elapsed = time.perf_counter() - started
    with engine.connect() as conn:
        stored = int(conn.execute(sa.text("SELECT count(*) FROM plain_incidents")).scalar_one())
    engine.dispose()
    return elapsed, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    url = db.database_url()
    layers, where = source_layers(url)
    print(f"boundaries: {where}: " + ", ".join(f"{k} {len(v)}" for k, v in layers.items()))
    scratch = scratch_database(url)
    engine = db.make_engine(scratch)
    try:
        with engine.begin() as conn:
            publish_layers(
                conn, layers, note="bench", author="bench", published_at=pd.Timestamp("2020-01-01", tz="UTC")
            )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "incidents.csv"
            t = time.perf_counter()
            county = layers.get("county", layers["town"])
            write_csv(path, args.rows, county)
            print(
                f"wrote {args.rows:,} incidents to CSV ({path.stat().st_size / 1e6:.0f} MB) "
                f"in {time.perf_counter() - t:.1f}s"
            )

            grid_s, timings, stored = run_gridmap(engine, path)
            assert stored == args.rows, f"gridmap stored {stored} of {args.rows}"
            with engine.connect() as conn:
                indexes = conn.execute(
                    sa.text("SELECT count(*) FROM pg_indexes WHERE tablename = 'incidents'")
                ).scalar()
                unassigned = conn.execute(
                    sa.text("SELECT count(*) FROM incidents WHERE assign_status IS NULL")
                ).scalar()
            print(
                f"(a) gridmap import: {grid_s:.1f}s, {args.rows / grid_s:,.0f} rows/s "
                f"({indexes} indexes in place, {unassigned} unassigned); stages: "
                + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
            )
            plain_s, plain_rows = run_plain(scratch, path, layers)
            print(f"(b) read_csv + 3 sjoin + to_postgis: {plain_s:.1f}s, {plain_rows / plain_s:,.0f} rows/s")
            print(f"ratio: gridmap is {plain_s / grid_s:.1f}x the plain pipeline")
    finally:
        engine.dispose()
        if not args.keep:
            drop_database(scratch)


if __name__ == "__main__":
    main()
