"""Map pages must load with no internet: every JS/CSS file is served locally."""

from __future__ import annotations

import fcntl
import json
import posixpath
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import folium
import pytest
from folium import plugins
from starlette.testclient import TestClient

from maps import offline

CHROMIUM = Path("/usr/bin/chromium")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
REFERENCES = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']|url\(\s*["']?([^"')]*)""", re.IGNORECASE)
# A square around Jiashan county town (嘉善县, 330421), lon/lat.
JIASHAN_POLYGON = [[120.88, 30.80], [120.96, 30.80], [120.96, 30.87], [120.88, 30.87]]


@pytest.fixture(scope="session")
def installed_assets() -> None:
    """Run the `make assets` install once if node_modules is absent."""
    if not offline.check_assets():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"map assets are missing and npm is not on PATH; {offline.INSTALL_HINT}")
    # pytest-xdist workers share one node_modules: install under a lock.
    lock_path = Path(tempfile.gettempdir()) / "gridmap-map-assets.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if offline.check_assets():
            command = offline.INSTALL_COMMAND.split()
            command[command.index("maps/assets")] = str(offline.ASSETS_DIR)
            subprocess.run([npm, *command[1:]], check=True, timeout=600)
    missing = offline.check_assets()
    assert missing == [], f"still missing after npm ci: {missing[:5]}"


@pytest.fixture
def localized() -> Iterator[None]:
    offline.localize()
    yield
    offline.unlocalize()


def _references(html: str) -> list[str]:
    return [a or b for a, b in REFERENCES.findall(html)]


def _every_plugin_map() -> folium.Map:
    """A map using every class in offline.USED_CLASSES, with no tile layer."""
    # With no tile layer Leaflet knows no maxZoom, which MarkerCluster needs.
    m = folium.Map(location=[30.84, 120.92], zoom_start=12, tiles=None, maxZoom=18)
    points = [[30.84, 120.92], [30.85, 120.93], [30.83, 120.91]]
    point_features: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": f"网格{i}", "start": "2024-01-01", "end": "2024-02-01", "times": ["2024-01-01"]},
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
            }
            for i, (lat, lon) in enumerate(points)
        ],
    }
    plugins.HeatMap([[*p, 1.0] for p in points]).add_to(m)
    plugins.HeatMapWithTime([[[*p, 1.0] for p in points]] * 2, index=["t0", "t1"]).add_to(m)
    cluster = plugins.MarkerCluster(locations=points).add_to(m)
    plugins.FastMarkerCluster(points).add_to(m)
    plugins.Realtime("/api/live.geojson", interval=5000).add_to(m)
    plugins.GeoMan().add_to(m)
    timeline = plugins.Timeline(point_features).add_to(m)
    plugins.TimelineSlider().add_timelines(timeline).add_to(m)
    plugins.TimestampedGeoJson(point_features).add_to(m)
    wms = folium.WmsTileLayer("/wms", layers="grid", name="wms").add_to(m)
    plugins.TimestampedWmsTileLayers(wms).add_to(m)
    plugins.VectorGridProtobuf("/tiles/{z}/{x}/{y}.pbf", "grid").add_to(m)
    plugins.Fullscreen().add_to(m)
    plugins.MiniMap(tile_layer=folium.TileLayer("/tiles/{z}/{x}/{y}.png", attr="local")).add_to(m)
    plugins.MousePosition().add_to(m)
    plugins.MeasureControl().add_to(m)
    plugins.Draw().add_to(m)
    first = folium.FeatureGroup("一组").add_to(m)
    second = folium.FeatureGroup("二组").add_to(m)
    plugins.GroupedLayerControl({"分组": [first, second]}).add_to(m)
    plugins.FeatureGroupSubGroup(first, "子组").add_to(m)
    plugins.LocateControl().add_to(m)
    plugins.TreeLayerControl(overlay_tree={"label": "网格", "children": [{"label": "一组", "layer": first}]}).add_to(m)
    line = folium.PolyLine(points).add_to(m)
    plugins.AntPath(points).add_to(m)
    plugins.PolyLineTextPath(line, "巡查路线").add_to(m)
    plugins.PolyLineOffset(points, offset=4).add_to(m)
    plugins.SemiCircle(points[0], radius=400, start_angle=0, stop_angle=90).add_to(m)
    plugins.PolyLineFromEncoded("_p~iF~ps|U_ulLnnqC_mqNvxq`@").add_to(m)
    plugins.PolygonFromEncoded("_p~iF~ps|U_ulLnnqC_mqNvxq`@").add_to(m)
    search_layer = folium.GeoJson(point_features).add_to(m)
    plugins.Search(search_layer, search_label="name").add_to(m)
    folium.Marker(points[0], icon=folium.Icon(icon="home", prefix="fa", angle=45)).add_to(cluster)
    return m


