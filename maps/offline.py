"""Serve every JS/CSS file of gridmap's folium pages locally, for offline intranets.

folium points each page at ~60 CDN URLs. Command centres run on isolated
networks, so this module maps each CDN URL we rely on to a file installed from
npm into ``maps/assets/node_modules`` (``npm ci --prefix maps/assets``), to a
file shipped inside folium's own ``templates/`` folder, or to a small file of
ours in ``maps/assets/gridmap/``.

Every local file has a *served name*:

* ``npm/<package>@<version>/<path>`` for npm files,
* ``folium@<version>/<path>`` for folium's templates folder,
* ``gridmap/<path>`` for our own files,

so ``localize()`` makes pages reference ``{prefix}/<served name>``,
``static_files_app()`` answers those URLs, and ``inline_assets()`` folds them
into one standalone HTML file. Versions are part of the name so the files can
be cached "forever" by browsers: a version bump changes every URL.
"""

from __future__ import annotations

import base64
import importlib
import importlib.metadata
import inspect
import json
import logging
import mimetypes
import os
import pkgutil
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import branca
import folium
from branca.element import Element
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
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
    f"{_JSD}/npm/leaflet@1.9.3/dist/leaflet.js": _npm("leaflet", "1.9.3", "dist/leaflet.js"),
    f"{_JSD}/npm/leaflet@1.9.3/dist/leaflet.css": _npm("leaflet", "1.9.3", "dist/leaflet.css"),
    "https://code.jquery.com/jquery-3.7.1.min.js": _JQUERY,
    f"{_JSD}/npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js": _npm(
        "bootstrap", "5.2.2", "dist/js/bootstrap.bundle.min.js"
    ),
    f"{_JSD}/npm/bootstrap@5.2.2/dist/css/bootstrap.min.css": _npm(
        "bootstrap", "5.2.2", "dist/css/bootstrap.min.css"
    ),
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
    f"{_JSD}/gh/python-visualization/folium@main/folium/templates/leaflet_heat.min.js": _folium(
        "leaflet_heat.min.js"
    ),
    f"{_JSD}/gh/python-visualization/folium/folium/templates/pa7_hm.min.js": _folium(
        "pa7_hm.min.js"
    ),
    f"{_JSD}/gh/python-visualization/folium/folium/templates/pa7_leaflet_hm.min.js": _folium(
        "pa7_leaflet_hm.min.js"
    ),
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
    f"{_CDNJS}/leaflet.draw/1.0.2/leaflet.draw.js": _npm(
        "leaflet-draw", "1.0.2", "dist/leaflet.draw.js"
    ),
    f"{_CDNJS}/leaflet.draw/1.0.2/leaflet.draw.css": _npm(
        "leaflet-draw", "1.0.2", "dist/leaflet.draw.css"
    ),
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
    f"{_JSD}/npm/leaflet-semicircle@2.0.4/Semicircle.min.js": _npm(
        "leaflet-semicircle", "2.0.4", "Semicircle.js"
    ),
    f"{_JSD}/npm/polyline-encoded@0.0.9/Polyline.encoded.js": _npm(
        "polyline-encoded", "0.0.9", "Polyline.encoded.js"
    ),
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
}


