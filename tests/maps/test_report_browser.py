"""The residents' page /report in headless Chromium with a phone viewport, against a real server:
a report with a photo, the ticket shown, staff close the matter, the resident sees the closed
timeline and rates it. Nothing is fetched from outside the server. The same server is read by the
PyPI Open311 client over real HTTP. Screenshots go to var/artifacts/screenshots/report-*.png.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from PIL import Image

from boundaries.generations import publish_layers
from boundaries.sample import build_mini_county
from gis.core import db
from gis.core.settings import PROJECT_ROOT
from gis.people.keys import create_key
from maps import headless
from tests.conftest import api_server, scratch_database

pytestmark = pytest.mark.browser
SHOTS = PROJECT_ROOT / "var" / "artifacts" / "screenshots"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}

if not headless.CHROMIUM.exists():
    pytest.skip(f"{headless.CHROMIUM} is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@dataclass
class Server:
    base: str
    url: str
    dispatcher: str
    reporter: str
    log: Path


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with scratch_database(database_url, "report") as scratch:
        engine = db.make_engine(scratch, pool_size=1, max_overflow=0)
        with engine.begin() as conn:
            publish_layers(
                conn,
                build_mini_county(),
                note="report page test",
                author="tests",
                published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            )
            dispatcher = create_key(conn, "dispatcher", "report-dispatcher")
            reporter = create_key(conn, "reporter", "report-open311")
        engine.dispose()
        log = tmp_path_factory.mktemp("server") / "uvicorn.log"
        with api_server({"GRIDMAP_DATABASE_URL": scratch}, log) as base:
            yield Server(base, scratch, dispatcher, reporter, log)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = headless.launch(p)
        yield b
        b.close()


def _photo(path: Path) -> Path:
    Image.new("RGB", (1200, 900), (90, 140, 60)).save(path, "JPEG")
    return path


def _incident_of(server: Server, ticket: str) -> tuple[int, str, str]:
    engine = db.make_engine(server.url, pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT i.id, i.source, i.village_code FROM public_tickets t JOIN incidents i ON i.id = t.incident_id "
                "WHERE t.ticket = :t"
            ),
            {"t": ticket},
        ).one()
        photos = conn.execute(sa.text("SELECT count(*) FROM public_photos")).scalar_one()
    engine.dispose()
    assert photos == 1
    return int(row.id), str(row.source), str(row.village_code)


def _add_station(server: Server, code: str, name: str, village: str) -> str:
    """A village work station and an API key of its own (the account that accepts its offers)."""
    engine = db.make_engine(server.url, pool_size=1, max_overflow=0)
    with engine.begin() as conn:
        unit = conn.execute(
            sa.text(
                "INSERT INTO org_units (code, name, kind, layer, area_code) "
                "VALUES (:c, :n, 'village_station', 'village', :a) RETURNING id"
            ),
            {"c": code, "n": name, "a": village},
        ).scalar_one()
        key = create_key(conn, "reporter", f"{code}-key", org_unit_id=unit)
    engine.dispose()
    return key


def test_resident_reports_follows_and_rates_on_a_phone(browser: Any, server: Server, tmp_path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(**PHONE)
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    assert page.goto(f"{server.base}/report", wait_until="load").status == 200
    assert page.locator("h1").inner_text() == "随手拍 · 我要反映"
    page.wait_for_selector("#map path.leaflet-interactive")  # the towns and villages are drawn
    page.select_option("#category", "garbage")
    page.fill("#description", "小区门口垃圾堆放多日无人清理")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7)
    assert "已选位置" in page.locator("#position-hint").inner_text()
    page.set_input_files("#photos", str(_photo(tmp_path / "scene.jpg")))
    page.wait_for_selector("#thumbs img")
    page.screenshot(path=str(SHOTS / "report-form.png"), full_page=True)
    page.click("#submit")
    page.wait_for_selector("#done:not(.hidden)")
    page.screenshot(path=str(SHOTS / "report-ticket.png"), full_page=True)
    ticket = page.locator("#done-ticket").inner_text().split()[-1]
    token = page.locator("#done-token").inner_text().split()[-1]
    incident_id, source, village = _incident_of(server, ticket)
    assert source == "resident_app"

    staff = {"X-API-Key": server.dispatcher}
    base = f"{server.base}/incidents/{incident_id}"
    r = httpx.post(f"{base}/transitions", json={"action": "accept"}, headers=staff)
    assert r.status_code == 200, r.text
    # dispatched by hand to the village's work station, which takes it and goes there: the unit
    # the resident is told of, and a step of its own without anyone's name
    station = {"X-API-Key": _add_station(server, "TEST-STATION", "测试村工作站", village)}
    r = httpx.post(f"{base}/dispatch", json={"org_unit": "TEST-STATION", "note": "王师傅 13900001111"}, headers=staff)
    assert r.status_code == 200, r.text
    assert httpx.post(f"{base}/accept", headers=station).status_code == 200
    r = httpx.post(f"{base}/arrive", json={"lon": 120.91, "lat": 30.84}, headers=station)
    assert r.status_code == 200, r.text
    for action in ("start", "handle", "verify", "close"):
        r = httpx.post(f"{base}/transitions", json={"action": action}, headers=staff)
        assert r.status_code == 200, r.text

    page.click("#tab-find")
    page.locator("#mine button").first.click()  # the ticket this phone sent, remembered
    page.wait_for_selector("#view li[data-step=closed]")
    steps = page.locator("#view li").evaluate_all("els => els.map(e => e.dataset.step)")
    assert steps == ["received", "accepted", "dispatched", "on_scene", "in_progress", "handled", "verified", "closed"]
    shown = page.locator("#view").inner_text()
    assert "处理单位：测试村工作站" in shown and "工作人员已到达现场" in shown
    for staff_only in ("report-dispatcher", "TEST-STATION", "王师傅", "13900001111", "120.91"):
        assert staff_only not in shown
    page.screenshot(path=str(SHOTS / "report-closed.png"), full_page=True)
    page.click("#view button[data-rating=satisfied]")
    page.wait_for_function("document.querySelector('#find-error').textContent === '感谢您的评价'")
    page.wait_for_selector("#view button[data-rating]", state="detached")
    view = httpx.get(f"{server.base}/public/reports/{ticket}", headers={"X-Ticket-Token": token}).json()
    assert view["rating"] == "satisfied" and view["status"] == "closed"

    outside = [u for u in requests if not u.startswith(server.base) and not u.startswith(("data:", "blob:"))]
    assert outside == [], outside
    assert errors == [], errors
    context.close()


def test_open311_client_from_pypi_over_http(server: Server) -> None:
    georeport = pytest.importorskip("georeport")
    root = f"{server.base}/open311/v2"
    client = georeport.GeoReport(root, jurisdiction="330421", api_key=server.reporter)
    assert {s["service_code"] for s in client.get_service_list()} >= {"noise", "garbage", "road"}
    # georeport has no POST; the spec's form-encoded POST is sent as any Open311 client sends it.
    posted = httpx.post(
        f"{root}/requests.json",
        data={
            "api_key": server.reporter,
            "jurisdiction_id": "330421",
            "service_code": "road",
            "lat": "30.846",
            "long": "120.931",
            "description": "路灯不亮",
        },
    )
    assert posted.status_code == 200, posted.text
    request_id = posted.json()[0]["service_request_id"]
    assert client.get_service_request(request_id)["service_code"] == "road"
    xml_client = georeport.GeoReport(root, jurisdiction="330421", output_format="xml")
    assert xml_client.get_service_request(request_id)["agency_responsible"] == "测试镇2 测试镇2村2"
