"""The map pages in headless Chromium against a real server on a throwaway database.

Each page loads without console errors and without a single request leaving the server; the
heat canvas gets painted; a layer switches in the tree control; a new incident appears in the
live layer within its poll interval. Screenshots go to var/artifacts/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from boundaries.generations import publish_layers
from boundaries.sample import build_mini_county
from gis.core import db
from gis.core.settings import PROJECT_ROOT
from gis.people.keys import create_key
from maps import headless

pytestmark = pytest.mark.browser
SHOTS = PROJECT_ROOT / "var" / "artifacts" / "screenshots"
POLL_MS = 1000
GRID = "330421001001001"
BEAT = "330421P0101"

if not headless.CHROMIUM.exists():
    pytest.skip(f"{headless.CHROMIUM} is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@dataclass
class Server:
    base: str
    viewer: str
    reporter: str
    url: str
    log: Path


def _seed(url: str) -> tuple[str, str]:
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        publish_layers(
            conn,
            build_mini_county(),
            note="browser test",
            author="tests",
            published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        )
        conn.execute(
            sa.text(
                "INSERT INTO staff (grid_code, role, name, phone) VALUES (:g, 'grid_leader', '李网格', '13900001111')"
            ),
            {"g": GRID},
        )
        conn.execute(
            sa.text(
                "INSERT INTO buildings (code, name, is_rental, landlord_name, landlord_phone, risk_level, geom) "
                "SELECT 'B' || i, '出租楼' || i, true, '赵房东', '13700001234', (ARRAY['high','medium','low'])[1 + i % 3], "  # noqa: E501
                "ST_SetSRID(ST_MakePoint(120.901 + (i % 20) * 0.002, 30.831 + (i / 20) * 0.002), 4326) "
                "FROM generate_series(0, 179) i"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO hazards (category, severity, status, found_at, geom) SELECT "
                "(ARRAY['gas','private_wiring'])[1 + i % 2], 'high', (ARRAY['open','rectified'])[1 + i % 2], now(), "
                "ST_SetSRID(ST_MakePoint(120.902 + (i % 10) * 0.0035, 30.832 + (i / 10) * 0.004), 4326) "
                "FROM generate_series(0, 39) i"
            )
        )
        # 2,000 incidents clustered around two spots, over the last week; a few overdue.
        conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, status, deadline_at, geom) SELECT "
                "(ARRAY['dispute','fire','traffic'])[1 + i % 3], 'grid_patrol', :now - (i % 160) * interval '1 hour', "
                "CASE WHEN i % 97 = 0 THEN 'dispatched' ELSE 'closed' END, :now - interval '2 hours', "
                "ST_SetSRID(ST_MakePoint((ARRAY[120.908, 120.930])[1 + i % 2] + 0.004 * sin(i * 1.7) * ((i % 13) / 13.0), "  # noqa: E501
                "(ARRAY[30.836, 30.845])[1 + i % 2] + 0.003 * cos(i * 2.3) * ((i % 11) / 11.0)), 4326) "
                "FROM generate_series(0, 1999) i"
            ),
            {"now": now},
        )
        viewer = create_key(conn, "viewer", "browser-viewer")
        reporter = create_key(conn, "reporter", "browser-reporter")
    engine.dispose()
    return viewer, reporter


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """uvicorn in its own process on a scratch database (it cannot see test transactions)."""
    url = make_url(database_url)
    name = f"{url.database}_browser"
    scratch = url.set(database=name).render_as_string(hide_password=False)
    admin = db.make_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    db.ensure_database(scratch)
    db.migrate(scratch)
    viewer, reporter = _seed(scratch)
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "uvicorn.log"
    env = {**os.environ, "GRIDMAP_DATABASE_URL": scratch, "GRIDMAP_REALTIME_INTERVAL_MS": str(POLL_MS)}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield Server(base, viewer, reporter, scratch, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = headless.launch(p)
        yield b
        b.close()


@dataclass
class Visit:
    page: Any
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _open(browser: Any, server: Server, path: str) -> Visit:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    visit = Visit(page)
    page.on("request", lambda r: visit.requests.append(r.url))
    page.on("console", lambda m: visit.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: visit.errors.append(str(e)))
    sep = "&" if "?" in path else "?"
    response = page.goto(f"{server.base}{path}{sep}key={server.viewer}", wait_until="load")
    assert response is not None and response.status == 200, path
    return visit


def _finish(visit: Visit, server: Server, shot: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    visit.page.wait_for_timeout(300)
    visit.page.screenshot(path=str(SHOTS / f"{shot}.png"))
    outside = [u for u in visit.requests if not u.startswith(server.base) and not u.startswith("data:")]
    assert outside == [], outside
    assert visit.errors == [], visit.errors
    visit.page.close()


def tree_checkbox(page: Any, group: str | None, layer: str) -> Any:
    """The checkbox of ``layer`` in the command centre's layer tree, which starts folded: open the
    control by hovering it and unfold ``group`` (None: a group open from the start), as a user would."""
    page.locator(".leaflet-control-layers").hover()
    if group is not None:
        header = page.locator(".leaflet-control-layers-overlays .leaflet-layerstree-header", has_text=group).first
        header.locator(".leaflet-layerstree-closed").click()
    box = page.locator(".leaflet-control-layers-overlays label", has_text=layer).locator("input").first
    assert box.is_visible(), layer
    return box


def test_command_center_paints_heat_and_toggles_layers(browser: Any, server: Server) -> None:
    visit = _open(browser, server, "/maps/command-center")
    page = visit.page
    page.wait_for_function(headless.HEAT_PIXELS_JS, timeout=10_000)
    assert page.evaluate(headless.HEAT_PIXELS_JS) > 1000
    assert page.evaluate("gridmap.map.hasLayer(gridmap.layers.town)")
    # Micro-grids start hidden and are fetched from the server when switched on in the tree.
    assert not page.evaluate("gridmap.map.hasLayer(gridmap.layers.micro_grid)")
    tree_checkbox(page, "行政区划与网格", "微网格").click()
    page.wait_for_function("gridmap.loaded.micro_grid === true", timeout=10_000)
    assert page.evaluate("gridmap.map.hasLayer(gridmap.layers.micro_grid)")
    assert page.evaluate("gridmap.layers.micro_grid.getLayers()[0].getLayers().length") == 16
    tree_checkbox(page, "出租房屋", "出租房屋(按风险)").click()
    page.wait_for_function("gridmap.loaded.rentals === true", timeout=10_000)
    assert any("/maps/data/buildings.geojson" in u for u in visit.requests)
    # A click on a grid opens its popup with staff (masked for a viewer) and counts.
    page.evaluate("gridmap.layers.grid.getLayers()[0].getLayers()[0].openPopup() && null")
    page.wait_for_function(
        "document.querySelector('.leaflet-popup-content').innerText.includes('李**')", timeout=10_000
    )
    popup = page.locator(".leaflet-popup-content").inner_text()
    assert "139****1111" in popup and GRID in popup and "李网格" not in popup
    page.evaluate("gridmap.map.closePopup() && null")
    _finish(visit, server, "command-center")


def test_new_incident_appears_in_the_live_layer(browser: Any, server: Server) -> None:
    visit = _open(browser, server, "/maps/command-center?lang=en")
    page = visit.page
    page.wait_for_function("gridmap.layers.live && gridmap.layers.live._requestCount > 0", timeout=10_000)
    body = {
        "lon": 120.925,
        "lat": 30.842,
        "category": "dispute",
        "source": "grid_patrol",
        "description": "browser test",
        "reporter_name": "王五",
        "reporter_phone": "13611112222",
    }
    posted = httpx.post(f"{server.base}/incidents", json=body, headers={"X-API-Key": server.reporter}, timeout=10)
    if posted.status_code == 404:  # intake not installed: insert the way another system would
        engine = db.make_engine(server.url, pool_size=1, max_overflow=0)
        with engine.begin() as conn:
            new_id = conn.execute(
                sa.text(
                    "INSERT INTO incidents (category, source, reported_at, geom) VALUES ('dispute', 'grid_patrol', "
                    "now(), ST_SetSRID(ST_MakePoint(120.925, 30.842), 4326)) RETURNING id"
                )
            ).scalar_one()
        engine.dispose()
    else:
        assert posted.status_code in (200, 201), posted.text
        new_id = posted.json()["id"]
    started = time.monotonic()
    page.wait_for_function(f"!!gridmap.layers.live.getLayer({new_id})", timeout=POLL_MS * 3 + 2000)
    assert time.monotonic() - started < POLL_MS / 1000 * 3 + 2
    page.evaluate(f"gridmap.layers.live.getLayer({new_id}).openPopup() && null")
    popup = page.locator(".leaflet-popup-content").inner_text()
    assert "136****2222" in popup and "Dispute" in popup
    _finish(visit, server, "command-center-live-en")


def test_pushed_incident_appears_within_a_second_and_polling_is_the_fallback(browser: Any, server: Server) -> None:
    visit = _open(browser, server, "/maps/command-center")
    page = visit.page
    # The stream (GET /events?key=...) is up: the polling has stopped.
    page.wait_for_function("gridmap.live.mode === 'push'", timeout=10_000)
    assert not page.evaluate("!!gridmap.layers.live.isRunning()")
    polls_before = sum("/live.geojson" in u for u in visit.requests)
    body = {"lon": 120.915, "lat": 30.838, "category": "fire", "source": "grid_patrol", "reporter_phone": "13655556666"}
    posted = httpx.post(f"{server.base}/incidents", json=body, headers={"X-API-Key": server.reporter}, timeout=10)
    assert posted.status_code == 201, posted.text
    new_id = posted.json()["id"]
    started = time.monotonic()
    page.wait_for_function(f"!!gridmap.layers.live.getLayer({new_id})", timeout=3000)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"the pushed incident took {elapsed:.2f} s to appear"
    # It came by the push, not by a poll; the ticker lists it; the viewer sees the phone masked.
    assert sum("/live.geojson" in u for u in visit.requests) == polls_before
    assert f"#{new_id}" in page.locator(".gm-ticker").inner_text()
    props = page.evaluate(f"gridmap.layers.live.getFeature({new_id}).properties")
    assert props["reporter_phone"] == "136****6666"
    # The stream fails: the polling takes over until it is back.
    page.evaluate("gridmap.live.source.close(); gridmap.live.source.onerror(new Event('error'))")
    assert page.evaluate("gridmap.live.mode") == "polling"
    page.wait_for_function(
        f"{polls_before} < performance.getEntriesByType('resource')"
        ".filter(function (e) { return e.name.indexOf('/live.geojson') >= 0; }).length",
        timeout=POLL_MS * 3,
    )
    _finish(visit, server, "command-center-push")


@pytest.mark.parametrize(
    ("path", "shot", "ready"),
    [
        ("/maps/heatmap/time?window=7d", "heatmap-time", headless.HEAT_PIXELS_JS),
        (f"/maps/grids/{GRID}?window=30d", "grid-dashboard", "gridmap.loaded.grid === true"),
        (f"/maps/beats/{BEAT}", "beat", "gridmap.loaded.beat === true"),
    ],
)
def test_other_pages_load_offline(browser: Any, server: Server, path: str, shot: str, ready: str) -> None:
    visit = _open(browser, server, path)
    visit.page.wait_for_function(ready, timeout=10_000)
    if shot == "grid-dashboard":
        assert visit.page.locator(".gm-side svg").count() == 2
    _finish(visit, server, shot)
