"""``gridmap import incidents|buildings|addresses|hazards|staff|org-units|inspections|places FILE``: bulk import.

``staff`` (one row per posting) and ``org-units`` go to gis.people, with the same readers and report;
``inspections`` (past inspections, one row each) to gis.fieldwork.importer; ``places`` (points of
interest: name, aliases, kind, address and/or coordinate) to gis.spatial.placeimport."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from api.cli._names import IMPORT_KINDS

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

# gis.bulk (pandas, geopandas, psycopg's COPY) and the database modules are imported inside the
# command: see api/cli/__init__.py.

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def parse_mapping(items: list[str]) -> dict[str, str]:
    """``["lon=经度", "lat=纬度"]`` -> ``{"lon": "经度", "lat": "纬度"}``."""
    mapping: dict[str, str] = {}
    for item in items:
        field, sep, column = item.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise ValueError(f"--map {item!r}: expected FIELD=COLUMN, e.g. --map lon=经度")
        mapping[field.strip()] = column.strip()
    return mapping


class ProgressBar:
    """A rich progress bar fed by the pipeline's (stage, done, total) callbacks."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task: TaskID | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.task is None:
            self.task = self.progress.add_task(stage, total=max(total, 1))
        self.progress.update(self.task, description=stage, completed=done, total=max(total, 1))


