"""``gridmap seed jiashan``: generate and load the Jiashan demo (replacing a previous demo)."""

from __future__ import annotations

import time

import typer
from rich.console import Console

# The loader and the database modules are imported inside run_seed: see api/cli/__init__.py.

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def run_seed(seed: int, incidents: int | None, force: bool) -> None:
    """Generate and load the demo, printing per-stage times (also used by ``gridmap demo``)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from api.cli.imports import ProgressBar
    from demo.jiashan.load import seed_jiashan
    from gis.core.db import engine_from_settings

    engine = engine_from_settings()
    started = time.perf_counter()
    columns = (
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.completed:>,}/{task.total:,}"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=err, transient=True) as progress:
            bar = ProgressBar(progress)
            report, build = seed_jiashan(engine, seed=seed, incidents=incidents, force=force, progress=bar)
    finally:
        engine.dispose()
    total = time.perf_counter() - started
    out.print(f"Jiashan demo loaded as boundary generation {report.generation} (seed {seed})", highlight=False)
    for kind, count in report.counts.items():
        status = report.assign_status.get(kind)
        detail = f"  ({', '.join(f'{k} {v:,}' for k, v in sorted(status.items()))})" if status else ""
        out.print(f"  {kind:<10} {count:>9,}{detail}", highlight=False)
    out.print("  generate: " + ", ".join(f"{k} {v:.1f}s" for k, v in build.items()), highlight=False)
    out.print("  load:     " + ", ".join(f"{k} {v:.1f}s" for k, v in report.timings.items()), highlight=False)
    out.print(f"  total {total:.1f}s", highlight=False)


def register(app: typer.Typer) -> None:
    group = typer.Typer(no_args_is_help=True, help="demo data")
    app.add_typer(group, name="seed")

    @group.command("jiashan")
    def jiashan(
        seed: int = typer.Option(42, min=0, help="random seed (same seed, same demo)"),
        incidents: int | None = typer.Option(None, min=0, help="incidents to generate (default: 282,347, a year)"),
        force: bool = typer.Option(False, "--force", help="replace data that is not the demo's"),
    ) -> None:
        """Generate the Jiashan demo and load it, replacing a previous demo (one transaction)."""
        run_seed(seed, incidents, force)
