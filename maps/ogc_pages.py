"""The HTML views of the OGC API (tipg's pages under ``/ogc``), loading nothing from outside.

tipg renders its pages from Jinja2 templates whose head loads Bootstrap, jQuery and Leaflet from
CDNs and whose maps draw on OpenStreetMap tiles; on an isolated intranet they are blank. tipg
takes a ``Jinja2Templates`` object, so gridmap hands it one whose loader looks in
``maps/ogc_templates`` first and in tipg's own folder second: our head (local copies of the
files the map pages use, served from ``/static/vendor``), our breadcrumb, and our versions of the
pages that draw a map (on the configured base map, or a plain background when none is set, as the
command-centre maps do). The other pages stay tipg's.

Autoescaping is on: the item pages print feature properties, which include text the public sent in
(incident descriptions); tipg's environment would print them as raw HTML.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import shapely.geometry
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from gis.spatial import crs
from maps import offline
from maps.layers import tile_subdomains

TEMPLATES_DIR = Path(__file__).resolve().parent / "ogc_templates"

# The templates of tipg's that gridmap replaces (each loads a CDN file or draws internet tiles).
OVERRIDDEN = (
    "header.html",
    "footer.html",
    "collection.html",
    "items.html",
    "item.html",
    "tilematrixset.html",
    "tileset.html",
)


def basemap(settings: Any) -> dict[str, Any]:
    """What the pages' maps draw under the data: the configured tiles, or none (plain background)."""
    url = getattr(settings, "tile_url", None)
    if not url:
        return {"url": None, "crs": "wgs84"}
    return {
        "url": url,
        "attribution": html.escape(getattr(settings, "tile_attribution", "") or "base map"),
        "subdomains": tile_subdomains(url),
        "crs": getattr(settings, "tile_crs", "wgs84"),
    }


def page_context(request: Request) -> dict[str, Any]:
    """The ``gridmap`` variable of every page: local asset URLs, the icon, the base map, the key."""
    root = request.scope.get("root_path", "").rstrip("/")
    prefix = root + offline.DEFAULT_PREFIX
    key = request.query_params.get("key")
    return {
        "gridmap": {
            "assets": {name: offline.page_url(name, prefix) for name in offline.PAGE_ASSETS},
            "favicon": offline.own_url("favicon.ico", prefix),
            "docs": f"{root}/docs",
            "basemap": basemap(request.app.state.settings),
            # Browsers navigate without headers: links the pages make carry the key they came with.
            "keyq": "?" + urlencode({"key": key}) if key else "",
        }
    }


def bbox_features(bbox: Any) -> dict[str, Any] | None:
    """A bounding box (min x, min y, max x, max y[, ...]) as GeoJSON polygons in WGS-84; two
    polygons when it crosses the antimeridian (min x > max x). None without a usable box."""
    if not isinstance(bbox, list | tuple) or len(bbox) < 4:
        return None
    if len(bbox) >= 6:  # 3-D: min x, min y, min z, max x, max y, max z
        bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
    minx, miny, maxx, maxy = (float(v) for v in bbox[:4])
    parts = [(minx, 180.0), (-180.0, maxx)] if minx > maxx else [(minx, maxx)]
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(shapely.box(x0, miny, x1, maxy))}
            for x0, x1 in parts
        ],
    }


def _shift(geometry: Any, target: str) -> Any:
    if not isinstance(geometry, dict) or "type" not in geometry:
        return geometry
    return shapely.geometry.mapping(crs.geometry_from_wgs84(shapely.geometry.shape(geometry), target))


def shift_geojson(data: Any, target: str) -> Any:
    """A copy of a GeoJSON geometry, Feature or FeatureCollection with WGS-84 coordinates turned
    into ``target`` (``gcj02`` for Amap-style tiles); the data itself when ``target`` is WGS-84."""
    if target == "wgs84" or not isinstance(data, dict):
        return data
    kind = data.get("type")
    if kind == "FeatureCollection":
        return {**data, "features": [shift_geojson(f, target) for f in data.get("features") or []]}
    if kind == "Feature":
        return {**data, "geometry": _shift(data.get("geometry"), target)}
    return _shift(data, target)


@jinja2.pass_context
def on_basemap(context: jinja2.runtime.Context, data: Any) -> Any:
    """Template filter: GeoJSON in the coordinate system of the page's base map."""
    return shift_geojson(data, context["gridmap"]["basemap"]["crs"])


def templates() -> Jinja2Templates:
    """tipg's ``templates`` argument: our templates first, tipg's for the rest."""
    loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(TEMPLATES_DIR), jinja2.PackageLoader("tipg", "templates")])
    env = jinja2.Environment(loader=loader, autoescape=jinja2.select_autoescape(["html"]))
    env.filters["on_basemap"] = on_basemap
    env.globals["bbox_features"] = bbox_features
    return Jinja2Templates(env=env, context_processors=[page_context])
