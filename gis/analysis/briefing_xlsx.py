"""The weekly briefing (``gis.analysis.briefing``) as an XLSX workbook, one sheet per section,
with the same figures as the JSON (rates as 0..1 fractions, formatted as percentages)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from gis.analysis.kpis import KPIS, RATES
from gis.core.predicates import BACKLOG

# Sheet titles (Excel allows 31 characters); tests and readers find the sheets by these.
SHEETS = {
    "summary": "概要 summary",
    "units": "分区 units",
    "backlog": "积压 backlog",
    "hazards": "隐患超期 hazards",
    "hazard_items": "超期隐患清单 overdue hazards",
    "hotspots": "热点 hot spots",
    "repeats": "重复发生地 repeats",
    "categories": "类别 categories",
}
_LABEL = {k.name: k.label for k in KPIS}


def _sheet(book: Workbook, key: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Worksheet:
    sheet = book.create_sheet(SHEETS[key])
    sheet.append(list(header))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(list(row))
    for column, name in enumerate(header, start=1):
        if any(rate in name for rate in RATES):
            for (cell,) in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
                cell.number_format = "0.0%"
    sheet.freeze_panes = "B2"
    return sheet


def _kpi_row(entry: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for kpi in KPIS:
        out += [entry["kpis"][kpi.name], entry["vs_previous"][kpi.name], entry["vs_last_year"][kpi.name]]
    return out


def _kpi_header() -> list[str]:
    out: list[str] = []
    for kpi in KPIS:
        out += [f"{kpi.label} {kpi.name}", f"{kpi.name} vs previous", f"{kpi.name} vs last year"]
    return out


def write_xlsx(data: dict[str, Any]) -> bytes:
    """The briefing ``data`` (``weekly_briefing``'s answer) as a workbook."""
    book = Workbook()
    info = book.active
    assert info is not None
    info.title = "周报 briefing"
    area = data["area"]
    for key, value in (
        ("week", data["week"]),
        ("start", data["start"]),
        ("end", data["end"]),
        ("as_of", data["as_of"]),
        ("area", area.get("name") or area["layer"]),
        ("area_code", area.get("code")),
        ("scope", data["scope"]),
        ("last_year_start", data["kpis"]["windows"]["last_year"]["start"]),
    ):
        info.append([key, value])
    kpis = data["kpis"]
    total = kpis["total"]
    _sheet(
        book,
        "summary",
        ["kpi", "label", "value", "vs previous week", "vs same week last year"],
        [
            [k.name, k.label, total["kpis"][k.name], total["vs_previous"][k.name], total["vs_last_year"][k.name]]
            for k in KPIS
        ],
    )
    # The rate columns of the summary are in rows, not columns: format them one by one.
    summary = book[SHEETS["summary"]]
    for row in summary.iter_rows(min_row=2):
        if row[0].value in RATES:
            for cell in row[2:]:
                cell.number_format = "0.0%"
    _sheet(
        book,
        "units",
        ["code", "name", *_kpi_header()],
        [[g["key"], g["name"], *_kpi_row(g)] for g in kpis["groups"]],
    )
    backlog = data["backlog"]
    _sheet(
        book,
        "backlog",
        ["code", "name", *BACKLOG],
        [
            *([u["code"], u["name"], *(u[k] for k in BACKLOG)] for u in backlog["units"]),
            ["total", None, *(backlog["total"][k] for k in BACKLOG)],
        ],
    )
    hazards = data["hazards"]
    _sheet(
        book,
        "hazards",
        ["code", "name", "overdue"],
        [[u["code"], u["name"], u["overdue"]] for u in hazards["units"]],
    )
    _sheet(
        book,
        "hazard_items",
        ["id", "category", "severity", "status", "found_at", "rectify_by", "grid_code", "lon", "lat"],
        [
            [
                h[k]
                for k in ("id", "category", "severity", "status", "found_at", "rectify_by", "grid_code", "lon", "lat")
            ]
            for h in hazards["items"]
        ],
    )
    spots = data["hotspots"]
    _sheet(
        book,
        "hotspots",
        ["kind", "code", "name", "class", "count", "gi_z", "p"],
        [
            *(["hot", r["code"], r["name"], r["class"], r["count"], r["gi_z"], r["p"]] for r in spots["hot"]),
            *(["new", r["code"], r["name"], r["class"], r["counts"][-1], r["gi_z"][-1], None] for r in spots["new"]),
        ],
    )
    _sheet(
        book,
        "repeats",
        ["kind", "label", "count", "first_at", "last_at", "categories", "grid_code", "lon", "lat"],
        [
            [
                r["kind"],
                r["label"],
                r["count"],
                r["first_at"],
                r["last_at"],
                ",".join(r["categories"]),
                r["grid_code"],
                r["lon"],
                r["lat"],
            ]
            for r in data["repeats"]["locations"]
        ],
    )
    _sheet(
        book,
        "categories",
        ["category", "label", "this week", "mean of 4 weeks before", "change", "ratio", "rising"],
        [
            [c["category"], c["zh"], c["count"], c["previous_mean"], c["change"], c["ratio"], c["change"] > 0]
            for c in data["categories"]
        ],
    )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
