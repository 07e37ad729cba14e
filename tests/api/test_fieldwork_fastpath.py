"""The field-work fast path (api.fieldwork_fastpath) gives the routes' answers and errors.

A request with a query string is handed on to the route (which ignores the extra parameter), so
``?via=route`` gives the reference answer for the same body and key. The first request of a new
key goes through the route (the key is not cached yet); later ones take the fast path.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from api.fieldwork_fastpath import FieldworkFastPath
from gis.spatial.crs import wgs84_to_gcj02
from tests.fieldwork_data import TOWN1, seed
from tests.gis.fieldwork_fixtures import add_building, add_posting

ROUTE = {"via": "route"}
# What differs between two equal requests: the new rows' ids and the client's own id.
NEW_IDS = ("id", "client_id", "building_id", "hazards_opened")


@pytest.fixture
def field(connection: Connection, mini_county):  # type: ignore[no-untyped-def]
    return seed(connection)


def _fastpath(app: FastAPI) -> FieldworkFastPath:
    layer: Any = app.middleware_stack
    while layer is not None and not isinstance(layer, FieldworkFastPath):
        layer = getattr(layer, "app", None)
    assert layer is not None, "FieldworkFastPath is not in the middleware stack"
    return layer


def _count(connection: Connection, table: str) -> int:
    return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def _without(answer: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in keys}


def _stored_visit(connection: Connection, visit_id: int) -> dict[str, Any]:
    row = connection.execute(
        sa.text(
            "SELECT person_id, posting_id, building_id, address_id, kind, knows_people, knows_family, knows_address, "
            "knows_situation, note, at, received_crs, incident_ids, hazard_ids, recorded_by, town_code, village_code, "
            "grid_code, micro_grid_code, station_code, beat_code, generation_id, assign_status, snap_distance_m, "
            "ST_AsText(geom) AS geom FROM visits WHERE id = :id"
        ),
        {"id": visit_id},
    ).one()
    return dict(row._mapping)


@pytest.mark.parametrize("where", ["building", "gcj02", "wgs84_no_at"])
def test_a_visit_stores_and_answers_as_the_route(
    app: FastAPI, client: TestClient, connection: Connection, field, make_key, where: str
) -> None:  # type: ignore[no-untyped-def]
    headers = make_key("reporter")
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(microsecond=0).isoformat()
    knows = {"people": True, "situation": True}
    base: dict[str, Any] = {"person_id": field.person_id, "building_id": field.buildings[7], "at": at,
                            "kind": "care", "note": " 老人独居 ", "knows": knows}  # fmt: skip
    if where == "gcj02":
        lon, lat = wgs84_to_gcj02(*field.positions[8])
        base.update(lon=lon, lat=lat, crs="gcj02")
    elif where == "wgs84_no_at":
        base.pop("at")
        base.update(lon=field.positions[9][0], lat=field.positions[9][1])
    warm = client.post("/visits", json={**base, "client_id": "warm"}, headers=headers)  # caches the key
    assert warm.status_code == 201, warm.text
    fast = _fastpath(app)
    before = fast.answered
    got = client.post("/visits", json={**base, "client_id": "fast"}, headers=headers)
    want = client.post("/visits", params=ROUTE, json={**base, "client_id": "route"}, headers=headers)
    assert fast.answered == before + 1
    assert got.status_code == want.status_code == 201
    assert got.headers["content-type"] == want.headers["content-type"] == "application/json"
    g, w = got.json(), want.json()
    assert (g["client_id"], w["client_id"]) == ("fast", "route") and g["id"] != w["id"]
    if where == "wgs84_no_at":  # "now" differs between the two requests
        assert abs(dt.datetime.fromisoformat(g["at"]) - dt.datetime.fromisoformat(w["at"])) < dt.timedelta(minutes=1)
        g.pop("at"), w.pop("at")
    assert _without(g, "id", "client_id") == _without(w, "id", "client_id")
    stored_fast, stored_route = _stored_visit(connection, g["id"]), _stored_visit(connection, w["id"])
    if where == "wgs84_no_at":
        stored_fast.pop("at"), stored_route.pop("at")
    assert stored_fast == stored_route
    last = connection.execute(
        sa.text("SELECT last_visited_at FROM buildings WHERE id = :b"), {"b": field.buildings[7]}
    ).scalar_one()
    assert last is not None  # the statement trigger kept the building's last visit

    # A resend of the fast visit is the route's (200, created false, the same id).
    again = client.post("/visits", json={**base, "client_id": "fast"}, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == g["id"] and again.json()["created"] is False
    assert fast.answered == before + 1


def test_visit_errors_are_the_routes_and_store_nothing(
    app: FastAPI, client: TestClient, connection: Connection, field, make_key
) -> None:  # type: ignore[no-untyped-def]
    headers = make_key("reporter")
    scoped = make_key("reporter", scope=TOWN1)
    base = {"client_id": "c1", "person_id": field.person_id, "building_id": field.buildings[0]}
    for key in (headers, scoped):  # cache both keys
        assert (
            client.post("/visits", json={**base, "client_id": f"warm-{len(key)}-{id(key)}"}, headers=key).status_code
            == 201
        )
    stored = _count(connection, "visits")
    fast = _fastpath(app)
    before = fast.answered
    bad = [
        (headers, {**base, "kind": "party"}),  # 422 naming visit.kind
        (headers, {**base, "building_id": 10**9}),  # 404: no building
        (headers, {**base, "person_id": 10**9}),  # 404: no person
        (headers, {**base, "building_id": "seven"}),  # 422
        (headers, {**base, "lon": 120.9}),  # 422: lat missing
        (headers, {**base, "at": "2999-01-01T00:00"}),  # 422: in the future
        (headers, {**base, "extra": 1}),  # 422: not a field
        (headers, {**base, "posting_id": 10**9}),  # the route's: 404 no posting
        (headers, {**base, "incident_ids": [10**9]}),  # the route's: 404 no incident
        (scoped, {**base, "building_id": field.other_building}),  # 404 outside the key's scope
    ]
    for key, body in bad:
        got = client.post("/visits", json=body, headers=key)
        want = client.post("/visits", params=ROUTE, json=body, headers=key)
        assert got.status_code == want.status_code and got.status_code >= 400, (body, got.text)
        assert got.json() == want.json(), body
    assert fast.answered == before
    assert _count(connection, "visits") == stored
    batch = client.post("/visits", json=[{**base, "client_id": "batch-1"}], headers=headers)  # the route's
    assert batch.status_code == 201 and batch.json()["created"] == 1
    assert fast.answered == before


def test_another_persons_visit_by_a_reporter_person_key_is_the_routes_403(
    app: FastAPI, client: TestClient, connection: Connection, field
) -> None:  # type: ignore[no-untyped-def]
    from gis.people.keys import create_key

    other = connection.execute(sa.text("INSERT INTO people (name) VALUES ('另一人') RETURNING id")).scalar_one()
    headers = {"X-API-Key": create_key(connection, "reporter", "phone", person_id=field.person_id)}
    base = {"client_id": "own", "building_id": field.buildings[2]}
    own = client.post("/visits", json=base, headers=headers)
    assert own.status_code == 201 and own.json()["person_id"] == field.person_id
    fast = _fastpath(app)
    before = fast.answered
    body = {**base, "client_id": "theirs", "person_id": other}
    got = client.post("/visits", json=body, headers=headers)
    want = client.post("/visits", params=ROUTE, json=body, headers=headers)
    assert got.status_code == want.status_code == 403 and got.json() == want.json()
    assert fast.answered == before


def _inspection(worker: int, police: int, **over: Any) -> dict[str, Any]:
    body = {
        "inspectors": [worker, police],
        "lon": 120.9051,
        "lat": 30.8351,
        "at": (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(microsecond=0).isoformat(),
        "results": [
            {"code": "escape_window", "result": "fail", "note": "防盗窗焊死"},
            {"code": "gas", "result": "pass"},
            {"code": "smoke_alarm", "result": "na"},
        ],
        "notes": "联合检查",
    }
    return {**body, **over}


def _stored_inspections(connection: Connection, building: int) -> dict[str, Any]:
    """Everything the inspections of ``building`` wrote, without ids and client ids (hazards by
    their rank in id order): the inspections with their teams and results, the building's risk,
    the hazards with their events and deadline jobs, and the audit entries."""

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in connection.execute(sa.text(sql), {"b": building})]

    hazard_ids = [r[0] for r in rows("SELECT id FROM hazards WHERE building_id = :b ORDER BY id")]
    rank = {h: n for n, h in enumerate(hazard_ids)}
    inspection_ids = [r[0] for r in rows("SELECT id FROM inspections WHERE building_id = :b ORDER BY id")]
    order = {i: n for n, i in enumerate(inspection_ids)}
    targets = [f"inspection/{i}" for i in inspection_ids] + [f"hazard/{h}" for h in hazard_ids]
    audit = connection.execute(
        sa.text(
            "SELECT action, target, detail - 'building_id', actor FROM audit_log WHERE target = ANY(:t) ORDER BY id"
        ),
        {"t": targets},
    ).all()
    jobs = connection.execute(
        sa.text(
            "SELECT lock, task_name, queue_name, status, scheduled_at, args->>'level' FROM procrastinate_jobs "
            "WHERE lock = ANY(:locks) ORDER BY id"
        ),
        {"locks": [f"hazard:{h}" for h in hazard_ids]},
    ).all()

    def hazard_of(target: str) -> int:
        return rank[int(target.split(":")[-1].split("/")[-1])]

    def audit_target(target: str) -> tuple[str, int | None]:
        kind, key = target.split("/")
        return kind, order.get(int(key)) if kind == "inspection" else hazard_of(target)

    events = rows(
        "SELECT e.hazard_id, e.at, e.actor, e.action, e.from_status, e.to_status, e.deadline, e.inspection_id, "
        "e.note FROM hazard_events e JOIN hazards h ON h.id = e.hazard_id WHERE h.building_id = :b"
    )
    return {
        "inspections": rows(
            "SELECT room, checklist_id, at, ST_AsText(geom), notes, outcome, risk_level, failed_items, actor, "
            "(SELECT array_agg(posting_id ORDER BY posting_id) FROM inspection_inspectors WHERE inspection_id = i.id), "
            "(SELECT array_agg(ARRAY[item_code, result, coalesce(note, '')] ORDER BY item_code) "
            " FROM inspection_results WHERE inspection_id = i.id) FROM inspections i WHERE building_id = :b ORDER BY id"
        ),
        "building": rows("SELECT risk_level, next_inspection_on, last_inspected_at FROM buildings WHERE id = :b"),
        "hazards": rows(
            "SELECT category, severity, status, description, found_at, rectify_by, responsible_party, source, "
            "item_code, reported_by, updated_at, notified_at, submitted_at, rectified_at, escalation_level, "
            "escalation_due_at, ST_AsText(geom), grid_code FROM hazards WHERE building_id = :b ORDER BY id"
        ),
        "hazard_inspections": [
            order.get(r[0]) for r in rows("SELECT inspection_id FROM hazards WHERE building_id = :b ORDER BY id")
        ],
        "events": sorted(((rank[e[0]], *e[1:7], order.get(e[7]), e[8]) for e in events), key=repr),
        "jobs": sorted(((hazard_of(j[0]), *j[1:]) for j in jobs), key=repr),
        "audit": sorted(((a[0], audit_target(a[1]), sorted(a[2].items()), a[3]) for a in audit), key=repr),
    }  # fmt: skip


def test_an_inspection_stores_and_answers_as_the_route(
    app: FastAPI, client: TestClient, connection: Connection, mini_county, make_key
) -> None:  # type: ignore[no-untyped-def]
    headers = make_key("reporter")
    worker, police = add_posting(connection, "李网格", "grid_worker"), add_posting(connection, "王辅警", "aux_police")
    warm, one, two = (add_building(connection, f"B-FAST-{i}") for i in range(3))
    assert (
        client.post(f"/buildings/{warm}/inspections", json=_inspection(worker, police), headers=headers).status_code
        == 201
    )
    fast = _fastpath(app)
    before = fast.answered
    body = _inspection(worker, police)
    got = client.post(f"/buildings/{one}/inspections", json=body, headers=headers)
    want = client.post(f"/buildings/{two}/inspections", params=ROUTE, json=body, headers=headers)
    assert fast.answered == before + 1
    assert got.status_code == want.status_code == 201, got.text
    g, w = got.json(), want.json()
    assert (g["building_id"], w["building_id"]) == (one, two) and len(g["hazards_opened"]) == 1
    opened = g["hazards_opened"]
    assert _without(g, *NEW_IDS) == _without(w, *NEW_IDS)
    rows = connection.execute(
        sa.text(
            "SELECT id, risk_level, next_inspection_on, last_inspected_at FROM buildings "
            "WHERE id = ANY(:ids) ORDER BY id"
        ),
        {"ids": [one, two]},
    ).all()
    assert rows[0][1:] == rows[1][1:] and rows[0].risk_level == "high"
    assert _stored_inspections(connection, one) == _stored_inspections(connection, two)

    # A pass of the same item re-inspects the open hazard on both paths alike; a resend replays.
    later = _inspection(worker, police, at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
                        results=[{"code": "escape_window", "result": "pass"}], client_id="fast-2")  # fmt: skip
    got = client.post(f"/buildings/{one}/inspections", json=later, headers=headers)
    want = client.post(
        f"/buildings/{two}/inspections", params=ROUTE, json={**later, "client_id": "route-2"}, headers=headers
    )
    assert got.status_code == want.status_code == 201
    g, w = got.json(), want.json()
    assert g["hazards_rectified"] == opened and len(w["hazards_rectified"]) == 1
    assert _without(g, *NEW_IDS, "hazards_rectified") == _without(w, *NEW_IDS, "hazards_rectified")
    assert g["risk_level"] == "low"
    resent = client.post(f"/buildings/{one}/inspections", json=later, headers=headers)
    replay = resent.json()
    assert resent.status_code == 200 and replay["replayed"] is True
    # The replay reads the time back from the database (in its zone): the same instant.
    assert dt.datetime.fromisoformat(replay.pop("at")) == dt.datetime.fromisoformat(g.pop("at"))
    assert replay == {**g, "replayed": True}
    assert fast.answered == before + 3

    # Two new failures (opened with the inspection's own statement), then one of them failed again
    # (re-inspected: reopened) with a third item failing anew (opened after the re-inspection).
    def step(minutes: int, failing: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        at = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).replace(microsecond=0).isoformat()
        results = [{"code": c, "result": "fail"} for c in failing] + [{"code": "wiring", "result": "pass"}]
        body = _inspection(worker, police, at=at, results=results)
        fast_out = client.post(f"/buildings/{one}/inspections", json=body, headers=headers)
        route_out = client.post(f"/buildings/{two}/inspections", params=ROUTE, json=body, headers=headers)
        assert fast_out.status_code == route_out.status_code == 201, fast_out.text
        return fast_out.json(), route_out.json()

    g, w = step(60, ["escape_window", "gas"])
    assert len(g["hazards_opened"]) == 2 and _without(g, *NEW_IDS) == _without(w, *NEW_IDS)
    first_two = g["hazards_opened"]
    g, w = step(30, ["gas", "smoke_alarm"])
    assert g["hazards_reopened"] == [first_two[1]] and len(g["hazards_opened"]) == 1
    assert _without(g, *NEW_IDS, "hazards_reopened") == _without(w, *NEW_IDS, "hazards_reopened")
    assert len(w["hazards_reopened"]) == 1 and len(w["hazards_opened"]) == 1
    assert fast.answered == before + 5
    # Both buildings hold the same rows: inspections, hazards, their events, jobs and audit entries.
    stored = _stored_inspections(connection, one)
    assert stored == _stored_inspections(connection, two)
    assert len(stored["inspections"]) == 4 and len(stored["hazards"]) == 4 and len(stored["events"]) == 6
    assert len(stored["jobs"]) == 5 and [h[2] for h in stored["hazards"]] == ["rectified", "open", "rectifying", "open"]


def test_inspection_errors_are_the_routes_and_store_nothing(
    app: FastAPI, client: TestClient, connection: Connection, mini_county, make_key
) -> None:  # type: ignore[no-untyped-def]
    headers = make_key("reporter")
    scoped = make_key("reporter", scope="330421002")
    worker, police = add_posting(connection, "李网格", "grid_worker"), add_posting(connection, "王辅警", "aux_police")
    building = add_building(connection, "B-ERR")
    for key in (headers, scoped):  # cache both keys (the scoped one through a 404)
        client.post(f"/buildings/{building}/inspections", json=_inspection(worker, police), headers=key)
    counts = [_count(connection, t) for t in ("inspections", "hazards", "inspection_results")]
    fast = _fastpath(app)
    before = fast.answered
    ok = _inspection(worker, police)
    bad = [
        (headers, building, {**ok, "results": [{"code": "no_such_item", "result": "fail"}]}),  # 422 results[0].code
        (headers, building, {**ok, "inspectors": [worker, 10**9]}),  # 422 inspectors[1]
        (headers, building, {**ok, "inspectors": [worker, worker]}),  # 422 appears twice
        (headers, building, {**ok, "checklist_version": 99}),  # 422 no such version
        (headers, building, {**ok, "at": "2999-01-01T00:00"}),  # 422 in the future
        (headers, building, {**ok, "colour": "red"}),  # 422 from the model (extra field)
        (headers, building, {**ok, "results": "all fine"}),  # 422 from the model
        (headers, 10**12, ok),  # 404 no building
        (scoped, building, ok),  # 404 outside the key's scope
    ]
    for key, target, body in bad:
        got = client.post(f"/buildings/{target}/inspections", json=body, headers=key)
        want = client.post(f"/buildings/{target}/inspections", params=ROUTE, json=body, headers=key)
        assert got.status_code == want.status_code and got.status_code in (404, 422), (body, got.text)
        assert got.json() == want.json(), body
    assert client.post("/buildings/0/inspections", json=ok, headers=headers).status_code == 422
    assert fast.answered == before
    assert [_count(connection, t) for t in ("inspections", "hazards", "inspection_results")] == counts


def test_an_inspection_after_a_new_checklist_version_uses_it_as_the_route(
    app: FastAPI, client: TestClient, connection: Connection, mini_county, make_key
) -> None:  # type: ignore[no-untyped-def]
    """The fast path caches the latest version of a kind; a newer one is found within the request."""
    from gis.fieldwork import checklists, inspectfast

    headers = make_key("reporter")
    worker, police = add_posting(connection, "李网格", "grid_worker"), add_posting(connection, "王辅警", "aux_police")
    warm, one, two = (add_building(connection, f"B-VER-{i}") for i in range(3))
    body = _inspection(worker, police)
    for _ in range(2):  # the key, then the latest version, cached
        assert client.post(f"/buildings/{warm}/inspections", json=body, headers=headers).status_code == 201
    latest = checklists.find(connection, "rental_safety")
    assert latest is not None
    # The same items, but a failed escape window is now a medium hazard to rectify in two days.
    lighter = {"escape_window": {"severity": "medium", "rectify_days": 2}}
    items = [
        {"code": i["code"], "text": i["text"], "severity": i["severity"], "rectify_days": i["rectify_days"],
         "hazard_category": i["hazard_category"], "party": i["party"], **lighter.get(i["code"], {})}
        for i in latest["items"]
    ]  # fmt: skip
    try:
        newer = checklists.create_version(connection, "rental_safety", "下一版", items, "test")
        fast = _fastpath(app)
        before = fast.answered
        got = client.post(f"/buildings/{one}/inspections", json=body, headers=headers)
        want = client.post(f"/buildings/{two}/inspections", params=ROUTE, json=body, headers=headers)
        assert fast.answered == before + 1
        assert got.status_code == want.status_code == 201, got.text
        g, w = got.json(), want.json()
        assert g["checklist_version"] == newer["version"] == latest["version"] + 1
        assert g["risk_level"] == "medium" and _without(g, *NEW_IDS) == _without(w, *NEW_IDS)
        assert _stored_inspections(connection, one) == _stored_inspections(connection, two)
    finally:
        inspectfast._versions.clear()  # the new version is rolled back with the test


def test_a_scoped_key_inspects_inside_its_scope_as_the_route(
    app: FastAPI, client: TestClient, connection: Connection, mini_county, make_key
) -> None:  # type: ignore[no-untyped-def]
    headers = make_key("reporter", scope="330421001001")  # the village of the fixtures' grid
    worker, police = add_posting(connection, "李网格", "grid_worker"), add_posting(connection, "王辅警", "aux_police")
    warm, one, two = (add_building(connection, f"B-SCOPE-{i}") for i in range(3))
    body = _inspection(worker, police)
    assert client.post(f"/buildings/{warm}/inspections", json=body, headers=headers).status_code == 201
    fast = _fastpath(app)
    before = fast.answered
    got = client.post(f"/buildings/{one}/inspections", json=body, headers=headers)
    want = client.post(f"/buildings/{two}/inspections", params=ROUTE, json=body, headers=headers)
    assert fast.answered == before + 1
    assert got.status_code == want.status_code == 201, got.text
    assert _without(got.json(), *NEW_IDS) == _without(want.json(), *NEW_IDS)
    assert _stored_inspections(connection, one) == _stored_inspections(connection, two)


@pytest.mark.parametrize("variant", ["nulls", "every_field"])
def test_inspection_bodies_with_every_field_or_nulls_answer_as_the_route(
    app: FastAPI, client: TestClient, connection: Connection, mini_county, make_key, variant: str
) -> None:  # type: ignore[no-untyped-def]
    headers = make_key("reporter")
    worker, police = add_posting(connection, "李网格", "grid_worker"), add_posting(connection, "王辅警", "aux_police")
    warm, one, two = (add_building(connection, f"B-FIELDS-{i}") for i in range(3))
    assert (
        client.post(f"/buildings/{warm}/inspections", json=_inspection(worker, police), headers=headers).status_code
        == 201
    )
    at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    if variant == "nulls":  # explicit nulls: the defaults, as absent fields
        body: dict[str, Any] = {
            "inspectors": [worker, police], "at": None, "lon": None, "lat": None, "room": None, "notes": None,
            "client_id": None, "checklist_kind": None, "checklist_version": None,
            "results": [{"code": "gas", "result": "fail", "note": None, "deadline": None, "responsible_party": None}],
        }  # fmt: skip
    else:
        lon, lat = wgs84_to_gcj02(120.9051, 30.8351)
        deadline = (at + dt.timedelta(days=9)).replace(microsecond=0).isoformat()
        body = {
            "inspectors": [worker, police], "at": at.replace(microsecond=0).isoformat(), "lon": lon, "lat": lat,
            "crs": "gcj02", "room": " 302 ", "notes": "复查", "checklist_kind": "rental_safety", "checklist_version": 1,
            "results": [
                {"code": "gas", "result": "fail", "note": "软管老化", "deadline": deadline,
                 "responsible_party": "tenant"},
                {"code": "wiring", "result": "na"},
            ],
        }  # fmt: skip
    fast = _fastpath(app)
    before = fast.answered
    got = client.post(f"/buildings/{one}/inspections", json=body, headers=headers)
    want = client.post(f"/buildings/{two}/inspections", params=ROUTE, json=body, headers=headers)
    assert fast.answered == before + 1
    assert got.status_code == want.status_code == 201, got.text
    g, w = got.json(), want.json()
    if variant == "nulls":  # "now" differs between the two requests
        assert abs(dt.datetime.fromisoformat(g.pop("at")) - dt.datetime.fromisoformat(w.pop("at"))) < dt.timedelta(
            minutes=1
        )
    assert _without(g, *NEW_IDS) == _without(w, *NEW_IDS)
    if variant == "every_field":
        assert _stored_inspections(connection, one) == _stored_inspections(connection, two)
