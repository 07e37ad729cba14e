"""A dispatch roster for the mini county (boundaries.sample): organisation units and the people on
duty that the default routing rules (migration 0016) look for, written straight into the tables."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from gis.spatial.areas import Conn

TOWN1, VILLAGE1, GRID1 = "330421001", "330421001001", "330421001001001"
GRID2 = "330421001001002"  # the neighbour grid of the same village: no grid worker on duty
BEAT1 = "330421P0101"
IN_GRID1 = {"lon": 120.905, "lat": 30.832}  # grid 1, beat P0101
IN_GRID2 = {"lon": 120.915, "lat": 30.832}  # grid 2, beat P0102
UNITS = [
    ("330421-SZZX", "县社会治理中心", "county_centre", "county", "330421"),
    ("330421-ZHZF", "综合行政执法局", "department", "county", "330421"),
    ("330421001-ZHZX", "测试镇1综合信息指挥室", "town_centre", "town", TOWN1),
    ("330421002-ZHZX", "测试镇2综合信息指挥室", "town_centre", "town", "330421002"),
    ("330421001001-GZZ", "测试镇1村1工作站", "village_station", "village", VILLAGE1),
    ("330421001002-GZZ", "测试镇1村2工作站", "village_station", "village", "330421001002"),
]


@dataclass(frozen=True)
class Roster:
    units: dict[str, int]  # code -> id
    grid_worker: int
    aux_police: int
    beat_officer: int
    other_worker: int  # the grid worker of a grid in town 2


def _person(conn: Conn, name: str, role: str, layer: str, area: str, unit: int | None = None) -> int:
    pid = conn.execute(sa.text("INSERT INTO people (name) VALUES (:n) RETURNING id"), {"n": name}).scalar_one()
    conn.execute(
        sa.text(
            "INSERT INTO postings (person_id, role, layer, area_code, org_unit_id, starts_on) "
            "VALUES (:p, :r, :l, :a, :u, DATE '2020-01-01')"
        ),
        {"p": pid, "r": role, "l": layer, "a": area, "u": unit},
    )
    return int(pid)


def make_roster(conn: Conn) -> Roster:
    units = {}
    for code, name, kind, layer, area in UNITS:
        units[code] = conn.execute(
            sa.text(
                "INSERT INTO org_units (code, name, kind, layer, area_code) VALUES (:c, :n, :k, :l, :a) RETURNING id"
            ),
            {"c": code, "n": name, "k": kind, "l": layer, "a": area},
        ).scalar_one()
    station = units["330421001001-GZZ"]
    return Roster(
        units=units,
        grid_worker=_person(conn, "网格员甲", "grid_worker", "grid", GRID1, station),
        aux_police=_person(conn, "辅警乙", "aux_police", "grid", GRID1, station),
        beat_officer=_person(conn, "民警丙", "beat_officer", "beat", BEAT1),
        other_worker=_person(conn, "网格员丁", "grid_worker", "grid", "330421002001001"),
    )


def give_holder(conn: Conn, incident_id: int) -> int:
    """An accepted lead assignment of ``incident_id`` held by a test unit: what the workflow needs
    before ``dispatched`` (the status requires a holder). Writes no history entry."""
    unit = conn.execute(sa.text("SELECT id FROM org_units WHERE code = 'TEST-HOLDER'")).scalar()
    if unit is None:
        unit = conn.execute(
            sa.text(
                "INSERT INTO org_units (code, name, kind, layer, area_code) "
                "VALUES ('TEST-HOLDER', 'test holder', 'department', 'county', '330421') RETURNING id"
            )
        ).scalar_one()
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO incident_assignments (incident_id, role, org_unit_id, state, offered_at, offered_by, "
                "accepted_at, accepted_by) VALUES (:i, 'lead', :u, 'accepted', now(), 'tests', now(), 'tests') "
                "RETURNING id"
            ),
            {"i": incident_id, "u": unit},
        ).scalar_one()
    )