def own_url(file: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The URL of one of OWN_ASSETS under ``prefix``."""
    asset = OWN_ASSETS.get(file)
    if asset is None:
        raise OfflineAssetError(f"{file!r} is not one of gridmap's own assets ({', '.join(OWN_ASSETS)})")
    return f"{_clean_prefix(prefix)}/{asset.name}"


# Absolute URLs found *inside* installed CSS files (leaflet-timedimension's
# control CSS declares the glyphicons font from a CDN): URL prefix -> local
# folder whose file of the same name replaces it.
CSS_URL_REWRITES: dict[str, Asset] = {
    "//netdna.bootstrapcdn.com/bootstrap/3.0.0/fonts/": _npm(_GLYPHICONS, "1.0.7", "dist/fonts/"),
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


# --------------------------------------------------------------------------
# Where files live


def asset_root() -> Path:
    """The node_modules folder that ``npm ci --prefix maps/assets`` fills."""
    override = os.environ.get(ASSET_ROOT_ENV)
    return Path(override) if override else ASSETS_DIR / "node_modules"


def folium_templates_dir() -> Path:
    return Path(folium.__file__).resolve().parent / "templates"


def check_assets() -> list[str]:
    """Mapped files that are not installed, or installed at another version.

    Empty when everything is in place; otherwise logs one warning naming the
    fix (`make assets`).
    """
    missing = sorted({str(a.file) for a in CDN_ASSETS.values() if not a.file.is_file()})
    missing += sorted(
        {f"{a.file} (folder)" for a in CSS_URL_REWRITES.values() if not a.file.is_dir()}
    )
    for package, pinned in sorted(_served_packages().items()):
        installed = _installed_version(package)
        if installed is not None and installed != pinned:
            missing.append(f"{asset_root() / package} (installed {installed}, pinned {pinned})")
    if missing:
        log.warning("%d map asset file(s) missing; %s", len(missing), INSTALL_HINT)
    return missing


def ensure_assets() -> None:
    """Raise AssetsMissingError, naming the fix, unless every file is installed."""
    missing = check_assets()
    if missing:
        shown = "\n  ".join(missing[:10])
        more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise AssetsMissingError(
            f"{len(missing)} map asset file(s) are not installed; {INSTALL_HINT}.\n  {shown}{more}"
        )


def _installed_version(package: str) -> str | None:
    manifest = asset_root() / package / "package.json"
    try:
        version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None
    return version if isinstance(version, str) else None


def _served_packages() -> dict[str, str]:
    return {a.package: a.version for a in CDN_ASSETS.values() if a.root == "npm"} | {
        a.package: a.version for a in CSS_URL_REWRITES.values()
    }


def locate(name: str) -> Path:
    """The file behind a served name such as ``npm/leaflet@1.9.3/dist/leaflet.css``.

    Any file inside a mapped npm package may be served (CSS pulls in sibling
    fonts and images); the folium and gridmap roots serve mapped files only.
    The path is returned whether or not the file exists.
    """
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") or p.startswith(".") for p in parts[1:]):
        raise OfflineAssetError(f"served name {name!r} is not a clean relative path")
    root = parts[0]
    if root == "npm":
        scoped = len(parts) > 1 and parts[1].startswith("@")
        spec_len = 3 if scoped else 2
        spec = "/".join(parts[1:spec_len])
        package, _, version = spec.rpartition("@")
        rest = "/".join(parts[spec_len:])
        wanted = _served_packages().get(package)
        if not package or not rest or wanted is None:
            raise OfflineAssetError(f"served name {name!r} is not in a mapped npm package")
        if version != wanted:
            raise OfflineAssetError(
                f"served name {name!r} asks for {package}@{version}; gridmap pins {wanted}"
            )
        return asset_root() / package / rest
    for asset in (*CDN_ASSETS.values(), *OWN_ASSETS.values()):
        if asset.root != "npm" and asset.name == name:
            return asset.file
    raise OfflineAssetError(f"served name {name!r} is not a mapped asset")


# --------------------------------------------------------------------------
# Finding folium's CDN URLs


def iter_element_classes() -> Iterator[type[Element]]:
    """Every Element subclass in folium and branca (importing all their modules)."""
    for package in (folium, branca):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            try:
                importlib.import_module(module.name)
            except ImportError as exc:  # an optional dependency we don't have
                log.debug("skipping %s: %s", module.name, exc)
    seen: set[type[Element]] = set()
    stack: list[type[Element]] = [Element]
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        yield cls
        stack.extend(cls.__subclasses__())


def resolve_class(dotted: str) -> type[Element]:
    module_name, _, attr = dotted.rpartition(".")
    cls = getattr(importlib.import_module(module_name), attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Element)):
        raise OfflineAssetError(f"{dotted!r} is not a folium/branca Element class")
    return cls


Link = tuple[str, str]
_ATTRS = ("default_js", "default_css")
# id(list) -> (the live class-level list, its CDN entries before localize()).
_originals: dict[int, tuple[list[Link], list[Link]]] = {}


def _cdn_links(links: list[Link]) -> list[Link]:
    saved = _originals.get(id(links))
    return list(saved[1]) if saved is not None and saved[0] is links else list(links)


def class_cdn_urls(cls: type[Element]) -> list[str]:
    """The CDN URLs a class (with inherited lists) asks folium to load."""
    urls: list[str] = []
    for attr in _ATTRS:
        links = getattr(cls, attr, None)
        if isinstance(links, list):
            urls += [url for _, url in _cdn_links(links)]
    return urls


def all_cdn_urls() -> dict[str, list[str]]:
    """CDN URL -> classes that declare it, over all of folium and branca."""
    found: dict[str, list[str]] = {}
    for cls in iter_element_classes():
        for attr in _ATTRS:
            links = cls.__dict__.get(attr)
            if isinstance(links, list):
                for _, url in _cdn_links(links):
                    found.setdefault(url, []).append(f"{cls.__module__}.{cls.__qualname__}")
    return found


_EXTERNAL_REF = re.compile(
    r"""(?:\b(?:src|href)\s*=\s*\\?["']?|url\(\s*["']?)((?:https?:)?//[^"'\s)>\\]+)""",
    re.IGNORECASE,
)


def hardcoded_urls(cls: type[Element]) -> list[str]:
    """External URLs written into a class's own source (its Template strings)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return []
    return _EXTERNAL_REF.findall(source)


