"""The incident endpoints over HTTP: intake (201/200 replay), 422 naming the field with nothing
stored, roles and masking, workflow (409 with the allowed states), listing filters and paging."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from gis.spatial import crs as gcrs
from tests.dispatch_roster import give_holder

BODY = {"lon": 120.905, "lat": 30.832, "category": "dispute", "source": "grid_patrol"}
GX = 120.91


@pytest.fixture
def reporter(make_key):  # type: ignore[no-untyped-def]
    return make_key("reporter")


@pytest.fixture
def dispatcher(make_key):  # type: ignore[no-untyped-def]
    return make_key("dispatcher")


@pytest.fixture
def viewer(make_key):  # type: ignore[no-untyped-def]
    return make_key("viewer")


def _count(connection) -> int:  # type: ignore[no-untyped-def]
    return int(connection.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one())


def _post(client, headers, **over):  # type: ignore[no-untyped-def]
    return client.post("/incidents", json={**BODY, **over}, headers=headers)


def test_post_creates_with_assignment_and_location(client, mini_county, reporter) -> None:  # type: ignore[no-untyped-def]
    resp = _post(client, reporter, category="fire", reported_at="2024-05-01T08:00:00+08:00")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert resp.headers["location"] == f"/incidents/{body['id']}"
    assert body["grid_code"] == "330421001001001" and body["beat_code"] == "330421P0101"
    assert body["status"] == "reported" and body["category_zh"] == "火灾隐患"
    assert dt.datetime.fromisoformat(body["deadline_at"]) == dt.datetime(2024, 5, 1, 4, 0, tzinfo=dt.UTC)
    assert body["overdue"] is True  # a 4-hour deadline in 2024


def test_gcj02_body_lands_in_the_grid_of_the_wgs84_point(client, mini_county, reporter) -> None:  # type: ignore[no-untyped-def]
    lon, lat = gcrs.from_wgs84(GX - 0.00003, 30.8345, "gcj02")
    body = _post(client, reporter, lon=lon, lat=lat, crs="gcj02").json()
    assert body["grid_code"] == "330421001001001" and body["received_crs"] == "gcj02"


def test_replays_answer_200_with_the_first_incident(client, connection, mini_county, reporter) -> None:  # type: ignore[no-untyped-def]
    first = _post(client, reporter, external_id="12345-1", source="hotline_12345")
    again = _post(client, reporter, external_id="12345-1", source="hotline_12345", description="again")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    keyed = client.post("/incidents", json={**BODY, "lon": 120.935}, headers={**reporter, "Idempotency-Key": "abc"})
    keyed_again = client.post("/incidents", json=BODY, headers={**reporter, "Idempotency-Key": "abc"})
    assert (keyed.status_code, keyed_again.status_code) == (201, 200)
    assert keyed_again.json()["id"] == keyed.json()["id"] and keyed_again.json()["lon"] == 120.935
    assert _count(connection) == 2


def test_a_near_report_is_flagged_as_possible_duplicate(client, mini_county, reporter) -> None:  # type: ignore[no-untyped-def]
    first = _post(client, reporter).json()
    second = _post(client, reporter, lon=120.9055).json()
    assert second["possible_duplicate_of"] == first["id"]


BAD = [
    ({"category": None}, ["body", "category"]),
    ({"lon": "east"}, ["body", "lon"]),
    ({"lon": None, "lat": None}, ["body", "lon"]),
    ({"lat": None}, ["body", "lat"]),
    ({"lon": 200}, ["body", "lon"]),
    ({"lon": 30.832, "lat": 120.905}, ["body", "lat"]),
    ({"category": "arson"}, ["body", "category"]),
    ({"source": "fax"}, ["body", "source"]),
    ({"crs": "utm"}, ["body", "crs"]),
    ({"reported_at": "soon"}, ["body", "reported_at"]),
    ({"reported_at": "2999-01-01T00:00:00Z"}, ["body", "reported_at"]),
    ({"external_id": "x" * 65}, ["body", "external_id"]),
    ({"colour": "red"}, ["body", "colour"]),
    ({"description": "a\x00b"}, ["body", "description"]),
    ({"reported_at": "1900-01-01T00:00:00Z"}, ["body", "reported_at"]),
]


@pytest.mark.parametrize(("over", "loc"), BAD, ids=[str(b[0])[:40] for b in BAD])
def test_bad_bodies_get_422_naming_the_field(client, connection, mini_county, reporter, over, loc) -> None:  # type: ignore[no-untyped-def]
    body = {k: v for k, v in {**BODY, **over}.items() if v is not None}
    resp = client.post("/incidents", json=body, headers=reporter)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["loc"] == loc
    assert _count(connection) == 0


def test_nan_and_swapped_messages(client, connection, mini_county, reporter) -> None:  # type: ignore[no-untyped-def]
    raw = '{"lon": NaN, "lat": 30.8, "category": "dispute", "source": "grid_patrol"}'
    resp = client.post("/incidents", content=raw, headers={**reporter, "Content-Type": "application/json"})
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "lon"]
    swapped = _post(client, reporter, lon=30.832, lat=120.905).json()["detail"][0]
    assert "look swapped" in swapped["msg"] and "inside the county" in swapped["msg"]
    assert _count(connection) == 0


def test_too_long_idempotency_key_is_named(client, mini_county, reporter) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/incidents", json=BODY, headers={**reporter, "Idempotency-Key": "k" * 200})
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


def test_roles(client, mini_county, viewer) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/incidents", json=BODY).status_code == 401
    assert client.get("/incidents").status_code == 401
    assert client.get("/stats").status_code == 401
    assert client.post("/incidents", json=BODY, headers=viewer).status_code == 403
    assert client.post("/incidents/1/transitions", json={"action": "accept"}, headers=viewer).status_code == 403
    assert client.post("/incidents/1/escalate", headers=viewer).status_code == 403


def test_reporter_data_is_masked_below_dispatcher(client, mini_county, reporter, viewer, dispatcher) -> None:  # type: ignore[no-untyped-def]
    created = _post(client, reporter, reporter_name="张小明", reporter_phone="13812345678").json()
    assert (created["reporter_name"], created["reporter_phone"]) == ("张**", "138****5678")
    seen = client.get(f"/incidents/{created['id']}", headers=viewer).json()
    assert seen["reporter_phone"] == "138****5678"
    full = client.get(f"/incidents/{created['id']}", headers=dispatcher).json()
    assert (full["reporter_name"], full["reporter_phone"]) == ("张小明", "13812345678")
    listed = client.get("/incidents", headers=viewer).json()["items"][0]
    assert listed["reporter_name"] == "张**"


def test_workflow_over_http(client, connection, mini_county, reporter, dispatcher) -> None:  # type: ignore[no-untyped-def]
    iid = _post(client, reporter).json()["id"]
    url = f"/incidents/{iid}/transitions"
    bad = client.post(url, json={"action": "close"}, headers=dispatcher)
    assert bad.status_code == 409
    assert bad.json()["allowed"] == ["accepted", "rejected"] and bad.json()["current_status"] == "reported"
    assert (
        client.post(url, json={"action": "accept", "note": "属实"}, headers=dispatcher).json()["status"] == "accepted"
    )
    nul = client.post(url, json={"action": "dispatch", "note": "a\x00"}, headers=dispatcher)
    assert nul.status_code == 422 and nul.json()["detail"][0]["loc"] == ["body", "note"]
    unknown = client.post(url, json={"action": "approve"}, headers=dispatcher)
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "action"]
    up = client.post(f"/incidents/{iid}/escalate", json={"note": "跨村"}, headers=dispatcher)
    assert up.status_code == 200 and up.json()["escalation_level"] == "village"
    detail = client.get(f"/incidents/{iid}", headers=dispatcher).json()
    assert [e["action"] for e in detail["history"]] == ["report", "accept", "escalate"]
    assert detail["history"][1]["note"] == "属实"
    assert (
        client.post("/incidents/999999999/transitions", json={"action": "accept"}, headers=dispatcher).status_code
        == 404
    )
    assert client.get("/incidents/999999999", headers=dispatcher).status_code == 404
    actors = connection.execute(
        sa.text("SELECT DISTINCT actor FROM audit_log WHERE target = :t"), {"t": f"incident/{iid}"}
    ).scalars()
    assert set(actors) == {"test-reporter", "test-dispatcher"}


@pytest.fixture
def sample(client, connection, mini_county, reporter, dispatcher):  # type: ignore[no-untyped-def]
    """Six incidents: where, what and when each is known, so filters can be checked by hand."""
    rows = [
        # lon, lat, category, source, reported_at (UTC)
        (120.905, 30.832, "fire", "grid_patrol", "2024-05-01T01:00:00Z"),  # town 1, grid 001001001, beat P0101
        (120.915, 30.832, "fire", "hotline_110", "2024-05-02T01:00:00Z"),  # town 1, grid 001001002, beat P0102
        (120.915, 30.845, "dispute", "resident_app", "2024-05-03T01:00:00Z"),  # town 1 village 2, beat P0102
        (120.935, 30.845, "traffic", "hotline_12345", "2024-05-04T01:00:00Z"),  # town 2, beat P0203
        (120.925, 30.832, "dispute", "grid_patrol", "2024-05-05T01:00:00Z"),  # town 2, beat P0102
        (121.300, 30.900, "other", "other", "2024-05-06T01:00:00Z"),  # outside the county
    ]
    ids = []
    for lon, lat, category, source, at in rows:
        body = {"lon": lon, "lat": lat, "category": category, "source": source, "reported_at": at}
        ids.append(client.post("/incidents", json=body, headers=reporter).json()["id"])
    # the second one is handled: no longer overdue although its deadline has passed
    give_holder(connection, ids[1])  # ``dispatched`` requires a holder
    for action in ("accept", "dispatch", "start", "handle"):
        client.post(f"/incidents/{ids[1]}/transitions", json={"action": action}, headers=dispatcher)
    return ids


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", [5, 4, 3, 2, 1, 0]),
        ("town=330421001", [2, 1, 0]),
        ("town=330421001&town=330421002", [4, 3, 2, 1, 0]),
        ("village=330421001002", [2]),
        ("grid=330421001001002", [1]),
        ("micro_grid=33042100100100101", [0]),
        ("beat=330421P0102", [4, 2, 1]),
        ("station=330421P02", [3]),
        ("category=fire", [1, 0]),
        ("source=grid_patrol&category=dispute", [4]),
        ("status=handled", [1]),
        ("overdue=true", [5, 4, 3, 2, 0]),
        ("overdue=false", [1]),
        ("reported_from=2024-05-02T09:00:00&reported_to=2024-05-04T09:00:00", [2, 1]),
        ("bbox=120.90,30.83,120.92,30.84", [1, 0]),
    ],
)
def test_listing_filters(client, sample, viewer, query: str, expected: list[int]) -> None:  # type: ignore[no-untyped-def]
    resp = client.get(f"/incidents?{query}", headers=viewer)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [i["id"] for i in body["items"]] == [sample[n] for n in expected]
    assert body["total"] == len(expected)


def test_listing_pages(client, sample, viewer) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/incidents?limit=2&offset=2", headers=viewer).json()
    assert body["total"] == 6 and (body["limit"], body["offset"]) == (2, 2)
    assert [i["id"] for i in body["items"]] == [sample[3], sample[2]]


def test_outside_lists_the_open_ones_outside_the_jurisdiction(client, sample, viewer) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/incidents/outside", headers=viewer).json()
    assert [i["id"] for i in body["items"]] == [sample[5]] and body["items"][0][
        "assign_status"
    ] == "outside_jurisdiction"


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("bbox=1,2,3", ["query", "bbox"]),
        ("bbox=120.95,30.83,120.92,30.84", ["query", "bbox"]),
        ("category=arson", ["query", "category"]),
        ("status=done", ["query", "status"]),
        ("limit=0", ["query", "limit"]),
        ("town=%00", ["query", "town"]),
        ("reported_from=yesterday", ["query", "reported_from"]),
        ("reported_from=2024-05-02T00:00:00Z&reported_to=2024-05-01T00:00:00Z", ["query", "reported_from"]),
    ],
)
def test_bad_listing_queries_name_the_parameter(client, mini_county, viewer, query: str, loc: list[str]) -> None:  # type: ignore[no-untyped-def]
    resp = client.get(f"/incidents?{query}", headers=viewer)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["loc"] == loc


def test_openapi_documents_the_intake(client) -> None:  # type: ignore[no-untyped-def]
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/incidents"]["post"]
    assert {"200", "201", "422"} <= set(post["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
    assert spec["components"]["schemas"]["IncidentIn"]["examples"][0]["category"] == "ebike_charging"


@pytest.fixture
def own_engine(database_url: str):  # type: ignore[no-untyped-def]
    """A migrated database of its own, for the intake path that commits in autocommit."""
    from gis.core import db

    with db.scratch_database(database_url, "intake") as url:
        engine = db.make_engine(url, pool_size=2, max_overflow=2)
        try:
            yield engine
        finally:
            engine.dispose()


def test_intake_commits_on_its_own_connection(own_engine) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from api.app import create_app
    from boundaries.generations import publish_layers
    from gis.core.db import transaction
    from gis.core.settings import Settings
    from gis.people.keys import create_key
    from tests.conftest import build_mini_county

    with transaction(own_engine) as session:
        publish_layers(session.connection(), build_mini_county(), note="mini", author="tests")
        headers = {"X-API-Key": create_key(session, "reporter", "intake-test")}
    with TestClient(create_app(Settings(), engine=own_engine)) as client:
        first = client.post("/incidents", json={**BODY, "external_id": "own-1"}, headers=headers)
        again = client.post("/incidents", json={**BODY, "external_id": "own-1"}, headers=headers)
        bad = client.post("/incidents", json={**BODY, "category": "arson", "external_id": "own-2"}, headers=headers)
    assert (first.status_code, again.status_code, bad.status_code) == (201, 200, 422)
    assert first.json()["grid_code"] == "330421001001001"
    with own_engine.connect() as conn:  # committed: visible from another connection
        rows = conn.execute(sa.text("SELECT external_id, grid_code FROM incidents")).all()
        events = conn.execute(sa.text("SELECT count(*) FROM incident_events")).scalar_one()
        audits = conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'incident.create'")).scalar_one()
    assert rows == [("own-1", "330421001001001")] and events == 1 and audits == 1


def test_the_api_process_runs_no_escalation_thread(app) -> None:  # type: ignore[no-untyped-def]
    """Escalation is the job queue's (``gridmap worker``), not a thread in every API process."""
    from fastapi.testclient import TestClient

    with TestClient(app):
        assert not any(t.name == "gridmap-escalation" for t in threading.enumerate())
        assert not hasattr(app.state, "escalation")
