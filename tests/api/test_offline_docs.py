"""/docs, /redoc and the OGC API's HTML views name nothing outside the server (issue 14, item 8):
their scripts, styles, fonts, icon and map tiles all come from this server or the configured base
map. The same pages in headless Chromium with every outside request blocked: tests/maps/test_docs_browser.py."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import tipg
from fastapi.testclient import TestClient

from api.routers import ogc as ogc_router
from maps import offline, ogc_pages

URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.\-\[\]:]+[^\s"'<>)\\]*""")
# Identifiers that are never fetched: XML/SVG namespaces and the OGC conformance class URIs.
IDENTIFIER_HOSTS = {"www.w3.org", "www.opengis.net"}
LOCAL_HOSTS = {"testserver", "127.0.0.1", "localhost"}


ANCHOR = re.compile(r"<a\b[^>]*>", re.IGNORECASE)


def outside_urls(text: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    """URLs of other hosts a page may load. Links (``<a href>``: schema references, the TMS
    standard) are left out: following one is the reader's choice, not something the page fetches."""
    found = []
    for match in URL.finditer(ANCHOR.sub("<a>", text)):
        host = urlsplit(match.group(0) if ":" in match.group(0)[:6] else "http:" + match.group(0)).hostname
        if host and host not in LOCAL_HOSTS | IDENTIFIER_HOSTS | set(allowed):
            found.append(match.group(0))
    return found


def test_the_url_scan_finds_cdn_references() -> None:
    assert outside_urls('<script src="https://cdn.jsdelivr.net/npm/x.js"></script>') == [
        "https://cdn.jsdelivr.net/npm/x.js"
    ]
    assert outside_urls("<link href='//fonts.googleapis.com/css?family=Roboto'>") == [
        "//fonts.googleapis.com/css?family=Roboto"
    ]
    assert (
        outside_urls('<a href="https://www.ogc.org/standard/tms/">x</a> <svg xmlns="http://www.w3.org/2000/svg">') == []
    )
    assert outside_urls("L.tileLayer('https://tile.openstreetmap.org/{z}/{x}/{y}.png')") == [
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    ]


@pytest.fixture
def viewer(make_key: Any) -> dict[str, str]:
    return make_key("viewer")


def test_swagger_ui_is_served_from_local_files(client: TestClient) -> None:
    resp = client.get("/docs")
    assert resp.status_code == 200
    page = resp.text
    assert outside_urls(page) == []
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        url = offline.page_url(name)
        assert url in page
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 10_000, url
    assert '"validatorUrl": null' in page
    assert 'href="/static/vendor/gridmap/favicon.ico"' in page
    assert "url: '/openapi.json'" in page


def test_redoc_is_served_from_local_files_without_google_fonts(client: TestClient) -> None:
    resp = client.get("/redoc")
    assert resp.status_code == 200
    assert outside_urls(resp.text) == []
    assert "fonts.googleapis.com" not in resp.text
    js = offline.page_url("redoc.standalone.js")
    assert f'src="{js}"' in resp.text
    assert client.get(js).status_code == 200
    assert 'spec-url="/openapi.json"' in resp.text


def test_fastapi_cdn_pages_are_gone(client: TestClient) -> None:
    # FastAPI's own pages (CDN scripts) are not built at all; ours answer /docs and /redoc.
    app: Any = client.app
    assert app.docs_url is None and app.redoc_url is None and app.swagger_ui_oauth2_redirect_url is not None
    schema = client.get("/openapi.json").json()
    assert not {"/docs", "/redoc", "/favicon.ico"} & set(schema["paths"])


def test_docs_and_icon_stay_public(client: TestClient) -> None:
    # No key: the documentation, the icon and the OpenAPI document answer anyone.
    for path in ("/docs", "/redoc", "/favicon.ico", "/openapi.json", "/static/vendor/gridmap/favicon.ico"):
        assert client.get(path).status_code == 200, path


def test_favicon_is_an_ico_of_our_own(client: TestClient) -> None:
    resp = client.get("/favicon.ico")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "image/x-icon"
    reserved, kind, count = struct.unpack("<HHH", resp.content[:6])
    assert (reserved, kind) == (0, 1) and count >= 2
    sizes = set()
    for i in range(count):
        width, height, _, _, _, _, length, offset = struct.unpack("<BBBBHHII", resp.content[6 + 16 * i : 22 + 16 * i])
        assert resp.content[offset : offset + 8] == b"\x89PNG\r\n\x1a\n"
        assert offset + length <= len(resp.content)
        sizes.add((width, height))
    assert {(16, 16), (32, 32)} <= sizes
    assert resp.content == client.get("/static/vendor/gridmap/favicon.ico").content


OGC_PAGES = [
    "/ogc",
    "/ogc/conformance",
    "/ogc/collections",
    "/ogc/collections/ogc.grids",
    "/ogc/collections/ogc.grids/items",
    "/ogc/collections/ogc.grids/queryables",
    "/ogc/tileMatrixSets",
    "/ogc/tileMatrixSets/WebMercatorQuad",
    "/ogc/collections/ogc.grids/tiles",
    "/ogc/collections/ogc.grids/tiles/WebMercatorQuad",
]


@pytest.mark.parametrize("path", OGC_PAGES)
def test_ogc_html_views_load_local_files_only(client: TestClient, viewer: dict[str, str], path: str) -> None:
    resp = client.get(path, params={"f": "html"}, headers=viewer)
    assert resp.status_code == 200, resp.text[:500]
    assert resp.headers["content-type"].startswith("text/html")
    page = resp.text
    assert outside_urls(page) == []
    for name in ("jquery.js", "leaflet.js", "leaflet.css", "bootstrap.js", "bootstrap.css"):
        assert offline.page_url(name) in page, name
    assert '<link rel="icon" href="/static/vendor/gridmap/favicon.ico">' in page
    assert "tile.openstreetmap.org" not in page


def test_ogc_maps_use_the_configured_base_map(app: Any, make_key: Any) -> None:
    tiles = "http://tiles.county.intranet/{z}/{x}/{y}.png"
    app.state.settings = app.state.settings.model_copy(
        update={"tile_url": tiles, "tile_attribution": "县测绘 <b>", "tile_crs": "gcj02"}
    )
    with TestClient(app) as client:
        page = client.get("/ogc/collections/ogc.grids", params={"f": "html"}, headers=make_key("viewer")).text
    assert tiles in page
    assert outside_urls(page, allowed=frozenset({"tiles.county.intranet"})) == []
    base = json.loads(re.search(r"var base = (\{.*?\});", page).group(1))  # type: ignore[union-attr]
    # The attribution is HTML for Leaflet: escaped, so a configured text cannot inject markup.
    assert base == {"url": tiles, "attribution": "县测绘 &lt;b&gt;", "subdomains": "abc", "crs": "gcj02"}


def test_plain_background_without_a_base_map(client: TestClient, viewer: dict[str, str]) -> None:
    page = client.get("/ogc/collections/ogc.grids", params={"f": "html"}, headers=viewer).text
    base = json.loads(re.search(r"var base = (\{.*?\});", page).group(1))  # type: ignore[union-attr]
    assert base == {"url": None, "crs": "wgs84"}
    assert "L.tileLayer(base.url" in page and "gm-plain" in page


def test_item_pages_escape_properties_and_keep_the_key(client: TestClient, viewer: dict[str, str]) -> None:
    # tipg's environment printed feature properties as raw HTML; the one the OGC router renders with escapes them.
    env = ogc_router._endpoints.templates.env
    html = env.from_string("{{ value }}").render(value="<script>alert(1)</script>")
    assert html == "&lt;script&gt;alert(1)&lt;/script&gt;"
    key = viewer["X-API-Key"]
    page = client.get("/ogc/collections/ogc.grids/items", params={"f": "html", "key": key}).text
    assert f'/ogc/collections{"?key=" + key}"' in page.replace("&amp;", "&")


def test_geojson_is_shifted_for_gcj02_tiles() -> None:
    feature = {
        "type": "Feature",
        "id": 1,
        "properties": {"a": 1},
        "geometry": {"type": "Point", "coordinates": [120.9, 30.8]},
    }
    same = ogc_pages.shift_geojson({"type": "FeatureCollection", "features": [feature]}, "wgs84")
    assert same["features"][0] is feature
    moved = ogc_pages.shift_geojson({"type": "FeatureCollection", "features": [feature]}, "gcj02")
    lon, lat = moved["features"][0]["geometry"]["coordinates"]
    # GCJ-02 lies a few hundred metres from WGS-84 around Jiashan: east and south.
    assert 0.002 < lon - 120.9 < 0.01 and -0.005 < lat - 30.8 < 0
    assert moved["features"][0]["properties"] == {"a": 1} and feature["geometry"]["coordinates"] == [120.9, 30.8]
    empty = {"type": "Feature", "geometry": None, "properties": {}}
    assert ogc_pages.shift_geojson(empty, "gcj02") == empty


def test_bbox_features_split_at_the_antimeridian() -> None:
    one = ogc_pages.bbox_features([120.0, 30.0, 121.0, 31.0])
    assert one is not None and len(one["features"]) == 1
    two = ogc_pages.bbox_features([170.0, -10.0, -170.0, 10.0])
    assert two is not None
    xs = [sorted({p[0] for p in f["geometry"]["coordinates"][0]}) for f in two["features"]]
    assert xs == [[170.0, 180.0], [-180.0, -170.0]]
    assert ogc_pages.bbox_features(None) is None and ogc_pages.bbox_features([1, 2]) is None


def test_editor_page_links_the_icon() -> None:
    from maps.editor import editor_page

    assert offline.favicon_link() in editor_page(1, "grid", None)


def test_redoc_bundle_is_served_without_its_cdn_logo(client: TestClient) -> None:
    name = offline.PAGE_ASSETS["redoc.standalone.js"].name
    installed = offline.PAGE_ASSETS["redoc.standalone.js"].file.read_text(encoding="utf-8")
    # The rewrite is needed (a ReDoc upgrade that drops the logo makes this fail: drop the row).
    assert all(url in installed for url in offline.JS_URL_REWRITES[name])
    served = client.get(f"{offline.DEFAULT_PREFIX}/{name}")
    assert served.status_code == 200 and "immutable" in served.headers["cache-control"]
    assert served.headers["content-type"].startswith("text/javascript")
    assert "cdn.redoc.ly" not in served.text and len(served.text) > 500_000


def test_docs_follow_the_root_path(app: Any) -> None:
    # Behind a reverse proxy at /gridmap every URL the pages name carries the prefix.
    with TestClient(app, root_path="/gridmap") as client:
        docs = client.get("/docs").text
        redoc = client.get("/redoc").text
    assert "url: '/gridmap/openapi.json'" in docs
    assert f'href="/gridmap{offline.page_url("swagger-ui.css")}"' in docs
    assert 'href="/gridmap/static/vendor/gridmap/favicon.ico"' in docs
    assert f'src="/gridmap{offline.page_url("redoc.standalone.js")}"' in redoc


def test_every_tipg_template_we_keep_loads_nothing_from_outside() -> None:
    # A tipg upgrade that adds a CDN file to a template we do not override shows up here.
    tipg_dir = Path(tipg.__file__).parent / "templates"
    ours = {p.name for p in ogc_pages.TEMPLATES_DIR.glob("*.html")}
    assert set(ogc_pages.OVERRIDDEN) <= ours
    assert set(ogc_pages.OVERRIDDEN) <= {p.name for p in tipg_dir.glob("*.html")}  # each replaces one of tipg's
    # map.html and viewer.html belong to tipg's tile viewers, which gridmap does not route.
    assert ogc_router._endpoints.ogc_tiles.with_viewer is False
    kept = {p.name for p in tipg_dir.glob("*.html")} - ours - {"map.html", "viewer.html"}
    assert {"landing.html", "collections.html", "conformance.html", "queryables.html"} <= kept
    for name in sorted(kept):
        assert outside_urls((tipg_dir / name).read_text(encoding="utf-8")) == [], name
    for name in sorted(ours):
        text = (ogc_pages.TEMPLATES_DIR / name).read_text(encoding="utf-8")
        assert outside_urls(text) == [], name
