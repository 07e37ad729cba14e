"""The staffing map (网格力量配置图): every grid coloured by the gaps of its team on one day (no
leader or full-time worker, no auxiliary police, micro-grids without a leader), with the figures
of gis.people.staffing in each grid's popup and the report's totals beside the map."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import folium

from gis.outputs import mapdata
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.people.staffing import grid_features, report
from gis.spatial.areas import Conn
from maps import layers as ml
from maps.page import PageContext

PATH = "/maps/staffing"
COLORS = {"missing": "#d7301f", "no_aux": "#fc8d59", "micro": "#fdcc8a", "ok": "#1a9850"}
TEXT = {
    "zh": {
        "title": "网格力量配置",
        "missing": "缺网格长或专职网格员",
        "no_aux": "无网格辅警",
        "micro": "有微网格缺微网格长",
        "ok": "配置齐全",
        "households_per_worker": "每名专职网格员户数",
        "new_residents_per_worker": "每名专职网格员新居民数",
        "micro_grids_without_leader": "缺微网格长的微网格",
        "key_villages_without_community_police": "无社区民警的重点村",
        "postings_ending_soon": "30天内到期的任职",
        "grids_without_aux_police": "无辅警网格",
        "as_of": "日期",
    },
    "en": {
        "title": "Grid staffing",
        "missing": "no leader or full-time worker",
        "no_aux": "no auxiliary police",
        "micro": "micro-grids without a leader",
        "ok": "fully staffed",
        "households_per_worker": "households per full-time worker",
        "new_residents_per_worker": "new residents per full-time worker",
        "micro_grids_without_leader": "micro-grids without a leader",
        "key_villages_without_community_police": "key villages without community police",
        "postings_ending_soon": "postings ending within 30 days",
        "grids_without_aux_police": "grids without auxiliary police",
        "as_of": "as of",
    },
}


def _state(p: dict[str, Any]) -> str:
    if not p.get("leaders") or not p.get("workers"):
        return "missing"
    if not p.get("aux_police"):
        return "no_aux"
    return "micro" if p.get("micro_grids_without_leader") else "ok"


def build(conn: Conn, ctx: PageContext, on: dt.date, scope: Scope = WHOLE_COUNTY) -> folium.Map:
    """The staffing map of the grids inside ``scope`` (a scoped account's own areas)."""
    text = TEXT[ctx.lang]
    # The maps' simplified grids in the page's display CRS, with the staffing figures merged in.
    figures = {
        f["properties"]["code"]: f["properties"]
        for f in grid_features(conn, on, geometry=False, scope=scope)["features"]
    }
    grids = mapdata.layer_geojson(conn, "grid", display_crs=ctx.display_crs, cache=ctx.layer_cache)
    features = []
    for feature in grids["features"]:  # copies: the layer is cached and shared with other pages
        if not scope.contains(feature["properties"]["code"]):
            continue
        p = {**feature["properties"], **figures.get(feature["properties"]["code"], {})}
        state = _state(p)
        p["style"] = {"fillColor": COLORS[state], "fillOpacity": 0.55, "color": "#555", "weight": 0.6}
        p["staffing"] = text[state]
        features.append({**feature, "properties": p})
    layer = {"type": "FeatureCollection", "features": features}
    m = ml.base_map(ctx, mapdata.layer_bounds(conn, "grid"), width="70%")
    ml.setup(m, ctx, links={} if ctx.standalone else {"grid": ctx.url("/maps/grids/{code}")})
    group = folium.FeatureGroup(name=text["title"]).add_to(m)
    ml.fill(m, "staffing", group, f"gridmap.builders.areas({ml.js_data('grid')})", data=layer)
    ml.add_html(m, f'<div class="gm-panel gm-side">{_summary(conn, on, text, scope)}</div>')
    items = [ml.swatch(COLORS[k], text[k]) for k in ("missing", "no_aux", "micro", "ok")]
    ml.add_html(
        m,
        ml.legend(ctx, items).replace(
            'class="gm-panel gm-legend"', 'class="gm-panel gm-legend" style="right:calc(30% + 10px)"'
        ),
    )
    return m


def _summary(conn: Conn, on: dt.date, text: dict[str, str], scope: Scope) -> str:
    figures = report(conn, on, scope=scope)["summary"]
    keys = (
        "grids_without_aux_police",
        "households_per_worker",
        "new_residents_per_worker",
        "micro_grids_without_leader",
        "key_villages_without_community_police",
        "postings_ending_soon",
    )
    rows = "".join(f"<tr><td>{html.escape(text[k])}</td><td>{html.escape(str(figures[k]))}</td></tr>" for k in keys)
    return (
        f"<h1>{html.escape(text['title'])}</h1><p>{html.escape(text['as_of'])}: {on.isoformat()}</p>"
        f"<table>{rows}</table>"
    )
