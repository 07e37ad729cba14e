"""One grid's dashboard (网格详情): the map of the grid on the left, figures and trends on the right.

Map: the grid boundary, its micro-grids, rental buildings by risk, hazards, recent and overdue
incidents. Panel: households, staff, counts, and two inline SVG charts (incidents per week by
category, closure rate per week).
"""

from __future__ import annotations

import html
from collections import defaultdict
from typing import Any

import folium

from gis.core.predicates import BACKLOG
from gis.outputs import mapdata
from gis.outputs.mapdata import IncidentFilter
from gis.spatial.areas import Conn
from maps import charts, fieldwork_layers, inspection_layers
from maps import layers as ml
from maps.i18n import label
from maps.page import PageContext

PATH = "/maps/grids/{code}"
RECENT_LIMIT = 300


def build(conn: Conn, ctx: PageContext, code: str, flt: IncidentFilter) -> folium.Map | None:
    """The dashboard of grid ``code``, or None when no grid in force has that code."""
    lang = ctx.lang
    crs = ctx.display_crs
    grid = mapdata.layer_geojson(conn, "grid", codes=[code], display_crs=crs, cache=ctx.layer_cache)
    if not grid["features"]:
        return None
    props = grid["features"][0]["properties"]
    m = ml.base_map(ctx, mapdata.area_bounds(conn, "grid", code), width="60%")
    ml.setup(m, ctx)

    def group(key: str, builder: str, data: dict[str, Any], show: bool = True) -> None:
        target = folium.FeatureGroup(name=label(f"layer.{key}", lang), show=show).add_to(m)
        ml.fill(m, key, target, builder, data=data)

    group("grid", "gridmap.builders.areas('grid')", grid)
    micro = mapdata.layer_geojson(conn, "micro_grid", parent_codes=[code], display_crs=crs, cache=ctx.layer_cache)
    group("micro_grid", "gridmap.builders.areas('micro_grid')", micro)
    group(
        "rentals",
        "gridmap.builders.buildings",
        mapdata.rental_buildings(conn, grid_code=code, role=ctx.role, display_crs=crs),
    )
    group("hazards_all", "gridmap.builders.hazards", mapdata.hazard_points(conn, grid_code=code, display_crs=crs))
    group(
        "recent",
        "gridmap.builders.incidents",
        mapdata.recent_incidents(conn, flt, grid_code=code, limit=RECENT_LIMIT, role=ctx.role, display_crs=crs),
    )
    for flag in mapdata.FLAGS:
        group(
            flag,
            f"gridmap.builders.{'incidents' if flag == 'overdue' else flag}",
            mapdata.flagged_incidents(conn, flt, flag, grid_code=code, now=ctx.at, role=ctx.role, display_crs=crs),
        )
    fieldwork_layers.add_grid_layers(m, ctx, conn, code)
    inspection_layers.add_grid_layers(m, ctx, conn, code)  # rentals inspected within interval or due
    folium.LayerControl(collapsed=False, position="topleft").add_to(m)

    stats = mapdata.grid_stats(conn, flt, codes=[code], now=ctx.at, role=ctx.role).get(code, {})
    trend = mapdata.weekly_trend(conn, flt, code)
    form = ml.filter_form(
        ctx, PATH.format(code=code), label("title.grid", lang), flt, mapdata.incident_choices(), panel=False
    )
    field = fieldwork_layers.grid_section(conn, ctx, code)  # visit and patrol coverage
    field += inspection_layers.grid_section(conn, ctx, code)  # inspection coverage
    ml.add_html(
        m, f'<div class="gm-panel gm-side">{form}{_summary(ctx, props, stats)}{field}{_charts(ctx, trend)}</div>'
    )
    items = [ml.swatch(c, label(f"risk.{r}", lang)) for r, c in ml.RISK_COLORS.items() if r != "none"]
    items += [ml.swatch(c, label(f"hstatus.{s}", lang)) for s, c in ml.HAZARD_STATUS_COLORS.items()]
    items.append(ml.swatch(ml.INCIDENT_COLOR, label("layer.recent", lang)))
    items.append(ml.swatch(ml.ESCALATED_COLOR, label("layer.escalated", lang)))
    items += inspection_layers.grid_legend_items(ctx)
    ml.add_html(
        m,
        ml.legend(ctx, items).replace(
            'class="gm-panel gm-legend"', 'class="gm-panel gm-legend" style="right:calc(40% + 10px)"'
        ),
    )
    return m


def _summary(ctx: PageContext, props: dict[str, Any], stats: dict[str, Any]) -> str:
    lang = ctx.lang
    esc = html.escape
    rows = [
        (label("f.name", lang), props.get("name")),
        (label("f.code", lang), props.get("code")),
        (label("f.parent_code", lang), props.get("parent_code")),
        (label("f.households", lang), props.get("households")),
    ]
    rows += [
        (label(f"f.{k}", lang), stats.get(k, 0)) for k in ("incidents", "done", *BACKLOG, "rentals", "hazards_open")
    ]
    table = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v if v is not None else '-'))}</td></tr>" for k, v in rows)
    staff = "".join(
        f"<tr><td>{esc(label('role.' + s['role'], lang))}</td><td>{esc(s['name'])}</td>"
        f"<td>{esc(s.get('phone') or '')}</td></tr>"
        for s in stats.get("staff", [])
    )
    return (
        f"<h1>{esc(str(props.get('name')))}</h1><table>{table}</table>"
        f"<h2>{esc(label('f.staff', lang))}</h2><table>{staff or '<tr><td>-</td></tr>'}</table>"
    )


def _charts(ctx: PageContext, trend: list[dict[str, Any]]) -> str:
    lang = ctx.lang
    weekly_title = label("chart.weekly", lang)
    closure_title = label("chart.closure", lang)
    if not trend:
        none = html.escape(label("chart.none", lang))
        return f"<h2>{html.escape(weekly_title)}</h2><p>{none}</p>"
    weeks = sorted({r["week"] for r in trend})
    index = {w: i for i, w in enumerate(weeks)}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(weeks))
    totals, done = [0] * len(weeks), [0] * len(weeks)
    for r in trend:
        i = index[r["week"]]
        series[r["category"]][i] += r["count"]
        totals[i] += r["count"]
        done[i] += r["done"]
    periods = [w.strftime("%m-%d") for w in weeks]
    names = {c: label(f"category.{c}", lang) for c in series}
    bars = charts.stacked_bars(periods, dict(sorted(series.items())), names, weekly_title)
    rates = [d / t if t else None for d, t in zip(done, totals, strict=True)]
    line = charts.rate_line(periods, rates, closure_title)
    return f"<h2>{html.escape(weekly_title)}</h2>{bars}<h2>{html.escape(closure_title)}</h2>{line}"
