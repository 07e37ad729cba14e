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
from dataclasses import dataclass
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


@dataclass
class _Row:
    position: int
    person: tuple[str, ...]  # identity: ("id", card) or ("np", name, phone)
    name: str
    phone: str | None
    id_card: str | None
    status: str
    role: str
    layer: str
    area_code: str
    org_unit: int | None
    starts_on: dt.date
    ends_on: dt.date | None
    note: str


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


def _check_row(cells: Cells, i: int, ctx: _Context, today: dt.date) -> _Row:
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
        raise _RowProblems(problems)
    person = ("id", id_card) if id_card else ("np", name, phone or "")
    note = _cell(cells, "note", i)
    return _Row(i, person, name, phone, id_card, status, role, layer, code, unit, starts_on, ends_on, str(note or ""))


class _RowProblems(Exception):
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
    rows: list[_Row] = []

    def bad(position: int, field: str, value: object, reason: str) -> None:
        mask = np.zeros(len(frame), dtype=bool)
        mask[position] = True
        problems.add(mask, field, np.full(len(frame), value, dtype=object), reason)

    cells: Cells = {f: frame[c].astype(object).tolist() for f, c in columns.items()}
    for i in range(len(frame)):
        try:
            rows.append(_check_row(cells, i, ctx, today))
        except _RowProblems as exc:
            for p in exc.problems:
                bad(i, p.field, p.value, p.reason)
    rows = _check_people(rows, raw, bad)
    stored = _stored(conn, rows)
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
    _store(conn, good, stored, result)
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


def _check_people(rows: list[_Row], raw: RawTable, bad: Callable[[int, str, object, str], None]) -> list[_Row]:
    """Rows of one person (same ID card number) must agree on the name."""
    first: dict[tuple[str, ...], _Row] = {}
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


@dataclass
class _Stored:
    people: dict[tuple[str, ...], dict[str, Any]]
    postings: dict[tuple[Any, ...], dict[str, Any]]  # (person_id, role, layer, area, starts_on) -> row
    holders: dict[tuple[str, str, str], list[dict[str, Any]]]  # one-holder postings by (role, layer, area)


def _stored(conn: Connection, rows: list[_Row]) -> _Stored:
    cards = sorted({r.id_card for r in rows if r.id_card})
    pairs = {(r.name, r.phone or "") for r in rows if not r.id_card}
    people: dict[tuple[str, ...], dict[str, Any]] = {}
    for p in conn.execute(
        sa.text(
            "SELECT id, name, phone, id_card, status FROM people WHERE id_card = ANY(:cards) "
            "OR (id_card IS NULL AND name = ANY(:names)) ORDER BY id"
        ),
        {"cards": cards, "names": sorted({n for n, _ in pairs})},
    ):
        key = ("id", p.id_card) if p.id_card else ("np", p.name, p.phone or "")
        people.setdefault(key, dict(p._mapping))
    ids = [p["id"] for p in people.values()]
    postings = {
        (r.person_id, r.role, r.layer, r.area_code, r.starts_on): dict(r._mapping)
        for r in conn.execute(
            sa.text(
                "SELECT id, person_id, role, layer, area_code, starts_on, ends_on, org_unit_id, note "
                "FROM postings WHERE person_id = ANY(:ids)"
            ),
            {"ids": ids},
        )
    }
    areas = sorted({r.area_code for r in rows if r.role in EXCLUSIVE_ROLES})
    holders: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for h in conn.execute(
        sa.text(
            "SELECT po.id, po.person_id, pe.name, po.role, po.layer, po.area_code, po.starts_on, po.ends_on "
            "FROM postings po JOIN people pe ON pe.id = po.person_id "
            "WHERE po.role = ANY(:roles) AND po.area_code = ANY(:areas)"
        ),
        {"roles": sorted(EXCLUSIVE_ROLES), "areas": areas},
    ):
        holders.setdefault((h.role, h.layer, h.area_code), []).append(dict(h._mapping))
    return _Stored(people, postings, holders)


