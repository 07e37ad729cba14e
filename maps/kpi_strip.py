"""The command centre's KPI strip (核心指标): today's and this week's closure rate, on-time rate,
satisfaction and share settled at town level or below, each against the same dates a year earlier
(gis.analysis.kpis, county time), the open and overdue counts now (gis.core.predicates), and
rankings of towns and grids by a KPI chosen in a selector, which also colours the KPI choropleth
(maps.kpi_layer). The rankings cover the page's window and filter, like the choropleth; every figure
is inside the caller's scope (the filter carries it).

Rankings: by the KPI's value, highest first; a unit with no value (no incident reported, or none
closed for the on-time rate) is left out; ties go by code. The grids' lists are the 10 highest and
the 10 lowest of the grids with at least ``GRID_MIN_REPORTED`` incidents reported in the window: one
or two incidents make a grid's rate 0 % or 100 %, which says nothing about the grid.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from gis.analysis.briefing import backlog_by_unit
from gis.analysis.kpis import RATES, compute_kpis
from gis.analysis.periods import period_of
from gis.core.vocab import COUNTY_TZ
from gis.incidents.filter import IncidentFilter
from gis.spatial.areas import Conn
from maps import layers as ml
from maps.i18n import label
from maps.kpi_layer import CHOICES, DEFAULT, window
from maps.page import PageContext

STRIP = ("closure_rate", "on_time_rate", "satisfaction_rate", "settled_in_town_rate")
GRID_RANKS = 10
GRID_MIN_REPORTED = 5


def fmt_value(name: str, value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if name in RATES else f"{value:g}"


def fmt_change(name: str, value: Any) -> str:
    """A change: percentage points for rates, the unit's own for counts and times."""
    if value is None:
        return "-"
    return f"{value * 100:+.1f}pt" if name in RATES else f"{value:+g}"


def strip_figures(conn: Conn, flt: IncidentFilter, now: dt.datetime) -> dict[str, Any]:
    """Today's and this week's KPIs (with ``vs_last_year``) and the backlog now, for ``flt`` without
    its report window (the periods are the calendar's)."""
    base = flt.current()
    today = now.astimezone(COUNTY_TZ).date()
    out: dict[str, Any] = {}
    for period in ("day", "week"):
        start, end = period_of(today, period)
        out[period] = compute_kpis(conn, base, start, end)["total"]
    out["backlog"] = backlog_by_unit(conn, base, "town", now)["total"]
    return out


def ranked(
    groups: list[dict[str, Any]], kpi: str, *, lowest: bool = False, min_reported: int = 0
) -> list[dict[str, Any]]:
    """``groups`` (``compute_kpis``' per-key entries) with a value of ``kpi`` and at least
    ``min_reported`` incidents, highest first (or lowest)."""
    rows = [
        {"code": g["key"], "name": g["name"], "value": g["kpis"][kpi]}
        for g in groups
        if g["key"] and g["kpis"][kpi] is not None and g["kpis"]["reported"] >= min_reported
    ]
    rows.sort(key=lambda r: (r["value"] if lowest else -r["value"], r["code"]))
    return rows


def rankings(conn: Conn, flt: IncidentFilter, now: dt.datetime) -> dict[str, Any]:
    """Per KPI of the selector: towns ranked, and the highest and lowest grids, in the page's window."""
    start, end = window(flt, now)
    towns = compute_kpis(conn, flt, start, end, group_by="town")["groups"]
    grids = compute_kpis(conn, flt, start, end, group_by="grid")["groups"]
    return {
        "start": start,
        "end": end,
        "by": {
            kpi: {
                "towns": ranked(towns, kpi),
                "top": ranked(grids, kpi, min_reported=GRID_MIN_REPORTED)[:GRID_RANKS],
                "bottom": ranked(grids, kpi, lowest=True, min_reported=GRID_MIN_REPORTED)[:GRID_RANKS],
            }
            for kpi in CHOICES
        },
    }


def _table(kpi: str, rows: list[dict[str, Any]], kind: str) -> str:
    esc = html.escape
    body = "".join(
        f'<tr data-kind="{kind}" data-code="{esc(r["code"])}" data-value="{r["value"]}"><td>{i}</td>'
        f'<td title="{esc(r["code"])}">{esc(r["name"] or r["code"])}</td>'
        f"<td>{esc(fmt_value(kpi, r['value']))}</td></tr>"
        for i, r in enumerate(rows, start=1)
    )
    return f'<table class="gm-rank-table">{body or "<tr><td>-</td></tr>"}</table>'


