"""``gridmap import staff FILE``: people and their postings from CSV (UTF-8/GBK) or XLSX, one row
per posting, with the readers and report format of the bulk import (gis.bulk).

A row names the person (name, phone, ID card number, status) and one posting (role, layer, area
code, organisation unit, start and end dates). Rows with the same ID card number (else the same
name and phone) are one person; a person already stored with that ID card number (else that
name and phone) is updated, not repeated. A posting already stored (same person, role, area and
start) takes the row's end date, organisation unit and note; importing a file twice changes
nothing. All-or-nothing by default: one bad row and nothing is stored, the report names every bad
row, field and reason; with ``skip_bad`` the good rows are stored and the bad ones written to a
reject file. Bad: unknown area or unit codes, a role posted to the wrong layer, an end before the
start, a one-holder role (grid leader, beat officer, ...) overlapping another holder in the file
or in the database, a phone or ID card number in the wrong form.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis.bulk import ImportOptions, ImportRejected, ImportResult
from gis.bulk.readers import RawTable, read_table
from gis.bulk.report import default_reject_path, default_report_path, write_rejects, write_report
from gis.bulk.specs import Field, Spec
from gis.bulk.validate import Problems, resolve_columns
from gis.core import audit
from gis.people.rules import (
    EXCLUSIVE_ROLES,
    PeopleInputError,
    check_date,
    check_id_card,
    check_layer,
    check_name,
    check_period,
    check_phone,
    check_role,
    check_role_layer,
    check_status,
    county_today,
    overlaps,
)
from gis.people.staffstore import PostingRow, Stored, read_stored, store_rows
from gis.spatial.areas import IN_GENERATION, current_generation

STAFF_SPEC = Spec(
    "staff",
    "postings",
    (
        Field("name", "text", required=True, aliases=("姓名",)),
        Field("phone", "text", aliases=("mobile", "电话", "手机", "联系电话", "手机号")),
        Field("id_card", "text", aliases=("身份证", "身份证号", "身份证号码")),
        Field("status", "text", aliases=("状态", "人员状态")),
        Field("role", "text", required=True, aliases=("角色", "岗位", "职务")),
        Field("layer", "text", aliases=("层级", "区域层级")),
        Field("area_code", "text", required=True, aliases=("area", "区域代码", "区域编码", "网格编码")),
        Field("org_unit", "text", aliases=("单位", "单位代码", "组织")),
        Field("starts_on", "text", aliases=("start", "开始日期", "任职日期")),
        Field("ends_on", "text", aliases=("end", "结束日期", "离任日期")),
        Field("note", "text", aliases=("备注",)),
    ),
    key=("id_card", "role", "area_code", "starts_on"),
)
COLUMNS = tuple(f.name for f in STAFF_SPEC.fields)


class _Context:
    """What the checks need from the database, read once per file."""

    def __init__(self, conn: Connection, frame: pd.DataFrame):
        generation = current_generation(conn)
        self.layers: dict[str, list[str]] = {}
        if generation is not None:
            codes = sorted({str(c).strip() for c in frame.get("area_code", pd.Series(dtype=object)).dropna()})
            for r in conn.execute(
                sa.text(f"SELECT code, layer FROM areas WHERE code = ANY(:c) AND {IN_GENERATION}"),  # noqa: S608
                {"c": codes, "g": generation},
            ):
                self.layers.setdefault(r.code, []).append(r.layer)
        self.units = {r.code: r.id for r in conn.execute(sa.text("SELECT code, id FROM org_units"))}


Cells = dict[str, list[Any]]  # field -> the column's values, as Python objects


def _cell(cells: Cells, field: str, i: int) -> Any:
    column = cells.get(field)
    if column is None:
        return None
    value = column[i]
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _check_row(cells: Cells, i: int, ctx: _Context, today: dt.date) -> PostingRow:
    """One row's values, or PeopleInputError naming the first bad field (others are reported too)."""
    problems: list[PeopleInputError] = []

    def take(fn: Callable[..., Any], field: str, *args: Any) -> Any:
        try:
            return fn(*args, _cell(cells, field, i)) if args else fn(_cell(cells, field, i))
        except PeopleInputError as exc:
            problems.append(exc)
            return None

    name = take(check_name, "name")
    phone = take(check_phone, "phone")
    id_card = take(check_id_card, "id_card")
    status = take(check_status, "status")
    role = take(check_role, "role")
    layer = take(lambda v: check_layer(v, required=False), "layer")
    starts_on = take(check_date, "starts_on", "starts_on")
    ends_on = take(check_date, "ends_on", "ends_on")
    area = _cell(cells, "area_code", i)
    code = str(area).strip() if area is not None else ""
    known = ctx.layers.get(code, [])
    if not code:
        problems.append(PeopleInputError("area_code", area, "is required"))
    elif layer is not None and layer not in known:
        problems.append(
            PeopleInputError("area_code", area, f"no {layer} with code {code!r} in the boundaries in force")
        )
    elif not known:
        problems.append(PeopleInputError("area_code", area, f"no area with code {code!r} in the boundaries in force"))
    elif layer is None and len(known) > 1:
        problems.append(
            PeopleInputError("layer", None, f"code {code!r} names a {' and a '.join(known)}: give the layer")
        )
    elif layer is None:
        layer = known[0]
    if role and layer:
        try:
            check_role_layer(role, layer)
        except PeopleInputError as exc:
            problems.append(exc)
    unit_code = _cell(cells, "org_unit", i)
    unit = None
    if unit_code is not None and str(unit_code).strip():
        unit = ctx.units.get(str(unit_code).strip())
        if unit is None:
            problems.append(PeopleInputError("org_unit", unit_code, f"no organisation unit with code {unit_code!r}"))
    starts_on = starts_on or today
    try:
        check_period(starts_on, ends_on)
    except PeopleInputError as exc:
        problems.append(exc)
    if problems:
        raise PostingRowProblems(problems)
    person = ("id", id_card) if id_card else ("np", name, phone or "")
    note = _cell(cells, "note", i)
    return PostingRow(
        i, person, name, phone, id_card, status, role, layer, code, unit, starts_on, ends_on, str(note or "")
    )


