"""Open311 GeoReport v2 checked with a client library from PyPI (``georeport``) and by hand where it
has no call (POST, tokens): JSON and XML, filters, masking, api_key, errors in the spec's format."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis.incidents.workflow import transition
from tests.dispatch_roster import give_holder, make_roster
from tests.gis.test_geocode import add_address

georeport = pytest.importorskip("georeport")
import georeport.georeport as georeport_module  # noqa: E402

ROOT = "http://testserver/open311/v2"
WGS = (120.905, 30.832)


@pytest.fixture
def o311(client: TestClient, mini_county, monkeypatch) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    # The library calls ``requests.get(url, params=...)``; the test client answers the same call
    # in process (inside the test's transaction), so the library's own URL building and its JSON
    # and XML parsing run unchanged.
    monkeypatch.setattr(georeport_module, "requests", SimpleNamespace(get=client.get))
    client.app.state.admission.clear()  # type: ignore[attr-defined]
    yield client


def _post(client: TestClient, key: str | None, fmt: str = "json", **over: object):  # type: ignore[no-untyped-def]
    form = {
        "service_code": "noise",
        "lat": str(WGS[1]),
        "long": str(WGS[0]),
        "description": "广场舞音响太吵",
        "first_name": "张",
        "last_name": "三",
        "email": "zs@example.com",
        "phone": "13812345678",
    }
    if key:
        form["api_key"] = key
    form.update({k: str(v) for k, v in over.items()})
    return client.post(f"/open311/v2/requests.{fmt}", data=form)


def test_client_lists_services_in_json_and_xml(o311) -> None:  # type: ignore[no-untyped-def]
    for fmt in ("json", "xml"):
        services = georeport.GeoReport(ROOT, jurisdiction="330421", output_format=fmt).get_service_list()
        by_code = {s["service_code"]: s for s in services}
        assert by_code["noise"]["service_name"] == "噪音扰民" and len(by_code) == 15
        assert str(by_code["noise"]["metadata"]).lower() == "false"


def test_post_then_the_client_reads_it_back_masked(o311, make_key) -> None:  # type: ignore[no-untyped-def]
    key = make_key("reporter")["X-API-Key"]
    r = _post(o311, key)
    assert r.status_code == 200, r.text
    [answer] = r.json()
    ticket, token = answer["service_request_id"], answer["token"]
    assert ticket and token and "已收到" in answer["service_notice"]
    client = georeport.GeoReport(ROOT, jurisdiction="330421")
    one = client.get_service_request(ticket)
    assert one["service_request_id"] == ticket and one["status"] == "open" and one["service_code"] == "noise"
    assert one["agency_responsible"] == "测试镇1 测试镇1村1"
    assert (one["lat"], one["long"]) == (round(WGS[1], 3), round(WGS[0], 3))  # rounded to ~100 m
    listed = client.get_service_requests(service_code="noise", status="open")
    assert [x["service_request_id"] for x in listed] == [ticket]
    xml_one = georeport.GeoReport(ROOT, output_format="xml").get_service_request(ticket)
    assert xml_one["service_request_id"] == ticket and xml_one["status_notes"] == "已受理"
    everything = o311.get(f"/open311/v2/requests/{ticket}.json").text + o311.get("/open311/v2/requests.xml").text
    for personal in ("广场舞", "13812345678", "zs@example.com", "张", "三", key):
        assert personal not in everything
    by_token = o311.get(f"/open311/v2/tokens/{token}.json").json()
    assert by_token == [{"service_request_id": ticket, "token": token}]
    xml_token = ET.fromstring(o311.get(f"/open311/v2/tokens/{token}.xml").content)
    assert xml_token.findtext("request/service_request_id") == ticket


def test_filters_status_dates_and_ids(o311, make_key, connection) -> None:  # type: ignore[no-untyped-def]
    key = make_key("reporter")["X-API-Key"]
    noise = _post(o311, key).json()[0]["service_request_id"]
    road = _post(o311, key, service_code="road", description="路灯坏了").json()[0]["service_request_id"]
    incident_id = connection.execute(
        sa.text("SELECT incident_id FROM public_tickets WHERE ticket = :t"), {"t": road}
    ).scalar_one()
    give_holder(connection, incident_id)  # ``dispatched`` requires a holder
    for action in ("accept", "dispatch", "start", "handle", "verify", "close"):
        transition(connection, incident_id, action, "staff")
    client = georeport.GeoReport(ROOT)
    assert [x["service_request_id"] for x in client.get_service_requests(status="closed")] == [road]
    assert [x["service_request_id"] for x in client.get_service_requests(status="open")] == [noise]
    assert {x["service_request_id"] for x in client.get_service_requests()} == {noise, road}
    assert [x["service_request_id"] for x in client.get_service_requests(service_code="road")] == [road]
    both = client.get_service_requests(service_request_id=f"{noise},{road}")
    assert {x["service_request_id"] for x in both} == {noise, road}
    past = client.get_service_requests(start_date="2020-01-01T00:00:00Z", end_date="2020-02-01T00:00:00Z")
    assert past == []
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert len(client.get_service_requests(start_date=today + "T00:00:00Z")) == 2


def test_agency_responsible_is_the_holders_unit(o311, make_key, connection) -> None:  # type: ignore[no-untyped-def]
    make_roster(connection)  # intake offers the report to grid 1's worker, of the village 1 station
    key = make_key("reporter")["X-API-Key"]
    ticket = _post(o311, key).json()[0]["service_request_id"]
    one = georeport.GeoReport(ROOT).get_service_request(ticket)
    listed = georeport.GeoReport(ROOT).get_service_requests()
    assert [x["agency_responsible"] for x in listed] == ["测试镇1村1工作站"]
    assert one["agency_responsible"] == "测试镇1村1工作站"
    everything = o311.get(f"/open311/v2/requests/{ticket}.json").text + o311.get("/open311/v2/requests.xml").text
    assert "网格员甲" not in everything  # the holder is a person: named by the unit, never by name


def test_writes_need_a_reporter_api_key(o311, make_key) -> None:  # type: ignore[no-untyped-def]
    missing = _post(o311, None)
    assert missing.status_code == 401 and missing.json() == [
        {"code": 401, "description": "api_key is required to post a service request"}
    ]
    assert _post(o311, "gm_nope_nope").status_code == 401
    viewer = _post(o311, make_key("viewer")["X-API-Key"])
    assert viewer.status_code == 403 and "reporter" in viewer.json()[0]["description"]


def test_errors_in_the_spec_format_name_field_and_value(o311, make_key) -> None:  # type: ignore[no-untyped-def]
    key = make_key("reporter")["X-API-Key"]
    unknown = _post(o311, key, service_code="ufo")
    assert unknown.status_code == 404 and "'ufo'" in unknown.json()[0]["description"]
    xml = _post(o311, key, fmt="xml", service_code="ufo")
    root = ET.fromstring(xml.content)
    assert xml.status_code == 404 and root.tag == "errors" and root.findtext("error/code") == "404"
    bad_lat = _post(o311, key, lat="north")
    assert bad_lat.status_code == 400 and bad_lat.json()[0]["description"].startswith("lat:")
    assert "'north'" in bad_lat.json()[0]["description"]
    nowhere = _post(o311, key, lat="", long="")
    assert nowhere.status_code == 400 and nowhere.json()[0]["description"].startswith("long:")
    wrong_place = o311.get("/open311/v2/services.json", params={"jurisdiction_id": "110000"})
    assert wrong_place.status_code == 404 and "110000" in wrong_place.json()[0]["description"]
    status = o311.get("/open311/v2/requests.json", params={"status": "pending"})
    assert status.status_code == 400 and "'pending'" in status.json()[0]["description"]
    dates = o311.get("/open311/v2/requests.json", params={"start_date": "yesterday"})
    assert dates.status_code == 400 and "start_date" in dates.json()[0]["description"]
    span = o311.get("/open311/v2/requests.json", params={"start_date": "2026-01-01", "end_date": "2026-06-01"})
    assert span.status_code == 400 and "90" in span.json()[0]["description"]
    assert o311.get("/open311/v2/requests/000000-000000.json").status_code == 404
    assert o311.get("/open311/v2/tokens/nope.xml").status_code == 404
    assert o311.get("/open311/v2/services.yaml").status_code == 404
    assert o311.get("/open311/v2/services/noise.json").status_code == 404  # no metadata: no definition


def test_address_string_locates_a_request(o311, make_key, connection) -> None:  # type: ignore[no-untyped-def]
    add_address(connection, "浙江省嘉兴市嘉善县魏塘街道中山路128号3幢", 120.905, 30.832)
    key = make_key("reporter")["X-API-Key"]
    r = _post(o311, key, lat="", long="", address_string="魏塘街道中山路128号3幢")
    assert r.status_code == 200, r.text
    one = o311.get(f"/open311/v2/requests/{r.json()[0]['service_request_id']}.json").json()[0]
    assert one["agency_responsible"] == "测试镇1 测试镇1村1" and one["address"] is None


def test_public_reads_are_limited_per_address(engine, sessions_in_transaction, mini_county) -> None:  # type: ignore[no-untyped-def]
    from api.app import create_app
    from gis.core.settings import Settings

    app = create_app(
        Settings(freeze_heap=False, public_reads_per_ip_minute=2), engine=engine, sessions=sessions_in_transaction
    )
    with TestClient(app) as client:
        app.state.admission.clear()
        codes = [client.get("/open311/v2/requests.json").status_code for _ in range(3)]
        xml = client.get("/open311/v2/requests.xml")
    assert codes == [200, 200, 429]
    assert xml.status_code == 429 and ET.fromstring(xml.content).findtext("error/code") == "429"
