"""The command-centre page (指挥中心综合态势图): boundaries, police, rental buildings, hazards,
incident heat, overdue incidents and a live layer, switchable in a layer tree.

Served pages stay small by embedding only what is shown at once (boundaries down to grids and
the heat, aggregated on the server above the threshold); micro-grids, police layers, buildings,
hazards and overdue incidents come from the data endpoints (``api/routers/maps.py``) when shown.
Standalone files embed everything and leave the live layer out (there is no server to poll).
"""

from __future__ import annotations

from typing import Any, TypeVar

import folium
from folium.plugins import HeatMap, MarkerCluster, Realtime, TreeLayerControl
from folium.utilities import JsCode

from gis.outputs import mapdata
from gis.outputs.mapdata import IncidentFilter
from gis.spatial.areas import Conn
from maps import hotspot_layer, kpi_layer, kpi_strip
from maps import layers as ml
from maps.fieldwork_layers import add_to as add_fieldwork_layers
from maps.fieldwork_layers import legend_items as fieldwork_legend
from maps.i18n import label, labels
from maps.inspection_layers import add_to as add_inspection_layers
from maps.inspection_layers import legend_items as inspection_legend
from maps.inspection_layers import legend_note as inspection_note
from maps.page import PageContext

PATH = "/maps/command-center"
G = TypeVar("G", bound=folium.map.Layer)
OVERDUE_LIMIT = 2000  # most overdue first; the legend gives the full count
HEAT_OPTIONS: dict[str, Any] = {"radius": 12, "blur": 16, "min_opacity": 0.3, "max_zoom": 17}


def _grids_with_stats(conn: Conn, ctx: PageContext, flt: IncidentFilter) -> dict[str, Any]:
    grids = mapdata.layer_geojson(conn, "grid", display_crs=ctx.display_crs, cache=ctx.layer_cache, scope=ctx.scope)
    stats = mapdata.grid_stats(conn, flt, now=ctx.at, role=ctx.role)
    features = [
        {**f, "properties": {**f["properties"], "stats": stats.get(f["properties"]["code"], {})}}
        for f in grids["features"]
    ]
    return {"type": "FeatureCollection", "features": features}


def _area_group(
    m: folium.Map, ctx: PageContext, conn: Conn, layer: str, *, show: bool, data: dict[str, Any] | None = None
) -> folium.FeatureGroup:
    group = folium.FeatureGroup(name=label(f"layer.{layer}", ctx.lang), show=show)
    group.add_to(m)
    builder = f"gridmap.builders.areas({ml.js_data(layer)})"
    if data is None and (show or ctx.standalone):
        data = mapdata.layer_geojson(conn, layer, display_crs=ctx.display_crs, cache=ctx.layer_cache, scope=ctx.scope)
    url = None if data is not None else ctx.url(f"/maps/data/layers/{layer}.geojson")
    ml.fill(m, layer, group, builder, data=data, url=url)
    return group


def _point_group(m: folium.Map, ctx: PageContext, key: str, group: G, builder: str, url: str, fetch: Any) -> G:
    group.add_to(m)
    if ctx.standalone:
        ml.fill(m, key, group, builder, data=fetch())
    else:
        ml.fill(m, key, group, builder, url=url)
    return group


