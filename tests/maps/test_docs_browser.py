"""/docs, /redoc and the OGC API's HTML views in headless Chromium with every outside request
blocked (issue 14, item 8): each page renders (Swagger UI lists the operations, ReDoc shows the
API's title, the OGC pages draw their Leaflet maps), no request tries to leave the server, and the
console reports no failed load. A real uvicorn server on a scratch database, as in test_browser.py.
Screenshots go to var/artifacts/screenshots/."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

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
INCIDENTS = 12

if not headless.CHROMIUM.exists():
    pytest.skip(f"{headless.CHROMIUM} is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@dataclass
class Server:
    base: str
    viewer: str


def _seed(url: str) -> str:
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with engine.begin() as conn:
        publish_layers(
            conn,
            build_mini_county(),
            note="docs browser test",
            author="tests",
            published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        )
        conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, description, geom) "
                "SELECT 'dispute', 'grid_patrol', now() - i * interval '1 hour', '<b>邻里纠纷</b>' || i, "
                "ST_SetSRID(ST_MakePoint(120.902 + i * 0.002, 30.832 + i * 0.001), 4326) "
                "FROM generate_series(0, :n - 1) i"
            ),
            {"n": INCIDENTS},
        )
        viewer = create_key(conn, "viewer", "docs-browser-viewer")
    engine.dispose()
    return viewer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """uvicorn in its own process on a scratch database, with no base map configured (the
    offline default: the maps draw on a plain background)."""
    url = make_url(database_url)
    name = f"{url.database}_docs"
    scratch = url.set(database=name).render_as_string(hide_password=False)
    admin = db.make_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    proc: subprocess.Popen[bytes] | None = None
    try:
        db.ensure_database(scratch)
        db.migrate(scratch)
        viewer = _seed(scratch)
        port = _free_port()
        log = tmp_path_factory.mktemp("server") / "uvicorn.log"
        env = {**os.environ, "GRIDMAP_DATABASE_URL": scratch, "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0"}
        env.pop("GRIDMAP_TILE_URL", None)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
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
        yield Server(base, viewer)
    finally:
        if proc is not None:
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
    """Chromium whose only way out is a proxy that does not exist: a request to any host but this
    machine fails in the network stack, as on the intranet (the pages record every such request).
    Blocking in the network stack rather than by Playwright's request interception, which breaks
    the decoding of .ico images."""
    dead_proxy = f"http://127.0.0.1:{_free_port()}"
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(headless.CHROMIUM),
            args=headless.ARGS,
            headless=True,
            proxy={"server": dead_proxy, "bypass": "127.0.0.1"},
        )
        yield b
        b.close()


@dataclass
class Visit:
    page: Any
    outside: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _open(browser: Any, server: Server, path: str) -> Visit:
    """The page at ``path``; every request to another host fails (the browser fixture) and is recorded."""
    # A fresh context per page: nothing cached from an earlier page hides a request.
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    visit = Visit(page)
    local = urlsplit(server.base).netloc

    def record(request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in ("data", "blob", "about") and parts.netloc != local:
            visit.outside.append(request.url)

    page.on("request", record)
    page.on("requestfailed", lambda r: visit.failed.append(r.url))
    page.on("console", lambda m: visit.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: visit.errors.append(str(e)))
    response = page.goto(f"{server.base}{path}", wait_until="load")
    assert response is not None and response.status == 200, path
    return visit


def _finish(visit: Visit, shot: str) -> None:
    page = visit.page
    page.wait_for_load_state("networkidle")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{shot}.png"))
    assert visit.outside == [], visit.outside
    assert visit.failed == [], visit.failed
    assert visit.errors == [], visit.errors
    icon = page.evaluate("document.querySelector('link[rel~=\"icon\"]').href")
    assert urlsplit(icon).path.endswith("/favicon.ico"), icon
    page.context.close()


def test_outside_requests_fail_and_are_recorded(browser: Any, server: Server) -> None:
    # The harness itself: were a page to reach out, the request would fail and be reported.
    visit = _open(browser, server, "/favicon.ico")
    result = visit.page.evaluate(
        "fetch('https://cdn.jsdelivr.net/npm/jquery@3.7.1/dist/jquery.min.js').then(() => 'loaded', () => 'failed')"
    )
    assert result == "failed"
    assert visit.outside == ["https://cdn.jsdelivr.net/npm/jquery@3.7.1/dist/jquery.min.js"]
    visit.page.context.close()


def test_swagger_ui_lists_the_operations_offline(browser: Any, server: Server) -> None:
    """Every operation of the OpenAPI document is listed. Swagger UI (5.3x) virtualises a list of
    150+ rows (tags and operations) and keeps only those near the viewport in the DOM, so the page
    is scrolled to the end and the operations seen on the way are counted."""
    visit = _open(browser, server, "/docs")
    page = visit.page
    page.wait_for_selector(".opblock", timeout=20_000)
    spec = httpx.get(f"{server.base}/openapi.json", timeout=30).json()
    expected = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    seen: set[tuple[str, str]] = set()
    read = (
        "Array.from(document.querySelectorAll('.opblock-summary')).map(s => ["
        "s.querySelector('.opblock-summary-method').innerText.trim(),"
        "s.querySelector('.opblock-summary-path').innerText.replace(/\\u200b/g, '').trim()])"
    )
    for _ in range(200):  # a step is most of a viewport; the list is a few hundred rows at most
        seen |= {(m, p) for m, p in page.evaluate(read)}
        if page.evaluate("window.innerHeight + window.scrollY >= document.body.scrollHeight - 2"):
            break
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(100)
    assert len(expected) > 20 and ("GET", "/lookup") in seen
    assert expected - seen == set(), "operations Swagger UI does not list"
    _finish(visit, "docs-swagger")


def test_redoc_shows_the_api_offline(browser: Any, server: Server) -> None:
    visit = _open(browser, server, "/redoc")
    title = visit.page.locator("h1", has_text="gridmap")
    title.first.wait_for(timeout=30_000)
    assert "0.1.0" in title.first.inner_text()
    assert visit.page.locator("[data-section-id^='tag/']").count() > 3  # the operation groups
    _finish(visit, "docs-redoc")


def test_ogc_landing_and_collections_offline(browser: Any, server: Server) -> None:
    visit = _open(browser, server, f"/ogc?f=html&key={server.viewer}")
    assert visit.page.locator("h1").inner_text() == "gridmap OGC API"
    assert visit.page.evaluate("typeof jQuery === 'function' && typeof L === 'object' && !!bootstrap")
    assert visit.page.evaluate("document.querySelector('.navbar-brand img').naturalWidth") > 0  # the icon
    _finish(visit, "ogc-landing")
    visit = _open(browser, server, f"/ogc/collections?f=html&key={server.viewer}")
    assert visit.page.locator("tbody tr").count() >= 10
    assert visit.page.locator("#total_pages").inner_text() != ""  # tipg's paging script ran
    _finish(visit, "ogc-collections")


def test_ogc_items_draw_on_the_leaflet_map_offline(browser: Any, server: Server) -> None:
    visit = _open(browser, server, f"/ogc/collections/ogc.incidents/items?f=html&limit=100&key={server.viewer}")
    page = visit.page
    page.wait_for_selector("#map.leaflet-container", timeout=10_000)
    assert page.locator("#map.gm-plain").count() == 1  # no base map configured: a plain background
    assert page.locator("#map .leaflet-overlay-pane path").count() == INCIDENTS
    assert page.locator("tbody tr").count() == INCIDENTS
    # Text sent in by the public is shown as text, not markup.
    assert page.locator("tbody td", has_text="<b>邻里纠纷</b>0").count() == 1
    _finish(visit, "ogc-items")


@pytest.mark.parametrize(
    ("path", "shot"),
    [
        ("/ogc/collections/ogc.grids", "ogc-collection"),
        ("/ogc/collections/ogc.grids/items/330421001001001", "ogc-item"),
        ("/ogc/collections/ogc.grids/tiles/WebMercatorQuad", "ogc-tileset"),
        ("/ogc/tileMatrixSets/WebMercatorQuad", "ogc-tilematrixset"),
    ],
)
def test_ogc_pages_with_a_map_offline(browser: Any, server: Server, path: str, shot: str) -> None:
    visit = _open(browser, server, f"{path}?f=html&key={server.viewer}")
    visit.page.wait_for_selector("#map.leaflet-container", timeout=10_000)
    assert visit.page.locator("#map .leaflet-overlay-pane path").count() >= 1
    _finish(visit, shot)
