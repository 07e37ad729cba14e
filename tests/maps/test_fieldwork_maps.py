"""The field-work layers on the command centre (served: fetched from the endpoints; standalone:
inline) and the grid page's coverage section and layers."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from gis.fieldwork import patrols, visits
from gis.outputs import mapdata
from gis.people.keys import Principal
from maps import fieldwork_layers, headless
from maps.page import PageContext
from maps.standalone import build_html
from tests.fieldwork_data import G1, seed, walk_today

CALLER = Principal(key_id=0, name="tests", role="admin")


@pytest.fixture
def field(connection: Connection, mini_county: Any) -> Any:
    data = seed(connection)
    now = dt.datetime.now(dt.UTC)
    visits.record(
        connection,
        [{"client_id": f"m{i}", "person_id": data.person_id, "building_id": data.buildings[i]} for i in range(4)],
        CALLER,
        now,
    )
    start, times = walk_today(now, 20, 20, 15)
    patrol = patrols.start(
        connection, {"person_id": data.person_id, "grid_code": G1, "started_at": start.isoformat()}, CALLER, now
    )
    points = [{"lon": 120.9008 + i * 0.0004, "lat": 30.8310, "t": t.isoformat()} for i, t in enumerate(times)]
    patrols.add_points(connection, patrol["id"], {"points": points}, CALLER, now=now)
    return data


def test_command_center_lists_the_field_layers(client: TestClient, field: Any, make_key: Any) -> None:
    key = make_key("viewer")
    r = client.get("/maps/command-center", headers=key)
    assert r.status_code == 200, r.text
    page = r.text
    for name in ("tree", "unvisited", "tracks", "visits"):
        text = fieldwork_layers.TEXT["zh"][name]
        # In the layer tree's options the labels are JSON (non-ASCII escaped).
        assert text in page or json.dumps(text)[1:-1] in page, text
    assert "/visits/not-visited.geojson?by=grid" in page and "/patrols/tracks.geojson?on=" in page
    assert "/visits/day.geojson?on=" in page
    # The URLs the page fetches answer with the layers.
    url = re.search(r'"(/patrols/tracks\.geojson\?[^"]*)"', page)
    assert url is not None
    tracks = client.get(url.group(1).replace("\\u0026", "&"), headers=key).json()
    assert tracks["features"] and tracks["features"][0]["geometry"]["type"] == "LineString"


def test_standalone_command_center_inlines_the_field_layers(field: Any, connection: Connection) -> None:
    ctx = PageContext(standalone=True, role="viewer")
    page = build_html(connection, "command-center", ctx, mapdata.parse_filter("7d"))
    assert '"fieldwork:tracks"' in page and '"fieldwork:visits"' in page and '"fieldwork:unvisited"' in page
    assert "/visits/day.geojson" not in page  # nothing to fetch without a server


def test_grid_page_shows_coverage(client: TestClient, field: Any, make_key: Any) -> None:
    r = client.get(f"/maps/grids/{G1}", headers=make_key("viewer"))
    assert r.status_code == 200, r.text
    page = r.text
    assert "走访与巡查覆盖" in page and "30天未走访" in page
    section = page[page.index("走访与巡查覆盖") :]
    visited = re.search(r"30天内已走访</td><td>(\d+)<", section)
    assert visited is not None and visited.group(1) == "4"
    assert '"fieldwork:not_visited"' in page and '"fieldwork:tracks"' in page


def test_inline_builders_are_valid_javascript(tmp_path: Path) -> None:
    script = tmp_path / "builders.js"
    script.write_text(
        f"var a = {fieldwork_layers._VISIT_BUILDER};\nvar b = {fieldwork_layers._UNVISITED_BUILDER};\n",
        encoding="utf-8",
    )
    node = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True, check=False)
    assert node.returncode == 0, node.stderr


@pytest.mark.skipif(not headless.CHROMIUM.exists(), reason=f"{headless.CHROMIUM} is not installed")
def test_standalone_field_layers_draw_in_chromium(field: Any, connection: Connection, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    ctx = PageContext(standalone=True, role="viewer")
    page_file = tmp_path / "command-center.html"
    page_file.write_text(build_html(connection, "command-center", ctx, mapdata.parse_filter("7d")), encoding="utf-8")
    grid_file = tmp_path / "grid.html"
    grid_file.write_text(build_html(connection, "grid", ctx, mapdata.parse_filter("30d"), code=G1), encoding="utf-8")
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = headless.launch(pw)
        try:
            page = browser.new_context(offline=True, viewport={"width": 1000, "height": 700}).new_page()
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(page_file.as_uri(), wait_until="load")
            page.wait_for_selector(".leaflet-container")
            count = "(k) => gridmap.layers[k].getLayers()[0].getLayers().length"
            visits_drawn = page.evaluate(count, "fieldwork:visits")
            tracks_drawn = page.evaluate(count, "fieldwork:tracks")
            grids_drawn = page.evaluate(count, "fieldwork:unvisited")
            page.goto(grid_file.as_uri(), wait_until="load")
            page.wait_for_selector(".leaflet-container")
            missed_drawn = page.evaluate(count, "fieldwork:not_visited")
        finally:
            browser.close()
    assert errors == []
    assert visits_drawn == 4 and tracks_drawn == 1 and grids_drawn == 8
    assert missed_drawn == 36 - 4