def build(conn: Conn, ctx: PageContext, flt: IncidentFilter) -> folium.Map:
    """The command-centre map for the incidents selected by ``flt``."""
    lang = ctx.lang
    m = ml.base_map(ctx, mapdata.layer_bounds(conn, "county") or mapdata.layer_bounds(conn, "grid"))
    links = (
        {}
        if ctx.standalone
        else {
            "grid": ctx.url("/maps/grids/{code}"),
            "stats": ctx.url("/maps/data/grids/stats.json", **{**flt.query(), "grid": "{code}"}),
        }
    )
    ml.setup(m, ctx, links=links)
    crs = ctx.display_crs

    areas = {
        "county": _area_group(m, ctx, conn, "county", show=True),
        "town": _area_group(m, ctx, conn, "town", show=True),
        "village": _area_group(m, ctx, conn, "village", show=True),
        # Served pages fetch a grid's figures when its popup opens; a standalone file carries them.
        "grid": _area_group(
            m, ctx, conn, "grid", show=True, data=_grids_with_stats(conn, ctx, flt) if ctx.standalone else None
        ),
        "micro_grid": _area_group(m, ctx, conn, "micro_grid", show=False),
        "station": _area_group(m, ctx, conn, "station", show=False),
        "beat": _area_group(m, ctx, conn, "beat", show=False),
    }

    rentals = _point_group(
        m,
        ctx,
        "rentals",
        MarkerCluster(
            name=label("layer.rentals", lang),
            show=False,
            options={"disableClusteringAtZoom": 17, "chunkedLoading": True},
        ),
        "gridmap.builders.buildings",
        ctx.url("/maps/data/buildings.geojson"),
        lambda: mapdata.rental_buildings(conn, role=ctx.role, display_crs=crs, scope=ctx.scope),
    )
    hazard_groups = []
    for category in mapdata.hazard_categories(conn):
        group = folium.FeatureGroup(name=ml.safe_label(label(f"hazard.{category}", lang)), show=False)
        hazard_groups.append(
            _point_group(
                m,
                ctx,
                f"hazards:{category}",
                group,
                "gridmap.builders.hazards",
                ctx.url("/maps/data/hazards.geojson", category=category),
                lambda c=category: mapdata.hazard_points(conn, categories=[c], display_crs=crs, scope=ctx.scope),
            )
        )

    fieldwork = add_fieldwork_layers(m, ctx, conn)  # visits and patrols (gis.fieldwork)
    inspection = add_inspection_layers(m, ctx, conn)  # inspections, hazards, campaigns (gis.fieldwork)

    heat = mapdata.heat_data(conn, flt, ctx.heat_threshold, display_crs=crs)
    # The points go in a data script of their own and are handed to the layer by reference.
    heat_layer = HeatMap([], name=label("layer.heat", lang), **HEAT_OPTIONS)
    heat_layer.add_to(m)
    ref = ml.inline_data(m, "heat", heat.points)
    ml.Script(f"{heat_layer.get_name()}.setLatLngs({ref});").add_to(m)
    ml.register(m, "heat", heat_layer)

    incident_children: list[dict[str, Any]] = [{"label": label("layer.heat", lang), "layer": heat_layer}]
    # Gi* hot spots of the last complete week (gis.analysis), hidden until switched on.
    hot_spots = hotspot_layer.add(m, conn, ctx, flt)
    incident_children.append({"label": ml.safe_label(hotspot_layer.text("layer", lang)), "layer": hot_spots})
    repeats = hotspot_layer.add_repeats(m, conn, ctx, flt)
    incident_children.append({"label": ml.safe_label(hotspot_layer.text("repeats", lang)), "layer": repeats})
    kpi_grids = kpi_layer.add(m, conn, ctx, flt)  # a KPI per grid, chosen in the KPI strip
    incident_children.append({"label": ml.safe_label(label("layer.kpi", lang)), "layer": kpi_grids})
    # Overdue and escalated incidents: two layers, two markers (gis.core.vocab: not the same thing).
    for flag, show in zip(mapdata.FLAGS, (True, False), strict=True):
        group = _point_group(
            m,
            ctx,
            flag,
            folium.FeatureGroup(name=label(f"layer.{flag}", lang), show=show),
            f"gridmap.builders.{'incidents' if flag == 'overdue' else flag}",
            ctx.url(f"/maps/data/incidents/{flag}.geojson", **flt.query()),
            lambda f=flag: mapdata.flagged_incidents(
                conn, flt, f, now=ctx.at, limit=OVERDUE_LIMIT, role=ctx.role, display_crs=crs
            ),
        )
        incident_children.append({"label": label(f"layer.{flag}", lang), "layer": group})
    if not ctx.standalone:
        live_group = folium.FeatureGroup(name=label("layer.live", lang), show=True)
        live_group.add_to(m)
        live = Realtime(
            ctx.url("/maps/data/incidents/live.geojson", **flt.query()),
            interval=ctx.realtime_interval_ms,
            get_feature_id=JsCode("function (f) { return f.properties.id; }"),
            point_to_layer=JsCode("gridmap.liveMarker"),
            remove_missing=True,
            container=live_group,
        ).add_to(m)
        ml.register(m, "live", live)
        ml.register(m, "live_group", live_group)
        # The push (GET /events, key as ?key=: EventSource sends no headers) replaces the polling while it is up.
        ticker = {k.removeprefix("ticker."): v for k, v in labels(lang, ("ticker.",)).items()}
        stream_url = ml.js_data(ctx.url("/events"))
        # The live layer ignores the report window (it shows what was received lately); any other
        # filter may not match a pushed feature, which then triggers a filtered re-read instead.
        window_keys = ("window", "from", "to", "start", "end")
        filtered = "true" if any(k not in window_keys for k in flt.query()) else "false"
        ml.Script(f"gridmap.liveStream({live.get_name()}, {stream_url}, {filtered}, {ml.js_data(ticker)});").add_to(m)
        incident_children.append({"label": label("layer.live", lang), "layer": live_group})

    overlay_tree = [
        {"label": label("tree.incidents", lang), "children": incident_children},
        {
            "label": label("tree.boundaries", lang),
            "selectAllCheckbox": True,
            "collapsed": True,
            "children": [
                {"label": label(f"layer.{k}", lang), "layer": areas[k]}
                for k in ("county", "town", "village", "grid", "micro_grid")
            ],
        },
        {
            "label": label("tree.police", lang),
            "selectAllCheckbox": True,
            "collapsed": True,
            "children": [{"label": label(f"layer.{k}", lang), "layer": areas[k]} for k in ("station", "beat")],
        },
        {
            "label": label("tree.buildings", lang),
            "collapsed": True,
            "children": [{"label": label("layer.rentals", lang), "layer": rentals}],
        },
        {
            "label": label("tree.hazards", lang),
            "selectAllCheckbox": True,
            "collapsed": True,
            "children": [{"label": g.layer_name, "layer": g} for g in hazard_groups],
        },
        fieldwork,
        inspection,
    ]
    # Folded: open, the tree covered the legend on a laptop screen (1366x768). The control opens on
    # hover or tap and its groups on their "+"; only the incident layers show when it opens.
    TreeLayerControl(overlay_tree=overlay_tree, collapsed=True).add_to(m)

    choices = mapdata.incident_choices()
    ml.add_html(m, ml.filter_form(ctx, PATH, label("title.command_center", lang), flt, choices))
    totals = {flag: mapdata.count_flagged(conn, flt, flag, now=ctx.at) for flag in mapdata.FLAGS}
    notes = _legend_notes(ctx, heat, totals["overdue"], totals["escalated"])
    notes.append(inspection_note(conn, ctx))  # which campaign the choropleths show
    ml.add_html(m, ml.legend(ctx, _legend_items(ctx), notes))
    ml.add_html(m, kpi_strip.panel(conn, ctx, flt))  # KPIs today / this week, rankings, the KPI selector
    return m