def _strip_table(ctx: PageContext, figures: dict[str, Any]) -> str:
    esc = html.escape
    lang = ctx.lang
    vs = esc(label("strip.vs_last_year", lang))
    head = (
        f"<tr><th></th><th>{esc(label('strip.today', lang))}</th><th>{vs}</th>"
        f"<th>{esc(label('strip.week', lang))}</th><th>{vs}</th></tr>"
    )
    rows = []
    for kpi in STRIP:
        cells = []
        for period in ("day", "week"):
            entry = figures[period]
            cells.append(f'<td data-period="{period}" data-kpi="{kpi}">{esc(fmt_value(kpi, entry["kpis"][kpi]))}</td>')
            cells.append(f"<td>{esc(fmt_change(kpi, entry['vs_last_year'][kpi]))}</td>")
        rows.append(f"<tr><th>{esc(label(f'kpi.{kpi}', lang))}</th>{''.join(cells)}</tr>")
    backlog = figures["backlog"]
    now = (
        f'<div class="gm-strip-now">{esc(label("strip.backlog", lang))}: '
        f'{esc(label("f.open", lang))} <b data-backlog="open">{backlog["open"]:,}</b> · '
        f'{esc(label("f.overdue", lang))} <b data-backlog="overdue">{backlog["overdue"]:,}</b></div>'
    )
    return f'<table class="gm-strip-table">{head}{"".join(rows)}</table>{now}'


_SCRIPT = """<script>
(window.gridmap = window.gridmap || {}).kpiSelect = function (kpi) {
  gridmap.kpiSelected = kpi;
  document.querySelectorAll('#gm-kpis .gm-rank').forEach(function (el) {
    el.style.display = el.getAttribute('data-kpi') === kpi ? '' : 'none';
  });
  if (gridmap.kpiRestyle) gridmap.kpiRestyle();
};
</script>"""

_STYLE = """<style>
/* Ends above the event ticker (bottom 64px, about 160px tall), which it covered at 1366x768. */
#gm-kpis { top: 64px; left: 54px; width: 340px; max-height: calc(100% - 300px); overflow-y: auto; }
#gm-kpis summary { cursor: pointer; font-size: 13px; font-weight: 600; }
#gm-kpis table { border-collapse: collapse; font-size: 12px; margin: 2px 0; }
#gm-kpis th, #gm-kpis td { padding: 1px 6px 1px 0; text-align: left; white-space: nowrap; }
#gm-kpis h3 { font-size: 12px; margin: 6px 0 2px; }
</style>"""


def panel(conn: Conn, ctx: PageContext, flt: IncidentFilter) -> str:
    """The strip's panel: the figures, the KPI selector and the rankings (one block per KPI, the
    selected one shown)."""
    esc = html.escape
    lang = ctx.lang
    figures = strip_figures(conn, flt, ctx.at)
    ranks = rankings(conn, flt, ctx.at)
    options = "".join(
        f'<option value="{k}"{" selected" if k == DEFAULT else ""}>{esc(label(f"kpi.{k}", lang))}</option>'
        for k in CHOICES
    )
    blocks = []
    for kpi, lists in ranks["by"].items():
        hidden = "" if kpi == DEFAULT else ' style="display:none"'
        blocks.append(
            f'<div class="gm-rank" data-kpi="{kpi}"{hidden}>'
            f"<h3>{esc(label('strip.towns', lang))}</h3>{_table(kpi, lists['towns'], 'town')}"
            f"<h3>{esc(label('strip.grids_top', lang))}</h3>{_table(kpi, lists['top'], 'top')}"
            f"<h3>{esc(label('strip.grids_bottom', lang))}</h3>{_table(kpi, lists['bottom'], 'bottom')}</div>"
        )
    period = label(
        "strip.period",
        lang,
        start=ml.stamp(ranks["start"]),
        end=ml.stamp(ranks["end"]),
    )
    return (
        f'{_STYLE}<div class="gm-panel" id="gm-kpis"><details open><summary>{esc(label("strip.title", lang))}'
        f"</summary>{_strip_table(ctx, figures)}"
        f'<div><label>{esc(label("strip.kpi", lang))} <select id="gm-kpi-select" '
        f'onchange="gridmap.kpiSelect(this.value)">{options}</select></label></div>'
        f'<div class="gm-note">{esc(period)}</div>{"".join(blocks)}</details></div>{_SCRIPT}'
    )