def unmapped_urls(classes: tuple[str, ...] = USED_CLASSES) -> dict[str, list[str]]:
    """Class -> URLs it loads (declared or hard-coded) that have no local file."""
    gaps: dict[str, list[str]] = {}
    for dotted in classes:
        cls = resolve_class(dotted)
        missing = [u for u in class_cdn_urls(cls) if u not in CDN_ASSETS]
        missing += hardcoded_urls(cls)
        if missing:
            gaps[dotted] = missing
    return gaps


# --------------------------------------------------------------------------
# Pointing pages at local files


def _clean_prefix(prefix: str) -> str:
    cleaned = prefix.rstrip("/")
    if not cleaned or re.search(r"[\s\"'<>]", cleaned):
        raise OfflineAssetError(f"prefix {prefix!r} must be a non-empty URL path without quotes")
    return cleaned


def local_url(cdn_url: str, prefix: str = DEFAULT_PREFIX) -> str | None:
    asset = CDN_ASSETS.get(cdn_url)
    return None if asset is None else f"{_clean_prefix(prefix)}/{asset.name}"


def localize(prefix: str = DEFAULT_PREFIX) -> None:
    """Make every page built afterwards load mapped files from ``{prefix}/<name>``.

    Rewrites the class-level ``default_js``/``default_css`` lists of every
    folium/branca Element (in place, so ``folium.folium._default_js``, which
    is the very list ``Map.default_js`` holds, follows). URLs without a local
    file are left untouched. Calling it again, with any prefix, starts from
    folium's original URLs, so it is idempotent.

    Mapped links are also renamed to their served name. folium keys a page's
    header links by name, so two plugins that load one file under different
    names (jQuery from Map and TimestampedGeoJson; leaflet-timedimension from
    HeatMapWithTime and TimestampedGeoJson) now load it once. Loading
    leaflet-timedimension twice patches L.TileLayer twice and overflows the
    stack, so this is a fix, not a nicety.
    """
    clean = _clean_prefix(prefix)
    for cls in iter_element_classes():
        for attr in _ATTRS:
            links = cls.__dict__.get(attr)
            if not isinstance(links, list):
                continue
            # Keyed by id: safe because the entry keeps the list alive.
            saved = _originals.setdefault(id(links), (links, list(links)))
            links[:] = [
                (CDN_ASSETS[url].name, f"{clean}/{CDN_ASSETS[url].name}")
                if url in CDN_ASSETS
                else (name, url)
                for name, url in saved[1]
            ]


def unlocalize() -> None:
    """Put folium's CDN URLs back (undoes ``localize``)."""
    for links, original in _originals.values():
        links[:] = original
    _originals.clear()


