"""Inspection layers of the map pages (gis.fieldwork.maplayers): rental buildings by the risk of
their latest inspection and by the time since it, open and overdue hazards, and a campaign's
progress by grid (command centre); a grid page's inspection coverage (figures and a layer of its
rental buildings inspected within their interval or overdue).

Served pages fetch the layers from the field-work endpoints when they are switched on; standalone
files carry them inline, as maps/fieldwork_layers.py does. The layers draw with Leaflet alone (no
extra assets), so the pages work offline; popups name their fields through the page's labels.
"""

from __future__ import annotations

import html
from typing import Any

import folium

from gis.core.vocab import COUNTY_TZ
from gis.fieldwork import buildings, maplayers
from gis.fieldwork.common import NotFound
from gis.fieldwork.errors import FieldworkInputError
from gis.spatial.areas import Conn
from maps import layers as ml
from maps.i18n import label
from maps.page import PageContext

AGE_COLORS = {"lt30": "#1a9850", "d30_90": "#a6d96a", "d90_180": "#fdae61", "gt180": "#d73027", "never": "#4d4d4d"}
# Not the risk colours: the grid page shows both layers at once.
DUE_COLORS = {"within": "#2b83ba", "overdue": "#c51b7d", "never": "#4d4d4d"}
RISK_COLORS = {**ml.RISK_COLORS, "none": AGE_COLORS["never"]}  # "none": never inspected
OVERDUE_RING = {"color": "#000", "weight": 2.5, "radius": 7}

# A table row of a popup: the field's label from the page's labels, the value escaped.
_ROW = (
    "function row(k, v) { if (v === null || v === undefined || v === '') return ''; "
    "return '<tr><th>' + gridmap.esc(gridmap.t('f.' + k)) + '</th><td>' + gridmap.esc(v) + '</td></tr>'; } "
)


def _building_builder(colors: dict[str, str]) -> str:
    """Buildings as circles coloured by their class (``cls``), with a popup of the inspection."""
    return (
        "function (data, group) { var colors = " + ml.js_data(colors) + "; " + _ROW + "var t = gridmap.t; "
        "group.addLayer(L.geoJSON(data, {pointToLayer: function (f, ll) { var p = f.properties; "
        "return L.circleMarker(ll, {radius: 5, weight: 1, color: '#333', fillOpacity: 0.9, "
        "fillColor: colors[p.cls] || '#777'}).bindPopup(function () { return '<table class=\"gm-popup\">' + "
        "row('name', p.name || p.code) + row('grid_code', p.grid_code) + "
        "row('risk_level', p.risk_level === 'none' ? t('age.never') : t('risk.' + p.risk_level)) + "
        "row('last_inspected_at', String(p.last_inspected_at || '').replace('T', ' ').slice(0, 16)) + "
        "row('days_since', p.days) + row('due_on', p.due_on) + '</table>'; }); }})); }"
    )


def _hazard_builder() -> str:
    """Hazards coloured by status; overdue ones larger with a thick black ring."""
    ring = OVERDUE_RING
    return (
        "function (data, group) { var colors = " + ml.js_data(ml.HAZARD_STATUS_COLORS) + "; " + _ROW + ""
        "var t = gridmap.t; group.addLayer(L.geoJSON(data, {pointToLayer: function (f, ll) { "
        "var p = f.properties; var late = !!p.overdue; "
        f"return L.circleMarker(ll, {{radius: late ? {ring['radius']} : 5, weight: late ? {ring['weight']} : 1, "
        f"color: late ? '{ring['color']}' : '#222', fillOpacity: 0.9, "
        "fillColor: late ? colors.overdue : (colors[p.status] || '#555')}).bindPopup(function () { "
        "return '<table class=\"gm-popup\">' + row('category', t('hazard.' + p.category)) + "
        "row('severity', t('severity.' + p.severity)) + "
        "row('status', t('hstatus.' + p.status) + "
        "(late && p.status !== 'overdue' ? ' / ' + t('hstatus.overdue') : '')) + "
        "row('found_at', String(p.found_at || '').slice(0, 10)) + "
        "row('rectify_by', String(p.rectify_by || '').slice(0, 10)) + "
        "row('escalation_level', p.escalation_level ? t('escalation.' + p.escalation_level) : '') + "
        "row('grid_code', p.grid_code) + '</table>'; }); }})); }"
    )  # fmt: skip


