"""The weekly briefing page (每周会商研判): the map of the county (or a town) on the left, the
briefing (gis.analysis.briefing) on the right: KPIs with their changes, a table per town (or
village), charts of the backlog and of the categories, new hot spots, repeat locations and overdue
hazards, and a link to the same briefing as XLSX.

Map: the towns (villages) shaded by their overdue incidents now, the grids hot this week coloured by
their Gi* class (a new hot spot outlined in black), repeat locations and overdue hazards as points.
Every layer is in the page (a briefing is small); the page fetches nothing but its scripts.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import folium

from gis.analysis.features import CLASS_COLORS
from gis.analysis.kpis import KPI_NAMES
from gis.outputs import mapdata
from gis.outputs.features import point_features
from gis.spatial.areas import Conn
from maps import charts
from maps import layers as ml
from maps.hotspot_layer import text as hot_text
from maps.i18n import label
from maps.kpi_strip import fmt_change, fmt_value
from maps.page import PageContext

PATH = "/maps/briefing"
KPI_ROWS = ("reported", "closed", "closure_rate", "on_time_rate", "satisfaction_rate", "settled_in_town_rate",
            "escalation_rate", "reopen_rate", "accept_p50_min", "handle_p50_h")  # fmt: skip
UNIT_KPIS = ("reported", "closure_rate", "on_time_rate", "satisfaction_rate")
OVERDUE_RAMP = ("#fee5d9", "#fcae91", "#fb6a4a", "#cb181d")
REPEAT_COLOR = "#e6550d"
HAZARD_COLOR = "#7b0000"
NEW_HOT_OUTLINE = "#000"
LIST_LIMIT = 10
CHART_CATEGORIES = 8

_BUILDERS = """
gridmap.builders.briefAreas = function (data, group) {
  group.addLayer(L.geoJSON(data, {
    style: function (f) { return f.properties.style; },
    onEachFeature: function (f, layer) { layer.bindPopup(f.properties.popup); },
  }));
};
gridmap.builders.briefPoints = function (data, group) {
  (data.features || []).forEach(function (f) {
    var p = f.properties, c = f.geometry.coordinates;
    group.addLayer(L.circleMarker(L.latLng(c[1], c[0]), {radius: p.radius, color: '#fff', weight: 1,
      fillColor: p.color, fillOpacity: 0.9}).bindPopup(p.popup));
  });
};
"""


def _esc(value: Any) -> str:
    return html.escape("-" if value is None else str(value))


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in pairs)


def unit_table(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per unit (town or village) joining its KPIs, backlog and overdue hazards."""
    rows: dict[str, dict[str, Any]] = {}
    for g in data["kpis"]["groups"]:
        if g["key"]:
            rows.setdefault(g["key"], {"code": g["key"], "name": g["name"]})["kpis"] = g["kpis"]
    for u in data["backlog"]["units"]:
        if u["code"]:
            row = rows.setdefault(u["code"], {"code": u["code"], "name": u["name"]})
            row["open"], row["overdue"] = u["open"], u["overdue"]
    for h in data["hazards"]["units"]:
        if h["code"]:
            rows.setdefault(h["code"], {"code": h["code"], "name": h["name"]})["hazards_overdue"] = h["overdue"]
    out = sorted(rows.values(), key=lambda r: r["code"])
    for r in out:
        r.setdefault("kpis", {})
        r.setdefault("open", 0)
        r.setdefault("overdue", 0)
        r.setdefault("hazards_overdue", 0)
    return out


def _area_layer(conn: Conn, ctx: PageContext, data: dict[str, Any], units: list[dict[str, Any]]) -> dict[str, Any]:
    lang = ctx.lang
    town = data["area"]["code"]
    layer = data["unit"]
    shapes = mapdata.layer_geojson(
        conn, layer, parent_codes=[town] if town else None, display_crs=ctx.display_crs,
        cache=ctx.layer_cache, scope=ctx.scope,
    )  # fmt: skip
    by_code = {u["code"]: u for u in units}
    top = max((u["overdue"] for u in units), default=0)
    features = []
    for f in shapes["features"]:
        p = f["properties"]
        u = by_code.get(p["code"], {"kpis": {}, "open": 0, "overdue": 0, "hazards_overdue": 0})
        step = 0 if not top else min(len(OVERDUE_RAMP) - 1, int(u["overdue"] * len(OVERDUE_RAMP) / (top + 1)))
        pairs = [(label(f"kpi.{k}", lang), fmt_value(k, u["kpis"].get(k))) for k in UNIT_KPIS]
        pairs += [(label("f.open", lang), u["open"]), (label("f.overdue", lang), u["overdue"])]
        pairs.append((label("brief.hazards_overdue", lang), u["hazards_overdue"]))
        popup = f'<b>{_esc(p["name"])}</b> {_esc(p["code"])}<table class="gm-popup">{_rows(pairs)}</table>'
        style = {"fillColor": OVERDUE_RAMP[step], "fillOpacity": 0.45, "color": "#6a3d9a", "weight": 1.6}
        features.append({**f, "properties": {"code": p["code"], "name": p["name"], "style": style, "popup": popup}})
    return {"type": "FeatureCollection", "features": features}


