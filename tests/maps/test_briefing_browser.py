"""The weekly briefing page and the command centre's KPI strip in headless Chromium, on the browser
tests' server (tests/maps/test_browser.py): no console error, no request leaving the server, the
KPI selector recolours the choropleth and switches the rankings. Screenshots go to
var/artifacts/screenshots/."""

from __future__ import annotations

import pytest

from tests.maps.test_browser import _finish, _open, browser, server, tree_checkbox  # noqa: F401  (the fixtures)

pytestmark = pytest.mark.browser


def test_briefing_page_renders(request: pytest.FixtureRequest) -> None:
    srv, chromium = request.getfixturevalue("server"), request.getfixturevalue("browser")
    visit = _open(chromium, srv, "/maps/briefing?p_value=analytic")
    page = visit.page
    page.wait_for_function("gridmap.loaded.brief_units === true && gridmap.loaded.brief_hot === true")
    assert page.evaluate("gridmap.layers.brief_units.getLayers()[0].getLayers().length") == 2  # the two towns
    assert page.locator("#gm-briefing svg").count() >= 2  # backlog and categories charts
    side = page.locator("#gm-briefing").inner_text()
    assert "每周会商研判" in side and "本周指标" in side and "测试镇1" in side
    _finish(visit, srv, "briefing")


def test_kpi_selector_recolours_the_choropleth(request: pytest.FixtureRequest) -> None:
    srv, chromium = request.getfixturevalue("server"), request.getfixturevalue("browser")
    visit = _open(chromium, srv, "/maps/command-center")
    page = visit.page
    tree_checkbox(page, None, "网格指标分级图").click()
    page.wait_for_function("gridmap.loaded.kpi_grids === true", timeout=10_000)
    colours = "gridmap.kpiLayer.getLayers().map(function (l) { return l.options.fillColor; }).join()"
    first = page.evaluate(colours)
    page.select_option("#gm-kpi-select", "reported")
    reported = page.evaluate(colours)
    assert first != reported  # on-time rates and counts give other colours
    assert page.locator('#gm-kpis .gm-rank[data-kpi="reported"]').is_visible()
    assert not page.locator('#gm-kpis .gm-rank[data-kpi="on_time_rate"]').is_visible()
    assert page.evaluate("gridmap.kpiLayer.getLayers().length") == 8
    _finish(visit, srv, "command-center-kpis")
