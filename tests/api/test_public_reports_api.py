"""Residents' public surface: report, follow with the token, rate; masking, merging, abuse limits,
photos checked by content, and bad input answered in the resident's language naming the field."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from PIL import Image

from gis.core.settings import Settings
from gis.dispatch import assignments
from gis.dispatch.manual import dispatch
from gis.incidents.workflow import transition
from gis.spatial import crs as gcrs
from tests.dispatch_roster import give_holder, make_roster

# A point inside the mini county (town 1, village 1), as WGS-84 and as a phone sends it (GCJ-02).
WGS = (120.905, 30.832)
GCJ = gcrs.wgs84_to_gcj02(*WGS)


@pytest.fixture
def public_client(engine, sessions_in_transaction, mini_county) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    from api.app import create_app

    settings = Settings(freeze_heap=False, public_reports_per_device_minute=3, public_reports_per_ip_minute=50)
    app = create_app(settings, engine=engine, sessions=sessions_in_transaction)
    with TestClient(app) as c:
        app.state.admission.clear()  # a fresh count of the shared buckets for each test
        yield c


def _report(client: TestClient, **over: object):  # type: ignore[no-untyped-def]
    body = {"category": "noise", "description": "楼下KTV半夜很吵", "lon": GCJ[0], "lat": GCJ[1], "device_id": "dev-1"}
    body.update(over)
    return client.post("/public/reports", json={k: v for k, v in body.items() if v is not None})


def _jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, "JPEG")
    return out.getvalue()


def test_report_gives_ticket_and_token_and_files_a_resident_incident(public_client, connection) -> None:  # type: ignore[no-untyped-def]
    r = _report(public_client, phone="13812345678")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["ticket"] and len(body["token"]) >= 20 and body["merged"] is False
    assert "incident_id" not in body and body["status"] == "received" and body["status_text"] == "已受理"
    row = connection.execute(
        sa.text(
            "SELECT i.source, i.category, i.grid_code, i.received_crs, t.phone, t.device_id, t.token_hash "
            "FROM public_tickets t JOIN incidents i ON i.id = t.incident_id WHERE t.ticket = :t"
        ),
        {"t": body["ticket"]},
    ).one()
    assert (row.source, row.category, row.grid_code, row.received_crs) == (
        "resident_app",
        "noise",
        "330421001001001",
        "gcj02",
    )
    assert row.phone == "13812345678" and row.device_id == "dev-1"
    assert bytes(row.token_hash) != body["token"].encode()  # only the hash is stored


def test_timeline_needs_the_token_and_shows_no_staff_or_others(public_client, connection) -> None:  # type: ignore[no-untyped-def]
    roster = make_roster(connection)  # intake offers the report to grid 1's worker (网格员甲)
    body = _report(public_client).json()
    ticket, token = body["ticket"], body["token"]
    assert public_client.get(f"/public/reports/{ticket}").status_code == 404
    wrong = public_client.get(f"/public/reports/{ticket}", headers={"X-Ticket-Token": "x" * 22})
    assert wrong.status_code == 404 and wrong.json()["message"] == "票号或查询码不正确"
    unknown = public_client.get("/public/reports/991231-000000", params={"token": token})
    assert unknown.status_code == 404 and unknown.json() == wrong.json()  # a miss and a wrong token look alike
    incident_id = connection.execute(
        sa.text("SELECT incident_id FROM public_tickets WHERE ticket = :t"), {"t": ticket}
    ).scalar_one()
    offered = public_client.get(f"/public/reports/{ticket}", params={"token": token}).json()
    # the system's offer changes no status: not a step; the worker is named by her station
    assert [s["step"] for s in offered["timeline"]] == ["received"] and offered["unit"] == "测试镇1村1工作站"
    worker = assignments.Holder("网格员甲", person_id=roster.grid_worker)
    transition(connection, incident_id, "accept", "王调度", note="联系了张先生 13900001111")
    assignments.accept(connection, incident_id, worker)
    transition(connection, incident_id, "dispatch", "王调度", note="联系了张先生 13900001111")
    assignments.arrive(connection, incident_id, worker, WGS[0], WGS[1])
    assignments.arrive(connection, incident_id, worker, WGS[0], WGS[1])  # twice: one step
    for action in ("start", "handle", "verify", "close"):
        transition(connection, incident_id, action, "王调度", note="联系了张先生 13900001111")
    view = public_client.get(f"/public/reports/{ticket}", headers={"X-Ticket-Token": token})
    assert view.status_code == 200, view.text
    v = view.json()
    steps = [s["step"] for s in v["timeline"]]
    assert steps == ["received", "accepted", "dispatched", "on_scene", "in_progress", "handled", "verified", "closed"]
    assert v["status"] == "closed" and v["unit"] == "测试镇1村1工作站" and v["can_rate"] is True
    assert "测试镇1村1工作站" in v["timeline"][2]["text"] and v["timeline"][3]["text"] == "工作人员已到达现场"
    text = view.text
    for personal in ("王调度", "13900001111", "张先生", "13812345678", "楼下KTV", "incident_id", "网格员甲", "offer"):
        assert personal not in text
    assert f"{WGS[0]:.6f}" not in text and "assignment" not in text  # nothing of the dispatch notes
    en = public_client.get(f"/public/reports/{ticket}", params={"token": token, "lang": "en"}).json()
    assert en["status_text"] == "closed" and en["timeline"][0]["text"] == "report received"
    assert en["timeline"][3]["text"] == "staff arrived on the scene"


def test_handling_unit_is_the_holders_unit_never_a_person(public_client, connection) -> None:  # type: ignore[no-untyped-def]
    make_roster(connection)
    noise = _report(public_client, lon=WGS[0], lat=WGS[1], crs="wgs84").json()
    # town 2 (120.935, 30.845): no one on duty there, so nobody holds it
    road = _report(public_client, category="road", lon=120.935, lat=30.845, crs="wgs84", device_id="dev-2").json()
    ids = dict(connection.execute(sa.text("SELECT ticket, incident_id FROM public_tickets")).all())

    def unit(body: dict[str, str]) -> str:
        return str(
            public_client.get(f"/public/reports/{body['ticket']}", params={"token": body["token"]}).json()["unit"]
        )

    assert unit(road) == "测试镇2 测试镇2村2"  # nobody holds it: the village and the town
    transition(connection, ids[road["ticket"]], "accept", "王调度")
    dispatch(connection, ids[road["ticket"]], "王调度", org_unit="330421002-ZHZX")
    assert unit(road) == "测试镇2综合信息指挥室"
    beat_officer = connection.execute(sa.text("SELECT id FROM people WHERE name = '民警丙'")).scalar_one()
    dispatch(connection, ids[noise["ticket"]], "王调度", person_id=beat_officer)  # re-dispatched: a new lead
    assert unit(noise) == "警格1"  # an officer without a unit: the beat the officer serves


def test_duplicate_report_is_merged_into_the_open_matter(public_client, connection) -> None:  # type: ignore[no-untyped-def]
    first = _report(public_client).json()
    # 50 m away, same category, BD-09 as Baidu's map kit sends it: within the duplicate rule.
    bd = gcrs.wgs84_to_bd09(WGS[0] + 0.0005, WGS[1])
    second = _report(public_client, lon=bd[0], lat=bd[1], crs="bd09", device_id="dev-2").json()
    other = _report(public_client, category="road", device_id="dev-3").json()  # another category: its own
    assert second["merged"] is True and other["merged"] is False and second["ticket"] != first["ticket"]
    assert "已并入" in second["notice"]
    ids = dict(connection.execute(sa.text("SELECT ticket, incident_id FROM public_tickets")).all())
    assert ids[first["ticket"]] == ids[second["ticket"]] != ids[other["ticket"]]
    assert (
        connection.execute(
            sa.text("SELECT count(*) FROM incident_events WHERE incident_id = :i AND action = 'resident_report'"),
            {"i": ids[first["ticket"]]},
        ).scalar_one()
        == 1
    )
    view = public_client.get(f"/public/reports/{second['ticket']}", params={"token": second["token"]}).json()
    assert view["merged"] is True and view["timeline"][0]["step"] == "received"
    assert first["ticket"] not in str(view)  # nothing about the other resident's ticket


def test_rating_dissatisfied_reopens_and_twice_is_refused(public_client, connection) -> None:  # type: ignore[no-untyped-def]
    body = _report(public_client).json()
    ticket, token = body["ticket"], body["token"]
    early = public_client.post(f"/public/reports/{ticket}/rating", json={"token": token, "rating": "satisfied"})
    assert early.status_code == 409 and "尚未处理完成" in early.json()["message"]
    incident_id = connection.execute(
        sa.text("SELECT incident_id FROM public_tickets WHERE ticket = :t"), {"t": ticket}
    ).scalar_one()
    give_holder(connection, incident_id)  # ``dispatched`` requires a holder
    for action in ("accept", "dispatch", "start", "handle", "verify", "close"):
        transition(connection, incident_id, action, "staff")
    bad = public_client.post(f"/public/reports/{ticket}/rating", json={"token": token, "rating": "meh"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "rating"]
    assert bad.json()["detail"][0]["input"] == "meh"
    r = public_client.post(
        f"/public/reports/{ticket}/rating", json={"token": token, "rating": "dissatisfied", "note": "还是很吵"}
    )
    assert r.status_code == 200 and r.json()["reopened"] is True
    status, closed_at = connection.execute(
        sa.text("SELECT status, closed_at FROM incidents WHERE id = :i"), {"i": incident_id}
    ).one()
    # back to its last holder: offered to it again (gis.incidents.reopen)
    assert status == "dispatched" and closed_at is None
    offers = connection.execute(
        sa.text(
            "SELECT ou.code FROM incident_assignments a JOIN org_units ou ON ou.id = a.org_unit_id "
            "WHERE a.incident_id = :i AND a.role = 'lead' AND a.state = 'offered'"
        ),
        {"i": incident_id},
    ).scalars()
    assert list(offers) == ["TEST-HOLDER"]
    event = connection.execute(
        sa.text(
            "SELECT from_status, to_status, note FROM incident_events WHERE incident_id = :i AND action = 'reopen'"
        ),
        {"i": incident_id},
    ).one()
    assert event.from_status == "closed" and event.to_status == "dispatched" and "还是很吵" in event.note
    again = public_client.post(f"/public/reports/{ticket}/rating", json={"token": token, "rating": "satisfied"})
    assert again.status_code == 409 and "重复评价" in again.json()["message"]
    view = public_client.get(f"/public/reports/{ticket}", params={"token": token}).json()
    assert view["timeline"][-1]["step"] == "reopen" and view["rating"] == "dissatisfied"
    assert view["status"] == "processing" and view["unit"] == "test holder" and "TEST-HOLDER" not in str(view)


def test_satisfaction_counts_ratings_per_town(public_client, connection, make_key) -> None:  # type: ignore[no-untyped-def]
    for n, rating in enumerate(("satisfied", "basically_satisfied", "dissatisfied")):
        body = _report(public_client, category=("noise", "road", "garbage")[n], device_id=f"dev-{n}").json()
        incident_id = connection.execute(
            sa.text("SELECT incident_id FROM public_tickets WHERE ticket = :t"), {"t": body["ticket"]}
        ).scalar_one()
        give_holder(connection, incident_id)  # ``dispatched`` requires a holder
        for action in ("accept", "dispatch", "start", "handle"):
            transition(connection, incident_id, action, "staff")
        r = public_client.post(
            f"/public/reports/{body['ticket']}/rating", json={"token": body["token"], "rating": rating}
        )
        assert r.status_code == 200
    assert public_client.get("/satisfaction").status_code == 401  # staff only
    rows = public_client.get("/satisfaction", headers=make_key("viewer")).json()
    assert rows == [{"code": "330421001", "name": "测试镇1", "rated": 3, "rate": 0.6667}]


def test_bad_input_names_field_and_value_in_chinese_or_english(public_client, connection) -> None:  # type: ignore[no-untyped-def]
    cases = [
        ({"category": "ufo"}, "category", "ufo"),
        ({"description": ""}, "description", ""),
        ({"lon": "abc"}, "lon", "abc"),
        ({"lat": 95}, "lat", 95),
        ({"crs": "utm"}, "crs", "utm"),
        ({"phone": "call me"}, "phone", "call me"),
        ({"lon": None, "lat": None}, "lon", None),
        ({"device_id": "a b"}, "device_id", "a b"),
    ]
    before = connection.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one()
    for n, (over, field, value) in enumerate(cases):
        over.setdefault("device_id", f"dev-bad-{n}")
        r = _report(public_client, **over)
        assert r.status_code == 422, (over, r.text)
        item = r.json()["detail"][0]
        assert item["loc"] == ["body", field] and item["input"] == value, (over, item)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in item["msg"])  # Chinese by default
    en = public_client.post(
        "/public/reports?lang=en", json={"category": "ufo", "description": "x", "lon": 1, "lat": 1}
    ).json()
    assert en["detail"][0]["msg"].startswith("unknown category")
    assert connection.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one() == before  # nothing written
    assert (
        public_client.post(
            "/public/reports", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )


def test_outside_county_is_stored_flagged_and_the_resident_told(public_client, connection) -> None:  # type: ignore[no-untyped-def]
    r = _report(public_client, lon=121.6, lat=31.2, crs="wgs84")  # Shanghai
    assert r.status_code == 201 and r.json()["outside_county"] is True
    assert "不在嘉善县范围内" in r.json()["notice"]


def test_device_and_ip_limits(public_client) -> None:  # type: ignore[no-untyped-def]
    codes = [_report(public_client, category=c).status_code for c in ("noise", "road", "garbage", "parking")]
    assert codes == [201, 201, 201, 429]
    refused = _report(public_client, category="wages")
    assert refused.status_code == 429 and "Retry-After" in refused.headers and "该设备" in refused.json()["message"]
    assert _report(public_client, category="wages", device_id="dev-other").status_code == 201  # another device


def test_ip_limit_holds_without_device_ids(engine, sessions_in_transaction, mini_county) -> None:  # type: ignore[no-untyped-def]
    from api.app import create_app

    settings = Settings(freeze_heap=False, public_reports_per_ip_minute=2)
    app = create_app(settings, engine=engine, sessions=sessions_in_transaction)
    with TestClient(app) as client:
        app.state.admission.clear()
        codes = [_report(client, category=c, device_id=None).status_code for c in ("noise", "road", "garbage")]
    assert codes == [201, 201, 429]


def test_captcha_hook_is_off_by_default_and_enforced_when_installed(public_client) -> None:  # type: ignore[no-untyped-def]
    assert _report(public_client).status_code == 201
    public_client.app.state.captcha = lambda answer, ip: answer == "42"  # type: ignore[attr-defined]
    missing = _report(public_client, category="road", device_id="dev-c1")
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "captcha"]
    assert _report(public_client, category="road", device_id="dev-c2", captcha="42").status_code == 201


def test_photos_are_checked_by_content(public_client, connection) -> None:  # type: ignore[no-untyped-def]
    fields = {
        "category": "garbage",
        "description": "垃圾堆",
        "lon": str(GCJ[0]),
        "lat": str(GCJ[1]),
        "device_id": "dev-p",
    }
    files = [("photos", ("a.jpg", _jpeg(), "image/jpeg")), ("photos", ("b.jpg", _jpeg((32, 32)), "image/jpeg"))]
    ok = public_client.post("/public/reports", data=fields, files=files)
    assert ok.status_code == 201, ok.text and ok.json()["photos"] == 2
    stored = connection.execute(sa.text("SELECT mime, width, height FROM public_photos ORDER BY id")).all()
    assert [tuple(r) for r in stored] == [("image/jpeg", 64, 48), ("image/jpeg", 32, 32)]
    fake = [("photos", ("c.jpg", b"MZ\x90\x00 not an image at all", "image/jpeg"))]
    r = public_client.post("/public/reports", data={**fields, "device_id": "dev-q"}, files=fake)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "photos"]
    assert "第1张照片" in r.json()["detail"][0]["msg"]
    truncated = [("photos", ("d.jpg", _jpeg()[:200], "image/jpeg"))]
    r = public_client.post("/public/reports", data={**fields, "device_id": "dev-r"}, files=truncated)
    assert r.status_code == 422 and r.json()["detail"][0]["input"] == "#1"
    assert connection.execute(sa.text("SELECT count(*) FROM public_tickets")).scalar_one() == 1  # nothing half-written


def test_categories_are_the_resident_list(public_client) -> None:  # type: ignore[no-untyped-def]
    zh = public_client.get("/public/categories").json()
    assert {"code": "noise", "name": "噪音扰民", "group": "环境"} in zh
    assert public_client.get("/public/categories", params={"lang": "en"}).json()[0]["name"] == "noise nuisance"


def test_report_page_is_chinese_by_default_and_loads_nothing_from_outside(public_client) -> None:  # type: ignore[no-untyped-def]
    page = public_client.get("/report")
    assert page.status_code == 200 and "随手拍 · 我要反映" in page.text and 'lang="zh-CN"' in page.text
    assert 'capture="environment"' in page.text and "噪音扰民" in page.text
    assert "http://" not in page.text.replace("http(s)", "") and "https://" not in page.text
    en = public_client.get("/report", params={"lang": "en"}).text
    assert "Report a problem" in en and "noise nuisance" in en
    areas = public_client.get("/public/areas").json()
    assert {f["properties"]["layer"] for f in areas["features"]} == {"town", "village"}
    assert set(areas["features"][0]["properties"]) == {"code", "name", "layer"}


def test_odd_json_types_are_422_not_500(public_client) -> None:  # type: ignore[no-untyped-def]
    cases = ({"lang": 5}, {"device_id": 7}, {"lon": {"x": 1}}, {"category": ["noise"]}, {"phone": 13812345678})
    for n, over in enumerate(cases):
        r = _report(public_client, **{"device_id": f"dev-odd-{n}", **over})
        assert r.status_code in (201, 422), (over, r.text)
    assert _report(public_client, lang=5, category="road", device_id="dev-z").status_code == 201  # zh by default
    r = public_client.post("/public/reports", json=[1, 2])
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "body"]
