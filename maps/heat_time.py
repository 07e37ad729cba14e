"""Incident heat animated by hour of day or by day (HeatMapWithTime), over towns and villages.

Frames are aggregated on the server into weighted cells (``mapdata.heat_frames``) whose size grows
until the whole animation holds at most ``FRAME_BUDGET`` points, so a long period still makes a
small page.
"""

from __future__ import annotations

import html

import folium
from folium.plugins import HeatMapWithTime

from gis.outputs import mapdata
from gis.outputs.mapdata import IncidentFilter, MapQueryError
from gis.spatial.areas import Conn
from maps import layers as ml
from maps.i18n import label
from maps.page import PageContext

PATH = "/maps/heatmap/time"
FRAME_BUDGET = 60_000
BY = ("hour", "day")


def build(conn: Conn, ctx: PageContext, flt: IncidentFilter, by: str = "hour") -> folium.Map:
    if by not in BY:
        raise MapQueryError(f"by: {by!r} is not one of {', '.join(BY)}")
    lang = ctx.lang
    frames = mapdata.heat_frames(conn, flt, by, budget=FRAME_BUDGET, display_crs=ctx.display_crs)
    m = ml.base_map(ctx, mapdata.layer_bounds(conn, "county") or mapdata.layer_bounds(conn, "grid"))
    ml.setup(m, ctx)
    for layer in ("county", "town", "village"):
        group = folium.FeatureGroup(name=label(f"layer.{layer}", lang)).add_to(m)
        data = mapdata.layer_geojson(conn, layer, display_crs=ctx.display_crs, cache=ctx.layer_cache, scope=ctx.scope)
        ml.fill(m, layer, group, f"gridmap.builders.areas({ml.js_data(layer)})", data=data)
    heat = HeatMapWithTime(
        frames.frames,
        index=frames.labels,
        name=label("layer.heat", lang),
        radius=14,
        min_opacity=0.05,
        max_opacity=0.8,
        auto_play=True,
        max_speed=4,
        position="bottomleft",
    )
    # folium prints the frames into its script with str(); hand it a reference to a data script.
    heat.data = ml.JsRef(ml.inline_data(m, "frames", frames.frames))
    heat.add_to(m)
    ml.register(m, "heat_time", heat)
    options = "".join(
        f'<option value="{b}"{" selected" if b == by else ""}>{html.escape(label("form.by." + b, lang))}</option>'
        for b in BY
    )
    extra = f'<label>{html.escape(label("form.by", lang))}</label><select name="by">{options}</select>'
    choices = mapdata.incident_choices()
    ml.add_html(m, ml.filter_form(ctx, PATH, label("title.heat_time", lang), flt, choices, extra=extra))
    notes = [
        label("legend.incidents_total", lang, n=f"{frames.total:,}"),
        label("frames.cells", lang, cell=f"{frames.cell_m:g}", n=f"{frames.total:,}"),
    ]
    items = [ml.heat_ramp(label("legend.heat", lang)), *ml.area_legend(lang, ("county", "town", "village"))]
    ml.add_html(m, ml.legend(ctx, items, notes))
    return m