class PostingRowProblems(Exception):
    def __init__(self, problems: list[PeopleInputError]):
        super().__init__(problems[0].reason)
        self.problems = problems


def import_staff(target: Engine | Connection, path: Path | str, options: ImportOptions | None = None) -> ImportResult:
    """Import a staff file (see the module docstring); with an Engine in its own transaction."""
    options = options or ImportOptions()
    path = Path(path)
    started = time.perf_counter()
    raw = read_table(path, encoding=options.encoding)
    result = ImportResult("staff", str(path), rows=len(raw), strategy="postings")
    result.timings["read"] = round(time.perf_counter() - started, 3)
    try:
        if isinstance(target, Connection):
            _run(target, raw, options, result)
        else:
            with target.begin() as conn:
                _run(conn, raw, options, result)
    finally:
        if len(result.problems):
            result.report_path = write_report(result.problems, options.report_path or default_report_path(path))
            if options.skip_bad:
                reject = options.reject_path or default_reject_path(path)
                result.reject_path = write_rejects(raw, result.problems, reject)
    return result


def import_staff_frame(
    conn: Connection, frame: pd.DataFrame, options: ImportOptions | None = None, *, name: str = "frame"
) -> ImportResult:
    """The same import from an in-memory table with the fields as columns (the demo's roster)."""
    options = options or ImportOptions()
    frame = frame.reset_index(drop=True)
    raw = RawTable(Path(name), "csv", frame, np.arange(1, len(frame) + 1, dtype=np.int64))
    result = ImportResult("staff", name, rows=len(raw), strategy="postings")
    _run(conn, raw, options, result)
    return result


