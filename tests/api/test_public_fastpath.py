"""The residents' fast path (api.public_fastpath) gives the routes' answers, stored rows and errors.

A request with a query parameter other than ``lang`` (and ``token`` on the tracking page) is handed
on to the route, which ignores it: ``?via=route`` gives the reference answer for the same request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from api.public_fastpath import PublicFastPath
from gis.core.settings import Settings
from gis.incidents.workflow import transition
from gis.spatial import crs as gcrs
from tests.dispatch_roster import make_roster

ROUTE = {"via": "route"}
WGS = (120.905, 30.832)  # town 1, village 1 of the mini county
GCJ = gcrs.wgs84_to_gcj02(*WGS)
# What differs between two equal reports: the new ticket's number and token.
NEW = ("ticket", "token")


def _client(engine, sessions, **limits: int) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    from api.app import create_app

    settings = Settings(freeze_heap=False, **{"duplicate_window_hours": 0, **limits})  # type: ignore[arg-type]
    app = create_app(settings, engine=engine, sessions=sessions)
    with TestClient(app) as c:
        app.state.admission.clear()  # a fresh count of the shared buckets for each test
        yield c


@pytest.fixture
def pub(engine, sessions_in_transaction, mini_county) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    yield from _client(
        engine,
        sessions_in_transaction,
        public_reports_per_device_minute=100,
        public_reports_per_ip_minute=100,
        public_reads_per_ip_minute=100,
    )


def _fastpath(app: FastAPI) -> PublicFastPath:
    layer: Any = app.middleware_stack
    while layer is not None and not isinstance(layer, PublicFastPath):
        layer = getattr(layer, "app", None)
    assert layer is not None, "PublicFastPath is not in the middleware stack"
    return layer


def _body(**over: object) -> dict[str, Any]:
    body: dict[str, Any] = {"category": "noise", "description": "楼下KTV半夜很吵", "lon": GCJ[0], "lat": GCJ[1],
                            "device_id": "dev-1"}  # fmt: skip
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def _stored(connection: Connection, ticket: str) -> dict[str, Any]:
    row = connection.execute(
        sa.text(
            "SELECT t.merged, t.channel, t.device_id, host(t.ip) AS ip, t.phone, t.lang, t.media_url, "
            "t.open311_token IS NULL AS no_spec_token, i.category, i.source, i.description, i.reporter_phone, "
            "i.status, i.received_crs, i.town_code, i.village_code, i.grid_code, i.assign_status, "
            "ST_AsText(i.geom) AS geom, (SELECT count(*) FROM incident_events e WHERE e.incident_id = i.id) AS events "
            "FROM public_tickets t JOIN incidents i ON i.id = t.incident_id WHERE t.ticket = :t"
        ),
        {"t": ticket},
    ).one()
    return dict(row._mapping)


def _count(connection: Connection, table: str) -> int:
    return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


@pytest.mark.parametrize(
    ("over", "params", "headers"),
    [
        ({}, {}, {}),
        ({"phone": "13812345678", "lon": WGS[0], "lat": WGS[1], "crs": "wgs84"}, {"lang": "en"}, {}),
        ({"lon": 121.6, "lat": 31.2, "crs": "wgs84", "device_id": None}, {}, {"Accept-Language": "en-GB"}),
        ({"lang": "en", "media_url": "https://example.org/a.jpg"}, {}, {}),
    ],
)
def test_a_report_stores_and_answers_as_the_route(pub, connection, over, params, headers) -> None:  # type: ignore[no-untyped-def]
    fast = _fastpath(pub.app)
    before = fast.answered
    got = pub.post("/public/reports", params=params, json=_body(**over), headers=headers)
    want = pub.post("/public/reports", params={**params, **ROUTE}, json=_body(**over), headers=headers)
    assert fast.answered == before + 1
    assert got.status_code == want.status_code == 201, (got.text, want.text)
    assert got.headers["content-type"] == want.headers["content-type"] == "application/json"
    g, w = got.json(), want.json()
    assert got.headers["location"] == f"/public/reports/{g['ticket']}" and g["ticket"] != w["ticket"]
    assert {k: v for k, v in g.items() if k not in NEW} == {k: v for k, v in w.items() if k not in NEW}
    assert "incident_id" not in g and "open311_token" not in g and len(g["token"]) >= 20
    assert _stored(connection, g["ticket"]) == _stored(connection, w["ticket"])


def test_a_merged_report_is_the_routes(engine, sessions_in_transaction, mini_county, connection) -> None:  # type: ignore[no-untyped-def]
    for client in _client(engine, sessions_in_transaction, duplicate_window_hours=3):  # type: ignore[arg-type]
        first = client.post("/public/reports", json=_body()).json()
        fast = _fastpath(client.app)
        before = fast.answered
        got = client.post("/public/reports", json=_body(device_id="dev-2"))
        want = client.post("/public/reports", params=ROUTE, json=_body(device_id="dev-3"))
        assert fast.answered == before + 1 and got.status_code == want.status_code == 201
        g, w = got.json(), want.json()
        assert g["merged"] is w["merged"] is True and "已并入" in g["notice"] and g["notice"] == w["notice"]
        ids = dict(connection.execute(sa.text("SELECT ticket, incident_id FROM public_tickets")).all())
        assert ids[g["ticket"]] == ids[w["ticket"]] == ids[first["ticket"]]
        sg, sw = _stored(connection, g["ticket"]), _stored(connection, w["ticket"])
        assert (sg.pop("device_id"), sw.pop("device_id")) == ("dev-2", "dev-3") and sg == sw


def test_refused_reports_are_the_routes_in_chinese_and_english(pub, connection) -> None:  # type: ignore[no-untyped-def]
    cases = [
        {"category": "ufo"},
        {"description": ""},
        {"lon": "abc"},
        {"lat": 95},
        {"crs": "utm"},
        {"phone": "call me"},
        {"lon": None, "lat": None},
        {"device_id": "a b"},
        {"lang": 5, "category": ["noise"]},
        {"address": "不存在的地方xyz", "lon": None, "lat": None},
    ]
    fast = _fastpath(pub.app)
    before, stored = fast.answered, _count(connection, "public_tickets")
    incidents = _count(connection, "incidents")
    for over in cases:
        for params, headers in (({}, {}), ({"lang": "en"}, {}), ({}, {"Accept-Language": "en-US,en;q=0.8"})):
            got = pub.post("/public/reports", params=params, json=_body(**over), headers=headers)
            want = pub.post("/public/reports", params={**params, **ROUTE}, json=_body(**over), headers=headers)
            assert got.status_code == want.status_code == 422, (over, got.text)
            assert got.json() == want.json(), over
            answer = got.json()
            english = answer["message"] == answer["detail"][0]["reason"]
            assert english is bool(params or headers), (over, params, headers, answer)
    for raw in (b"{not json", b"[1, 2]", b'"text"'):
        got = pub.post("/public/reports", content=raw, headers={"content-type": "application/json"})
        want = pub.post("/public/reports", params=ROUTE, content=raw, headers={"content-type": "application/json"})
        assert got.status_code == want.status_code == 422 and got.json() == want.json()
    assert fast.answered == before  # every refusal was the route's
    assert _count(connection, "public_tickets") == stored and _count(connection, "incidents") == incidents


def test_abuse_limits_count_each_report_once(engine, sessions_in_transaction, mini_county) -> None:  # type: ignore[no-untyped-def]
    for client in _client(engine, sessions_in_transaction, public_reports_per_device_minute=3):  # type: ignore[arg-type]
        fast = _fastpath(client.app)
        # A refused report counts once (the route's count), as the route alone would.
        assert client.post("/public/reports", json=_body(category="ufo")).status_code == 422
        codes = [client.post("/public/reports", json=_body(category=c)).status_code for c in ("road", "garbage")]
        assert codes == [201, 201] and fast.answered == 2
        refused = client.post("/public/reports", json=_body(category="parking"))
        reference = client.post("/public/reports", params=ROUTE, json=_body(category="parking"))
        assert refused.status_code == reference.status_code == 429 and "Retry-After" in refused.headers
        assert refused.json()["message"] == reference.json()["message"] and "该设备" in refused.json()["message"]
        en = client.post("/public/reports", params={"lang": "en"}, json=_body(category="wages"))
        assert en.status_code == 429 and en.json()["message"].startswith("too many reports from this device")
        assert client.post("/public/reports", json=_body(device_id="dev-other")).status_code == 201
        assert fast.answered == 3
    for client in _client(engine, sessions_in_transaction, public_reports_per_ip_minute=2):  # type: ignore[arg-type]
        codes = [client.post("/public/reports", json=_body(device_id=f"dev-ip-{n}")).status_code for n in range(3)]
        assert codes == [201, 201, 429] and _fastpath(client.app).answered == 2


def test_captcha_and_photos_go_to_the_route(pub) -> None:  # type: ignore[no-untyped-def]
    fast = _fastpath(pub.app)
    pub.app.state.captcha = lambda answer, ip: answer == "42"
    missing = pub.post("/public/reports", json=_body())
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "captcha"]
    assert pub.post("/public/reports", json=_body(captcha="42")).status_code == 201
    del pub.app.state.captcha
    form = {k: str(v) for k, v in _body().items()}
    assert pub.post("/public/reports", data=form).status_code == 201  # a form: the route's reading
    assert fast.answered == 0


def test_tracking_page_is_the_routes(pub, connection) -> None:  # type: ignore[no-untyped-def]
    make_roster(connection)  # the intake offers the report to grid 1's worker: a holder unit
    body = pub.post("/public/reports", json=_body()).json()
    ticket, token = body["ticket"], body["token"]
    incident_id = connection.execute(
        sa.text("SELECT incident_id FROM public_tickets WHERE ticket = :t"), {"t": ticket}
    ).scalar_one()
    transition(connection, incident_id, "accept", "王调度", note="联系了张先生 13900001111")
    fast = _fastpath(pub.app)
    before = fast.answered
    asks: list[tuple[dict[str, str], dict[str, str]]] = [
        ({}, {"X-Ticket-Token": token}),
        ({"token": token}, {}),
        ({"token": token, "lang": "en"}, {}),
        ({}, {"X-Ticket-Token": token, "Accept-Language": "en"}),
        ({"token": "wrong"}, {"X-Ticket-Token": token}),  # the header wins, as in the route
    ]
    for params, headers in asks:
        got = pub.get(f"/public/reports/{ticket}", params=params, headers=headers)
        want = pub.get(f"/public/reports/{ticket}", params={**params, **ROUTE}, headers=headers)
        assert got.status_code == want.status_code == 200, got.text
        assert got.headers["content-type"] == want.headers["content-type"] == "application/json"
        assert got.json() == want.json()
        steps = [s["step"] for s in got.json()["timeline"]]
        assert steps == ["received", "accepted"] and "王调度" not in got.text and "13900001111" not in got.text
    assert fast.answered == before + len(asks)
    assert got.json()["unit"] == "测试镇1村1工作站"


def test_bad_tokens_on_the_tracking_page_are_the_routes_404(engine, sessions_in_transaction, mini_county) -> None:  # type: ignore[no-untyped-def]
    for client in _client(engine, sessions_in_transaction, public_reads_per_ip_minute=10):  # type: ignore[arg-type]
        body = client.post("/public/reports", json=_body()).json()
        ticket = body["ticket"]
        fast = _fastpath(client.app)
        fast.answered = 0
        misses: list[tuple[str, dict[str, str], dict[str, str]]] = [
            (ticket, {}, {"X-Ticket-Token": "x" * 22}),
            (ticket, {"lang": "en"}, {"X-Ticket-Token": "x" * 22}),
            (ticket, {}, {}),
            ("991231-000000", {"token": body["token"]}, {}),
            (ticket, {"token": "y" * 65}, {}),  # overlong: the route's 422
        ]
        for path_ticket, params, headers in misses:
            got = client.get(f"/public/reports/{path_ticket}", params=params, headers=headers)
            want = client.get(f"/public/reports/{path_ticket}", params={**params, **ROUTE}, headers=headers)
            assert got.status_code == want.status_code and got.status_code in (404, 422), got.text
            assert got.json() == want.json()
        assert client.get(f"/public/reports/{ticket}", params={"lang": "en"}).json()["message"].startswith("no such")
        assert fast.answered == 0
        # 9 reads counted so far: each miss once, not twice, the overlong token not at all (refused
        # before the route counts); the tenth passes, then the route's 429.
        ok = client.get(f"/public/reports/{ticket}", headers={"X-Ticket-Token": body["token"]})
        assert ok.status_code == 200 and fast.answered == 1
        refused = client.get(f"/public/reports/{ticket}", headers={"X-Ticket-Token": body["token"]})
        assert refused.status_code == 429 and "Retry-After" in refused.headers and fast.answered == 1
