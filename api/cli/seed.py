"""``gridmap seed jiashan``: generate and load the Jiashan demo (replacing a previous demo), or top
the demo already loaded up to now when it was seeded with the same seed and volume."""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    import pandas as pd

# The loader and the database modules are imported inside run_seed: see api/cli/__init__.py.

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def parse_end(text: str | None) -> pd.Timestamp | None:
    """``--end``: an ISO 8601 time; without an offset it is China time (Asia/Shanghai)."""
    # TODO(lead): use gis.core.timeparse.parse_time once the timeparse branch is merged.
    if text is None:
        return None
    import pandas as pd

    from gis.incidents.rules import LOCAL_TZ

    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"--end: {text!r} is not an ISO 8601 time, e.g. 2026-12-03T08:00:00+08:00") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=LOCAL_TZ)
    return pd.Timestamp(when).tz_convert(LOCAL_TZ)


def _progress() -> tuple[object, ...]:
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

    return (
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.completed:>,}/{task.total:,}"),
        TimeElapsedColumn(),
    )


def run_topup(end: pd.Timestamp | None = None) -> bool:
    """Top the demo in the database up to ``end`` (default now); False when there is no demo to top up."""
    from rich.progress import Progress

    from api.cli.imports import ProgressBar
    from demo.jiashan.topup import top_up
    from gis.core.db import engine_from_settings

    engine = engine_from_settings()
    started = time.perf_counter()
    try:
        with Progress(*_progress(), console=err, transient=True) as progress:  # type: ignore[arg-type]
            report = top_up(engine, end, progress=ProgressBar(progress))
    finally:
        engine.dispose()
    if report is None:
        return False
    took = time.perf_counter() - started
    if report.end == report.start:
        out.print(f"the demo is up to date: its year ends at {report.end:%Y-%m-%d %H:%M:%S %Z}", highlight=False)
        return True
    out.print(
        f"the demo's year now ends at {report.end:%Y-%m-%d %H:%M:%S %Z}: {report.inserted:,} incidents reported "
        f"since {report.start:%Y-%m-%d %H:%M:%S} added, {report.advanced:,} open ones moved on ({took:.1f}s)",
        highlight=False,
    )
    return True


def run_seed(
    seed: int, incidents: int | None, force: bool, *, end: pd.Timestamp | None = None, fresh: bool = True
) -> None:
    """Generate and load the demo with its year ending at ``end`` (default now), printing per-stage
    times (also used by ``gridmap demo``). Unless ``fresh``, a demo already loaded with the same
    seed and yearly volume is topped up instead (when ``end`` is not before its end)."""
    from rich.progress import Progress

    from api.cli.imports import ProgressBar
    from demo.jiashan.incidents import DEFAULT_INCIDENTS
    from demo.jiashan.load import seed_jiashan
    from demo.jiashan.topup import demo_state
    from gis.core.db import engine_from_settings

    if not fresh:
        engine = engine_from_settings()
        try:
            with engine.connect() as conn:
                state = demo_state(conn)
        finally:
            engine.dispose()
        per_year = DEFAULT_INCIDENTS if incidents is None else incidents
        same = state is not None and (state.seed, state.per_year) == (seed, per_year)
        if state is not None and same and (end is None or end >= state.until) and run_topup(end):
            return
    engine = engine_from_settings()
    started = time.perf_counter()
    try:
        with Progress(*_progress(), console=err, transient=True) as progress:  # type: ignore[arg-type]
            bar = ProgressBar(progress)
            report, build = seed_jiashan(engine, seed=seed, incidents=incidents, end=end, force=force, progress=bar)
    finally:
        engine.dispose()
    total = time.perf_counter() - started
    out.print(f"Jiashan demo loaded as boundary generation {report.generation} (seed {seed})", highlight=False)
    for kind, count in report.counts.items():
        status = report.assign_status.get(kind)
        detail = f"  ({', '.join(f'{k} {v:,}' for k, v in sorted(status.items()))})" if status else ""
        out.print(f"  {kind:<10} {count:>9,}{detail}", highlight=False)
    for kind, count in report.fieldwork.items():  # visits and patrols (demo.jiashan.fieldwork)
        out.print(f"  {kind:<10} {count:>9,}", highlight=False)
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
        end: str | None = typer.Option(
            None, help="when the demo's year ends, ISO 8601 (default: now; no offset means China time)"
        ),
        fresh: bool = typer.Option(False, "--fresh", help="reload the whole demo even if it only needs a top-up"),
        force: bool = typer.Option(False, "--force", help="replace data that is not the demo's"),
    ) -> None:
        """Generate the Jiashan demo and load it, replacing a previous demo (one transaction); a demo
        loaded earlier with the same seed and volume is topped up to the end instead."""
        run_seed(seed, incidents, force, end=parse_end(end), fresh=fresh)

    @group.command("province")
    def province(
        counties: int = typer.Option(
            10, min=1, max=90, help="counties of Zhejiang (Jiashan first, then its neighbours)"
        ),
        incidents_per_county: int | None = typer.Option(
            None, min=0, help="incidents a year per county (default 2,000)"
        ),
        seed: int = typer.Option(42, min=0, help="random seed (same seed, same counties)"),
        end: str | None = typer.Option(None, help="when the year ends, ISO 8601 (default: now; China time)"),
        force: bool = typer.Option(False, "--force", help="replace data that is not the demo's"),
    ) -> None:
        """Seed the province demo (issue #20): Jiashan's real demo, then synthetic counties of
        Zhejiang with their real outlines, each as a boundary generation of its own county. Serve
        it with GRIDMAP_COUNTIES listing the seeded counties (``gridmap demo-province`` does)."""
        from api.cli.province import run_seed_province

        run_seed_province(counties, incidents_per_county, seed, force, end=parse_end(end))
