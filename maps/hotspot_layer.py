"""The command centre's analysis layers (``gis.analysis``): hot spots (热点分析), grids coloured by
their Getis-Ord Gi* class for the last complete week, with a legend saying what each class means;
and repeat locations (重复发生地), places with 3 or more incidents in the last 30 days.

Served pages fetch ``/analysis/hotspots?format=geojson`` and ``/analysis/repeats?format=geojson``
(with the page's incident filter, minus its report window: the analyses choose their own) the
first time a layer is switched on; standalone files embed the results. Both layers are off by
default: the Gi* costs ~0.5 s and the repeats ~2 s on the demo.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import folium

from gis.analysis.features import CLASS_COLORS, repeats_geojson, units_geojson
from gis.analysis.gistar import CLASSES
from gis.analysis.hotspots import hotspots
from gis.analysis.repeats import DEFAULT_DAYS, DEFAULT_MIN_COUNT, repeat_locations
from gis.analysis.units import period_window
from gis.incidents.filter import IncidentFilter
from gis.spatial.areas import Conn
from maps import layers as ml
from maps.page import PageContext

KEY = "hotspots"
REPEATS_KEY = "repeats"
REPEAT_COLOR = "#e6550d"
# What each class means, for the legend and the popups (zh, en).
TEXT: dict[str, tuple[str, str]] = {
    "layer": ("热点分析（Gi*，上周）", "Hot spots (Gi*, last week)"),
    "hot_99": ("热点 99%：本网格及相邻网格事件显著偏多", "Hot spot, 99%: this grid and its neighbours have far more"),
    "hot_95": ("热点 95%：事件显著偏多", "Hot spot, 95%: significantly more incidents"),
    "hot_90": ("热点 90%：事件偏多", "Hot spot, 90%: more incidents"),
    "not_significant": ("不显著：与全县水平无显著差异", "Not significant: no more than chance"),
    "cold_90": ("冷点 90%：事件偏少", "Cold spot, 90%: fewer incidents"),
    "cold_95": ("冷点 95%：事件显著偏少", "Cold spot, 95%: significantly fewer incidents"),
    "cold_99": (
        "冷点 99%：本网格及相邻网格事件显著偏少",
        "Cold spot, 99%: this grid and its neighbours have far fewer",
    ),
    "note": (
        "Getis-Ord Gi*（相邻网格，含自身）比较本网格及相邻网格的事件数与全县平均；置信度经 FDR 多重检验校正。"
        "统计周：{start} 至 {end}。",
        "Getis-Ord Gi* (queen neighbours, the grid included) compares a grid and its neighbours with the "
        "county mean; confidence after FDR correction for testing every grid. Week: {start} to {end}.",
    ),
    "f.count": ("事件数", "incidents"),
    "f.gi_z": ("Gi* z 值", "Gi* z"),
    "f.p": ("p 值", "p"),
    "repeats": ("重复发生地（30天内≥3起）", "Repeat locations (3+ in 30 days)"),
    "repeats_legend": (
        "重复发生地：同一地址或建筑 {days} 天内 ≥{n} 起事件（无地址时按 30 米内位置）",
        "Repeat location: one address or building with {n}+ incidents in {days} days (by position within 30 m "
        "when no address is near)",
    ),
    "f.first": ("首次", "first"),
    "f.last": ("最近", "last"),
}


def text(key: str, lang: str, **values: object) -> str:
    value = TEXT[key][0 if lang == "zh" else 1]
    return value.format(**values) if values else value


def _builder(lang: str) -> str:
    """The layer's builder: polygons styled by class, a popup with the class and the figures."""
    names = {k: text(k, lang) for k in (*CLASSES, "f.count", "f.gi_z", "f.p")}
    return (
        f"gridmap.hotspotText = {ml.js_data(names)};\n"
        "gridmap.builders.hotspots = function (data, group) {\n"
        "  var T = gridmap.hotspotText, esc = gridmap.esc;\n"
        "  group.addLayer(L.geoJSON(data, {\n"
        "    style: function (f) { return f.properties.style; },\n"
        "    onEachFeature: function (f, layer) {\n"
        "      var p = f.properties;\n"
        "      layer.bindPopup('<b>' + esc(p.name) + '</b> ' + esc(p.code) + '<br>' + esc(T[p['class']]) +\n"
        "        '<br>' + esc(T['f.count']) + ': ' + esc(p.count) + ' · ' + esc(T['f.gi_z']) + ': ' +\n"
        "        esc(p.gi_z) + ' · ' + esc(T['f.p']) + ': ' + esc(p.p));\n"
        "    },\n"
        "  }));\n"
        "};"
    )


