"""The command centre's hot-spot layer: a legend naming every class, the data URL it fetches
(which answers GeoJSON), and a standalone file that embeds the result and needs no server."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from boundaries.sample import MiniCounty
from gis.analysis.units import period_window
from gis.outputs import mapdata
from maps.hotspot_layer import TEXT
from maps.page import PageContext
from maps.standalone import build_html
from tests.gis.test_hotspots_db import plant_week, publish_lattice

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def last_week(connection: Connection, mini_county: MiniCounty) -> dt.date:
    publish_lattice(connection, mini_county)
    monday = period_window(None, "week", NOW)[0].date()
    plant_week(connection, monday)
    return monday


def test_served_page_has_the_layer_legend_and_data_url(client: TestClient, make_key, last_week: dt.date) -> None:  # type: ignore[no-untyped-def]
    key = make_key("viewer")["X-API-Key"]
    page = client.get("/maps/command-center", params={"key": key, "category": "dispute"})
    assert page.status_code == 200, page.text
    html = page.text
    for name in ("layer", "hot_99", "hot_95", "hot_90", "not_significant", "cold_90", "cold_95", "cold_99"):
        assert TEXT[name][0] in html, name
    assert last_week.isoformat() in html  # the legend names the week analysed
    urls = re.findall(r'"(/analysis/hotspots\?[^"]+)"', html)
    assert len(urls) == 1
    query = parse_qs(urlsplit(unescape(urls[0])).query)
    # The page's filter goes along; its report window does not (the analysis picks its week).
    assert query["category"] == ["dispute"] and query["format"] == ["geojson"] and "window" not in query
    data = client.get(unescape(urls[0]))
    assert data.status_code == 200 and data.headers["content-type"].startswith("application/geo+json")
    classes = {f["properties"]["class"] for f in data.json()["features"]}
    assert "hot_99" in classes
    repeats = re.findall(r'"(/analysis/repeats\?[^"]+)"', html)
    assert len(repeats) == 1 and "重复发生地：同一地址或建筑 30 天内 ≥3 起事件" in html
    answer = client.get(unescape(repeats[0]))
    assert answer.status_code == 200 and answer.json()["type"] == "FeatureCollection"


def test_standalone_page_embeds_the_hot_spots(connection: Connection, last_week: dt.date) -> None:
    ctx = PageContext(standalone=True, role="viewer")
    html = build_html(connection, "command-center", ctx, mapdata.parse_filter("7d"))
    assert 'gridmap.data["hotspots"]' in html and "gridmap.builders.hotspots" in html
    assert '"class":"hot_99"' in html
    assert "/analysis/hotspots" not in html and "/analysis/repeats" not in html
    assert 'gridmap.data["repeats"]' in html and "gridmap.builders.repeats" in html
    assert TEXT["hot_99"][0] in html
