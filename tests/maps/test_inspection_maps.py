"""The inspection layers on the command centre (served: fetched from the field-work endpoints when
switched on; standalone: inline), their legend, and the grid page's inspection coverage."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from gis.fieldwork import maplayers
from gis.outputs import mapdata
from gis.people.scope import WHOLE_COUNTY
from maps import headless, inspection_layers
from maps.i18n import label
from maps.page import PageContext
from maps.standalone import build_html
from tests.fieldwork_data import G1, OTHER_TOWN_GRID
from tests.inspection_data import Inspected, seed_inspections


@pytest.fixture
def data(connection: Connection, mini_county: Any) -> Inspected:
    return seed_inspections(connection)


def _in_page(text: str, page: str) -> bool:
    # In the layer tree's options the labels are JSON (non-ASCII escaped).
    return text in page or json.dumps(text)[1:-1] in page


def _urls(page: str, pattern: str) -> list[str]:
    return [u.replace("\\u0026", "&") for u in re.findall(rf'"({pattern}[^"]*)"', page)]


def test_command_center_lists_the_inspection_layers(
    client: TestClient, connection: Connection, data: Inspected, make_key: Any
) -> None:
    key = make_key("viewer")
    r = client.get("/maps/command-center", headers=key)
    assert r.status_code == 200, r.text
    page = r.text
    for name in (
        "tree.inspections",
        "layer.insp_risk",
        "layer.insp_age",
        "layer.hazards_open",
        "layer.hazards_overdue",
    ):
        assert _in_page(label(name), page), name
    assert _in_page(label("layer.campaign_inspected", name="出租房消防专项"), page)
    # The legend says what the colours mean, and which campaign is shown.
    for text in ("age.lt30", "age.gt180", "age.never", "legend.hazard_overdue", "legend.campaign_none"):
        assert label(text) in page, text
    assert "专项整治: 出租房消防专项" in page
    # The filter form gets a campaign choice, the active one selected.
    assert f'<option value="{data.campaign_id}" selected>出租房消防专项' in page
    # The URLs the page fetches answer with the layers, as the direct queries do.
    urls = _urls(page, "/inspections/buildings.geojson") + _urls(page, "/hazards/open.geojson")
    urls += _urls(page, f"/campaigns/{data.campaign_id}/grids.geojson")
    assert len(urls) == 6, urls
    fetched = {u: client.get(u, headers=key) for u in urls}
    assert all(resp.status_code == 200 for resp in fetched.values()), fetched
    risk = next(resp.json() for u, resp in fetched.items() if "by=risk" in u)
    assert risk["counts"] == maplayers.building_points(connection, "risk")["counts"]
    overdue = next(resp.json() for u, resp in fetched.items() if "overdue=true" in u)
    assert overdue["features"] and all(f["properties"]["overdue"] for f in overdue["features"])
    rectified = next(resp.json() for u, resp in fetched.items() if "measure=rectified" in u)
    assert [f["properties"]["code"] for f in rectified["features"]] == [G1]


def test_endpoints_keep_the_scope_and_refuse_bad_values(client: TestClient, data: Inspected, make_key: Any) -> None:
    other = make_key("viewer", scope=OTHER_TOWN_GRID)
    risk = client.get("/inspections/buildings.geojson?by=risk", headers=other).json()
    assert [f["properties"]["id"] for f in risk["features"]] == [data.field.other_building]
    hazards = client.get("/hazards/open.geojson", headers=other).json()
    assert {f["properties"]["grid_code"] for f in hazards["features"]} == {OTHER_TOWN_GRID}
    assert client.get(f"/campaigns/{data.campaign_id}/grids.geojson", headers=other).status_code == 404
    viewer = make_key("viewer")
    bad = client.get("/inspections/buildings.geojson?by=colour", headers=viewer)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "by"]
    bad = client.get(f"/campaigns/{data.campaign_id}/grids.geojson?measure=done", headers=viewer)
    assert bad.status_code == 422 and "measure" in bad.text
    assert client.get("/hazards/open.geojson?overdue=maybe", headers=viewer).status_code == 422
    # A page asking for a campaign the key does not see: 422 naming it, not a server error.
    page = client.get(f"/maps/command-center?campaign={data.campaign_id}", headers=other)
    assert page.status_code == 422 and "campaign" in page.text
    assert client.get(f"/maps/command-center?campaign={data.campaign_id}", headers=viewer).status_code == 200


def test_standalone_command_center_inlines_the_inspection_layers(data: Inspected, connection: Connection) -> None:
    ctx = PageContext(standalone=True, role="viewer")
    page = build_html(connection, "command-center", ctx, mapdata.parse_filter("7d"))
    for key in ("insp_risk", "insp_age", "hazards_open", "hazards_overdue", "campaign_inspected", "campaign_rectified"):
        assert f'"inspection:{key}"' in page, key
    assert "/inspections/buildings.geojson" not in page  # nothing to fetch without a server


def test_grid_page_shows_inspection_coverage(
    client: TestClient, connection: Connection, data: Inspected, make_key: Any
) -> None:
    r = client.get(f"/maps/grids/{G1}?lang=en", headers=make_key("viewer"))
    assert r.status_code == 200, r.text
    page = r.text
    section = page[page.index(label("insp.coverage", "en")) :]
    figures = maplayers.grid_inspection_figures(connection, G1, WHOLE_COUNTY)
    for key in ("within", "overdue", "never"):
        shown = re.search(rf"{re.escape(label('due.' + key, 'en'))}</td><td>(\d+)<", section)
        assert shown is not None and int(shown.group(1)) == figures[key] > 0, key
    assert '"inspection:due"' in page
    legend = page[page.index('id="gm-legend"') :]
    assert label("legend.insp_due", "en") in legend and label("due.overdue", "en") in legend


def test_inline_builders_are_valid_javascript(tmp_path: Path) -> None:
    builders = [
        *inspection_layers.BUILDING_BUILDERS.values(),
        inspection_layers.DUE_BUILDER,
        inspection_layers.HAZARD_BUILDER,
        inspection_layers.CAMPAIGN_BUILDER,
    ]
    # folium compiles page scripts as templates again: no template markers may appear.
    assert not any(mark in b for b in builders for mark in ("{{", "{%", "{#"))
    script = tmp_path / "builders.js"
    script.write_text("".join(f"var b{n} = {b};\n" for n, b in enumerate(builders)), encoding="utf-8")
    node = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True, check=False)
    assert node.returncode == 0, node.stderr


@pytest.mark.skipif(not headless.CHROMIUM.exists(), reason=f"{headless.CHROMIUM} is not installed")
def test_standalone_inspection_layers_draw_in_chromium(data: Inspected, connection: Connection, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    ctx = PageContext(standalone=True, role="viewer")
    page_file = tmp_path / "command-center.html"
    page_file.write_text(build_html(connection, "command-center", ctx, mapdata.parse_filter("7d")), encoding="utf-8")
    grid_file = tmp_path / "grid.html"
    grid_file.write_text(build_html(connection, "grid", ctx, mapdata.parse_filter("30d"), code=G1), encoding="utf-8")
    errors: list[str] = []
    count = "(k) => gridmap.layers[k].getLayers()[0].getLayers().length"
    popup = (
        "(k) => { const l = gridmap.layers[k].getLayers()[0].getLayers()[0]; "
        "gridmap.layers[k].addTo(gridmap.map); l.openPopup(); "
        "return l.getPopup().getElement().innerText; }"
    )
    drawn: dict[str, int] = {}
    with sync_api.sync_playwright() as pw:
        browser = headless.launch(pw)
        try:
            page = browser.new_context(offline=True, viewport={"width": 1000, "height": 700}).new_page()
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(page_file.as_uri(), wait_until="load")
            page.wait_for_selector(".leaflet-container")
            for key in ("insp_risk", "insp_age", "hazards_open", "hazards_overdue", "campaign_inspected"):
                drawn[key] = page.evaluate(count, f"inspection:{key}")
            overdue_popup = page.evaluate(popup, "inspection:hazards_overdue")
            campaign_popup = page.evaluate(popup, "inspection:campaign_inspected")
            page.goto(grid_file.as_uri(), wait_until="load")
            page.wait_for_selector(".leaflet-container")
            drawn["due"] = page.evaluate(count, "inspection:due")
        finally:
            browser.close()
    assert errors == []
    rentals = len(data.field.buildings) + 1
    hazards = {flag: len(maplayers.hazard_points(connection, overdue=flag)["features"]) for flag in (False, True)}
    assert drawn == {
        "insp_risk": rentals,
        "insp_age": rentals,
        "hazards_open": hazards[False],
        "hazards_overdue": hazards[True],
        "campaign_inspected": 1,
        "due": len(data.field.buildings),
    }
    assert label("hstatus.overdue") in overdue_popup and label("hazard.ebike_fly_line") in overdue_popup
    assert label("f.targets") in campaign_popup and "%" in campaign_popup
