"""`gridmap demo` on an empty database, as a newcomer runs it: the command-centre URL it prints (with
the viewer's key) opens in headless Chromium and the default window (the last 7 days) shows
incidents, because the demo's year ends when it is seeded. A small yearly volume keeps it quick."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from gis.core import db
from gis.core.settings import PROJECT_ROOT
from maps import headless

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PER_YEAR = 3000  # ~57 incidents a week
URL_LINE = re.compile(r"command centre\s+(http://\S+/maps/command-center\?key=(gm_\S+))")
KEYS_LINE = re.compile(r"demo API keys\s+(\S+)")

if not headless.CHROMIUM.exists():
    pytest.skip(f"{headless.CHROMIUM} is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_url(proc: subprocess.Popen[bytes], log: Path, limit_s: float) -> tuple[str, str, Path]:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        found, keys = URL_LINE.search(text), KEYS_LINE.search(text)
        if found and keys:
            return found.group(1), found.group(2), Path(keys.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    pytest.fail(f"gridmap demo printed no command-centre URL:\n{log.read_text(errors='replace')[-3000:]}")


def test_printed_command_centre_url_shows_this_weeks_incidents(database_url: str, tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "demo.log"
    with db.scratch_database(database_url, "demobrowser") as url:
        env = {
            **os.environ,
            "GRIDMAP_DATABASE_URL": url,
            "GRIDMAP_HOST": "127.0.0.1",
            "GRIDMAP_PORT": str(port),
            "GRIDMAP_VAR_DIR": str(tmp_path / "var"),
        }
        command = [sys.executable, "-c", "from api.cli import main; main()", "demo", "--workers", "1", "--no-simulate"]
        with log.open("w") as out:
            proc = subprocess.Popen(
                [*command, "--incidents", str(PER_YEAR)], cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out
            )
        try:
            page_url, key, keys_file = _wait_for_url(proc, log, 300)
            assert page_url.startswith(f"http://127.0.0.1:{port}/maps/command-center?key=")
            assert f"viewer\t{key}" in keys_file.read_text() and keys_file.stat().st_mode & 0o777 == 0o600
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the demo server did not start:\n{log.read_text(errors='replace')[-3000:]}")
                time.sleep(0.3)

            with sync_api.sync_playwright() as p:
                browser = headless.launch(p)
                try:
                    page = browser.new_page(viewport={"width": 1400, "height": 900})
                    errors: list[str] = []
                    page.on("pageerror", lambda e: errors.append(str(e)))
                    response = page.goto(page_url, wait_until="load")
                    assert response is not None and response.status == 200
                    page.wait_for_function(headless.HEAT_PIXELS_JS, timeout=20_000)
                    points = page.evaluate("gridmap.layers.heat._latlngs.length")
                    painted = page.evaluate(headless.HEAT_PIXELS_JS)
                    assert points > 0 and painted > 0
                    assert errors == []
                finally:
                    browser.close()
            engine = db.make_engine(url, pool_size=1, max_overflow=0)
            try:
                with engine.connect() as conn:
                    week = conn.execute(
                        sa.text("SELECT count(*) FROM incidents WHERE reported_at > now() - interval '7 days'")
                    ).scalar_one()
            finally:
                engine.dispose()
            # The page draws the week's incidents one by one (far below the aggregation threshold).
            assert 15 <= week <= 150 and abs(points - week) <= 1
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
