"""Import of past inspections from CSV (UTF-8 or GBK/GB18030) or XLSX: ``gridmap import
inspections FILE``. Hazards with their rectification state come with ``gridmap import hazards``
(gis.bulk, which now also takes the loop's statuses and the responsible party).

One row per inspection. Columns (English or Chinese headers):

* ``building_code`` (建筑编码, 房屋编码): an existing building;
* ``at`` (检查时间): when (no offset = county time);
* ``checklist_kind`` (检查表) and ``checklist_version`` (版本): default the latest rental-safety list;
* ``inspectors`` (检查人员岗位): posting ids separated by commas, semicolons or 、 (may be empty);
* ``room`` (房间), ``notes`` (备注);
* one column per checklist item, headed by its code (``escape_window``), its text or its short
  label (逃生窗口): 合格/pass/是 = pass, 不合格/fail/否 = fail, 不适用/na/无 = not applicable,
  empty = not checked.

Rows are stored oldest first, each exactly as ``POST /buildings/{id}/inspections`` stores it: a
failed item opens a hazard with its deadline, a later passing row rectifies it, and the buildings'
risk levels and next dates follow the latest row. Hazards whose deadline lies in the past are
marked overdue by their deadline job as soon as a worker runs. All or nothing: the first bad row
is named (its row number in the file, the column and the reason) and nothing is stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from gis.fieldwork import checklists, inspections
from gis.fieldwork.common import FieldworkInputError
from gis.spatial.areas import Conn

# Short Chinese column labels of the rental-safety items, as inspection ledgers (台账) head them.
ITEM_LABELS = {
    "escape_window": "逃生窗口",
    "ebike_indoor": "电动车室内停放充电",
    "fly_line": "飞线充电",
    "wiring": "电气线路",
    "extinguisher": "灭火器",
    "smoke_alarm": "烟感报警器",
    "gas": "燃气",
    "kitchen_bedroom": "厨卧分隔",
    "people_per_room": "居住人数",
    "tenant_registration": "租客登记",
    "responsibility_letter": "责任书",
}
FIELDS = {
    "building_code": ("建筑编码", "房屋编码"),
    "at": ("检查时间", "时间"),
    "checklist_kind": ("检查表",),
    "checklist_version": ("版本", "检查表版本"),
    "inspectors": ("检查人员岗位", "检查人员"),
    "room": ("房间",),
    "notes": ("备注",),
}
RESULTS = {
    "pass": "pass", "合格": "pass", "是": "pass", "通过": "pass", "ok": "pass",
    "fail": "fail", "不合格": "fail", "否": "fail", "未通过": "fail",
    "na": "na", "不适用": "na", "无": "na", "n/a": "na",
}  # fmt: skip
_SPLIT = re.compile(r"[,;，；、\s]+")


class InspectionImportError(ValueError):
    """A row is refused: ``row`` (as numbered in the file), ``column`` and ``reason``."""

    def __init__(self, row: int, column: str, reason: str) -> None:
        super().__init__(f"row {row}, {column}: {reason}")
        self.row = row
        self.column = column
        self.reason = reason


@dataclass
class ImportSummary:
    inspections: int
    hazards_opened: int
    hazards_rectified: int


def _cell(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def _columns(frame: pd.DataFrame) -> dict[str, str]:
    """The file's column of each known field (field -> column)."""
    found: dict[str, str] = {}
    for column in frame.columns:
        name = str(column).strip()
        for field, aliases in FIELDS.items():
            if name.lower() == field or name in aliases:
                found[field] = str(column)
    return found


def _item_columns(header: list[str], checklist: Mapping[str, Any]) -> dict[str, str]:
    """The file's column of each item of ``checklist`` present (item code -> column)."""
    spellings: dict[str, str] = {}
    for item in checklist["items"]:
        for spelling in (item["code"], item["text"], ITEM_LABELS.get(item["code"])):
            if spelling:
                spellings[spelling] = item["code"]
    return {spellings[c.strip()]: c for c in header if c.strip() in spellings}


def import_inspections(conn: Conn, frame: pd.DataFrame, actor: str, first_row: int = 2) -> ImportSummary:
    """Store the rows of ``frame`` (module docstring) in the caller's transaction."""
    columns = _columns(frame)
    for needed in ("building_code", "at"):
        if needed not in columns:
            raise InspectionImportError(first_row - 1, needed, f"no column {needed} ({'/'.join(FIELDS[needed])})")
    codes = sorted({c for c in (_cell(v) for v in frame[columns["building_code"]]) if c})
    ids: dict[str, int] = dict(
        conn.execute(sa.text("SELECT code, id FROM buildings WHERE code = ANY(:codes)"), {"codes": codes}).all()
    )
    records = frame.to_dict("records")
    prepared = [_prepare(conn, first_row + k, record, columns, ids) for k, record in enumerate(records)]
    prepared.sort(key=lambda p: (p[2]["at"], p[0]))  # oldest first: later rows re-inspect earlier hazards
    summary = ImportSummary(0, 0, 0)
    for n, building_id, data in prepared:
        try:
            out = inspections.record(conn, building_id, data, actor, team_required=False)
        except FieldworkInputError as exc:
            raise InspectionImportError(n, exc.field, exc.reason) from None
        summary.inspections += 1
        summary.hazards_opened += len(out["hazards_opened"])
        summary.hazards_rectified += len(out["hazards_rectified"])
    return summary


def _prepare(
    conn: Conn, n: int, record: Mapping[str, Any], columns: Mapping[str, str], ids: Mapping[str, int]
) -> tuple[int, int, dict[str, Any]]:
    def cell(field: str) -> str | None:
        return _cell(record.get(columns[field])) if field in columns else None

    code = cell("building_code")
    if code is None or code not in ids:
        raise InspectionImportError(n, "building_code", f"{code!r} is not a stored building")
    data: dict[str, Any] = {"at": cell("at"), "room": cell("room"), "notes": cell("notes")}
    data["checklist_kind"] = cell("checklist_kind")
    version = cell("checklist_version")
    if version is not None:
        try:
            data["checklist_version"] = int(float(version))
        except ValueError:
            raise InspectionImportError(n, "checklist_version", f"{version!r} is not a version number") from None
    try:
        checklist = checklists.resolve(conn, data)
    except FieldworkInputError as exc:
        raise InspectionImportError(n, exc.field, exc.reason) from None
    team = cell("inspectors")
    if team:
        try:
            data["inspectors"] = [int(p) for p in _SPLIT.split(team) if p]
        except ValueError:
            raise InspectionImportError(n, "inspectors", f"{team!r} is not a list of posting ids") from None
    results = []
    for item_code, column in _item_columns([str(c) for c in record], checklist).items():
        value = _cell(record.get(column))
        if value is None:
            continue
        result = RESULTS.get(value.lower())
        if result is None:
            raise InspectionImportError(n, column, f"{value!r} is not 合格/不合格/不适用 (pass/fail/na)")
        results.append({"code": item_code, "result": result})
    if not results:
        raise InspectionImportError(n, "results", "no item has a result")
    data["results"] = results
    return n, ids[code], data