# -- the table covers what we use ---------------------------------------------


def test_every_url_of_used_classes_has_a_local_file() -> None:
    assert offline.unmapped_urls() == {}


def test_required_classes_are_in_the_used_set() -> None:
    required = {
        "folium.folium.Map",
        "folium.plugins.HeatMap",
        "folium.plugins.HeatMapWithTime",
        "folium.plugins.MarkerCluster",
        "folium.plugins.FastMarkerCluster",
        "folium.plugins.Realtime",
        "folium.plugins.GeoMan",
        "folium.plugins.TreeLayerControl",
    }
    assert required <= set(offline.USED_CLASSES)


def test_enumeration_walks_all_of_folium() -> None:
    urls = offline.all_cdn_urls()
    assert len(urls) >= 60
    leaflet = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"
    assert "folium.folium.Map" in urls[leaflet]
    # Every row of the table is a URL folium really asks for: a folium upgrade
    # that changes URLs shows up here instead of silently loading the CDN.
    assert set(offline.CDN_ASSETS) <= set(urls)


def test_unmapped_urls_reports_a_class_we_do_not_cover() -> None:
    gaps = offline.unmapped_urls(("folium.plugins.ScrollZoomToggler", "folium.features.Vega"))
    assert any("ionicons" in url for url in gaps["folium.plugins.ScrollZoomToggler"])
    assert any("vega" in url for url in gaps["folium.features.Vega"])


def test_unknown_class_name_is_rejected() -> None:
    with pytest.raises(offline.OfflineAssetError, match="folium.Nope"):
        offline.resolve_class("folium.Nope")