def _repeats_builder(lang: str) -> str:
    """Circles sized by the number of incidents, a popup with the place and the dates."""
    names = {k: text(k, lang) for k in ("f.count", "f.first", "f.last")}
    return (
        f"gridmap.repeatText = {ml.js_data(names)};\n"
        "gridmap.builders.repeats = function (data, group) {\n"
        "  var T = gridmap.repeatText, esc = gridmap.esc;\n"
        "  (data.features || []).forEach(function (f) {\n"
        "    var p = f.properties, c = f.geometry.coordinates;\n"
        "    group.addLayer(L.circleMarker(L.latLng(c[1], c[0]), {radius: Math.min(4 + 2 * p.count, 16), "
        f"color: '#fff', weight: 1, fillColor: '{REPEAT_COLOR}', fillOpacity: 0.85}})\n"
        "      .bindPopup('<b>' + esc(p.label || p.kind) + '</b><br>' + esc(T['f.count']) + ': ' + esc(p.count) +\n"
        "        '<br>' + esc(T['f.first']) + ': ' + esc(p.first_at) + '<br>' + esc(T['f.last']) + ': ' +\n"
        "        esc(p.last_at)));\n"
        "  });\n"
        "};"
    )


def add_repeats(m: folium.Map, conn: Conn, ctx: PageContext, flt: IncidentFilter) -> folium.FeatureGroup:
    """Add the (hidden) repeat-locations layer to ``m``; returns its group for the layer tree."""
    group = folium.FeatureGroup(name=ml.safe_label(text("repeats", ctx.lang)), show=False)
    group.add_to(m)
    ml.Script(_repeats_builder(ctx.lang)).add_to(m)
    chosen = analysis_filter(flt)
    if ctx.standalone:
        data: Any = repeats_geojson(repeat_locations(conn, chosen, end=ctx.at))
        ml.fill(m, REPEATS_KEY, group, "gridmap.builders.repeats", data=data)
    else:
        url = ctx.url("/analysis/repeats", **chosen.query(), format="geojson")
        ml.fill(m, REPEATS_KEY, group, "gridmap.builders.repeats", url=url)
    return group


def analysis_filter(flt: IncidentFilter) -> IncidentFilter:
    """The page's filter without its report window: the analysis takes the last complete week."""
    return flt.replace(start=None, end=None, window=None)


def add(m: folium.Map, conn: Conn, ctx: PageContext, flt: IncidentFilter) -> folium.FeatureGroup:
    """Add the (hidden) hot-spot layer to ``m``; returns its group for the layer tree."""
    group = folium.FeatureGroup(name=ml.safe_label(text("layer", ctx.lang)), show=False)
    group.add_to(m)
    ml.Script(_builder(ctx.lang)).add_to(m)
    chosen = analysis_filter(flt)
    if ctx.standalone:
        result = hotspots(conn, "grid", chosen, now=ctx.at)
        data: Any = units_geojson(conn, result, cache=ctx.layer_cache, display_crs=ctx.display_crs)
        ml.fill(m, KEY, group, "gridmap.builders.hotspots", data=data)
    else:
        url = ctx.url("/analysis/hotspots", **chosen.query(), format="geojson", crs=ctx.display_crs)
        ml.fill(m, KEY, group, "gridmap.builders.hotspots", url=url)
    return group


def legend_items(ctx: PageContext) -> list[str]:
    """A heading and one swatch per class, saying what it means."""
    items = [f"<b>{html.escape(text('layer', ctx.lang))}</b>"]
    items += [ml.swatch(CLASS_COLORS[c], text(c, ctx.lang)) for c in CLASSES]
    items.append(ml.swatch(REPEAT_COLOR, text("repeats_legend", ctx.lang, days=DEFAULT_DAYS, n=DEFAULT_MIN_COUNT)))
    return items


def legend_note(ctx: PageContext) -> str:
    start, end = period_window(None, "week", ctx.at)
    last = (end - dt.timedelta(days=1)).date()
    return text("note", ctx.lang, start=start.date().isoformat(), end=last.isoformat())
