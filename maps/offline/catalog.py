"""Which local file stands in for each CDN URL of the folium pages, and the names they are served under."""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import folium

log = logging.getLogger(__name__)


ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"


INSTALL_COMMAND = "npm ci --prefix maps/assets --ignore-scripts --no-audit --no-fund"


INSTALL_HINT = f"run `make assets` ({INSTALL_COMMAND})"


DEFAULT_PREFIX = "/static/vendor"


FOLIUM_VERSION = importlib.metadata.version("folium")


# Where node_modules lives when it is not next to package.json (e.g. a deploy
# that installs the assets into a read-only image layer).
ASSET_ROOT_ENV = "GRIDMAP_ASSET_ROOT"


_VERSIONED_CACHE = "public, max-age=31536000, immutable"


_UNVERSIONED_CACHE = "public, max-age=86400"


class OfflineAssetError(ValueError):
    """A served name or prefix that this module refuses to handle."""


class AssetsMissingError(RuntimeError):
    """Files the pages need are not installed."""


@dataclass(frozen=True)
class Asset:
    """One local file: an npm package file, a folium template, or ours."""

    root: str  # "npm", "folium" or "gridmap"
    path: str  # POSIX path inside the package / folder
    package: str = ""
    version: str = ""

    @property
    def name(self) -> str:
        if self.root == "npm":
            return f"npm/{self.package}@{self.version}/{self.path}"
        if self.root == "folium":
            return f"folium@{FOLIUM_VERSION}/{self.path}"
        return f"gridmap/{self.path}"

    @property
    def file(self) -> Path:
        if self.root == "npm":
            return asset_root() / self.package / self.path
        if self.root == "folium":
            return folium_templates_dir() / self.path
        return ASSETS_DIR / "gridmap" / self.path


def _npm(package: str, version: str, path: str) -> Asset:
    return Asset("npm", path, package, version)


def _folium(path: str) -> Asset:
    return Asset("folium", path)


_JSD = "https://cdn.jsdelivr.net"


_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs"


_UNPKG = "https://unpkg.com"


_JQUERY = _npm("jquery", "3.7.1", "dist/jquery.min.js")


_LEAFLET_JS = _npm("leaflet", "1.9.3", "dist/leaflet.js")


_LEAFLET_CSS = _npm("leaflet", "1.9.3", "dist/leaflet.css")


_BOOTSTRAP_JS = _npm("bootstrap", "5.2.2", "dist/js/bootstrap.bundle.min.js")


_BOOTSTRAP_CSS = _npm("bootstrap", "5.2.2", "dist/css/bootstrap.min.css")


_MOMENT = _npm("moment", "2.18.1", "min/moment.min.js")


_ISO8601 = _npm("iso8601-js-period", "0.2.1", "iso8601.js")


_TIMEDIM_JS = _npm("leaflet-timedimension", "1.1.1", "dist/leaflet.timedimension.min.js")


_TIMEDIM_CSS = _npm("leaflet-timedimension", "1.1.1", "dist/leaflet.timedimension.control.css")


_TIMELINE = _npm("leaflet.timeline", "1.6.0", "dist/leaflet.timeline.js")


_HLJS_CSS = _npm("highlight.js", "8.4.0", "styles/default.css")


# npm has no browser build of jQuery UI 1.10.2; 1.12.1 is the oldest one.
_JQUERY_UI = _npm("jquery-ui-dist", "1.12.1", "jquery-ui.min.js")


_GLYPHICONS = "@neos21/bootstrap3-glyphicons"


