"""``gridmap db ...``: the local cluster, migrations, backups."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

# gis.core.cluster, gis.core.db and gis.core.settings (SQLAlchemy, pydantic) are imported inside the commands:
# see api/cli/__init__.py.

out = Console(soft_wrap=True)


def register(app: typer.Typer) -> None:
    group = typer.Typer(no_args_is_help=True, help="the database: local cluster, migrations")
    app.add_typer(group, name="db")

    @group.command("up")
    def up(
        replicas: int = typer.Option(
            0,
            "--replicas",
            min=0,
            max=4,
            help="standbys: run a pg_auto_failover formation (monitor, primary, N standbys)",
        ),
    ) -> None:
        """Create (once) and start the local PostGIS cluster, create the database, run migrations."""
        from gis.core import db
        from gis.core import replicas as formation
        from gis.core.settings import get_settings

        settings = get_settings()
        url = db.prepare(settings, replicas)
        where = "local cluster" if settings.uses_local_cluster else "configured server"
        if settings.uses_local_cluster and formation.configured(settings):
            where = formation.status(formation.base_dir(settings))
        out.print(f"database ready ({where}): {url}", highlight=False)

    @group.command("down")
    def down() -> None:
        """Stop this checkout's local cluster (no other server is touched)."""
        from gis.core import cluster
        from gis.core.settings import get_settings

        settings = get_settings()
        if not settings.uses_local_cluster:
            out.print("GRIDMAP_DATABASE_URL points at an external server; nothing to stop")
            return
        from gis.core import replicas

        stopped_formation = replicas.configured(settings) is not None and replicas.down(replicas.base_dir(settings))
        stopped = cluster.stop(settings)
        out.print("stopped" if stopped or stopped_formation else "not running")

    @group.command("status")
    def status() -> None:
        """Say whether the local cluster runs, where its data and socket are."""
        from gis.core import cluster
        from gis.core.settings import get_settings

        settings = get_settings()
        if not settings.uses_local_cluster:
            out.print(f"external database: {settings.database_url}", highlight=False)
            return
        from gis.core import replicas

        if replicas.configured(settings):
            out.print(replicas.status(replicas.base_dir(settings)), highlight=False)
        out.print(cluster.status(settings), highlight=False)

    @group.command("url")
    def url() -> None:
        """Print the SQLAlchemy URL to use."""
        from gis.core import db
        from gis.core.settings import get_settings

        typer.echo(db.database_url(get_settings()))

    @group.command("migrate")
    def migrate(revision: str = typer.Argument("head", help="target revision")) -> None:
        """Apply migrations up to REVISION (default: head)."""
        from gis.core import db
        from gis.core.settings import get_settings

        url = db.database_url(get_settings())
        db.migrate(url, revision)
        out.print(f"migrated to {revision}")

    @group.command("backup")
    def backup(path: Path = typer.Argument(..., help="file to write (pg_dump custom format)")) -> None:
        """Back up the whole database to FILE."""
        from gis.core import db
        from gis.core.settings import get_settings

        db.backup(db.database_url(get_settings()), path)
        out.print(f"backed up to {path} ({path.stat().st_size / 1e6:.1f} MB)", highlight=False)

    @group.command("restore")
    def restore(
        path: Path = typer.Argument(..., help="a file written by `gridmap db backup`"),
        yes: bool = typer.Option(False, "--yes", help="do not ask before replacing the database's contents"),
    ) -> None:
        """Restore the database from FILE (replaces its contents, all or nothing)."""
        from gis.core import db
        from gis.core.settings import get_settings

        if not yes:
            typer.confirm("This replaces the database's contents. Continue?", abort=True)
        db.restore(db.database_url(get_settings()), path)
        out.print(f"restored from {path}", highlight=False)

    @group.command("downgrade")
    def downgrade(revision: str = typer.Argument(..., help="target revision, e.g. base")) -> None:
        """Revert migrations down to REVISION."""
        from gis.core import db
        from gis.core.settings import get_settings

        db.downgrade(db.database_url(get_settings()), revision)
        out.print(f"downgraded to {revision}")