def register(app: typer.Typer) -> None:
    @app.command("import")
    def import_(
        kind: str = typer.Argument(
            ..., help=f"what the file holds: {', '.join(IMPORT_KINDS)}, staff, org-units, inspections, places"
        ),
        file: Path = typer.Argument(..., help="CSV (UTF-8, UTF-8 with BOM, GBK/GB18030), XLSX, GeoJSON or GPKG"),
        map_: list[str] = typer.Option([], "--map", help="FIELD=COLUMN, e.g. --map lon=经度 (repeatable)"),
        crs: str = typer.Option("wgs84", help="coordinate system of the coordinates: wgs84, gcj02 or bd09"),
        encoding: str | None = typer.Option(None, help="CSV encoding (default: detect UTF-8 or GB18030)"),
        skip_bad: bool = typer.Option(False, "--skip-bad", help="load the good rows, write bad ones to a reject file"),
        report: Path | None = typer.Option(None, help="where to write the report (default: FILE.report.csv)"),
        rejects: Path | None = typer.Option(None, help="where to write rejected rows (default: FILE.rejects.EXT)"),
        strategy: str = typer.Option("auto", help="auto, merge or rebuild (see gis/bulk/store.py)"),
        show: int = typer.Option(20, min=0, help="how many problems to print"),
    ) -> None:
        """Import a file; by default all-or-nothing, with a report naming each bad row, field and reason."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from gis.bulk import ImportOptions, ImportRejected, import_file
        from gis.core.db import engine_from_settings
        from gis.core.settings import get_settings

        if strategy not in ("auto", "merge", "rebuild"):
            raise ValueError(f"--strategy {strategy!r}: expected auto, merge or rebuild")
        settings = get_settings()
        if kind == "org-units":
            _import_org_units(file, encoding)
            return
        if kind == "inspections":
            _import_inspections(file, encoding)
            return
        if kind == "places":
            _import_places(file, encoding, crs, show)
            return
        engine = engine_from_settings(settings)
        columns = (
            TextColumn("{task.description:<12}"),
            BarColumn(),
            TextColumn("{task.completed:>,}/{task.total:,}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=err, transient=True) as progress:
            options = ImportOptions(
                mapping=parse_mapping(map_),
                crs=crs,
                encoding=encoding,
                skip_bad=skip_bad,
                report_path=report,
                reject_path=rejects,
                strategy=strategy,  # type: ignore[arg-type]
                actor="cli",
                snap_tolerance_m=settings.snap_tolerance_m,
                deadline_hours=settings.deadline_hours,
                progress=ProgressBar(progress),
            )
            try:
                if kind == "staff":
                    from gis.people.staffimport import import_staff

                    result = import_staff(engine, file, options)
                else:
                    result = import_file(engine, kind, file, options)
            except ImportRejected as exc:
                progress.stop()
                err.print(f"[red]rejected:[/red] {exc}", highlight=False)
                if exc.result.report_path:
                    err.print(f"full report: {exc.result.report_path}", highlight=False)
                raise typer.Exit(1) from None
            finally:
                engine.dispose()
        for note in result.notes:
            out.print(f"note: {note}", highlight=False)
        out.print(
            f"{kind}: {result.rows:,} rows read, {result.inserted:,} stored, "
            f"{result.duplicates_in_file + result.already_stored:,} already present or repeated, "
            f"{result.bad:,} bad ({result.strategy})",
            highlight=False,
        )
        if result.assign_status:
            out.print("assignment: " + ", ".join(f"{k} {v:,}" for k, v in sorted(result.assign_status.items())))
        for line in result.summary_lines(show):
            out.print(f"  {line}", highlight=False)
        if result.report_path:
            out.print(f"report: {result.report_path}", highlight=False)
        if result.reject_path:
            out.print(f"rejected rows: {result.reject_path}", highlight=False)
        total = sum(result.timings.values())
        rate = result.rows / total if total else 0.0
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
        out.print(f"time: {total:.1f}s ({rate:,.0f} rows/s): {stages}", highlight=False)


def _import_org_units(file: Path, encoding: str | None) -> None:
    """Organisation units from CSV/XLSX (code, name, kind, layer, area_code, parent_code, is_key),
    parents before children; all or nothing, the first bad row named."""
    from gis.bulk.readers import read_table
    from gis.core.db import engine_from_settings
    from gis.people.orgunits import create_org_units
    from gis.people.rules import PeopleInputError

    raw = read_table(file, encoding=encoding)
    # Spreadsheet rows: the header is row 1.
    frame = raw.frame
    engine = engine_from_settings()
    try:
        with engine.begin() as conn:
            count = create_org_units(conn, "cli", frame, first_row=int(raw.rows[0]) if len(raw.rows) else 2)
    except PeopleInputError as exc:
        err.print(f"[red]rejected:[/red] {exc.field}: {exc.reason}; nothing was stored", highlight=False)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    out.print(f"org-units: {count} stored", highlight=False)


def _import_inspections(file: Path, encoding: str | None) -> None:
    """Past inspections from CSV/XLSX (gis.fieldwork.importer); all or nothing, the first bad row named."""
    from gis.bulk.readers import read_table
    from gis.core.db import engine_from_settings
    from gis.fieldwork.importer import InspectionImportError, import_inspections

    raw = read_table(file, encoding=encoding)
    engine = engine_from_settings()
    try:
        with engine.begin() as conn:
            first = int(raw.rows[0]) if len(raw.rows) else 2
            summary = import_inspections(conn, raw.frame, "cli", first_row=first)
    except InspectionImportError as exc:
        err.print(f"[red]rejected:[/red] {exc}; nothing was stored", highlight=False)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    out.print(
        f"inspections: {summary.inspections} stored, {summary.hazards_opened} hazards opened, "
        f"{summary.hazards_rectified} rectified by later rows",
        highlight=False,
    )


def _import_places(file: Path, encoding: str | None, crs: str, show: int) -> None:
    """Places from CSV/XLSX (gis.spatial.placeimport); all or nothing, every bad row named."""
    from gis.bulk.readers import ImportFileError, read_table
    from gis.core.db import engine_from_settings
    from gis.spatial.placeimport import PlaceImportError, import_places

    try:
        raw = read_table(file, encoding=encoding)
    except ImportFileError as exc:
        err.print(f"[red]rejected:[/red] {exc}; nothing was stored", highlight=False)
        raise typer.Exit(1) from None
    engine = engine_from_settings()
    try:
        with engine.begin() as conn:
            result = import_places(conn, raw, default_crs=crs)
    except PlaceImportError as exc:
        err.print(f"[red]rejected:[/red] {len(exc.problems)} bad row(s); nothing was stored", highlight=False)
        for problem in exc.problems[: max(show, 1)]:
            err.print(f"  {problem}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    out.print(
        f"places: {result.rows:,} rows read, {result.inserted:,} new, {result.updated:,} updated", highlight=False
    )