# CDN URL (exactly as folium 0.20 writes it) -> local file.
CDN_ASSETS: dict[str, Asset] = {
    # folium.Map (folium.folium._default_js / _default_css)
    f"{_JSD}/npm/leaflet@1.9.3/dist/leaflet.js": _LEAFLET_JS,
    f"{_JSD}/npm/leaflet@1.9.3/dist/leaflet.css": _LEAFLET_CSS,
    "https://code.jquery.com/jquery-3.7.1.min.js": _JQUERY,
    f"{_JSD}/npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js": _BOOTSTRAP_JS,
    f"{_JSD}/npm/bootstrap@5.2.2/dist/css/bootstrap.min.css": _BOOTSTRAP_CSS,
    # Bootstrap 3's glyphicons alone (folium.Icon's default prefix); the npm
    # "bootstrap@3" CSS would drag all of Bootstrap 3 in beside Bootstrap 5.
    "https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css": _npm(
        _GLYPHICONS, "1.0.7", "dist/css/bootstrap3-glyphicons.min.css"
    ),
    f"{_JSD}/npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css": _npm(
        "@fortawesome/fontawesome-free", "6.2.0", "css/all.min.css"
    ),
    # 2.0.2 was never published to npm; 2.0.4 is the same plugin, next release.
    f"{_CDNJS}/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js": _npm(
        "leaflet.awesome-markers", "2.0.4", "dist/leaflet.awesome-markers.js"
    ),
    f"{_CDNJS}/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css": _npm(
        "leaflet.awesome-markers", "2.0.4", "dist/leaflet.awesome-markers.css"
    ),
    f"{_JSD}/gh/python-visualization/folium/folium/templates/leaflet.awesome.rotate.min.css": Asset(
        "gridmap", "leaflet.awesome.rotate.css"
    ),
    # HeatMap, HeatMapWithTime: folium ships these scripts itself.
    f"{_JSD}/gh/python-visualization/folium@main/folium/templates/leaflet_heat.min.js": _folium("leaflet_heat.min.js"),
    f"{_JSD}/gh/python-visualization/folium/folium/templates/pa7_hm.min.js": _folium("pa7_hm.min.js"),
    f"{_JSD}/gh/python-visualization/folium/folium/templates/pa7_leaflet_hm.min.js": _folium("pa7_leaflet_hm.min.js"),
    f"{_JSD}/npm/iso8601-js-period@0.2.1/iso8601.min.js": _ISO8601,
    f"{_JSD}/npm/leaflet-timedimension@1.1.1/dist/leaflet.timedimension.min.js": _TIMEDIM_JS,
    f"{_JSD}/npm/leaflet-timedimension@1.1.1/dist/leaflet.timedimension.control.css": _TIMEDIM_CSS,
    # MarkerCluster, FastMarkerCluster
    f"{_CDNJS}/leaflet.markercluster/1.1.0/leaflet.markercluster.js": _npm(
        "leaflet.markercluster", "1.1.0", "dist/leaflet.markercluster.js"
    ),
    f"{_CDNJS}/leaflet.markercluster/1.1.0/MarkerCluster.css": _npm(
        "leaflet.markercluster", "1.1.0", "dist/MarkerCluster.css"
    ),
    f"{_CDNJS}/leaflet.markercluster/1.1.0/MarkerCluster.Default.css": _npm(
        "leaflet.markercluster", "1.1.0", "dist/MarkerCluster.Default.css"
    ),
    # Realtime
    f"{_CDNJS}/leaflet-realtime/2.2.0/leaflet-realtime.js": _npm(
        "leaflet-realtime", "2.2.0", "dist/leaflet-realtime.js"
    ),
    # GeoMan: folium asks for "@latest"; we pin the release current when written.
    f"{_UNPKG}/@geoman-io/leaflet-geoman-free@latest/dist/leaflet-geoman.js": _npm(
        "@geoman-io/leaflet-geoman-free", "2.20.2", "dist/leaflet-geoman.js"
    ),
    f"{_UNPKG}/@geoman-io/leaflet-geoman-free@latest/dist/leaflet-geoman.css": _npm(
        "@geoman-io/leaflet-geoman-free", "2.20.2", "dist/leaflet-geoman.css"
    ),
    # TreeLayerControl: the package ships unminified files only.
    f"{_JSD}/npm/leaflet.control.layers.tree@1.1.0/L.Control.Layers.Tree.min.js": _npm(
        "leaflet.control.layers.tree", "1.1.0", "L.Control.Layers.Tree.js"
    ),
    f"{_JSD}/npm/leaflet.control.layers.tree@1.1.0/L.Control.Layers.Tree.min.css": _npm(
        "leaflet.control.layers.tree", "1.1.0", "L.Control.Layers.Tree.css"
    ),
    # Timeline, TimelineSlider (the npm dist file is already minified)
    f"{_CDNJS}/moment.js/2.18.1/moment.min.js": _MOMENT,
    f"{_JSD}/npm/leaflet.timeline@1.6.0/dist/leaflet.timeline.min.js": _TIMELINE,
    # TimestampedGeoJson, TimestampedWmsTileLayers
    f"{_CDNJS}/jquery/3.7.1/jquery.min.js": _JQUERY,
    f"{_CDNJS}/jqueryui/1.10.2/jquery-ui.min.js": _JQUERY_UI,
    f"{_CDNJS}/highlight.js/8.4/styles/default.min.css": _HLJS_CSS,
    # VectorGridProtobuf: folium asks for "@latest"; 1.3.0 is the last release.
    f"{_UNPKG}/leaflet.vectorgrid@latest/dist/Leaflet.VectorGrid.bundled.js": _npm(
        "leaflet.vectorgrid", "1.3.0", "dist/Leaflet.VectorGrid.bundled.js"
    ),
    # Fullscreen
    f"{_JSD}/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.min.js": _npm(
        "leaflet.fullscreen", "3.0.0", "Control.FullScreen.js"
    ),
    f"{_JSD}/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.css": _npm(
        "leaflet.fullscreen", "3.0.0", "Control.FullScreen.css"
    ),
    # MiniMap
    f"{_CDNJS}/leaflet-minimap/3.6.1/Control.MiniMap.js": _npm(
        "leaflet-minimap", "3.6.1", "dist/Control.MiniMap.min.js"
    ),
    f"{_CDNJS}/leaflet-minimap/3.6.1/Control.MiniMap.css": _npm(
        "leaflet-minimap", "3.6.1", "dist/Control.MiniMap.min.css"
    ),
    # MousePosition: folium loads the GitHub head; npm's wrapper is 1.2.0.
    f"{_JSD}/gh/ardhi/Leaflet.MousePosition/src/L.Control.MousePosition.min.js": _npm(
        "leaflet-mouse-position", "1.2.0", "src/L.Control.MousePosition.js"
    ),
    f"{_JSD}/gh/ardhi/Leaflet.MousePosition/src/L.Control.MousePosition.min.css": _npm(
        "leaflet-mouse-position", "1.2.0", "src/L.Control.MousePosition.css"
    ),
    # MeasureControl
    f"{_JSD}/gh/ljagis/leaflet-measure@2.1.7/dist/leaflet-measure.min.js": _npm(
        "leaflet-measure", "2.1.7", "dist/leaflet-measure.min.js"
    ),
    f"{_JSD}/gh/ljagis/leaflet-measure@2.1.7/dist/leaflet-measure.min.css": _npm(
        "leaflet-measure", "2.1.7", "dist/leaflet-measure.css"
    ),
    # Draw
    f"{_CDNJS}/leaflet.draw/1.0.2/leaflet.draw.js": _npm("leaflet-draw", "1.0.2", "dist/leaflet.draw.js"),
    f"{_CDNJS}/leaflet.draw/1.0.2/leaflet.draw.css": _npm("leaflet-draw", "1.0.2", "dist/leaflet.draw.css"),
    # GroupedLayerControl
    f"{_CDNJS}/leaflet-groupedlayercontrol/0.6.1/leaflet.groupedlayercontrol.min.js": _npm(
        "leaflet-groupedlayercontrol", "0.6.1", "dist/leaflet.groupedlayercontrol.min.js"
    ),
    f"{_CDNJS}/leaflet-groupedlayercontrol/0.6.1/leaflet.groupedlayercontrol.min.css": _npm(
        "leaflet-groupedlayercontrol", "0.6.1", "dist/leaflet.groupedlayercontrol.min.css"
    ),
    # FeatureGroupSubGroup
    f"{_UNPKG}/leaflet.featuregroup.subgroup@1.0.2/dist/leaflet.featuregroup.subgroup.js": _npm(
        "leaflet.featuregroup.subgroup", "1.0.2", "dist/leaflet.featuregroup.subgroup.js"
    ),
    # LocateControl
    f"{_CDNJS}/leaflet-locatecontrol/0.66.2/L.Control.Locate.min.js": _npm(
        "leaflet.locatecontrol", "0.66.2", "dist/L.Control.Locate.min.js"
    ),
    f"{_CDNJS}/leaflet-locatecontrol/0.66.2/L.Control.Locate.min.css": _npm(
        "leaflet.locatecontrol", "0.66.2", "dist/L.Control.Locate.min.css"
    ),
    # Line and shape helpers whose npm packages match folium's versions.
    f"{_JSD}/npm/leaflet-ant-path@1.1.2/dist/leaflet-ant-path.min.js": _npm(
        "leaflet-ant-path", "1.1.2", "dist/leaflet-ant-path.js"
    ),
    f"{_JSD}/npm/leaflet-textpath@1.2.3/leaflet.textpath.min.js": _npm(
        "leaflet-textpath", "1.2.3", "leaflet.textpath.js"
    ),
    f"{_JSD}/npm/leaflet-polylineoffset@1.1.1/leaflet.polylineoffset.min.js": _npm(
        "leaflet-polylineoffset", "1.1.1", "leaflet.polylineoffset.js"
    ),
    f"{_JSD}/npm/leaflet-semicircle@2.0.4/Semicircle.min.js": _npm("leaflet-semicircle", "2.0.4", "Semicircle.js"),
    f"{_JSD}/npm/polyline-encoded@0.0.9/Polyline.encoded.js": _npm("polyline-encoded", "0.0.9", "Polyline.encoded.js"),
    f"{_JSD}/npm/leaflet-search@2.9.7/dist/leaflet-search.min.js": _npm(
        "leaflet-search", "2.9.7", "dist/leaflet-search.min.js"
    ),
    f"{_JSD}/npm/leaflet-search@2.9.7/dist/leaflet-search.min.css": _npm(
        "leaflet-search", "2.9.7", "dist/leaflet-search.min.css"
    ),
}