def _campaign_builder() -> str:
    """Grids filled as their ``style`` says (the share's colour), with the campaign's figures."""
    figures = ("targets", "inspected", "failed", "hazards_found", "rectified", "rectified_on_time", "hazards_overdue")
    fields = ml.js_data({f: {"hazards_found": "hazards", "hazards_overdue": "overdue"}.get(f, f) for f in figures})
    return (
        "function (data, group) { var fields = " + fields + "; " + _ROW + ""
        "group.addLayer(L.geoJSON(data, {style: function (f) { return f.properties.style; }, "
        "onEachFeature: function (f, layer) { var p = f.properties; layer.bindPopup(function () { "
        "var out = '<table class=\"gm-popup\">' + row('name', p.name) + row('code', p.code); "
        "Object.keys(fields).forEach(function (k) { out += row(k, p[fields[k]]); }); "
        "return out + row('share_done', p.share === null ? '-' : Math.round(p.share * 1000) / 10 + '%') + "
        "'</table>'; }); }})); }"
    )


BUILDING_BUILDERS = {"risk": _building_builder(RISK_COLORS), "age": _building_builder(AGE_COLORS)}
DUE_BUILDER = _building_builder(DUE_COLORS)
HAZARD_BUILDER = _hazard_builder()
CAMPAIGN_BUILDER = _campaign_builder()


def _campaign(conn: Conn, ctx: PageContext) -> dict[str, Any] | None:
    """The campaign the page asks for (``?campaign=``), else the active one in the caller's scope."""
    raw = ctx.extra_query.get("campaign")
    try:
        chosen = int(raw) if raw else None
    except ValueError:
        raise FieldworkInputError("campaign", raw, "is not a campaign id") from None
    today = ctx.at.astimezone(COUNTY_TZ).date()
    try:
        return maplayers.chosen_campaign(conn, ctx.scope, chosen, today)
    except NotFound:
        raise FieldworkInputError("campaign", raw, f"no campaign {raw} inside the key's scope") from None


def _campaign_selector(m: folium.Map, ctx: PageContext, conn: Conn, chosen: dict[str, Any] | None) -> None:
    """A campaign choice in the page's filter form (served pages: a standalone file cannot reload),
    so the choropleths can show another campaign than the active one."""
    choices = maplayers.campaign_choices(conn, ctx.scope)
    if ctx.standalone or not choices:
        return
    esc = html.escape
    options = "".join(
        f'<option value="{c["id"]}"{" selected" if chosen and c["id"] == chosen["id"] else ""}>'
        f"{esc(c['name'])} ({c['starts_on']}–{c['ends_on']})</option>"
        for c in choices
    )
    ml.add_html(
        m,
        f'<template id="gm-campaign"><label>{esc(label("form.campaign", ctx.lang))}</label>'
        f'<select name="campaign">{options}</select></template>'
        "<script>document.addEventListener('DOMContentLoaded', function () { "
        "var t = document.getElementById('gm-campaign'), f = document.querySelector('#gm-filter fieldset'); "
        "if (t && f) f.insertBefore(t.content.cloneNode(true), f.querySelector('button')); });</script>",
    )


def add_to(m: folium.Map, ctx: PageContext, conn: Conn) -> dict[str, Any]:
    """Add the inspection layers (hidden at first) to a command-centre map; returns the layer
    tree's node for them."""
    lang, scope, crs, now = ctx.lang, ctx.scope, ctx.display_crs, ctx.at
    specs: list[tuple[str, str, str, str, Any]] = [
        (
            f"insp_{by}",
            label(f"layer.insp_{by}", lang),
            BUILDING_BUILDERS[by],
            ctx.url("/inspections/buildings.geojson", by=by),
            lambda by=by: maplayers.building_points(conn, by, scope, crs, now),
        )
        for by in ("risk", "age")
    ]
    for key, late in (("hazards_open", False), ("hazards_overdue", True)):
        specs.append(
            (
                key,
                label(f"layer.{key}", lang),
                HAZARD_BUILDER,
                ctx.url("/hazards/open.geojson", overdue=str(late).lower()),
                lambda late=late: maplayers.hazard_points(conn, scope, crs, late, now),
            )
        )
    campaign = _campaign(conn, ctx)
    _campaign_selector(m, ctx, conn, campaign)
    if campaign is not None:
        for measure in maplayers.MEASURES:
            specs.append(
                (
                    f"campaign_{measure}",
                    label(f"layer.campaign_{measure}", lang, name=campaign["name"]),
                    CAMPAIGN_BUILDER,
                    ctx.url(f"/campaigns/{campaign['id']}/grids.geojson", measure=measure),
                    lambda measure=measure: maplayers.campaign_grids(
                        conn, campaign["id"], measure, scope, crs, ctx.layer_cache, now
                    ),
                )
            )
    children = []
    for key, text, builder, url, fetch in specs:
        group = folium.FeatureGroup(name=ml.safe_label(text), show=False)
        group.add_to(m)
        if ctx.standalone:
            ml.fill(m, f"inspection:{key}", group, builder, data=fetch())
        else:
            ml.fill(m, f"inspection:{key}", group, builder, url=url)
        children.append({"label": ml.safe_label(text), "layer": group})
    node = {"label": label("tree.inspections", lang), "selectAllCheckbox": False, "collapsed": True}
    return {**node, "children": children}


