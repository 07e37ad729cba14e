"""The inspection map layers (gis.fieldwork.maplayers) against a direct computation in Python on the
same rows: risk classes, inspection age classes, due or overdue for inspection, open and overdue
hazards, a campaign's shares by grid; the caller's scope and the display CRS."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.core.vocab import COUNTY_TZ, HAZARD_PENDING_STATUSES
from gis.fieldwork import buildings, maplayers
from gis.fieldwork.errors import FieldworkInputError
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.crs import wgs84_to_gcj02
from tests.fieldwork_data import G1, OTHER_TOWN_GRID, TOWN1
from tests.inspection_data import Inspected, seed_inspections


@pytest.fixture
def data(connection: Connection, mini_county: Any) -> Inspected:
    return seed_inspections(connection)


def _rentals(conn: Connection) -> list[Any]:
    return list(
        conn.execute(
            sa.text(
                "SELECT id, grid_code, town_code, risk_level, last_inspected_at, next_inspection_on, "
                "ST_X(geom) AS lon, ST_Y(geom) AS lat FROM buildings WHERE is_rental ORDER BY id"
            )
        ).all()
    )


def _expected(conn: Connection, now: dt.datetime) -> dict[int, dict[str, str]]:
    """Each rental building's classes, computed here from its row and the intervals."""
    days = buildings.intervals(conn)
    today = now.astimezone(COUNTY_TZ).date()
    out = {}
    for r in _rentals(conn):
        last = r.last_inspected_at
        if last is None:
            out[r.id] = {"risk": "none", "age": "never", "due": "never"}
            continue
        age_days = (now - last) / dt.timedelta(days=1)
        age = "lt30" if age_days <= 30 else "d30_90" if age_days <= 90 else "d90_180" if age_days <= 180 else "gt180"
        interval = days.get(r.risk_level, max(days.values()))
        due_on = r.next_inspection_on or last.astimezone(COUNTY_TZ).date() + dt.timedelta(days=interval)
        out[r.id] = {
            "risk": r.risk_level or "none",
            "age": age,
            "due": "overdue" if due_on < today else "within",
        }
    return out


@pytest.mark.parametrize("by", ["risk", "age", "due"])
def test_building_classes_match_a_direct_computation(connection: Connection, data: Inspected, by: str) -> None:
    expected = _expected(connection, data.now)
    layer = maplayers.building_points(connection, by, WHOLE_COUNTY, now=data.now)
    got = {f["properties"]["id"]: f["properties"]["cls"] for f in layer["features"]}
    assert got == {i: c[by] for i, c in expected.items()}
    direct = Counter(c[by] for c in expected.values())
    assert layer["counts"] == {c: direct.get(c, 0) for c in maplayers.BUILDING_VIEWS[by]}
    # The data spans every class (else the comparison would prove little).
    assert all(layer["counts"].values()), layer["counts"]


def test_real_inspections_set_the_classes(connection: Connection, data: Inspected) -> None:
    layer = maplayers.building_points(connection, "risk", WHOLE_COUNTY, now=data.now)
    props = {f["properties"]["id"]: f["properties"] for f in layer["features"]}
    b = data.field.buildings
    # fly-line (high severity) failed; wiring (medium) failed; all passed at the re-inspection.
    assert [props[i]["cls"] for i in b[:4]] == ["high", "medium", "low", "low"]
    assert props[b[3]]["days"] == 40
    # The low-risk row's next inspection is 90 days after the inspection's county day.
    day = (data.now - dt.timedelta(days=40)).astimezone(COUNTY_TZ).date()
    assert props[b[3]]["due_on"] == (day + dt.timedelta(days=90)).isoformat()


def test_hazards_open_and_overdue_match_a_direct_computation(connection: Connection, data: Inspected) -> None:
    rows = connection.execute(
        sa.text("SELECT id, status, rectify_by, town_code FROM hazards WHERE status <> 'rectified'")
    ).all()

    def late(r: Any) -> bool:
        return r.status == "overdue" or (r.status in HAZARD_PENDING_STATUSES and r.rectify_by < data.now)

    overdue = {r.id for r in rows if late(r)}
    others = {r.id for r in rows if not late(r)}
    assert overdue and others
    for flag, ids in ((True, overdue), (False, others), (None, overdue | others)):
        layer = maplayers.hazard_points(connection, WHOLE_COUNTY, overdue=flag, now=data.now)
        got = {f["properties"]["id"]: f["properties"]["overdue"] for f in layer["features"]}
        assert set(got) == ids
        assert all(v == (i in overdue) for i, v in got.items())
    # The rectified one is on no layer.
    rectified = connection.execute(sa.text("SELECT count(*) FROM hazards WHERE status = 'rectified'")).scalar_one()
    assert rectified == 1
    # Scope: town 1 leaves out the other town's overdue hazard.
    town = maplayers.hazard_points(connection, Scope.parse(TOWN1), overdue=True, now=data.now)
    in_town = {r.id for r in rows if late(r) and r.town_code == TOWN1}
    assert {f["properties"]["id"] for f in town["features"]} == in_town != overdue