def _hot_layer(conn: Conn, ctx: PageContext, spots: dict[str, Any]) -> dict[str, Any]:
    lang = ctx.lang
    new = {r["code"]: r for r in spots["new"]}
    hot = {r["code"]: r for r in spots["hot"]}
    codes = set(new) | set(hot)
    shapes = mapdata.layer_geojson(
        conn, "grid", codes=codes, display_crs=ctx.display_crs, cache=ctx.layer_cache, scope=ctx.scope
    )
    features = []
    for f in shapes["features"]:
        code = f["properties"]["code"]
        cls = spots["classes"].get(code, "not_significant")
        lines = [hot_text(cls, lang)]
        if code in new:
            lines.append(label("brief.new_hot", lang))
        popup = f"<b>{_esc(f['properties']['name'])}</b> {_esc(code)}<br>" + "<br>".join(_esc(x) for x in lines)
        style = {"fillColor": CLASS_COLORS[cls], "fillOpacity": 0.7, "weight": 3 if code in new else 0.6,
                 "color": NEW_HOT_OUTLINE if code in new else "#666"}  # fmt: skip
        features.append({**f, "properties": {"code": code, "style": style, "popup": popup}})
    return {"type": "FeatureCollection", "features": features}


def _points(ctx: PageContext, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    lang = ctx.lang
    repeats = [
        {
            "lon": r["lon"],
            "lat": r["lat"],
            "radius": min(4 + 2 * r["count"], 16),
            "color": REPEAT_COLOR,
            "popup": f"<b>{_esc(r['label'] or r['kind'])}</b><br>{_esc(label('f.incidents', lang))}: {r['count']}"
            f"<br>{_esc(', '.join(label(f'category.{c}', lang) for c in r['categories']))}",
        }
        for r in data["repeats"]["locations"]
    ]
    hazards = [
        {
            "lon": h["lon"],
            "lat": h["lat"],
            "radius": 6,
            "color": HAZARD_COLOR,
            "popup": f"<b>{_esc(label('hazard.' + h['category'], lang))}</b> #{h['id']}<br>"
            f"{_esc(label('f.rectify_by', lang))}: {_esc((h['rectify_by'] or '')[:16])}",
        }
        for h in data["hazards"]["items"]
    ]
    # Points are shown, not personal: no field here is masked, whatever the role.
    return point_features(repeats, ctx.display_crs, "admin"), point_features(hazards, ctx.display_crs, "admin")


def build(conn: Conn, ctx: PageContext, data: dict[str, Any]) -> folium.Map:
    """The briefing page for ``data`` (``gis.analysis.briefing.weekly_briefing``'s answer)."""
    lang = ctx.lang
    town = data["area"]["code"]
    bounds = mapdata.area_bounds(conn, "town", town) if town else None
    m = ml.base_map(ctx, bounds or mapdata.layer_bounds(conn, "county") or mapdata.layer_bounds(conn, "grid"),
                    width="60%")  # fmt: skip
    ml.setup(m, ctx)
    ml.Script(_BUILDERS).add_to(m)
    units = unit_table(data)
    repeats, hazards = _points(ctx, data)
    for key, name, layer_data, builder in (
        ("brief_units", label(f"brief.units.{data['unit']}", lang), _area_layer(conn, ctx, data, units), "briefAreas"),
        ("brief_hot", label("brief.hot", lang), _hot_layer(conn, ctx, data["hotspots"]), "briefAreas"),
        ("brief_repeats", label("brief.repeats", lang), repeats, "briefPoints"),
        ("brief_hazards", label("brief.hazards", lang), hazards, "briefPoints"),
    ):
        group = folium.FeatureGroup(name=ml.safe_label(name), show=True).add_to(m)
        ml.fill(m, key, group, f"gridmap.builders.{builder}", data=layer_data)
    folium.LayerControl(collapsed=False, position="topleft").add_to(m)
    side = "".join((_head(conn, ctx, data), _kpis(ctx, data), _units(ctx, data, units), _charts(ctx, data, units),
                    _lists(ctx, data)))  # fmt: skip
    ml.add_html(m, f'<div class="gm-panel gm-side" id="gm-briefing">{side}</div>')
    ramp = "".join(f'<span class="gm-sw" style="background:{c};border-radius:0"></span>' for c in OVERDUE_RAMP)
    items = [f"{ramp} {html.escape(label('brief.overdue_ramp', lang))}"]
    items += [ml.swatch(CLASS_COLORS[c], hot_text(c, lang)) for c in ("hot_99", "hot_95", "hot_90")]
    items.append(ml.line(NEW_HOT_OUTLINE, label("brief.new_hot", lang)))
    items += [
        ml.swatch(REPEAT_COLOR, label("brief.repeats", lang)),
        ml.swatch(HAZARD_COLOR, label("brief.hazards", lang)),
    ]
    legend = ml.legend(ctx, items, [label("brief.as_of", lang, at=data["as_of"][:16].replace("T", " "))])
    ml.add_html(
        m, legend.replace('class="gm-panel gm-legend"', 'class="gm-panel gm-legend" style="right:calc(40% + 10px)"')
    )
    return m


def _head(conn: Conn, ctx: PageContext, data: dict[str, Any]) -> str:
    lang = ctx.lang
    area = data["area"]["name"] or label("brief.county", lang)
    towns = mapdata.layer_geojson(conn, "town", cache=ctx.layer_cache, scope=ctx.scope)["features"]
    town = data["area"]["code"]
    options = f'<option value="">{_esc(label("brief.county", lang))}</option>' + "".join(
        f'<option value="{_esc(f["properties"]["code"])}"{" selected" if f["properties"]["code"] == town else ""}>'
        f"{_esc(f['properties']['name'])}</option>"
        for f in sorted(towns, key=lambda f: f["properties"]["code"])
    )
    hidden = (f'<input type="hidden" name="lang" value="{_esc(lang)}">' if lang != "zh" else "") + (
        f'<input type="hidden" name="key" value="{_esc(ctx.key)}">' if ctx.key else ""
    )
    form = (
        f'<form id="gm-brief-form" method="get" action="{_esc(ctx.base_url + PATH)}">'
        f"<label>{_esc(label('brief.week', lang))} "
        f'<input type="week" name="week" value="{_esc(data["week"])}"></label> '
        f'<label>{_esc(label("layer.town", lang))} <select name="town">{options}</select></label>{hidden} '
        f'<button type="submit">{_esc(label("form.apply", lang))}</button></form>'
    )
    xlsx = ctx.url("/briefings/weekly.xlsx", week=data["week"], town=town)
    links = (
        f'<a id="gm-brief-xlsx" href="{_esc(xlsx)}">{_esc(label("brief.xlsx", lang))}</a> · '
        f'<a class="gm-lang" href="{_esc(ctx.page_url(PATH))}">{_esc(label("form.lang", lang))}</a>'
    )
    start = data["start"][:10]
    last = (dt.date.fromisoformat(data["end"][:10]) - dt.timedelta(days=1)).isoformat()  # the end is exclusive
    return (
        f"<h1>{_esc(label('title.briefing', lang))} · {_esc(area)} · {_esc(data['week'])}</h1>"
        f"<p>{_esc(start)} – {_esc(last)} ({_esc(label('brief.as_of', lang, at=data['as_of'][:16].replace('T', ' ')))})"
        f"</p>{form}<p>{links}</p>"
    )


def _kpis(ctx: PageContext, data: dict[str, Any]) -> str:
    lang = ctx.lang
    total = data["kpis"]["total"]
    head = "".join(
        f"<th>{_esc(label(k, lang))}</th>" for k in ("brief.value", "brief.vs_previous", "brief.vs_last_year")
    )
    rows = "".join(
        f'<tr data-kpi="{k}"><th>{_esc(label(f"kpi.{k}", lang))}</th><td>{_esc(fmt_value(k, total["kpis"][k]))}</td>'
        f"<td>{_esc(fmt_change(k, total['vs_previous'][k]))}</td>"
        f"<td>{_esc(fmt_change(k, total['vs_last_year'][k]))}</td></tr>"
        for k in KPI_ROWS
        if k in KPI_NAMES
    )
    return f"<h2>{_esc(label('brief.kpis', lang))}</h2><table><tr><th></th>{head}</tr>{rows}</table>"


def _units(ctx: PageContext, data: dict[str, Any], units: list[dict[str, Any]]) -> str:
    lang = ctx.lang
    cols = [label(f"kpi.{k}", lang) for k in UNIT_KPIS]
    cols += [label("f.open", lang), label("f.overdue", lang), label("brief.hazards_overdue", lang)]
    head = "<tr><th></th>" + "".join(f"<th>{_esc(c)}</th>" for c in cols) + "</tr>"
    body = "".join(
        f'<tr data-code="{_esc(u["code"])}"><th>{_esc(u["name"] or u["code"])}</th>'
        + "".join(f"<td>{_esc(fmt_value(k, u['kpis'].get(k)))}</td>" for k in UNIT_KPIS)
        + f"<td>{u['open']}</td><td>{u['overdue']}</td><td>{u['hazards_overdue']}</td></tr>"
        for u in units
    )
    title = label(f"brief.units.{data['unit']}", lang)
    return f"<h2>{_esc(title)}</h2><table>{head}{body}</table>"


def _charts(ctx: PageContext, data: dict[str, Any], units: list[dict[str, Any]]) -> str:
    lang = ctx.lang
    out = []
    if units:
        names = [str(u["name"] or u["code"]) for u in units]
        series = {"overdue": [u["overdue"] for u in units], "other": [u["open"] - u["overdue"] for u in units]}
        legend = {"overdue": label("f.overdue", lang), "other": label("brief.not_overdue", lang)}
        title = label("brief.backlog", lang)
        out.append(f"<h2>{_esc(title)}</h2>{charts.stacked_bars(names, series, legend, title)}")
    categories = sorted(data["categories"], key=lambda c: (-c["count"], c["category"]))[:CHART_CATEGORIES]
    if categories:
        groups = [label(f"category.{c['category']}", lang) for c in categories]
        values = {"week": [c["count"] for c in categories], "mean": [c["previous_mean"] for c in categories]}
        legend = {"week": label("brief.this_week", lang), "mean": label("brief.mean4", lang)}
        title = label("brief.categories", lang)
        out.append(f"<h2>{_esc(title)}</h2>{charts.grouped_bars(groups, values, legend, title)}")
    return "".join(out)


def _lists(ctx: PageContext, data: dict[str, Any]) -> str:
    lang = ctx.lang
    none = f"<p>{_esc(label('brief.none', lang))}</p>"

    def table(rows: list[list[Any]], kind: str, keys: list[str]) -> str:
        if not rows:
            return none
        body = "".join(
            f'<tr data-{kind}="{_esc(key)}">' + "".join(f"<td>{_esc(v)}</td>" for v in row) + "</tr>"
            for key, row in zip(keys, rows, strict=True)
        )
        return f"<table>{body}</table>"

    rising = [c for c in data["categories"] if c["change"] > 0][:LIST_LIMIT]
    new = data["hotspots"]["new"][:LIST_LIMIT]
    hot = data["hotspots"]["hot"][:LIST_LIMIT]
    repeats = data["repeats"]["locations"][:LIST_LIMIT]
    hazards = data["hazards"]["items"][:LIST_LIMIT]
    up = [
        [label(f"category.{c['category']}", lang), c["count"], c["previous_mean"], f"{c['change']:+g}"] for c in rising
    ]
    sections = [
        ("brief.categories", table(up, "category", [c["category"] for c in rising])),
        ("brief.new_hot", table([[r["name"], r["code"], r["counts"][-1]] for r in new],
                                "new", [r["code"] for r in new])),
        ("brief.hot", table([[r["name"], hot_text(r["class"], lang).split("：")[0], r["count"]] for r in hot],
                            "hot", [r["code"] for r in hot])),
        ("brief.repeats", table([[r["label"] or r["kind"], r["count"], r["last_at"][:10]] for r in repeats],
                                "repeat", [str(r["id"] or f"{r['lon']},{r['lat']}") for r in repeats])),
        ("brief.hazards", table(
            [[label(f"hazard.{h['category']}", lang), f"#{h['id']}", (h["rectify_by"] or "")[:10]] for h in hazards],
            "hazard", [str(h["id"]) for h in hazards])),
    ]  # fmt: skip
    return "".join(f"<h2>{_esc(label(k, lang))}</h2>{body}" for k, body in sections)
