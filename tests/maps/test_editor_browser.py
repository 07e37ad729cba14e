"""The map editor in headless Chromium against a real server: an edit made on the page lands in the draft.

Needs its own database (the server commits for real) and /usr/bin/chromium; skipped without it.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from shapely.geometry import Point, box
from sqlalchemy.engine import make_url

from boundaries.drafts import create_draft, load_features
from boundaries.generations import publish_layers
from gis.core import db
from gis.people.keys import create_key

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
G1 = "330421001001001"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no /usr/bin/chromium")


def _mini_county() -> dict[str, object]:
    spec = importlib.util.spec_from_file_location("_gm_conftest", ROOT / "tests" / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_mini_county()  # type: ignore[no-any-return]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def scratch(database_url: str) -> Iterator[str]:
    url = make_url(database_url)
    name = f"{url.database}_editor"
    scratch_url = url.set(database=name).render_as_string(hide_password=False)
    admin = db.make_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    try:
        db.ensure_database(scratch_url)
        db.migrate(scratch_url)
        yield scratch_url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def server(scratch: str) -> Iterator[tuple[str, str, int, sa.Engine]]:
    engine = db.make_engine(scratch)
    with engine.begin() as conn:
        publish_layers(
            conn, _mini_county(), note="mini", author="tests", published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        )
        key = create_key(conn, "planner", "browser-test")
        draft = create_draft(conn, "grid", None, author="tests")
    port = _free_port()
    env = {**os.environ, "GRIDMAP_DATABASE_URL": scratch, "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"server died: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.2)
        yield base, key, draft, engine
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        engine.dispose()


def test_dragging_a_vertex_and_saving_updates_the_draft(server: tuple[str, str, int, sa.Engine]) -> None:
    from playwright.sync_api import sync_playwright

    base, key, draft, engine = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/maps/boundaries/drafts/{draft}?key={key}")
        page.wait_for_function("window.gridmapEditor && window.gridmapEditor.loaded === 8", timeout=20_000)
        page.wait_for_function("window.gridmapEditor.report !== null", timeout=20_000)
        assert page.locator("#gm-status").inner_text().startswith("valid")
        # Turn on Geoman's edit mode with its toolbar button, then drag G1's south-west corner inwards.
        page.locator(".leaflet-pm-icon-edit").first.click()
        corner = page.evaluate(
            "(() => { const p = window.gridmapEditor.map.latLngToContainerPoint([30.83, 120.90]);"
            " return [p.x, p.y]; })()"
        )
        target = page.evaluate(
            "(() => { const p = window.gridmapEditor.map.latLngToContainerPoint([30.832, 120.902]);"
            " return [p.x, p.y]; })()"
        )
        frame = page.locator("#" + page.evaluate("window.gridmapEditor.map.getContainer().id")).bounding_box()
        assert frame is not None
        page.mouse.move(frame["x"] + corner[0], frame["y"] + corner[1])
        page.mouse.down()
        page.mouse.move(frame["x"] + target[0], frame["y"] + target[1], steps=12)
        page.mouse.up()
        page.locator(".leaflet-pm-icon-edit").first.click()  # leave edit mode
        page.locator("#gm-save").click()
        page.wait_for_function("window.gridmapEditor.saved === 1", timeout=20_000)
        page.wait_for_function("window.gridmapEditor.report && window.gridmapEditor.report.errors > 0", timeout=20_000)
        findings_drawn = page.locator("#gm-findings li").count()
        browser.close()
    assert not errors, errors
    assert findings_drawn > 0  # the gap the edit opened is listed (and drawn)
    with engine.connect() as conn:
        features = load_features(conn, draft).set_index("code")
    moved = features.geometry[G1]
    assert len(features) == 8
    # The corner moved inwards (to within a few pixels of where it was dropped); G1 lost a triangle.
    assert not moved.covers(Point(120.9001, 30.8301))
    assert moved.covers(Point(120.9021, 30.8321))
    assert moved.area < box(120.90, 30.83, 120.91, 30.84).area * 0.99