# --------------------------------------------------------------------------
# CSS url() handling, shared by the server and the inliner

_CSS_URL = re.compile(r"""url\(\s*(?:'([^']*)'|"([^"]*)"|([^)'"\s]*))\s*\)""")
_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}", re.IGNORECASE)
_SOURCE_MAP = re.compile(r"/\*# sourceMappingURL=[^*]*\*/|//# sourceMappingURL=\S*")
_FONT_PREFERENCE = (".woff2", ".woff", ".ttf", ".otf")


def _css_target(css_name: str, ref: str) -> tuple[str, str] | None:
    """Served name + #fragment that a url() in a served CSS file points at.

    None for refs to leave alone (data: URIs, in-document #ids, unknown hosts).
    """
    if ref.startswith(("data:", "#")) or not ref:
        return None
    bare, _, fragment = ref.partition("#")
    bare = bare.partition("?")[0]
    for external, folder in CSS_URL_REWRITES.items():
        for scheme in ("", "http:", "https:"):
            if bare.startswith(scheme + external):
                return folder.name + bare[len(scheme + external) :], fragment
    if re.match(r"^([a-z]+:)?//", bare, re.IGNORECASE):
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(css_name), bare))
    return joined, fragment


def _url_of(match: re.Match[str]) -> str:
    return next(g for g in match.groups() if g is not None)


def _prune_font_sources(css: str) -> str:
    """Keep one modern format per @font-face ``src`` (inlined fonts are big).

    Drops IE-only ``src: url(x.eot)`` lines and, in a list of formats, keeps
    the first of woff2 / woff / ttf / otf that is offered.
    """

    def ext(item: str) -> str:
        match = _CSS_URL.search(item)
        ref = _url_of(match) if match else ""
        return posixpath.splitext(ref.partition("#")[0].partition("?")[0])[1].lower()

    def prune_block(block: re.Match[str]) -> str:
        body = block.group(0)
        head, _, inner = body.partition("{")
        decls = inner.rstrip("}").split(";")
        srcs = [d for d in decls if d.strip().lower().startswith("src")]
        kept: list[str] = []
        for decl in decls:
            if decl not in srcs:
                kept.append(decl)
                continue
            items = decl.split(":", 1)[1].split(",")
            exts = [ext(i) for i in items]
            if exts == [".eot"] and len(srcs) > 1:
                continue
            best = next((e for e in _FONT_PREFERENCE if e in exts), None)
            if best is not None:
                decl = decl.split(":", 1)[0] + ":" + items[exts.index(best)]
            kept.append(decl)
        return head + "{" + ";".join(kept) + "}"

    return _FONT_FACE.sub(prune_block, css)


def rewrite_css_for_serving(css: str, css_name: str) -> str:
    """Point a served CSS file's CDN font URLs at local copies (relative URLs)."""

    def swap(match: re.Match[str]) -> str:
        ref = _url_of(match)
        target = _css_target(css_name, ref)
        if target is None or not ref.lstrip().startswith(("//", "http:", "https:")):
            return match.group(0)
        name, fragment = target
        rel = posixpath.relpath(name, posixpath.dirname(css_name))
        return f'url("{rel}{"#" + fragment if fragment else ""}")'

    return _CSS_URL.sub(swap, css)


def _media_type(path: str) -> str:
    known = {
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".woff2": "font/woff2",
        ".woff": "font/woff",
        ".ttf": "font/ttf",
        ".otf": "font/otf",
        ".eot": "application/vnd.ms-fontobject",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".map": "application/json",
    }
    ext = posixpath.splitext(path)[1].lower()
    return known.get(ext) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def _data_uri(path: Path) -> str:
    payload = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:{_media_type(path.name).split(';')[0]};base64,{payload}"


def _read_installed(name: str) -> bytes:
    path = locate(name)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AssetsMissingError(f"{path} is not installed; {INSTALL_HINT}") from exc