def test_pinned_versions_match_package_json_and_lock() -> None:
    manifest = json.loads((offline.ASSETS_DIR / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((offline.ASSETS_DIR / "package-lock.json").read_text(encoding="utf-8"))
    pinned = {a.package: a.version for a in offline.CDN_ASSETS.values() if a.root == "npm"}
    pinned |= {a.package: a.version for a in offline.CSS_URL_REWRITES.values()}
    pinned |= {a.package: a.version for a in offline.PAGE_ASSETS.values() if a.root == "npm"}
    assert manifest["private"] is True
    assert manifest["dependencies"] == pinned
    for package, version in pinned.items():
        assert lock["packages"][f"node_modules/{package}"]["version"] == version


# -- (a) pages reference only local files --------------------------------------


def test_localized_page_references_nothing_outside(localized: None) -> None:
    html = _every_plugin_map().get_root().render()
    refs = _references(html)
    assert refs, "expected script/link references in the page"
    outside = [r for r in refs if EXTERNAL.match(r)]
    assert outside == []
    for dotted in offline.USED_CLASSES:
        for url in offline.class_cdn_urls(offline.resolve_class(dotted)):
            local = offline.local_url(url)
            assert local is not None and local in html, f"{dotted}: {url} not on the page"


def test_localize_is_idempotent_and_reversible() -> None:
    def page_refs() -> list[str]:
        return _references(folium.Map(tiles=None).get_root().render())

    original = page_refs()
    try:
        offline.localize("/first/")
        offline.localize()
        once = page_refs()
        offline.localize()
        assert page_refs() == once
        assert not any(r.startswith("/first/") for r in once)
        assert "/static/vendor/npm/leaflet@1.9.3/dist/leaflet.js" in once
        assert folium.folium._default_js is folium.Map.default_js
    finally:
        offline.unlocalize()
    assert page_refs() == original
    assert "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js" in original


@pytest.mark.parametrize("prefix", ["", "/", '/a"b', "/a b"])
def test_bad_prefix_is_rejected(prefix: str) -> None:
    with pytest.raises(offline.OfflineAssetError, match="prefix"):
        offline.localize(prefix)


# -- (b) files are installed ------------------------------------------------------


def test_every_mapped_file_exists(installed_assets: None) -> None:
    assert offline.check_assets() == []
    for asset in offline.CDN_ASSETS.values():
        assert asset.file.stat().st_size > 0, asset.file


def test_every_css_url_resolves_to_an_installed_file(installed_assets: None) -> None:
    for asset in {a for a in offline.CDN_ASSETS.values() if a.path.endswith(".css")}:
        css = offline.rewrite_css_for_serving(asset.file.read_text(encoding="utf-8"), asset.name)
        for match in offline._CSS_URL.finditer(css):
            ref = offline._url_of(match)
            assert not EXTERNAL.match(ref), f"{asset.name} still loads {ref}"
            target = offline._css_target(asset.name, ref)
            if target is not None:
                assert offline.locate(target[0]).is_file(), f"{asset.name}: {ref}"


def test_missing_install_is_reported_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(offline.ASSET_ROOT_ENV, str(tmp_path))
    missing = offline.check_assets()
    assert str(tmp_path / "leaflet" / "dist" / "leaflet.js") in missing
    with pytest.raises(offline.AssetsMissingError, match="make assets"):
        offline.ensure_assets()
    html = '<script src="/static/vendor/npm/leaflet@1.9.3/dist/leaflet.js"></script>'
    with pytest.raises(offline.AssetsMissingError, match="npm ci --prefix maps/assets"):
        offline.inline_assets(html)


# -- (c) the static app ----------------------------------------------------------------


def test_static_app_serves_js_css_and_fonts(installed_assets: None) -> None:
    client = TestClient(offline.static_files_app())
    js = client.get("/npm/leaflet@1.9.3/dist/leaflet.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert "immutable" in js.headers["cache-control"]
    assert js.content == (offline.asset_root() / "leaflet/dist/leaflet.js").read_bytes()
    css = client.get("/npm/leaflet@1.9.3/dist/leaflet.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    font = client.get("/npm/@fortawesome/fontawesome-free@6.2.0/webfonts/fa-solid-900.woff2")
    assert (font.status_code, font.headers["content-type"]) == (200, "font/woff2")
    heat = client.get(f"/folium@{offline.FOLIUM_VERSION}/leaflet_heat.min.js")
    assert heat.status_code == 200 and b"simpleheat" in heat.content
    rotate = client.get("/gridmap/leaflet.awesome.rotate.css")
    assert rotate.status_code == 200 and ".fa-rotate-45{" in rotate.text
    assert client.head("/npm/jquery@3.7.1/dist/jquery.min.js").status_code == 200


def test_static_app_rewrites_cdn_fonts_inside_css(installed_assets: None) -> None:
    client = TestClient(offline.static_files_app())
    name = "npm/leaflet-timedimension@1.1.1/dist/leaflet.timedimension.control.css"
    response = client.get(f"/{name}")
    assert response.status_code == 200
    assert "netdna" not in response.text
    rel = re.search(r'url\("([^"]+glyphicons-halflings-regular\.woff)"\)', response.text)
    assert rel is not None
    target = posixpath.normpath(posixpath.join("/" + name, "..", rel.group(1)))
    assert client.get(target).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/npm/leaflet@1.0.0/dist/leaflet.js",  # not the pinned version
        "/npm/lodash@4.18.1/lodash.js",  # installed, but not a map asset
        "/folium@0.20.0/../folium.py",
        "/gridmap/secret.txt",
        "/npm/leaflet@1.9.3/dist/nope.js",
    ],
)
def test_static_app_refuses_other_paths(path: str, installed_assets: None) -> None:
    assert TestClient(offline.static_files_app()).get(path).status_code == 404


@pytest.mark.parametrize("name", ["npm/leaflet@1.9.3/../../x", "npm/leaflet@1.9.3/.bin/x", ""])
def test_locate_rejects_traversal(name: str) -> None:
    with pytest.raises(offline.OfflineAssetError):
        offline.locate(name)


# -- (d) standalone pages --------------------------------------------------------------


def test_inlined_page_has_no_vendor_reference(installed_assets: None, localized: None) -> None:
    html = _every_plugin_map().get_root().render()
    standalone = offline.inline_assets(html)
    assert "/static/vendor" not in standalone
    assert "<script src=" not in standalone and '<link rel="stylesheet"' not in standalone
    assert "data:font/woff2;base64," in standalone  # icon fonts came along
    assert "sourceMappingURL" not in standalone
    style_urls = [
        ref
        for css in re.findall(r"<style>(.*?)</style>", standalone, re.DOTALL)
        for ref in (offline._url_of(m) for m in offline._CSS_URL.finditer(css))
    ]
    assert style_urls and all(u.startswith(("data:", "#")) for u in style_urls)


def test_inlined_icon_link_becomes_a_data_uri(installed_assets: None) -> None:
    html = f"<head>{offline.favicon_link()}</head>"
    standalone = offline.inline_assets(html)
    assert standalone.startswith('<head><link rel="icon" href="data:image/x-icon;base64,')
    assert "<style>" not in standalone and "/static/vendor" not in standalone


# -- (e) a real browser, no network ------------------------------------------------------


def _standalone_heat_page(tmp_path: Path) -> Path:
    m = folium.Map(location=[30.835, 120.92], zoom_start=12, tiles=None)
    folium.GeoJson(
        {
            "type": "Feature",
            "properties": {"name": "魏塘街道"},
            "geometry": {"type": "Polygon", "coordinates": [JIASHAN_POLYGON + [JIASHAN_POLYGON[0]]]},
        }
    ).add_to(m)
    heat = [[30.80 + 0.01 * i, 120.88 + 0.01 * j, 1.0] for i in range(8) for j in range(9)]
    plugins.HeatMap(heat, radius=25).add_to(m)
    folium.Marker([30.84, 120.92]).add_to(m)  # Leaflet's default icon
    folium.Marker([30.83, 120.90], icon=folium.Icon(icon="info-sign")).add_to(m)
    folium.Marker([30.85, 120.94], icon=folium.Icon(icon="house", prefix="fa")).add_to(m)
    page = tmp_path / "standalone.html"
    page.write_text(offline.inline_assets(m.get_root().render()), encoding="utf-8")
    return page


needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (Debian package chromium)")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@needs_chromium
def test_standalone_page_works_offline_in_chromium(installed_assets: None, localized: None, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    page_file = _standalone_heat_page(tmp_path)
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(offline=True, viewport={"width": 1000, "height": 700})
            page = context.new_page()
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda req: requests.append(req.url))
            page.goto(page_file.as_uri(), wait_until="load")
            page.wait_for_selector(".leaflet-container")
            lit = page.wait_for_function(
                """() => {
                    const c = document.querySelector('canvas.leaflet-heatmap-layer');
                    if (!c || !c.width) return 0;
                    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    let n = 0;
                    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                    return n;
                }""",
                timeout=15000,
            ).json_value()
            page.evaluate("document.fonts.ready")
            fonts = page.evaluate("[...document.fonts].filter(f => f.status === 'loaded').map(f => f.family)")
            default_icon = page.evaluate(
                """() => [...document.querySelectorAll('img.leaflet-marker-icon')]
                        .map(i => [i.src.slice(0, 15), i.naturalWidth])"""
            )
            polygons = page.locator("path.leaflet-interactive").count()
        finally:
            browser.close()
    assert errors == []
    allowed = ("file:", "data:", "blob:", "about:", "http://localhost", "http://127.0.0.1")
    assert [u for u in requests if not u.startswith(allowed)] == []
    assert lit > 1000, "heat canvas stayed transparent"
    assert polygons >= 1
    assert any("Glyphicons" in f for f in fonts) and any("Font Awesome" in f for f in fonts)
    assert default_icon and all(src.startswith("data:image/png") and w > 0 for src, w in default_icon)


@needs_chromium
def test_served_page_with_every_plugin_works_in_chromium(installed_assets: None, localized: None) -> None:
    """The served (non-inlined) page, vendor files from static_files_app().

    Every request is answered in-process by a route handler: the page, the
    vendor files through the real ASGI app, and stub data for the plugins that
    fetch data (Realtime, VectorGrid, WMS, MiniMap tiles). Anything else is
    aborted and recorded, which is how "no network" is enforced here.
    """
    from playwright.sync_api import Route, sync_playwright

    origin = "http://localhost:8765"
    html = _every_plugin_map().get_root().render()
    vendor = TestClient(offline.static_files_app())
    png = (offline.asset_root() / "leaflet/dist/images/layers.png").read_bytes()
    outside: list[str] = []
    vendor_hits: list[str] = []

    def answer(route: Route) -> None:
        url = route.request.url
        if not url.startswith(origin + "/"):
            outside.append(url)
            route.abort()
            return
        path = url[len(origin) :].split("?")[0]
        if path.startswith(offline.DEFAULT_PREFIX + "/"):
            vendor_hits.append(path)
            served = vendor.get(path[len(offline.DEFAULT_PREFIX) :])
            route.fulfill(status=served.status_code, headers=dict(served.headers), body=served.content)
        elif path == "/":
            route.fulfill(content_type="text/html; charset=utf-8", body=html)
        elif path == "/api/live.geojson":
            route.fulfill(
                content_type="application/json", body=json.dumps({"type": "FeatureCollection", "features": []})
            )
        elif path.endswith(".pbf"):
            route.fulfill(content_type="application/x-protobuf", body=b"")  # an empty tile
        else:  # WMS images and MiniMap tiles
            route.fulfill(content_type="image/png", body=png)

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_context(viewport={"width": 1000, "height": 700}).new_page()
            page.route("**/*", answer)
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(origin + "/", wait_until="load")
            page.wait_for_selector(".leaflet-marker-icon")
            page.evaluate("document.fonts.ready")
            controls = page.locator(".leaflet-control").count()
            fonts = page.evaluate("[...document.fonts].filter(f => f.status === 'loaded').map(f => f.family)")
        finally:
            browser.close()
    assert errors == []
    assert outside == []
    assert any("webfonts/fa-solid-900.woff2" in hit for hit in vendor_hits)
    assert any("/fonts/glyphicons-halflings-regular." in hit for hit in vendor_hits)
    assert controls >= 10  # draw, geoman, zoom, fullscreen, minimap, sliders, ...
    assert "Font Awesome 6 Free" in fonts and "Glyphicons Halflings" in fonts
