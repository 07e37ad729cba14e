"""``gridmap verify [--repair] [--table T]``: check every stored assignment against the boundaries."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.table import Table

from api.cli._names import POINT_TABLES

# gis.spatial.verify (pandas, the bulk loader) and the database modules are imported inside the command:
# see api/cli/__init__.py.

out = Console(soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify_(
        repair: bool = typer.Option(False, "--repair", help="rewrite disagreeing rows (one transaction)"),
        table: list[str] = typer.Option([], "--table", help=f"only these tables ({', '.join(POINT_TABLES)})"),
        show: int = typer.Option(20, min=0, help="how many disagreeing rows to list per table"),
    ) -> None:
        """Re-derive every point's town, village, grid, micro-grid, station, beat and county; report rows that disagree.

        Exits 1 whenever a row disagreed, 0 only when none did. With --repair the rows are rewritten
        and it still exits 1, so that a nightly repair run is noticed; a second run exits 0."""
        from gis.core.db import engine_from_settings
        from gis.core.settings import get_settings
        from gis.spatial.verify import verify

        settings = get_settings()
        engine = engine_from_settings(settings)
        started = time.perf_counter()
        try:
            with engine.begin() as conn:
                results = verify(
                    conn,
                    table or POINT_TABLES,
                    repair=repair,
                    sample=show,
                    snap_tolerance_m=settings.snap_tolerance_m,
                )
        finally:
            engine.dispose()
        summary = Table("table", "rows checked", "disagreeing", "repaired")
        for r in results:
            summary.add_row(r.table, f"{r.checked:,}", f"{r.disagreeing:,}", f"{r.repaired:,}")
        out.print(summary)
        for r in results:
            if len(r.sample):
                detail = Table("id", "column", "stored", "derived", title=f"{r.table}: first disagreeing rows")
                for row in r.sample.itertuples():
                    detail.add_row(str(row.id), str(row.column), str(row.stored), str(row.derived))
                out.print(detail)
        out.print(f"checked in {time.perf_counter() - started:.1f}s")
        found = sum(r.disagreeing for r in results)
        left = sum(r.disagreeing - r.repaired for r in results)
        if left:
            out.print(f"{left:,} rows disagree; run `gridmap verify --repair` to fix them")
        elif found:
            out.print(f"{found:,} rows disagreed and were repaired")
        if found:
            raise typer.Exit(1)