def _group(title: str, swatches: list[str]) -> str:
    """One legend line: a title and its colours side by side (the command centre's legend is long)."""
    return f"<b>{html.escape(title)}</b>: " + " ".join(swatches)


def _ring(text: str) -> str:
    ring = OVERDUE_RING
    style = f"background:{ml.HAZARD_STATUS_COLORS['overdue']};border:2px solid {ring['color']};box-sizing:border-box"
    return f'<span class="gm-sw" style="{html.escape(style)}"></span>{html.escape(text)}'


def legend_items(ctx: PageContext) -> list[str]:
    """What the colours of the command centre's inspection layers mean."""
    lang = ctx.lang
    risk = [ml.swatch(c, label("age.never" if r == "none" else f"risk.{r}", lang)) for r, c in RISK_COLORS.items()]
    age = [ml.swatch(c, label(f"age.{a}", lang)) for a, c in AGE_COLORS.items()]
    hazards = [
        ml.swatch(c, label(f"hstatus.{s}", lang))
        for s, c in ml.HAZARD_STATUS_COLORS.items()
        if s not in ("rectified", "overdue")
    ]
    hazards.append(_ring(label("legend.hazard_overdue", lang)))
    shares, lower = [], 0
    for limit, color in maplayers.SHARE_RAMP:
        upper = min(int(round(limit * 100)), 100)
        shares.append(ml.swatch(color, f"{lower}–{upper}%" if upper < 100 else f"≥{lower}%"))
        lower = upper
    shares.append(ml.swatch(maplayers.NO_SHARE_COLOR, label("legend.campaign_none", lang)))
    return [
        _group(label("legend.insp_risk", lang), risk),
        _group(label("legend.insp_age", lang), age),
        _group(label("legend.hazards", lang), hazards),
        _group(label("legend.campaign", lang), shares),
    ]


def legend_note(conn: Conn, ctx: PageContext) -> str:
    """Which campaign the choropleths show (or that there is none)."""
    campaign = _campaign(conn, ctx)
    if campaign is None:
        return label("legend.no_campaign", ctx.lang)
    start, end = campaign["starts_on"].isoformat(), campaign["ends_on"].isoformat()
    return label("legend.campaign_of", ctx.lang, name=campaign["name"], start=start, end=end)


# --- the grid page -------------------------------------------------------------------------------


def add_grid_layers(m: folium.Map, ctx: PageContext, conn: Conn, code: str) -> None:
    """A grid page's rental buildings coloured by whether their inspection is due (inline, like the
    page's other layers)."""
    data = maplayers.building_points(conn, "due", ctx.scope, ctx.display_crs, ctx.at, code)
    group = folium.FeatureGroup(name=ml.safe_label(label("layer.insp_due", ctx.lang)), show=True).add_to(m)
    ml.fill(m, "inspection:due", group, DUE_BUILDER, data=data)


def grid_legend_items(ctx: PageContext) -> list[str]:
    due = [ml.swatch(c, label(f"due.{d}", ctx.lang)) for d, c in DUE_COLORS.items()]
    return [_group(label("legend.insp_due", ctx.lang), due)]


def grid_section(conn: Conn, ctx: PageContext, code: str) -> str:
    """A grid page's inspection panel: its rental buildings inspected within the interval of their
    risk level, overdue, never inspected, and the intervals in force."""
    lang = ctx.lang
    figures = maplayers.grid_inspection_figures(conn, code, ctx.scope, ctx.at)
    share = figures["share_within"]
    rows = [
        (label("insp.buildings", lang), figures["buildings"]),
        (label("due.within", lang), figures["within"]),
        (label("due.overdue", lang), figures["overdue"]),
        (label("due.never", lang), figures["never"]),
        (label("insp.due_total", lang), figures["overdue"] + figures["never"]),
        (label("insp.share_within", lang), "-" if share is None else f"{share * 100:.1f}%"),
    ]
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    days = buildings.intervals(conn)
    note = label("insp.intervals", lang, **{r: days.get(r, "-") for r in ("high", "medium", "low")})
    return (
        f"<h2>{html.escape(label('insp.coverage', lang))}</h2><table>{body}</table>"
        f'<p class="gm-note">{html.escape(note)}</p>'
    )