def _legend_items(ctx: PageContext) -> list[str]:
    lang = ctx.lang
    items = [ml.heat_ramp(label("legend.heat", lang))]
    items += fieldwork_legend(ctx)  # grids not visited lately, patrol tracks
    items += inspection_legend(ctx)  # inspection risk and age, hazards, campaign shares
    items += ml.area_legend(lang, ("county", "town", "village", "grid", "beat"))
    items += [ml.swatch(c, label(f"risk.{r}", lang)) for r, c in ml.RISK_COLORS.items() if r != "none"]
    items += [ml.swatch(c, label(f"hstatus.{s}", lang)) for s, c in ml.HAZARD_STATUS_COLORS.items()]
    items.append(ml.swatch(ml.INCIDENT_COLOR, label("layer.overdue", lang)))
    items.append(ml.swatch(ml.ESCALATED_COLOR, label("layer.escalated", lang)))
    items += hotspot_layer.legend_items(ctx)
    items += kpi_layer.legend_items(ctx)
    if not ctx.standalone:
        items.append(ml.swatch("#ff00aa", label("layer.live", lang)))
    return items


def _legend_notes(ctx: PageContext, heat: mapdata.HeatData, overdue: int, escalated: int) -> list[str]:
    lang = ctx.lang
    notes = [label("legend.incidents_total", lang, n=f"{heat.total:,}")]
    notes.append(label("legend.overdue", lang, n=f"{overdue:,}", limit=f"{OVERDUE_LIMIT:,}"))
    notes.append(label("legend.escalated", lang, n=f"{escalated:,}"))
    if heat.aggregated:
        notes.append(label("legend.heat_cells", lang, cell=f"{heat.cell_m:g}"))
    else:
        notes.append(label("legend.heat_raw", lang))
    notes.append(hotspot_layer.legend_note(ctx))
    if not ctx.standalone:
        notes.append(label("legend.live_push", lang, s=f"{ctx.realtime_interval_ms / 1000:g}"))
    return notes
