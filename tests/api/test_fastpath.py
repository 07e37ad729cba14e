"""The pure-ASGI fast paths (api.fastpath) give exactly the normal routes' answers.

GET /lookup: a request with an extra query parameter is handed on to the normal route (the route
ignores the parameter), which gives the reference answer for the same point and key.
POST /incidents: the first request of a new key goes through the route (the key is not cached
yet), later ones through the fast path; both must store and answer alike.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.fastpath import IntakeFastPath, LookupFastPath
from boundaries.sample import X0, X1, XM, Y0, Y1
from gis.spatial.crs import from_wgs84


def _fastpath(app: FastAPI, kind: type = LookupFastPath) -> Any:
    layer: Any = app.middleware_stack
    while layer is not None and not isinstance(layer, kind):
        layer = getattr(layer, "app", None)
    assert layer is not None, f"{kind.__name__} is not in the middleware stack"
    return layer


def _normal(client: TestClient, params: dict[str, Any], headers: dict[str, str]) -> Any:
    return client.get("/lookup", params={**params, "via": "route"}, headers=headers)


@pytest.fixture
def staffed(connection, mini_county):  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    connection.execute(
        sa.text(
            "INSERT INTO staff (grid_code, role, name, phone) VALUES "
            "('330421001001001', 'grid_leader', '王五', '13900000001')"
        )
    )


@pytest.mark.parametrize("role", ["viewer", "dispatcher"])
def test_fast_answers_equal_the_route_inside_on_edges_and_outside(
    app: FastAPI, client: TestClient, make_key, staffed, role: str
) -> None:  # type: ignore[no-untyped-def]
    headers = make_key(role)
    points = [
        (XM, 30.834),  # a shared edge
        (X0, Y0),  # a corner of the county
        ((X0 + XM) / 2, 30.834),
        (X0 - 20 / 95_500, (Y0 + Y1) / 2),  # just outside: snapped
        (X1 + 0.05, (Y0 + Y1) / 2),  # far outside
        (120.905, 30.834),
    ]
    client.get("/lookup", params={"lon": XM, "lat": 30.834}, headers=headers)  # warms caches
    fast = _fastpath(app)
    before = fast.answered
    for lon, lat in points:
        for crs in ("wgs84", "gcj02", "bd09"):
            x, y = (lon, lat) if crs == "wgs84" else from_wgs84(lon, lat, crs)
            params = {"lon": x, "lat": y, "crs": crs}
            got = client.get("/lookup", params=params, headers=headers)
            want = _normal(client, params, headers)
            assert got.status_code == want.status_code == 200
            assert got.headers["content-type"] == "application/json"
            assert got.json() == want.json(), (lon, lat, crs)
    assert fast.answered - before == len(points) * 3
    staff = client.get("/lookup", params={"lon": 120.905, "lat": 30.834}, headers=headers).json()["staff"]
    assert staff[0]["phone"] == ("13900000001" if role == "dispatcher" else "139****0001")


def test_errors_and_unknown_keys_are_left_to_the_route(app: FastAPI, client: TestClient, make_key, staffed) -> None:  # type: ignore[no-untyped-def]
    headers = make_key("viewer")
    client.get("/lookup", params={"lon": XM, "lat": 30.834}, headers=headers)
    fast = _fastpath(app)
    before = fast.answered
    bad = client.get("/lookup", params={"lon": "abc", "lat": 30.8}, headers=headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "lon"]
    swapped = client.get("/lookup", params={"lon": 30.834, "lat": XM}, headers=headers)
    assert swapped.status_code == 422 and "swapped" in swapped.text
    assert client.get("/lookup", params={"lon": XM, "lat": 30.834}).status_code == 401
    unknown = client.get("/lookup", params={"lon": XM, "lat": 30.834}, headers={"X-API-Key": "gm_00000000_nope"})
    assert unknown.status_code == 401 and unknown.json()["detail"]
    assert client.get("/lookup", params={"lon": XM, "lat": 30.834, "crs": "utm"}, headers=headers).status_code == 422
    assert fast.answered == before


def test_rate_limit_still_applies_and_counts_once(app: FastAPI, client: TestClient, make_key, staffed) -> None:  # type: ignore[no-untyped-def]
    app.state.settings = app.state.settings.model_copy(update={"rate_limit_per_minute": 4})
    headers = make_key("viewer")
    codes = [client.get("/lookup", params={"lon": XM, "lat": 30.834}, headers=headers).status_code for _ in range(6)]
    assert codes == [200, 200, 200, 200, 429, 429]
    limited = client.get("/lookup", params={"lon": XM, "lat": 30.834}, headers=headers)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert _fastpath(app).answered >= 3  # after the first (cold) request, the fast path answered


def test_a_query_key_takes_the_fast_path_and_counts_against_the_same_limit(
    app: FastAPI, client: TestClient, make_key, staffed
) -> None:  # type: ignore[no-untyped-def]
    app.state.settings = app.state.settings.model_copy(update={"rate_limit_per_minute": 4})
    key = make_key("viewer")["X-API-Key"]
    point = {"lon": XM, "lat": 30.834}
    assert client.get("/lookup", params={**point, "key": key}).status_code == 200  # the route caches the key
    fast = _fastpath(app)
    before = fast.answered
    assert client.get("/lookup", params={**point, "key": key}).status_code == 200
    assert fast.answered == before + 1
    assert client.get("/lookup", params=point, headers={"X-API-Key": key}).status_code == 200
    assert client.get("/lookup", params={**point, "key": key}).status_code == 200
    limited = client.get("/lookup", params={**point, "key": key})  # the fifth of a limit of 4
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_open_lookups_without_a_key_are_masked(app: FastAPI, client: TestClient, make_key, staffed) -> None:  # type: ignore[no-untyped-def]
    app.state.settings = app.state.settings.model_copy(update={"open_coordinate_lookups": True})
    client.get("/lookup", params={"lon": 120.905, "lat": 30.834})
    fast = _fastpath(app)
    before = fast.answered
    body = client.get("/lookup", params={"lon": 120.905, "lat": 30.834}).json()
    assert fast.answered == before + 1
    assert body["staff"][0]["phone"] == "139****0001" and body["grid"]["code"] == "330421001001001"


def _report(**over: Any) -> dict[str, Any]:
    body = {
        "lon": (X0 + XM) / 2,
        "lat": 30.834,
        "category": "dispute",
        "source": "resident_app",
        "reporter_name": "张三",
        "reporter_phone": "13812345678",
        "description": "楼道噪音",
    }
    return {**body, **over}


def test_intake_fast_path_stores_replays_and_masks(
    app: FastAPI, client: TestClient, make_key, connection, staffed
) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    reporter = make_key("reporter")
    first = client.post("/incidents", json=_report(external_id="warm-up"), headers=reporter)  # caches the key
    assert first.status_code == 201, first.text
    fast = _fastpath(app, IntakeFastPath)
    before = fast.answered
    created = client.post("/incidents", json=_report(external_id="fp-1"), headers=reporter)
    assert created.status_code == 201, created.text
    body = created.json()
    assert fast.answered == before + 1
    assert created.headers["location"] == f"/incidents/{body['id']}"
    assert body["grid_code"] == "330421001001001" and body["assign_status"] == "inside"
    assert body["reporter_phone"] == "138****5678" and body["reporter_name"] == "张*"
    assert body["possible_duplicate_of"] == first.json()["id"]  # same category, 0 m, same hour
    replay = client.post("/incidents", json=_report(external_id="fp-1"), headers=reporter)
    assert replay.status_code == 200 and replay.json()["id"] == body["id"]
    keyed = {**reporter, "Idempotency-Key": "k-123"}
    one = client.post("/incidents", json=_report(), headers=keyed)
    two = client.post("/incidents", json=_report(description="again"), headers=keyed)
    assert (one.status_code, two.status_code) == (201, 200) and one.json()["id"] == two.json()["id"]
    assert fast.answered == before + 4
    stored = connection.execute(
        sa.text("SELECT count(*) FROM incidents WHERE external_id IN ('warm-up', 'fp-1') OR idempotency_key = 'k-123'")
    ).scalar_one()
    assert stored == 3
    events = connection.execute(
        sa.text("SELECT count(*) FROM incident_events WHERE incident_id = :i AND action = 'report'"), {"i": body["id"]}
    ).scalar_one()
    assert events == 1
    dispatcher = make_key("dispatcher")
    client.post("/incidents", json=_report(external_id="fp-d0"), headers=dispatcher)
    seen = client.post("/incidents", json=_report(external_id="fp-d1"), headers=dispatcher).json()
    assert seen["reporter_phone"] == "13812345678"


def test_intake_errors_are_the_routes(app: FastAPI, client: TestClient, make_key, connection, staffed) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    reporter = make_key("reporter")
    client.post("/incidents", json=_report(external_id="warm"), headers=reporter)
    fast = _fastpath(app, IntakeFastPath)
    before = fast.answered
    count = connection.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one()
    bad_category = client.post("/incidents", json=_report(category="alien"), headers=reporter)
    assert bad_category.status_code == 422 and bad_category.json()["detail"][0]["loc"] == ["body", "category"]
    wrong_type = client.post("/incidents", json=_report(lat="north"), headers=reporter)
    assert wrong_type.status_code == 422 and wrong_type.json()["detail"][0]["loc"][:2] == ["body", "lat"]
    swapped = client.post("/incidents", json=_report(lon=30.834, lat=(X0 + XM) / 2), headers=reporter)
    assert swapped.status_code == 422 and "swap" in swapped.text
    not_json = client.post("/incidents", content=b"{not json", headers={**reporter, "Content-Type": "application/json"})
    assert not_json.status_code == 422
    viewer = make_key("viewer")
    client.get("/lookup", params={"lon": XM, "lat": 30.834}, headers=viewer)  # caches the viewer's key
    assert client.post("/incidents", json=_report(), headers=viewer).status_code == 403
    assert fast.answered == before
    assert connection.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one() == count


def test_bodies_over_the_limit_get_413_and_store_nothing(
    app: FastAPI, client: TestClient, make_key, connection, staffed
) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    reporter = make_key("reporter")
    client.post("/incidents", json=_report(external_id="warm"), headers=reporter)
    count = connection.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one()
    limit = int(app.state.settings.max_body_mb * 1024 * 1024)
    huge = _report(description="x" * (limit + 10))
    resp = client.post("/incidents", json=huge, headers=reporter)
    assert resp.status_code == 413 and resp.json()["detail"]
    batch = client.post(
        "/lookup/batch",
        content=b"[" + b"{}," * (limit // 3) + b"{}]",
        headers={**reporter, "Content-Type": "application/json"},
    )
    assert batch.status_code == 413
    chunked = client.post(
        "/incidents",
        content=iter([b'{"description": "', b"x" * limit, b'"}']),  # no Content-Length: counted as read
        headers={**reporter, "Content-Type": "application/json"},
    )
    assert chunked.status_code == 413 and "over the limit" in chunked.json()["detail"]
    assert connection.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one() == count


# --- cases found in review: each must get the route's answer ------------------------------------


def test_blank_or_repeated_parameters_get_the_routes_answer(client: TestClient, make_key, staffed) -> None:  # type: ignore[no-untyped-def]
    headers = make_key("viewer")
    client.get("/lookup", params={"lon": XM, "lat": 30.834}, headers=headers)
    blank = client.get(f"/lookup?lon={XM}&lat=30.834&lat=", headers=headers)
    assert blank.status_code == 422 and blank.json()["detail"][0]["loc"] == ["query", "lat"]
    with_address = client.get(f"/lookup?lon={XM}&lat=30.834&address=", headers=headers)
    assert with_address.status_code == 422
    lon, lat = from_wgs84(120.905, 30.834, "gcj02")
    repeated = client.get(f"/lookup?lon={lon}&lat={lat}&crs=gcj02&crs=wgs84", headers=headers).json()
    assert repeated["input"]["crs"] == "wgs84"  # the last one wins, as in the route


def test_key_headers_are_read_as_the_route_reads_them(app: FastAPI, client: TestClient, make_key, staffed) -> None:  # type: ignore[no-untyped-def]
    key = make_key("dispatcher")["X-API-Key"]
    client.get("/lookup", params={"lon": XM, "lat": 30.834}, headers={"X-API-Key": key})  # cached now
    both = client.get(
        "/lookup",
        params={"lon": XM, "lat": 30.834},
        headers={"Authorization": f"Bearer {key}", "X-API-Key": "gm_00000000_unknown"},
    )
    assert both.status_code == 401  # X-API-Key decides when present
    app.state.settings = app.state.settings.model_copy(update={"open_coordinate_lookups": True})
    basic = client.get("/lookup", params={"lon": XM, "lat": 30.834}, headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401  # a header that is not a usable key is not "no key"
    app.state.settings = app.state.settings.model_copy(update={"auth_enabled": False})
    keyless = client.get("/lookup", params={"lon": 120.905, "lat": 30.834}).json()
    assert keyless["staff"][0]["phone"] == "139****0001"  # open lookups are masked, auth or not


def test_intake_content_types_and_rate_counting(
    app: FastAPI, client: TestClient, make_key, connection, staffed
) -> None:  # type: ignore[no-untyped-def]
    import json

    import sqlalchemy as sa

    reporter = make_key("reporter")
    assert client.post("/incidents", json=_report(external_id="ct-0"), headers=reporter).status_code == 201
    count = connection.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one()
    jsonp = client.post(
        "/incidents",
        content=json.dumps(_report(external_id="ct-1")),
        headers={**reporter, "Content-Type": "application/jsonp"},
    )
    assert jsonp.status_code == 422
    charset = client.post(
        "/incidents",
        content=json.dumps(_report(external_id="ct-2")),
        headers={**reporter, "Content-Type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 201
    assert connection.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one() == count + 1
    app.state.settings = app.state.settings.model_copy(update={"rate_limit_per_minute": 4})
    limited = make_key("reporter")
    codes = [client.post("/incidents", json=_report(external_id="rl-0"), headers=limited).status_code]
    codes += [client.post("/incidents", json=_report(category="alien"), headers=limited).status_code for _ in range(4)]
    assert codes == [201, 422, 422, 422, 429]  # each request counted once


def test_a_database_failure_after_the_insert_is_not_retried(
    app: FastAPI, client: TestClient, make_key, connection, monkeypatch, staffed
) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    import api.fastpath

    reporter = make_key("reporter")
    client.post("/incidents", json=_report(external_id="db-0"), headers=reporter)
    real = api.fastpath.create_incident

    def stored_then_lost(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(api.fastpath, "create_incident", stored_then_lost)
    resp = client.post("/incidents", json=_report(description="no key, no external id"), headers=reporter)
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    stored = connection.execute(
        sa.text("SELECT count(*) FROM incidents WHERE description = 'no key, no external id'")
    ).scalar_one()
    assert stored == 1  # not inserted a second time by the route


def test_a_client_gone_mid_body_stores_nothing(app: FastAPI, client: TestClient, make_key, connection, staffed) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import json

    import sqlalchemy as sa

    reporter = make_key("reporter")
    client.post("/incidents", json=_report(external_id="gone-0"), headers=reporter)  # caches the key
    body = json.dumps(_report(external_id="gone-1")).encode()
    messages = [
        {"type": "http.request", "body": body, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Any] = []

    async def receive() -> Any:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/incidents", "raw_path": b"/incidents", "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"x-api-key", reporter["X-API-Key"].encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "app": app,
    }  # fmt: skip
    asyncio.run(_fastpath(app, IntakeFastPath)(scope, receive, send))
    assert sent == []
    gone = connection.execute(sa.text("SELECT count(*) FROM incidents WHERE external_id = 'gone-1'")).scalar_one()
    assert gone == 0
