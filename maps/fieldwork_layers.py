"""Field-work layers of the map pages: grids coloured by the share of buildings not visited in 30
days, today's patrol tracks and today's visits (command centre), and a grid page's coverage
section. Served pages fetch the layers from the field-work endpoints when they are switched on;
standalone files carry them inline. Everything the layers draw is Leaflet's own (no extra assets),
so the pages work offline like the others."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import folium

from gis.core.vocab import COUNTY_TZ
from gis.fieldwork import coverage, layers
from gis.spatial.areas import Conn
from maps import layers as ml
from maps.page import PageContext

NOT_VISITED_DAYS = 30
TEXT = {
    "zh": {
        "tree": "走访与巡查",
        "unvisited": f"{NOT_VISITED_DAYS}天未走访(按网格)",
        "tracks": "今日巡查轨迹",
        "visits": "今日走访",
        "coverage": "走访与巡查覆盖",
        "buildings": "房屋",
        "visited": f"{NOT_VISITED_DAYS}天内已走访",
        "not_visited": f"{NOT_VISITED_DAYS}天未走访",
        "households_not_visited": "未走访户数",
        "patrols": "今日巡查次数",
        "patrol_share": "今日巡查覆盖(50米内房屋)",
    },
    "en": {
        "tree": "Visits and patrols",
        "unvisited": f"Not visited in {NOT_VISITED_DAYS} days (by grid)",
        "tracks": "Today's patrol tracks",
        "visits": "Today's visits",
        "coverage": "Visit and patrol coverage",
        "buildings": "buildings",
        "visited": f"visited within {NOT_VISITED_DAYS} days",
        "not_visited": f"not visited in {NOT_VISITED_DAYS} days",
        "households_not_visited": "households not visited",
        "patrols": "patrols today",
        "patrol_share": "patrol coverage today (buildings within 50 m)",
    },
}
VISIT_COLORS = {"routine": "#3182bd", "night": "#6a51a3", "care": "#31a354", "follow_up": "#e6550d"}

# Visits as small circles coloured by kind, with a popup (Leaflet only: no marker images needed).
_VISIT_BUILDER = (
    "function (data, group) { var colors = " + ml.js_data(VISIT_COLORS) + "; "
    "group.addLayer(L.geoJSON(data, {pointToLayer: function (f, ll) { var p = f.properties; "
    "return L.circleMarker(ll, {radius: 5, weight: 1, color: '#333', fillOpacity: 0.9, "
    "fillColor: colors[p.kind] || '#777'}).bindPopup(String(p.name || '').replace(/[<>&]/g, '') + "
    "'<br>' + p.kind + '<br>' + String(p.at || '').slice(0, 16)); }})); }"
)


def _today(ctx: PageContext) -> dt.date:
    return ctx.at.astimezone(COUNTY_TZ).date()


def add_to(m: folium.Map, ctx: PageContext, conn: Conn) -> dict[str, Any]:
    """Add the field-work layers (hidden at first) to a command-centre map; returns the layer
    tree's node for them."""
    text = TEXT[ctx.lang]
    day = _today(ctx)
    scope, crs = ctx.scope, ctx.display_crs
    specs = [
        (
            "unvisited",
            f"gridmap.builders.areas({ml.js_data('unvisited')})",
            ctx.url("/visits/not-visited.geojson", by="grid", days=str(NOT_VISITED_DAYS)),
            lambda: layers.unvisited_grids(conn, NOT_VISITED_DAYS, scope, crs, ctx.layer_cache),
        ),
        (
            "tracks",
            f"gridmap.builders.areas({ml.js_data('track')})",
            ctx.url("/patrols/tracks.geojson", on=day.isoformat()),
            lambda: layers.tracks(conn, day, scope, crs),
        ),
        (
            "visits",
            _VISIT_BUILDER,
            ctx.url("/visits/day.geojson", on=day.isoformat()),
            lambda: layers.visits(conn, day, scope, crs),
        ),
    ]
    children = []
    for key, builder, url, fetch in specs:
        group = folium.FeatureGroup(name=ml.safe_label(text[key]), show=False)
        group.add_to(m)
        if ctx.standalone:
            ml.fill(m, f"fieldwork:{key}", group, builder, data=fetch())
        else:
            ml.fill(m, f"fieldwork:{key}", group, builder, url=url)
        children.append({"label": text[key], "layer": group})
    return {"label": text["tree"], "selectAllCheckbox": False, "collapsed": True, "children": children}


# Buildings not visited lately: red circles, the popup giving the last visit.
_UNVISITED_BUILDER = (
    "function (data, group) { group.addLayer(L.geoJSON(data, {pointToLayer: function (f, ll) { "
    "var p = f.properties; return L.circleMarker(ll, {radius: 4, weight: 1, color: '#a50f15', "
    "fillColor: '#fb6a4a', fillOpacity: 0.8}).bindPopup(String(p.code || p.building_id) + '<br>' + "
    "String(p.last_visit_at || '-').slice(0, 10)); }})); }"
)


def add_grid_layers(m: folium.Map, ctx: PageContext, conn: Conn, code: str) -> None:
    """A grid page's field-work layers (inline, like the page's others): its buildings not
    visited in 30 days and today's patrol tracks."""
    text = TEXT[ctx.lang]
    day = _today(ctx)
    for key, builder, data in (
        (
            "not_visited",
            _UNVISITED_BUILDER,
            layers.grid_unvisited_points(conn, code, NOT_VISITED_DAYS, ctx.scope, ctx.display_crs),
        ),
        (
            "tracks",
            f"gridmap.builders.areas({ml.js_data('track')})",
            layers.tracks(conn, day, ctx.scope, ctx.display_crs, code),
        ),
    ):
        group = folium.FeatureGroup(name=ml.safe_label(text[key]), show=key == "tracks").add_to(m)
        ml.fill(m, f"fieldwork:{key}", group, builder, data=data)


def legend_items(ctx: PageContext) -> list[str]:
    """The share-not-visited ramp and the track line."""
    text = TEXT[ctx.lang]
    items, lower = [], 0
    for limit, color in layers.UNVISITED_RAMP:
        upper = min(int(round(limit * 100)), 100)
        span = f"{lower}–{upper}%" if upper < 100 else f"≥{lower}%"
        items.append(ml.swatch(color, f"{text['unvisited']} {span}"))
        lower = upper
    items.append(ml.line(str(layers.TRACK_STYLE["color"]), text["tracks"]))
    return items


def grid_section(conn: Conn, ctx: PageContext, code: str) -> str:
    """A grid page's coverage panel: buildings visited within 30 days, and today's patrols."""
    text = TEXT[ctx.lang]
    visited = coverage.grid_unvisited(conn, code, NOT_VISITED_DAYS, ctx.scope)
    patrolled = coverage.grid_patrol_coverage(conn, code, _today(ctx), ctx.scope)
    share = patrolled["share"]
    rows = [
        (text["buildings"], visited["buildings"]),
        (text["visited"], visited["buildings_visited"]),
        (text["not_visited"], visited["buildings_not_visited"]),
        (text["households_not_visited"], visited["households_not_visited"]),
        (text["patrols"], len(patrolled["patrols"])),
        (text["patrol_share"], "-" if share is None else f"{share * 100:.1f}%"),
    ]
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<h2>{html.escape(text['coverage'])}</h2><table>{body}</table>"
