"""``gridmap serve``: the API and map pages."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: str = typer.Option(None, help="bind address (default GRIDMAP_HOST)"),
        port: int = typer.Option(None, help="port (default GRIDMAP_PORT)"),
        workers: int = typer.Option(1, min=1, help="uvicorn worker processes"),
    ) -> None:
        """Serve the API, the docs (/docs) and the map pages."""
        import uvicorn

        from gis.core.settings import get_settings

        settings = get_settings()
        uvicorn.run(
            "api.main:app",
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
            log_level="info",
            access_log=False,
        )
