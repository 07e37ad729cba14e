"""The command centre's KPI choropleth (网格指标分级图): every grid coloured by one KPI of the
incidents the page's filter selects in its window (gis.analysis.kpis, grouped by grid), the KPI
chosen in the KPI strip's selector (maps.kpi_strip) without reloading the page.

Served pages fetch ``/maps/data/grids/kpis.geojson`` (with the page's filter) the first time the
layer is switched on; standalone files embed it. Colours: a light-to-dark ramp over 0..100 % for
rates, over 0..the largest grid's value for counts and times; a grid without a value (no incident,
or none closed for the on-time rate) is grey.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import folium

from gis.analysis.kpis import RATES, compute_kpis
from gis.incidents.filter import IncidentFilter
from gis.outputs import mapdata
from gis.outputs.maplayers import LayerCache
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn
from maps import layers as ml
from maps.i18n import label
from maps.page import PageContext

KEY = "kpi_grids"
# The KPIs the selector offers (the strip's rankings use the same list); the first is the default.
CHOICES = (
    "on_time_rate",
    "closure_rate",
    "satisfaction_rate",
    "settled_in_town_rate",
    "escalation_rate",
    "reopen_rate",
    "reported",
    "handle_p50_h",
)
DEFAULT = CHOICES[0]
RAMP = ("#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b")  # ColorBrewer Blues, light to dark
NO_DATA = "#bdbdbd"


def window(flt: IncidentFilter, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The page's report window (the map pages always set one; the last 7 days otherwise)."""
    if flt.start is not None and flt.end is not None:
        return flt.start, flt.end
    return now - dt.timedelta(days=7), now


def grid_figures(conn: Conn, flt: IncidentFilter, now: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """Per grid code: its KPIs (``compute_kpis`` by grid) in the filter's window, inside its scope."""
    start, end = window(flt, now or dt.datetime.now(dt.UTC))
    data = compute_kpis(conn, flt, start, end, group_by="grid")
    return {g["key"]: {"name": g["name"], **g["kpis"]} for g in data["groups"] if g["key"]}


def grid_kpis(
    conn: Conn,
    flt: IncidentFilter,
    *,
    scope: Scope = WHOLE_COUNTY,
    display_crs: str = "wgs84",
    cache: LayerCache | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The grids inside ``scope`` (simplified, as the map layers) with ``kpis`` as a property."""
    figures = grid_figures(conn, flt, now)
    grids = mapdata.layer_geojson(conn, "grid", display_crs=display_crs, cache=cache, scope=scope)
    features = []
    for feature in grids["features"]:  # copies: the cached layer is shared with other pages
        code = feature["properties"]["code"]
        values = figures.get(code, {})
        kpis = {k: values.get(k) for k in CHOICES}
        features.append({**feature, "properties": {**feature["properties"], "kpis": kpis}})
    return {"type": "FeatureCollection", "features": features, "choices": list(CHOICES)}


def _builder(lang: str) -> str:
    names = {k: label(f"kpi.{k}", lang) for k in CHOICES}
    rates = [k for k in CHOICES if k in RATES]
    return (
        f"gridmap.kpiText = {ml.js_data(names)};\n"
        f"gridmap.kpiRates = {ml.js_data(rates)};\n"
        f"gridmap.kpiRamp = {ml.js_data(list(RAMP))};\n"
        f"gridmap.kpiSelected = gridmap.kpiSelected || {ml.js_data(DEFAULT)};\n"
        "gridmap.kpiColor = function (value, max) {\n"
        "  if (value === null || value === undefined) return null;\n"
        "  var r = gridmap.kpiRamp, t = max > 0 ? Math.max(0, Math.min(1, value / max)) : 0;\n"
        "  return r[Math.min(r.length - 1, Math.floor(t * r.length))];\n"
        "};\n"
        "gridmap.kpiRestyle = function () {\n"
        "  var layer = gridmap.kpiLayer, k = gridmap.kpiSelected;\n"
        "  if (!layer) return;\n"
        "  var max = 1;\n"
        "  if (gridmap.kpiRates.indexOf(k) < 0) {\n"
        "    max = 0;\n"
        "    layer.eachLayer(function (l) { var v = l.feature.properties.kpis[k]; if (v > max) max = v; });\n"
        "  }\n"
        "  layer.eachLayer(function (l) {\n"
        "    var c = gridmap.kpiColor(l.feature.properties.kpis[k], max);\n"
        f"    l.setStyle({{fillColor: c || '{NO_DATA}', fillOpacity: c ? 0.75 : 0.25, color: '#555', weight: 0.6}});\n"
        "  });\n"
        "};\n"
        "gridmap.builders.kpiGrids = function (data, group) {\n"
        "  var T = gridmap.kpiText, esc = gridmap.esc;\n"
        "  gridmap.kpiLayer = L.geoJSON(data, {\n"
        "    onEachFeature: function (f, layer) {\n"
        "      layer.bindPopup(function () {\n"
        "        var p = f.properties, rows = '';\n"
        "        Object.keys(T).forEach(function (k) {\n"
        "          var v = p.kpis[k];\n"
        "          var text = v === null || v === undefined ? '-' : gridmap.kpiRates.indexOf(k) >= 0 ?\n"
        "            (v * 100).toFixed(1) + '%' : String(v);\n"
        "          rows += '<tr><th>' + esc(T[k]) + '</th><td>' + esc(text) + '</td></tr>';\n"
        "        });\n"
        "        return '<b>' + esc(p.name) + '</b> ' + esc(p.code) +\n"
        "          '<table class=\"gm-popup\">' + rows + '</table>';\n"
        "      });\n"
        "    },\n"
        "  });\n"
        "  group.addLayer(gridmap.kpiLayer);\n"
        "  gridmap.kpiRestyle();\n"
        "};"
    )


def add(m: folium.Map, conn: Conn, ctx: PageContext, flt: IncidentFilter) -> folium.FeatureGroup:
    """Add the (hidden) KPI choropleth to ``m``; returns its group for the layer tree."""
    group = folium.FeatureGroup(name=ml.safe_label(label("layer.kpi", ctx.lang)), show=False)
    group.add_to(m)
    ml.Script(_builder(ctx.lang)).add_to(m)
    if ctx.standalone:
        data = grid_kpis(conn, flt, scope=ctx.scope, display_crs=ctx.display_crs, cache=ctx.layer_cache, now=ctx.at)
        ml.fill(m, KEY, group, "gridmap.builders.kpiGrids", data=data)
    else:
        ml.fill(m, KEY, group, "gridmap.builders.kpiGrids", url=ctx.url("/maps/data/grids/kpis.geojson", **flt.query()))
    return group


def legend_items(ctx: PageContext) -> list[str]:
    """The ramp and the grey of "no value"."""
    ramp = "".join(f'<span class="gm-sw" style="background:{c};border-radius:0"></span>' for c in RAMP)
    return [
        f"{ramp} {html.escape(label('legend.kpi', ctx.lang))}",
        ml.swatch(NO_DATA, label("legend.kpi_none", ctx.lang)),
    ]
