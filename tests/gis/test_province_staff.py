"""Staff and routing of the province demo's synthetic counties (issue #20): each synthetic county
gets Jiashan's units and roster at Jiashan's ratios, its reports are dispatched to its own staff,
its escalations reach its own county centre, and nothing of one county is offered to another's."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from demo.province.counties import zhejiang_counties
from demo.province.generate import STAFF_NOTE, CountyData, build_county
from demo.province.load import load_county
from gis.core.settings import Settings
from gis.dispatch.assignments import list_assignments
from gis.incidents.intake import create_incident
from gis.incidents.workflow import escalate
from tests.dispatch_roster import IN_GRID1, make_roster

REFERENCE = pd.Timestamp("2026-10-31T23:59:59+08:00")
NOW = dt.datetime(2026, 10, 31, 2, 0, tzinfo=dt.UTC)  # 10:00 in China, the reference day
SETTINGS = Settings(accept_within_s=600, accept_within_110_s=60)
HOME, SYNTHETIC = "330421", "330108"  # the mini county (boundaries.sample) and Binjiang, a small one


@pytest.fixture(scope="module")
def binjiang() -> CountyData:
    county = next(c for c in zhejiang_counties() if c.code == SYNTHETIC)
    return build_county(county, seed=7, incidents=20, reference=REFERENCE, building_share=0.02)


@pytest.fixture
def province(connection: Connection, mini_county: Any, binjiang: CountyData) -> CountyData:
    """The mini county with its dispatch roster (county A) and Binjiang loaded beside it (county B)."""
    make_roster(connection)
    load_county(connection, binjiang, published_at=pd.Timestamp("2020-01-02T00:00+08:00"), reference=REFERENCE)
    return binjiang


def _report(conn: Connection, where: dict[str, float], category: str = "dispute", source: str = "resident_app") -> int:
    data = {**where, "category": category, "source": source, "reported_at": NOW}
    incident, created = create_incident(conn, data, "reporter", settings=SETTINGS, now=NOW)
    assert created
    return int(incident["id"])


def _staffed_grid(conn: Connection) -> tuple[str, dict[str, float], set[int]]:
    """A grid of Binjiang with a full-time worker on duty: code, a point inside, its workers."""
    row = conn.execute(
        sa.text(
            "SELECT a.code, ST_X(ST_PointOnSurface(a.geom)) AS lon, ST_Y(ST_PointOnSurface(a.geom)) AS lat "
            "FROM areas a WHERE a.layer = 'grid' AND a.gen_to IS NULL AND a.code LIKE :c "
            "AND EXISTS (SELECT 1 FROM postings po WHERE po.area_code = a.code AND po.role = 'grid_worker' "
            "AND po.starts_on <= :d AND po.ends_on IS NULL) ORDER BY a.code LIMIT 1"
        ),
        {"c": f"{SYNTHETIC}%", "d": NOW.date()},
    ).one()
    workers = conn.execute(
        sa.text("SELECT person_id FROM postings WHERE area_code = :g AND role = 'grid_worker' AND ends_on IS NULL"),
        {"g": row.code},
    ).scalars()
    return str(row.code), {"lon": float(row.lon), "lat": float(row.lat)}, {int(p) for p in workers}


def _unit(conn: Connection, code: str) -> int:
    return int(conn.execute(sa.text("SELECT id FROM org_units WHERE code = :c"), {"c": code}).scalar_one())


def test_a_synthetic_county_gets_jiashans_units_and_roster(binjiang: CountyData) -> None:
    staff, units = binjiang.staff, binjiang.org_units
    grids, beats = set(binjiang.layers["grid"]["code"]), set(binjiang.layers["beat"]["code"])
    current = staff[staff["ends_on"].isna()]
    for role in ("grid_leader", "grid_worker"):
        assert set(current.loc[current["role"] == role, "area_code"]) == grids, role
    aux = set(staff.loc[staff["role"] == "aux_police", "area_code"])
    assert aux < grids and abs(len(aux) - round(len(grids) * 628 / 760)) <= 1  # Jiashan's ratio
    assert set(staff.loc[staff["role"] == "beat_officer", "area_code"]) == beats
    assert (staff["note"] == STAFF_NOTE).all()
    assert staff["id_card"].str.startswith(SYNTHETIC).all()
    assert all(str(c).startswith(SYNTHETIC) for c in staff["area_code"])
    kinds = units["kind"].value_counts().to_dict()
    assert kinds == {
        "county_centre": 1,
        "department": 5,
        "town_centre": len(binjiang.layers["town"]),
        "village_station": len(binjiang.layers["village"]),
        "police_station": len(binjiang.layers["station"]),
    }
    centre = units[units["kind"] == "county_centre"].iloc[0]
    assert (centre["code"], centre["area_code"]) == (f"{SYNTHETIC}-SZZX", SYNTHETIC)
    assert centre["name"].endswith("(合成)")
    # Deterministic: the same seed builds the same roster.
    again = build_county(binjiang.county, seed=7, incidents=20, reference=REFERENCE, building_share=0.02)
    pd.testing.assert_frame_equal(again.staff, staff)
    pd.testing.assert_frame_equal(again.org_units, units)


def test_a_report_in_a_synthetic_county_goes_to_its_grid_worker(connection: Connection, province: CountyData) -> None:
    grid, where, workers = _staffed_grid(connection)
    iid = _report(connection, where)
    offers = list_assignments(connection, iid)
    assert [(a["role"], a["state"]) for a in offers] == [("lead", "offered")]
    assert offers[0]["person_id"] == min(workers)
    county = connection.execute(sa.text("SELECT county_code, grid_code FROM incidents WHERE id = :i"), {"i": iid})
    assert tuple(county.one()) == (SYNTHETIC, grid)


def test_an_escalation_reaches_the_incidents_own_county_centre(connection: Connection, province: CountyData) -> None:
    _, where, _ = _staffed_grid(connection)
    ours, theirs = _report(connection, where), _report(connection, IN_GRID1)
    for iid in (ours, theirs):
        for hours in (1, 2, 3):  # grid -> village -> town -> county
            escalate(connection, iid, "desk", now=NOW + dt.timedelta(hours=hours))
    centres = {
        iid: {a["org_unit"] for a in list_assignments(connection, iid) if a["level"] == "county"}
        for iid in (ours, theirs)
    }
    assert centres == {ours: {f"{SYNTHETIC}-SZZX"}, theirs: {f"{HOME}-SZZX"}}
    town = {a["org_unit"] for a in list_assignments(connection, ours) if a["level"] == "town"}
    assert len(town) == 1 and next(iter(town)).startswith(SYNTHETIC) and next(iter(town)).endswith("-ZHZX")


def test_illegal_construction_goes_to_the_bureau_of_its_own_county(
    connection: Connection, province: CountyData
) -> None:
    _, where, _ = _staffed_grid(connection)
    ours = _report(connection, where, category="illegal_construction")
    theirs = _report(connection, IN_GRID1, category="illegal_construction")
    units = {iid: {a["org_unit"] for a in list_assignments(connection, iid)} - {None} for iid in (ours, theirs)}
    # Binjiang's twin of Jiashan's rule (demo.province.load.copy_unit_rules) names its own bureau.
    assert units == {ours: {f"{SYNTHETIC}-ZHZF"}, theirs: {f"{HOME}-ZHZF"}}


def test_nothing_of_one_county_is_offered_to_the_staff_of_another(connection: Connection, province: CountyData) -> None:
    _, where, _ = _staffed_grid(connection)
    made = [
        _report(connection, where, category, source)
        for category, source in (("dispute", "resident_app"), ("noise", "hotline_110"), ("theft", "resident_app"),
                                 ("illegal_construction", "grid_patrol"))
    ]  # fmt: skip
    made += [_report(connection, IN_GRID1, "noise", "hotline_110"), _report(connection, IN_GRID1)]
    for iid in made:  # up to the county centre
        for hours in (1, 2, 3):
            escalate(connection, iid, "desk", now=NOW + dt.timedelta(hours=hours))
    # Each assignment's holder belongs to a county: a unit by its area, a person by their postings.
    crossed = connection.execute(
        sa.text(
            "SELECT a.id, i.county_code, coalesce(left(ou.area_code, 6), p.counties) AS holder FROM "
            "incident_assignments a JOIN incidents i ON i.id = a.incident_id "
            "LEFT JOIN org_units ou ON ou.id = a.org_unit_id "
            "LEFT JOIN LATERAL (SELECT string_agg(DISTINCT left(po.area_code, 6), ',') AS counties FROM postings po "
            "    WHERE po.person_id = a.person_id) p ON true "
            "WHERE a.incident_id = ANY(:ids)"
        ),
        {"ids": made},
    ).all()
    assert len(crossed) >= 2 * len(made)  # a lead at the grid and the village station at least
    assert {(r.county_code, r.holder) for r in crossed} == {(SYNTHETIC, SYNTHETIC), (HOME, HOME)}


def test_the_simulators_centres_and_departments_are_of_the_incidents_county(
    connection: Connection, province: CountyData
) -> None:
    from demo.simulator.cast import Cast

    cast = Cast()
    found = {
        (kind, area): (cast.find_unit(connection, kind, area) or (0, None))[1]
        for kind, area in (
            ("county_centre", SYNTHETIC),
            ("county_centre", HOME),
            ("department", f"{SYNTHETIC}-ZHZF"),
            ("department", f"{HOME}-ZHZF"),
        )
    }
    assert found == {
        ("county_centre", SYNTHETIC): f"{SYNTHETIC}-SZZX",
        ("county_centre", HOME): f"{HOME}-SZZX",
        ("department", f"{SYNTHETIC}-ZHZF"): f"{SYNTHETIC}-ZHZF",
        ("department", f"{HOME}-ZHZF"): f"{HOME}-ZHZF",
    }
    # An incident of Binjiang outside its towns is verified by Binjiang's centre, not Jiashan's.
    account = cast.centre(connection, None, SYNTHETIC)
    unit = connection.execute(sa.text("SELECT org_unit_id FROM accounts WHERE name = :n"), {"n": account}).scalar()
    assert unit == _unit(connection, f"{SYNTHETIC}-SZZX")
