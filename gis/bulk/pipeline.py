"""Bulk import, end to end: read → validate → deduplicate → assign in process → COPY → commit.

All-or-nothing per file by default: one bad row and nothing is stored, the report names every bad
row, field and reason. With ``skip_bad`` the good rows are loaded and the bad ones written to a
reject file. Everything is stored in one transaction.

Rows are assigned by the rule of gis/spatial/genrule.py: open work (incidents not closed or
rejected, hazards not rectified, buildings, addresses) under the boundary generation in force now,
which is where publishing (gis/spatial/reassign.py) keeps it; closed and rejected incidents and
rectified hazards under the generation in force at their time (when they ended, else when they
began): they were handled under it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection, Engine

from gis.bulk import derive
from gis.bulk.readers import ImportFileError, RawTable, read_table
from gis.bulk.report import default_reject_path, default_report_path, summarize, write_rejects, write_report
from gis.bulk.specs import Spec, get_spec
from gis.bulk.store import Strategy, TableWriter, building_ids, copy_columns, existing_keys
from gis.bulk.validate import Options, Problems, Validated, resolve_columns, validate
from gis.core import audit
from gis.spatial.areas import current_generation, load_layer
from gis.spatial.assign import AssignerCache, Assignment
from gis.spatial.crs import InputCRS, parse_crs
from gis.spatial.genrule import generations_for_rows

Progress = Callable[[str, int, int], None]
CHUNK_ROWS = 100_000


class ImportRejected(ValueError):
    """The file has bad rows and nothing was stored; ``result`` holds the report."""

    def __init__(self, message: str, result: ImportResult):
        super().__init__(message)
        self.result = result


@dataclass
class ImportOptions:
    mapping: Mapping[str, str] = field(default_factory=dict)
    crs: InputCRS | str = InputCRS.wgs84
    encoding: str | None = None
    skip_bad: bool = False
    report_path: Path | None = None
    reject_path: Path | None = None
    strategy: Strategy = "auto"
    actor: str = "cli"
    snap_tolerance_m: float = 50.0
    deadline_hours: Mapping[str, float] = field(default_factory=dict)
    chunk_rows: int = CHUNK_ROWS
    progress: Progress | None = None
    cache: AssignerCache | None = None


@dataclass
class ImportResult:
    kind: str
    source: str
    rows: int = 0  # records read
    bad: int = 0  # records with problems
    inserted: int = 0
    duplicates_in_file: int = 0
    already_stored: int = 0
    strategy: str = ""
    problems: pd.DataFrame = field(default_factory=pd.DataFrame)
    report_path: Path | None = None
    reject_path: Path | None = None
    assign_status: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def summary_lines(self, limit: int = 20) -> list[str]:
        return summarize(self.problems, limit) if len(self.problems) else []


class _Clock:
    def __init__(self, timings: dict[str, float]):
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round(self.timings.get(stage, 0.0) + now - self.last, 3)
        self.last = now


def _numeric_candidates(spec: Spec, mapping: Mapping[str, str]) -> tuple[str, ...]:
    names: list[str] = []
    for f in spec.fields:
        if f.kind == "float":
            names.extend([f.name, *f.aliases])
            if f.name in mapping:
                names.append(mapping[f.name])
    return tuple(names)


def import_file(
    target: Engine | Connection, kind: str, path: Path | str, options: ImportOptions | None = None
) -> ImportResult:
    """Import one file into ``kind`` (incidents, buildings, addresses, hazards); see the module docstring.

    With an Engine the import is its own transaction, committed at the end; with a Connection it
    runs inside the caller's transaction and the caller commits.
    """
    options = options or ImportOptions()
    spec = get_spec(kind)
    path = Path(path)
    timings: dict[str, float] = {}
    clock = _Clock(timings)
    _tick(options, "read", 0, 1)
    raw = read_table(path, encoding=options.encoding, numeric=_numeric_candidates(spec, options.mapping))
    clock.lap("read")
    result = ImportResult(kind, str(path), rows=len(raw), timings=timings)
    try:
        if isinstance(target, Connection):
            _run(target, spec, raw, options, result, clock)
        else:
            with target.begin() as conn:
                _run(conn, spec, raw, options, result, clock)
    except ImportRejected:
        _write_outputs(raw, path, options, result)
        raise
    _write_outputs(raw, path, options, result)
    return result


def import_frame(
    conn: Connection, kind: str, frame: pd.DataFrame, options: ImportOptions | None = None, *, name: str = "frame"
) -> ImportResult:
    """Import an in-memory table whose columns are named like the fields, inside ``conn``'s transaction.

    The same validation, deduplication, assignment and COPY as files; bad rows raise ImportRejected
    (or are skipped with ``skip_bad``; no reject file is written).
    """
    options = options or ImportOptions()
    spec = get_spec(kind)
    frame = frame.reset_index(drop=True)
    raw = RawTable(Path(name), "csv", frame, np.arange(1, len(frame) + 1, dtype=np.int64))
    timings: dict[str, float] = {}
    result = ImportResult(kind, name, rows=len(raw), timings=timings)
    _run(conn, spec, raw, options, result, _Clock(timings))
    return result


def _county(conn: Connection) -> BaseGeometry | None:
    gen = current_generation(conn)
    if gen is None:
        return None
    county = load_layer(conn, "county", gen)
    if len(county):
        return county.geometry.union_all()
    towns = load_layer(conn, "town", gen)
    return towns.geometry.union_all() if len(towns) else None


def _run(
    conn: Connection, spec: Spec, raw: RawTable, options: ImportOptions, result: ImportResult, clock: _Clock
) -> None:
    columns = resolve_columns(spec, raw, options.mapping)
    crs = parse_crs(options.crs)
    _tick(options, "validate", 0, len(raw))
    validated = validate(spec, raw, columns, Options(crs=crs, county=_county(conn)))
    extra = Problems()
    _derive(conn, spec.kind, validated, extra, options)
    if extra.positions:
        validated.problems = (
            pd.concat([validated.problems, extra.frame(validated.rows)], ignore_index=True)
            .sort_values(["position", "field"], kind="stable")
            .reset_index(drop=True)
        )
    result.notes.extend(validated.notes)
    result.problems = validated.problems
    bad = validated.bad
    result.bad = int(bad.sum())
    clock.lap("validate")
    if result.bad and not options.skip_bad:
        if raw.path.name != "frame":
            result.report_path = options.report_path or default_report_path(raw.path)
        lines = "\n".join(result.summary_lines())
        raise ImportRejected(
            f"{raw.path.name}: {result.bad} of {result.rows} rows are bad; nothing was stored.\n{lines}", result
        )
    good = validated.frame.loc[~bad].reset_index(drop=True)
    keys = derive.keys(spec.kind, good)
    first = ~pd.Series(keys).duplicated().to_numpy()
    result.duplicates_in_file = int((~first).sum())
    good, keys = good.loc[first].reset_index(drop=True), keys[first]
    _store(conn, spec, good, keys, options, result, clock)


def _derive(conn: Connection, kind: str, validated: Validated, problems: Problems, options: ImportOptions) -> None:
    frame = validated.frame
    if kind == "incidents":
        derive.derive_incidents(frame, options.deadline_hours)
    elif kind == "buildings":
        derive.derive_buildings(frame)
    elif kind == "addresses":
        derive.derive_addresses(frame, problems)
    elif kind == "hazards":
        derive.derive_hazards(frame)
    if "building_code" in frame:
        codes = frame["building_code"].to_numpy(dtype=object)
        has = frame["building_code"].notna().to_numpy()
        ids = building_ids(conn, codes[has].tolist())
        frame["building_id"] = pd.array(
            [ids.get(c) if ok else None for c, ok in zip(codes, has, strict=True)], dtype="Int64"
        )
        unknown = has & frame["building_id"].isna().to_numpy()
        problems.add(unknown, "building_code", codes, lambda v: f"no building with code {v!r} is stored")


def _store(
    conn: Connection,
    spec: Spec,
    good: pd.DataFrame,
    keys: np.ndarray,
    options: ImportOptions,
    result: ImportResult,
    clock: _Clock,
) -> None:
    writer = TableWriter.open(conn, spec.table, len(good), options.strategy)
    result.strategy = writer.strategy
    writer.lock()
    table_empty = writer.truncated or not conn.execute(sa.text(f"SELECT EXISTS (SELECT 1 FROM {spec.table})")).scalar()  # noqa: S608
    if not table_empty:
        stored = existing_keys(conn, spec.kind, keys)
        if stored:
            fresh = ~pd.Series(keys, dtype=object).isin(stored).to_numpy()  # hashed; np.isin on objects is quadratic
            result.already_stored = int((~fresh).sum())
            good = good.loc[fresh].reset_index(drop=True)
    clock.lap("deduplicate")
    cache = options.cache or AssignerCache(options.snap_tolerance_m)
    total = len(good)
    # Everything that needs the database is asked before the COPY starts: while a COPY is open
    # the connection takes no other statement.
    gens = generations_for_rows(conn, spec.table, good)
    for g in np.unique(gens):
        if g >= 0:
            cache.get(conn, int(g))
    statuses: dict[str, int] = {}
    try:
        for start in range(0, total, options.chunk_rows):
            stop = min(start + options.chunk_rows, total)
            part = good.iloc[start:stop]
            assignment = _assign_chunk(conn, cache, gens[start:stop], part)
            for status, count in zip(*np.unique(assignment.assign_status.astype(str), return_counts=True), strict=True):
                statuses[str(status)] = statuses.get(str(status), 0) + int(count)
            clock.lap("assign")
            writer.write(copy_columns(spec.table, part, assignment))
            clock.lap("copy")
            _tick(options, "store", stop, total)
    except BaseException:
        writer.abort()
        raise
    _tick(options, "index", total, total)
    result.inserted = writer.finish(total)
    result.already_stored += total - result.inserted
    result.assign_status = {("unassigned" if k == "None" else k): v for k, v in statuses.items()}
    clock.lap("index" if writer.strategy == "rebuild" else "merge")
    audit.record(
        conn,
        options.actor,
        f"import.{spec.kind}",
        result.source,
        rows=result.rows,
        inserted=result.inserted,
        bad=result.bad,
        duplicates=result.duplicates_in_file + result.already_stored,
        strategy=writer.strategy,
        sha256=_sha256(Path(result.source)),
    )


def _assign_chunk(conn: Connection, cache: AssignerCache, gens: np.ndarray, part: pd.DataFrame) -> Assignment:
    """Assign the rows of ``part``, each under its generation (already in ``cache``)."""
    lon, lat = part["lon"].to_numpy(np.float64), part["lat"].to_numpy(np.float64)
    n = len(part)
    kinds = np.unique(gens)
    if len(kinds) == 1 and kinds[0] >= 0:
        return cache.get(conn, int(kinds[0])).assign(lon, lat)

    def none() -> np.ndarray:
        return np.full(n, None, dtype=object)

    out = Assignment(
        none(), none(), none(), none(), none(), none(), np.full(n, -1, np.int64), none(), np.full(n, np.nan)
    )
    for g in kinds:
        if g < 0:
            continue  # no boundaries published yet at that time: stored unassigned
        sel = np.flatnonzero(gens == g)
        piece = cache.get(conn, int(g)).assign(lon[sel], lat[sel])
        for column in Assignment.COLUMNS:
            getattr(out, column)[sel] = getattr(piece, column)
    return out


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _write_outputs(raw: RawTable, path: Path, options: ImportOptions, result: ImportResult) -> None:
    if not len(result.problems):
        return
    result.report_path = write_report(result.problems, options.report_path or default_report_path(path))
    if options.skip_bad:
        result.reject_path = write_rejects(raw, result.problems, options.reject_path or default_reject_path(path))


def _tick(options: ImportOptions, stage: str, done: int, total: int) -> None:
    if options.progress is not None:
        options.progress(stage, done, total)


__all__ = ["ImportFileError", "ImportOptions", "ImportRejected", "ImportResult", "import_file", "import_frame"]