def _run(conn: Connection, raw: RawTable, options: ImportOptions, result: ImportResult) -> None:
    started = time.perf_counter()
    columns = resolve_columns(STAFF_SPEC, raw, options.mapping)
    frame = raw.frame.reset_index(drop=True)
    # One writer at a time: the overlap checks below read what is stored.
    conn.execute(sa.text("LOCK TABLE postings IN SHARE ROW EXCLUSIVE MODE"))
    ctx = _Context(conn, frame.rename(columns={v: k for k, v in columns.items()}))
    today = county_today()
    problems = Problems()
    rows: list[PostingRow] = []

    def bad(position: int, field: str, value: object, reason: str) -> None:
        mask = np.zeros(len(frame), dtype=bool)
        mask[position] = True
        problems.add(mask, field, np.full(len(frame), value, dtype=object), reason)

    cells: Cells = {f: frame[c].astype(object).tolist() for f, c in columns.items()}
    for i in range(len(frame)):
        try:
            rows.append(_check_row(cells, i, ctx, today))
        except PostingRowProblems as exc:
            for p in exc.problems:
                bad(i, p.field, p.value, p.reason)
    rows = _check_people(rows, raw, bad)
    stored = read_stored(conn, rows)
    rows = _check_overlaps(conn, rows, stored, raw, bad)
    result.timings["validate"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    result.problems = problems.frame(raw.rows).reset_index(drop=True)
    result.bad = int(result.problems["position"].nunique()) if len(result.problems) else 0
    if result.bad and not options.skip_bad:
        lines = "\n".join(result.summary_lines())
        raise ImportRejected(
            f"{raw.path.name}: {result.bad} of {result.rows} rows are bad; nothing was stored.\n{lines}", result
        )
    bad_positions = set(result.problems["position"].astype(int)) if len(result.problems) else set()
    good = [r for r in rows if r.position not in bad_positions]
    store_rows(conn, good, stored, result)
    result.timings["store"] = round(time.perf_counter() - started, 3)
    audit.record(
        conn,
        options.actor,
        "import.staff",
        result.source,
        rows=result.rows,
        inserted=result.inserted,
        bad=result.bad,
        unchanged=result.already_stored,
        notes=result.notes,
    )


def _check_people(
    rows: list[PostingRow], raw: RawTable, bad: Callable[[int, str, object, str], None]
) -> list[PostingRow]:
    """Rows of one person (same ID card number) must agree on the name."""
    first: dict[tuple[str, ...], PostingRow] = {}
    out = []
    for r in rows:
        seen = first.setdefault(r.person, r)
        if seen is not r and seen.name != r.name:
            bad(
                r.position,
                "name",
                r.name,
                f"ID card {r.id_card} is {seen.name!r} on row {int(raw.rows[seen.position])}",
            )
            continue
        out.append(r)
    return out


def _check_overlaps(
    conn: Connection,
    rows: list[PostingRow],
    stored: Stored,
    raw: RawTable,
    bad: Callable[[int, str, object, str], None],
) -> list[PostingRow]:
    """One-holder roles: no two postings (in the file, or stored) of the area share a day."""
    taken: dict[tuple[str, str, str], list[tuple[dt.date, dt.date | None, str]]] = {}
    out = []
    for r in rows:
        if r.role not in EXCLUSIVE_ROLES:
            out.append(r)
            continue
        key = (r.role, r.layer, r.area_code)
        person = stored.people.get(r.person)
        clash = None
        for h in stored.holders.get(key, []):
            same = person is not None and h["person_id"] == person["id"] and h["starts_on"] == r.starts_on
            if not same and overlaps(r.starts_on, r.ends_on, h["starts_on"], h["ends_on"]):
                clash = f"stored posting {h['id']} of {h['name']} ({h['starts_on']} to {h['ends_on'] or 'open end'})"
                break
        for start, end, where in taken.get(key, []) if clash is None else []:
            if overlaps(r.starts_on, r.ends_on, start, end):
                clash = where
                break
        if clash is not None:
            bad(r.position, "role", r.role, f"{r.layer} {r.area_code} already has a {r.role} then: {clash}")
            continue
        row_no = int(raw.rows[r.position])
        taken.setdefault(key, []).append((r.starts_on, r.ends_on, f"row {row_no} ({r.name})"))
        out.append(r)
    return out


__all__ = ["COLUMNS", "STAFF_SPEC", "import_staff", "import_staff_frame"]
