"""``gridmap worker``: runs the job queue's jobs (deadlines and escalation; gis.work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker(
        concurrency: int = typer.Option(
            None, min=1, max=64, help="jobs run at a time (default GRIDMAP_WORKER_CONCURRENCY)"
        ),
    ) -> None:
        """Run the jobs (deadlines, escalation) until SIGTERM or Ctrl-C. Run one or several, on any
        machine that reaches the database: each job runs once."""
        import asyncio
        import logging

        from gis.work.worker import run_worker

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
        asyncio.run(
            run_worker(concurrency, on_start=lambda: logging.getLogger("gridmap.worker").info("worker running"))
        )
