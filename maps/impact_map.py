"""The impact preview of a draft as a before/after map: the polygons as they are in force (dashed)
and as the draft would make them (filled), each with what moves in and out of it, people included
(the posting moves of boundaries/postingplan.py, names already masked by the report's maker)."""

from __future__ import annotations

import html
from typing import Any

import folium
import geopandas as gpd

from maps import offline

# Colours the planners read at a glance: red what goes, blue what comes.
BEFORE = {"color": "#c0392b", "weight": 2, "dashArray": "6 4", "fill": False}
AFTER = {"color": "#1f5fa8", "weight": 2, "fillColor": "#1f5fa8", "fillOpacity": 0.18}
KIND_LABELS = {
    "buildings": "建筑",
    "addresses": "地址",
    "hazards": "隐患",
    "incidents": "在办事件",
    "households": "户数",
}


ACTION_LABELS = {"move": "调入 moves", "end": "结束 ends", "add": "新任 new"}


def _people(code: str, postings: list[dict[str, Any]]) -> list[str]:
    """One line per posting that leaves or reaches ``code``: who, which role, from where to where."""
    rows = []
    for m in postings:
        if code not in (m.get("from_code"), m.get("to_code")):
            continue
        way = f"{m.get('from_code') or '-'} → {m.get('to_code') or '结束 ends'}"
        who = f"{m.get('role_label', m['role'])} {m.get('name') or ''}"
        flag = " ⚠" if m.get("problem") else ""
        rows.append(f"人员 {html.escape(ACTION_LABELS.get(m['action'], m['action']))}: {html.escape(who)} {way}{flag}")
    return rows


def _popup(
    code: str, name: str, state: str, moves: dict[str, dict[str, int]] | None, postings: list[dict[str, Any]]
) -> str:
    rows = [f"<b>{html.escape(code)}</b> {html.escape(name)}<br><i>{state}</i>"]
    if moves:
        for direction, label in (("in", "迁入 in"), ("out", "迁出 out")):
            counts = ", ".join(f"{KIND_LABELS.get(k, k)} {v}" for k, v in moves[direction].items() if v)
            if counts:
                rows.append(f"{label}: {html.escape(counts)}")
    rows += _people(code, postings)
    return "<br>".join(rows)


def _add(
    group: folium.FeatureGroup,
    frame: gpd.GeoDataFrame,
    style: dict[str, Any],
    state: str,
    polygons: dict[str, Any],
    postings: list[dict[str, Any]],
) -> None:
    for rec in frame.itertuples(index=False):
        shape = folium.GeoJson(
            rec.geometry.__geo_interface__,
            style_function=lambda _f, s=style: s,
            tooltip=html.escape(f"{rec.code} {rec.name}"),
        )
        # A plain Popup (not GeoJsonPopup): the text is built here, not from feature properties.
        popup = _popup(rec.code, rec.name, state, polygons.get(rec.code), postings)
        shape.add_child(folium.Popup(popup, max_width=360))
        shape.add_to(group)


def _posting_totals(postings: list[dict[str, Any]]) -> str:
    counts = {a: sum(1 for m in postings if m["action"] == a) for a in ACTION_LABELS}
    text = ", ".join(f"{label} {counts[a]}" for a, label in ACTION_LABELS.items())
    problems = sum(1 for m in postings if m.get("problem"))
    return text + (f", 待定 to decide {problems}" if problems else "")


def impact_map_page(
    base: gpd.GeoDataFrame,
    draft: gpd.GeoDataFrame,
    report: dict[str, Any],
    *,
    asset_prefix: str = offline.DEFAULT_PREFIX,
) -> str:
    """HTML of the before/after map. ``base`` and ``draft`` are the layer's polygons in force and
    in the draft (EPSG:4326); ``report`` is ``boundaries.impact.preview_impact``'s result."""
    offline.localize(asset_prefix)
    touched = set(report["changed"]) | set(report["added"]) | set(report["removed"])
    before = base[base["code"].isin(touched)]
    after = draft[draft["code"].isin(touched)]
    shown = after if len(after) else before
    fmap = folium.Map(tiles=None, control_scale=True, max_zoom=19)
    if len(shown):
        minx, miny, maxx, maxy = shown.total_bounds
        fmap.fit_bounds([[miny, minx], [maxy, maxx]])
    polygons = report.get("polygons", {})
    old = folium.FeatureGroup(name=f"变更前 before (generation {report.get('base_generation', '')})".strip())
    new = folium.FeatureGroup(name="变更后 after (draft)")
    postings = report.get("postings", {}).get("moves", [])
    _add(old, before, BEFORE, "变更前 before", polygons, postings)
    _add(new, after, AFTER, "变更后 after", polygons, postings)
    old.add_to(fmap)
    new.add_to(fmap)
    totals = ", ".join(f"{KIND_LABELS.get(k, k)} {v}" for k, v in report.get("totals", {}).items())
    legend = (
        f"<div style='position:fixed;bottom:12px;left:12px;z-index:1000;background:#fff;padding:8px;"
        f"border:1px solid #999;font:13px sans-serif'><b>草案 {report['draft_id']} 影响预览 impact</b><br>"
        f"变更 changed {len(report['changed'])}, 新增 added {len(report['added'])}, "
        f"删除 removed {len(report['removed'])}<br>迁移合计 moving: {html.escape(totals)}<br>"
        f"人员调整 postings: {html.escape(_posting_totals(postings))}<br>"
        f"<span style='color:#c0392b'>- - 变更前 before</span> &nbsp; "
        f"<span style='color:#1f5fa8'>■ 变更后 after</span></div>"
    )
    root: Any = fmap.get_root()  # a branca Figure, typed as Element
    root.html.add_child(folium.Element(legend))
    root.header.add_child(folium.Element(offline.favicon_link(asset_prefix)), name="favicon")
    folium.LayerControl(collapsed=False).add_to(fmap)
    return fmap.get_root().render()