def _check_overlaps(
    conn: Connection, rows: list[_Row], stored: _Stored, raw: RawTable, bad: Callable[[int, str, object, str], None]
) -> list[_Row]:
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


def _store(conn: Connection, rows: list[_Row], stored: _Stored, result: ImportResult) -> None:
    people = stored.people
    new_people: list[_Row] = []
    changed_people: dict[int, _Row] = {}
    for r in rows:
        found = people.get(r.person)
        if found is None:
            placeholder = {"id": None, "name": r.name, "phone": r.phone, "id_card": r.id_card, "status": r.status}
            people[r.person] = placeholder
            new_people.append(r)
        elif found["id"] is not None and (found["name"], found["phone"], found["status"]) != (
            r.name,
            r.phone,
            r.status,
        ):
            changed_people[found["id"]] = r
    if new_people:
        ids = (
            conn.execute(
                sa.text("SELECT nextval(pg_get_serial_sequence('people', 'id')) FROM generate_series(1, :n)"),
                {"n": len(new_people)},
            )
            .scalars()
            .all()
        )
        for r, new_id in zip(new_people, ids, strict=True):
            people[r.person]["id"] = int(new_id)
        added = [people[r.person] for r in new_people]
        # One statement (unnest) rather than one per row: a single statement-level NOTIFY, and fast.
        conn.execute(
            sa.text(
                "INSERT INTO people (id, name, phone, id_card, status) SELECT * FROM unnest("
                "CAST(:id AS bigint[]), CAST(:name AS text[]), CAST(:phone AS text[]), CAST(:id_card AS text[]), "
                "CAST(:status AS text[]))"
            ),
            {k: [p[k] for p in added] for k in ("id", "name", "phone", "id_card", "status")},
        )
    if changed_people:
        conn.execute(
            sa.text("UPDATE people SET name = :n, phone = :p, status = :s WHERE id = :id"),
            [{"id": k, "n": r.name, "p": r.phone, "s": r.status} for k, r in changed_people.items()],
        )
    inserts, updates = [], []
    for r in rows:
        pid = people[r.person]["id"]
        values = {
            "p": pid, "r": r.role, "l": r.layer, "c": r.area_code, "u": r.org_unit,
            "s": r.starts_on, "e": r.ends_on, "n": r.note,
        }  # fmt: skip
        old = stored.postings.get((pid, r.role, r.layer, r.area_code, r.starts_on))
        if old is None:
            inserts.append(values)
            stored.postings[(pid, r.role, r.layer, r.area_code, r.starts_on)] = {"id": None, **values}
        elif (old.get("ends_on"), old.get("org_unit_id"), old.get("note")) != (r.ends_on, r.org_unit, r.note):
            if old.get("id") is not None:
                updates.append({"id": old["id"], "e": r.ends_on, "u": r.org_unit, "n": r.note})
        else:
            result.already_stored += 1
    if inserts:
        conn.execute(
            sa.text(
                "INSERT INTO postings (person_id, role, layer, area_code, org_unit_id, starts_on, ends_on, note) "
                "SELECT * FROM unnest(CAST(:p AS bigint[]), CAST(:r AS text[]), CAST(:l AS text[]), "
                "CAST(:c AS text[]), CAST(:u AS integer[]), CAST(:s AS date[]), CAST(:e AS date[]), CAST(:n AS text[]))"
            ),
            {k: [v[k] for v in inserts] for k in ("p", "r", "l", "c", "u", "s", "e", "n")},
        )
    if updates:
        conn.execute(sa.text("UPDATE postings SET ends_on = :e, org_unit_id = :u, note = :n WHERE id = :id"), updates)
    result.inserted = len(inserts)
    result.notes.append(
        f"{len(new_people)} people added, {len(changed_people)} updated; {len(updates)} postings updated"
    )


__all__ = ["COLUMNS", "STAFF_SPEC", "import_staff", "import_staff_frame"]
