"""``gridmap simulate``: plays the county's day against the database at a chosen speed (the
demo's simulator, demo.simulator): reports through intake, holders accepting and handling,
centres verifying and closing. ``gridmap demo`` runs it beside the API unless ``--no-simulate``."""

from __future__ import annotations

import typer
from rich.console import Console

out = Console(soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        speed: float = typer.Option(60.0, min=1.0, max=3600.0, help="simulated seconds per real second"),
        minutes: float | None = typer.Option(None, min=0.0, help="real minutes to run (default: until stopped)"),
        seed: int = typer.Option(7, help="the same seed, clock and database give the same day"),
        per_day: float | None = typer.Option(None, min=0.0, help="reports a day on average (default: the demo's)"),
        play_worker: bool = typer.Option(
            False, help="also run the due deadline jobs here (when no `gridmap worker` runs)"
        ),
    ) -> None:
        """Play the county's day: reports with the demo's daily rhythm and category mix, workers
        accepting, declining or letting offers expire, arriving and handling after realistic
        delays (scaled by the speed), escalations, summonses, verification and closing."""
        import logging

        from demo.simulator.mix import DEMO_PER_DAY
        from demo.simulator.play import SimConfig
        from demo.simulator.run import run, summary

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        config = SimConfig(
            speed=speed, seed=seed, per_day=DEMO_PER_DAY if per_day is None else per_day, play_worker=play_worker
        )
        tally = run(config, minutes=minutes)
        out.print(f"simulated {summary(tally)}", highlight=False)