def _inline_css(css: str, css_name: str) -> str:
    def embed(match: re.Match[str]) -> str:
        target = _css_target(css_name, _url_of(match))
        if target is None:
            return match.group(0)
        name, fragment = target
        try:
            path = locate(name)
        except OfflineAssetError:
            path = None
        if path is None or not path.is_file():
            # A file the package never shipped: an empty image beats a request.
            return 'url("data:,")'
        return f'url("{_data_uri(path)}{"#" + fragment if fragment else ""}")'

    return _SOURCE_MAP.sub("", _CSS_URL.sub(embed, _prune_font_sources(css)))


# --------------------------------------------------------------------------
# Standalone pages

# Leaflet finds its default marker images by reading a CSS background URL and
# stripping "marker-icon.png"; a data: URI defeats that, so after inlining we
# hand Leaflet the images directly (an imagePath string skips the detection).
_LEAFLET_ICONS = {
    "iconUrl": "marker-icon.png",
    "iconRetinaUrl": "marker-icon-2x.png",
    "shadowUrl": "marker-shadow.png",
}


def _leaflet_icon_fix(leaflet_js_name: str) -> str:
    images = posixpath.join(posixpath.dirname(leaflet_js_name), "images")
    options = ", ".join(
        f'{key}: "{_data_uri(locate(f"{images}/{file}"))}"'
        for key, file in _LEAFLET_ICONS.items()
    )
    return f"L.Icon.Default.imagePath = ''; L.Icon.Default.mergeOptions({{{options}}});"


def inline_assets(html: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Fold every ``{prefix}/...`` script and stylesheet of a page into it.

    The result loads with no server and no network: scripts become inline
    ``<script>`` blocks and stylesheets ``<style>`` blocks whose fonts and
    images are data: URIs (one font format per face: woff2 where offered).
    Source-map comments are dropped. Raises AssetsMissingError if a file is
    not installed.
    """
    clean = _clean_prefix(prefix)
    quoted = re.escape(clean)
    script = re.compile(
        rf"""<script\b[^>]*?\bsrc=["']{quoted}/([^"']+)["'][^>]*>\s*</script>""", re.IGNORECASE
    )
    link = re.compile(
        rf"""<link\b[^>]*?\bhref=["']{quoted}/([^"']+)["'][^>]*>""", re.IGNORECASE
    )

    def js(match: re.Match[str]) -> str:
        name = match.group(1)
        code = _SOURCE_MAP.sub("", _read_installed(name).decode("utf-8"))
        if name.startswith("npm/leaflet@") and name.endswith("/leaflet.js"):
            code += "\n" + _leaflet_icon_fix(name)
        code = re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)
        return f"<script>/* {name} */\n{code}\n</script>"

    def css(match: re.Match[str]) -> str:
        name = match.group(1)
        text = _inline_css(_read_installed(name).decode("utf-8"), name)
        text = re.sub(r"</(style)", r"<\\/\1", text, flags=re.IGNORECASE)
        return f"<style>/* {name} */\n{text}\n</style>"

    return link.sub(css, script.sub(js, html))


# --------------------------------------------------------------------------
# Serving


def static_files_app() -> Starlette:
    """ASGI app answering ``<served name>`` paths; mount it at ``/static/vendor``.

    Versioned names get a year of immutable caching. A missing file is a 404
    whose body names the fix; a name outside the mapped set is a 404 too.
    """

    async def serve(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            path = locate(name)
        except OfflineAssetError as exc:
            return PlainTextResponse(str(exc), status_code=404)
        if not path.is_file():
            return PlainTextResponse(
                f"{name} is not installed on this server; {INSTALL_HINT}", status_code=404
            )
        cache = _UNVERSIONED_CACHE if name.startswith("gridmap/") else _VERSIONED_CACHE
        headers = {"Cache-Control": cache}
        media_type = _media_type(path.name)
        if path.suffix == ".css":
            text = path.read_text(encoding="utf-8")
            rewritten = rewrite_css_for_serving(text, name)
            if rewritten != text:
                return Response(rewritten, media_type=media_type, headers=headers)
        return FileResponse(path, media_type=media_type, headers=headers)

    return Starlette(routes=[Route("/{name:path}", serve, methods=["GET", "HEAD"])])
