"""``gridmap demo``: the README's main job: database, Jiashan demo data (once), API and maps."""

from __future__ import annotations

import typer
from rich.console import Console

from gis import db
from gis.settings import get_settings

out = Console(soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        serve: bool = typer.Option(True, help="serve the API and maps after loading"),
        workers: int = typer.Option(2, min=1, help="uvicorn worker processes"),
    ) -> None:
        """Bring up the database, load the Jiashan demo when the database is empty, and serve."""
        import uvicorn

        settings = get_settings()
        db.prepare(settings)
        base = f"http://{settings.host}:{settings.port}"
        out.print(f"gridmap is starting on {base}", highlight=False)
        for path, what in (("/health", "health"), ("/docs", "API documentation")):
            out.print(f"  {what:<22} {base}{path}", highlight=False)
        if serve:
            uvicorn.run(
                "api.main:app",
                host=settings.host,
                port=settings.port,
                workers=workers,
                log_level="info",
                access_log=False,
            )