# Files of our own that pages load by served name (not via a folium CDN URL):
# the client code of the command-centre pages (maps/layers.py adds it).
OWN_ASSETS: dict[str, Asset] = {
    "gridmap-maps.js": Asset("gridmap", "gridmap-maps.js"),
    "gridmap-maps.css": Asset("gridmap", "gridmap-maps.css"),
    # Every page's icon (also answered at /favicon.ico, api/routers/docs.py); favicon.svg is its source.
    "favicon.ico": Asset("gridmap", "favicon.ico"),
}


def own_url(file: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The URL of one of OWN_ASSETS under ``prefix``."""
    asset = OWN_ASSETS.get(file)
    if asset is None:
        raise OfflineAssetError(f"{file!r} is not one of gridmap's own assets ({', '.join(OWN_ASSETS)})")
    return f"{_clean_prefix(prefix)}/{asset.name}"


def favicon_link(prefix: str = DEFAULT_PREFIX) -> str:
    """The ``<link>`` that gives a page gridmap's icon (inline_assets folds it into the page)."""
    return f'<link rel="icon" href="{own_url("favicon.ico", prefix)}">'


# Files that gridmap's pages other than folium's load by served name: the API documentation
# (FastAPI's /docs and /redoc would fetch Swagger UI and ReDoc from jsDelivr, ReDoc its fonts from
# Google) and the HTML views of the OGC API (tipg's templates load jQuery, Leaflet and Bootstrap
# from CDNs; ours load the very files the map pages use).
PAGE_ASSETS: dict[str, Asset] = {
    "swagger-ui.css": _npm("swagger-ui-dist", "5.35.0", "swagger-ui.css"),
    "swagger-ui-bundle.js": _npm("swagger-ui-dist", "5.35.0", "swagger-ui-bundle.js"),
    "redoc.standalone.js": _npm("redoc", "2.5.4", "bundles/redoc.standalone.js"),
    "jquery.js": _JQUERY,
    "leaflet.js": _LEAFLET_JS,
    "leaflet.css": _LEAFLET_CSS,
    "bootstrap.js": _BOOTSTRAP_JS,
    "bootstrap.css": _BOOTSTRAP_CSS,
}


def page_url(file: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The URL of one of PAGE_ASSETS under ``prefix``."""
    asset = PAGE_ASSETS.get(file)
    if asset is None:
        raise OfflineAssetError(f"{file!r} is not one of the pages' assets ({', '.join(PAGE_ASSETS)})")
    return f"{_clean_prefix(prefix)}/{asset.name}"


# Absolute URLs found *inside* installed CSS files (leaflet-timedimension's
# control CSS declares the glyphicons font from a CDN): URL prefix -> local
# folder whose file of the same name replaces it.
CSS_URL_REWRITES: dict[str, Asset] = {
    "//netdna.bootstrapcdn.com/bootstrap/3.0.0/fonts/": _npm(_GLYPHICONS, "1.0.7", "dist/fonts/"),
}


# An empty image, for a picture a script would fetch from outside and that nothing needs.
_NO_IMAGE = "data:image/svg+xml,%3Csvg xmlns=%27http://www.w3.org/2000/svg%27/%3E"


# Absolute URLs written inside installed scripts that a page would fetch: served name -> URL ->
# its replacement. ReDoc draws Redocly's logo from cdn.redoc.ly beside its "API docs by Redocly"
# credit, unconditionally; the credit stays, the logo becomes an empty image.
JS_URL_REWRITES: dict[str, dict[str, str]] = {
    PAGE_ASSETS["redoc.standalone.js"].name: {"https://cdn.redoc.ly/redoc/logo-mini.svg": _NO_IMAGE},
}


# The folium classes gridmap builds pages with: each of their CDN URLs must
# have an entry in CDN_ASSETS (enforced by tests/maps/test_offline.py).
USED_CLASSES: tuple[str, ...] = (
    "folium.folium.Map",
    "folium.plugins.HeatMap",
    "folium.plugins.HeatMapWithTime",
    "folium.plugins.MarkerCluster",
    "folium.plugins.FastMarkerCluster",
    "folium.plugins.Realtime",
    "folium.plugins.GeoMan",
    "folium.plugins.TreeLayerControl",
    "folium.plugins.Timeline",
    "folium.plugins.TimelineSlider",
    "folium.plugins.TimestampedGeoJson",
    "folium.plugins.TimestampedWmsTileLayers",
    "folium.plugins.VectorGridProtobuf",
    "folium.plugins.Fullscreen",
    "folium.plugins.MiniMap",
    "folium.plugins.MousePosition",
    "folium.plugins.MeasureControl",
    "folium.plugins.Draw",
    "folium.plugins.GroupedLayerControl",
    "folium.plugins.FeatureGroupSubGroup",
    "folium.plugins.LocateControl",
    "folium.plugins.AntPath",
    "folium.plugins.PolyLineTextPath",
    "folium.plugins.PolyLineOffset",
    "folium.plugins.SemiCircle",
    "folium.plugins.PolyLineFromEncoded",
    "folium.plugins.PolygonFromEncoded",
    "folium.plugins.Search",
)


def asset_root() -> Path:
    """The node_modules folder that ``npm ci --prefix maps/assets`` fills."""
    override = os.environ.get(ASSET_ROOT_ENV)
    return Path(override) if override else ASSETS_DIR / "node_modules"


def folium_templates_dir() -> Path:
    return Path(folium.__file__).resolve().parent / "templates"


def _clean_prefix(prefix: str) -> str:
    cleaned = prefix.rstrip("/")
    if not cleaned or re.search(r"[\s\"'<>]", cleaned):
        raise OfflineAssetError(f"prefix {prefix!r} must be a non-empty URL path without quotes")
    return cleaned
