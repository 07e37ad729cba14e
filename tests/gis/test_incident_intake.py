"""Live intake against the mini county: assignment on edges and vertices, CRS at the edge,
idempotency, possible duplicates, and every kind of bad input (named field, nothing stored)."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import pytest
import sqlalchemy as sa
from shapely.geometry import box

from boundaries.generations import publish_layers
from gis.core.settings import Settings
from gis.incidents import rules
from gis.incidents.intake import IncidentInputError, create_incident
from gis.incidents.query import get_incident
from gis.spatial import crs as gcrs
from gis.spatial.address_text import normalize_address

X0, X1, Y0, Y1, XM, YM = 120.90, 120.94, 30.83, 30.85, 120.92, 30.84
GX = (X0 + XM) / 2  # edge between the two grids of town 1 / village 1
NOW = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
SETTINGS = Settings()


def _report(conn, key: str | None = None, **over):  # type: ignore[no-untyped-def]
    data = {"lon": 120.905, "lat": 30.832, "category": "dispute", "source": "grid_patrol", "reported_at": NOW}
    data.update(over)
    return create_incident(
        conn, data, "tester", idempotency_key=key, settings=SETTINGS, now=NOW + dt.timedelta(hours=1)
    )


def _count(conn, table: str = "incidents") -> int:  # type: ignore[no-untyped-def]
    return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_interior_point_is_assigned_with_deadline_history_and_audit(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    incident, created = _report(connection, category="fire", reporter_name="张三", reporter_phone="13812345678")
    assert created
    assert incident["town_code"] == "330421001"
    assert incident["village_code"] == "330421001001"
    assert incident["grid_code"] == "330421001001001"
    assert incident["micro_grid_code"] == "33042100100100101"
    assert incident["beat_code"] == "330421P0101" and incident["station_code"] == "330421P01"
    assert incident["assign_status"] == "inside" and incident["generation_id"] == mini_county.generation
    assert incident["status"] == "reported" and incident["status_zh"] == "上报"
    assert incident["deadline_at"] == NOW + dt.timedelta(hours=rules.CATEGORIES["fire"].deadline_hours)
    assert incident["escalation_level"] == "grid"
    assert incident["reporter_phone"] == "13812345678"  # stored in full; masking happens on output
    stored = get_incident(connection, incident["id"])
    assert stored is not None
    assert [(e["action"], e["from_status"], e["to_status"], e["actor"]) for e in stored["history"]] == [
        ("report", None, "reported", "tester")
    ]
    audit = connection.execute(
        sa.text("SELECT actor, action, detail->>'grid_code' FROM audit_log WHERE target = :t"),
        {"t": f"incident/{incident['id']}"},
    ).all()
    assert audit == [("tester", "incident.create", "330421001001001")]


def test_deadline_follows_the_configured_override(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(deadline_hours={"fire": 2})
    data = {"lon": 120.905, "lat": 30.832, "category": "fire", "source": "hotline_110", "reported_at": NOW}
    incident, _ = create_incident(connection, data, "t", settings=settings, now=NOW)
    assert incident["deadline_at"] == NOW + dt.timedelta(hours=2)


@pytest.mark.parametrize(
    ("lon", "lat", "grid", "micro"),
    [
        (GX, 30.832, "330421001001001", "33042100100100101"),  # grid edge: west (smaller code) wins
        (XM, 30.833, "330421001001002", "33042100100100201"),  # town edge: town 1 wins
        (XM, YM, "330421001001002", "33042100100100202"),  # vertex of four villages in two towns
        (X0, 30.838, "330421001001001", "33042100100100102"),  # on the county outline
    ],
)
def test_points_on_edges_and_vertices_get_exactly_one_unit(connection, mini_county, lon, lat, grid, micro) -> None:  # type: ignore[no-untyped-def]
    incident, _ = _report(connection, lon=lon, lat=lat)
    assert (incident["grid_code"], incident["micro_grid_code"]) == (grid, micro)
    assert incident["assign_status"] == "inside"


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_gcj02_and_bd09_give_the_grid_of_the_wgs84_point(connection, mini_county, crs: str) -> None:  # type: ignore[no-untyped-def]
    # 3 m east of a grid edge: the ~500 m datum offset, if not removed, would change the grid.
    wgs_lon, wgs_lat = GX + 0.00003, 30.8345
    lon, lat = gcrs.from_wgs84(wgs_lon, wgs_lat, crs)
    assert gcrs.metres_between(lon, lat, wgs_lon, wgs_lat) > 300
    reference, _ = _report(connection, lon=wgs_lon, lat=wgs_lat)
    converted, _ = _report(connection, lon=lon, lat=lat, crs=crs, category="traffic")
    assert reference["grid_code"] == converted["grid_code"] == "330421001001002"
    assert converted["micro_grid_code"] == reference["micro_grid_code"]
    assert gcrs.metres_between(converted["lon"], converted["lat"], wgs_lon, wgs_lat) < 0.5
    assert (converted["received_crs"], converted["received_lon"], converted["received_lat"]) == (crs, lon, lat)


def test_snapped_and_outside_points_are_stored_and_flagged(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    snapped, _ = _report(connection, lon=X0 - 0.0002, lat=30.835)  # ~19 m west of the county
    assert snapped["assign_status"] == "snapped" and snapped["grid_code"] == "330421001001001"
    assert 15 < snapped["snap_distance_m"] < 25
    outside, created = _report(connection, lon=121.2, lat=30.9, category="traffic")
    assert created and outside["assign_status"] == "outside_jurisdiction" and outside["grid_code"] is None


def test_same_source_and_external_id_returns_the_first_row(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    first, created = _report(connection, external_id="A-1")
    again, created_again = _report(connection, external_id="A-1", lon=120.935, description="retry")
    assert created and not created_again
    assert again["id"] == first["id"] and again["lon"] == first["lon"] and again["description"] is None
    other_source, created_other = _report(connection, external_id="A-1", source="hotline_12345")
    assert created_other and other_source["id"] != first["id"]
    assert _count(connection) == 2
    assert _count(connection, "incident_events") == 2


def test_same_idempotency_key_returns_the_first_row(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    first, created = _report(connection, key="k-123")
    again, created_again = _report(connection, key="k-123", category="fire")
    assert created and not created_again and again["id"] == first["id"] and again["category"] == "dispute"
    assert _count(connection) == 1


def test_possible_duplicate_points_at_the_nearest_open_incident(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    far, _ = _report(connection, lon=120.9050, lat=30.8320)
    near, _ = _report(connection, lon=120.9060, lat=30.8320)  # ~96 m east of `far`
    assert far["possible_duplicate_of"] is None
    assert near["possible_duplicate_of"] == far["id"]
    # 20 m from `near`, ~115 m from `far`: the nearest open one wins
    new, _ = _report(connection, lon=120.9062, lat=30.8320, reported_at=NOW + dt.timedelta(minutes=50))
    assert new["possible_duplicate_of"] == near["id"]
    other_category, _ = _report(connection, lon=120.9060, lat=30.8320, category="fire")
    assert other_category["possible_duplicate_of"] is None
    too_late, _ = _report(connection, lon=120.9060, lat=30.8320, reported_at=NOW - dt.timedelta(hours=6))
    assert too_late["possible_duplicate_of"] is None
    too_far, _ = _report(connection, lon=120.9090, lat=30.8320)  # ~290 m from `near`
    assert too_far["possible_duplicate_of"] is None


def test_closed_incidents_are_not_duplicates(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    first, _ = _report(connection)
    connection.execute(sa.text("UPDATE incidents SET status = 'closed' WHERE id = :id"), {"id": first["id"]})
    second, _ = _report(connection, lon=120.9051)
    assert second["possible_duplicate_of"] is None


BAD = [
    ({"lon": None, "lat": None}, "lon", "location is required"),
    ({"lat": None}, "lat", "missing"),
    ({"lon": "east"}, "lon", "not a number"),
    ({"lat": float("nan")}, "lat", "not a finite number"),
    ({"lon": True}, "lon", "not a number"),
    ({"lon": 190.0}, "lon", "out of range"),
    ({"lon": 30.832, "lat": 120.905}, "lat", "look swapped"),
    ({"lon": 10.0, "lat": 95.0}, "lat", "out of range [-90, 90]"),
    ({"category": "arson"}, "category", "unknown category 'arson'"),
    ({"category": None}, "category", "unknown category"),
    ({"source": "fax"}, "source", "unknown source 'fax'"),
    ({"crs": "utm"}, "crs", "unknown coordinate system 'utm'"),
    ({"reported_at": "yesterday"}, "reported_at", "is not a date or date-time"),
    ({"reported_at": "2999-01-01T00:00:00+08:00"}, "reported_at", "outside the years 1900..2200"),
    ({"reported_at": "2100-01-01T00:00:00+08:00"}, "reported_at", "in the future"),
    ({"reporter_phone": "call me"}, "reporter_phone", "not a phone number"),
    ({"external_id": "x" * 65}, "external_id", "at most 64"),
]


@pytest.mark.parametrize(("over", "field", "reason"), BAD, ids=[f"{b[1]}:{b[2]}" for b in BAD])
def test_bad_input_names_the_field_and_stores_nothing(connection, mini_county, over, field, reason) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IncidentInputError) as err:
        _report(connection, **over)
    assert err.value.field == field
    assert reason in err.value.reason
    assert _count(connection) == 0 and _count(connection, "incident_events") == 0


def test_swapped_point_inside_the_range_is_named_when_its_swap_is_in_the_county(connection) -> None:  # type: ignore[no-untyped-def]
    # A county at lon 20-21 / lat 60-61 (where |lat| > |lon|): a swapped point is in range.
    county = gpd.GeoDataFrame(
        [{"code": "999999", "name": "北方县", "parent_code": None, "geometry": box(20, 60, 21, 61)}], crs="EPSG:4326"
    )
    publish_layers(
        connection,
        {"county": county},
        note="far north",
        author="tests",
    )
    with pytest.raises(IncidentInputError) as err:
        _report(connection, lon=60.5, lat=20.5)
    assert err.value.field == "lon" and "look swapped" in err.value.reason


def test_a_report_within_five_minutes_of_clock_skew_is_accepted(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    incident, _ = _report(connection, reported_at=(NOW + dt.timedelta(hours=1, minutes=3)).isoformat())
    assert incident["reported_at"] == NOW + dt.timedelta(hours=1, minutes=3)


def test_naive_times_are_china_time(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    incident, _ = _report(connection, reported_at="2024-05-01T12:00:00")
    assert incident["reported_at"] == dt.datetime(2024, 5, 1, 4, 0, tzinfo=dt.UTC)


def _add_address(conn, text: str, lon: float, lat: float) -> int:  # type: ignore[no-untyped-def]
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO addresses (full_text, normalized, road, house_no, precision, geom) "
                "VALUES (:t, :n, '东门大街', '12', 'house', ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"
            ),
            {"t": text, "n": normalize_address(text), "x": lon, "y": lat},
        ).scalar_one()
    )


def test_an_address_is_geocoded_through_the_standard_addresses(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    address_id = _add_address(connection, "嘉善县测试镇2东门大街12号", 120.935, 30.845)
    incident, _ = _report(connection, lon=None, lat=None, address="测试镇2东门大街十二号")
    assert incident["address_id"] == address_id
    assert incident["grid_code"] == "330421002002002"
    assert (incident["lon"], incident["lat"]) == pytest.approx((120.935, 30.845))
    assert incident["received_lon"] is None and incident["address_text"] == "测试镇2东门大街十二号"


def test_an_unknown_address_is_refused_with_its_candidates(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    _add_address(connection, "嘉善县测试镇2东门大街12号", 120.935, 30.845)
    with pytest.raises(IncidentInputError) as err:
        _report(connection, lon=None, lat=None, address="西塘古镇烟雨长廊888号")
    assert err.value.field == "address" and "西塘古镇烟雨长廊888号" in err.value.reason
    assert isinstance(err.value.extra["candidates"], list)
    assert _count(connection) == 0


def test_the_snap_tolerance_setting_reaches_the_assignment(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    data = {"lon": X0 - 0.0002, "lat": 30.835, "category": "fire", "source": "other", "reported_at": NOW}
    tight, _ = create_incident(connection, data, "t", settings=Settings(snap_tolerance_m=10), now=NOW)
    assert tight["assign_status"] == "outside_jurisdiction"  # ~19 m out, beyond 10 m
    loose, _ = create_incident(connection, {**data, "category": "traffic"}, "t", settings=SETTINGS, now=NOW)
    assert loose["assign_status"] == "snapped"