def test_scope_and_grid(connection: Connection, data: Inspected) -> None:
    town = maplayers.building_points(connection, "age", Scope.parse(TOWN1), now=data.now)
    assert {f["properties"]["grid_code"] for f in town["features"]} == {G1}
    assert len(town["features"]) == len(data.field.buildings)
    other = maplayers.building_points(connection, "age", Scope.parse(OTHER_TOWN_GRID), now=data.now)
    assert [f["properties"]["id"] for f in other["features"]] == [data.field.other_building]
    # A grid page's figures are the due classes of its buildings.
    expected = _expected(connection, data.now)
    direct = Counter(expected[i]["due"] for i in data.field.buildings)
    figures = maplayers.grid_inspection_figures(connection, G1, WHOLE_COUNTY, data.now)
    assert figures["buildings"] == len(data.field.buildings)
    assert (figures["within"], figures["overdue"], figures["never"]) == (
        direct["within"],
        direct["overdue"],
        direct["never"],
    )
    assert figures["share_within"] == round(direct["within"] / len(data.field.buildings), 4)
    assert maplayers.grid_inspection_figures(connection, G1, Scope.parse(OTHER_TOWN_GRID), data.now)["buildings"] == 0


def test_campaign_shares_match_a_direct_computation(connection: Connection, data: Inspected) -> None:
    campaign = maplayers.chosen_campaign(connection, WHOLE_COUNTY, today=data.now.astimezone(COUNTY_TZ).date())
    assert campaign is not None and campaign["id"] == data.campaign_id
    targets = set(
        connection.execute(
            sa.text("SELECT building_id FROM campaign_buildings WHERE campaign_id = :c"), {"c": data.campaign_id}
        ).scalars()
    )
    inspected = set(
        connection.execute(
            sa.text("SELECT DISTINCT building_id FROM inspections WHERE building_id = ANY(:ids)"),
            {"ids": list(targets)},
        ).scalars()
    )
    found = connection.execute(
        sa.text(
            "SELECT h.status FROM hazards h JOIN inspections i ON i.id = h.inspection_id "
            "WHERE i.building_id = ANY(:ids)"
        ),
        {"ids": list(targets)},
    ).scalars()
    statuses = Counter(found)
    layer = maplayers.campaign_grids(connection, data.campaign_id, "inspected", WHOLE_COUNTY, now=data.now)
    assert [f["properties"]["code"] for f in layer["features"]] == [G1]
    props = layer["features"][0]["properties"]
    assert props["targets"] == len(targets) and props["inspected"] == len(inspected) == 4
    assert props["share"] == round(len(inspected) / len(targets), 4)
    assert props["style"]["fillColor"] == maplayers.share_color(props["share"])
    rectified = maplayers.campaign_grids(connection, data.campaign_id, "rectified", WHOLE_COUNTY, now=data.now)
    share = rectified["features"][0]["properties"]["share"]
    assert share == round(statuses["rectified"] / sum(statuses.values()), 4) == round(1 / 3, 4)
    assert layer["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_campaign_choice_follows_the_scope(connection: Connection, data: Inspected) -> None:
    today = data.now.astimezone(COUNTY_TZ).date()
    assert maplayers.chosen_campaign(connection, Scope.parse(G1), today=today) is not None  # inside its area
    assert maplayers.chosen_campaign(connection, Scope.parse(OTHER_TOWN_GRID), today=today) is None
    outside = maplayers.campaign_grids(connection, data.campaign_id, "inspected", Scope.parse(G1), now=data.now)
    assert len(outside["features"]) == 1
    with pytest.raises(FieldworkInputError, match="measure"):
        maplayers.campaign_grids(connection, data.campaign_id, "done", WHOLE_COUNTY)
    with pytest.raises(FieldworkInputError, match="by"):
        maplayers.building_points(connection, "colour", WHOLE_COUNTY)


def test_points_in_gcj02_display(connection: Connection, data: Inspected) -> None:
    rows = {r.id: (r.lon, r.lat) for r in _rentals(connection)}
    gcj = maplayers.building_points(connection, "risk", WHOLE_COUNTY, "gcj02", now=data.now)
    for feature in gcj["features"][:5]:
        expected = wgs84_to_gcj02(*rows[feature["properties"]["id"]])
        assert feature["geometry"]["coordinates"] == pytest.approx(list(expected), abs=2e-5)
        assert feature["geometry"]["coordinates"] != pytest.approx(list(rows[feature["properties"]["id"]]), abs=1e-4)
    hazards = maplayers.hazard_points(connection, WHOLE_COUNTY, "gcj02", now=data.now)
    wgs = maplayers.hazard_points(connection, WHOLE_COUNTY, "wgs84", now=data.now)
    first_gcj, first_wgs = (
        hazards["features"][0]["geometry"]["coordinates"],
        wgs["features"][0]["geometry"]["coordinates"],
    )
    assert first_gcj == pytest.approx(list(wgs84_to_gcj02(*first_wgs)), abs=2e-5)
