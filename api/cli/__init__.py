"""The ``gridmap`` command. Each module here registers its commands with ``register(app)``; every
command calls the same functions the API calls. Known failures print one line, never a traceback."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from rich.console import Console

from gis.cluster import ClusterError
from gis.db import DatabaseError
from gis.settings import SettingsError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="gridmap: grid governance on PostGIS")
err = Console(stderr=True, soft_wrap=True)

# Errors whose message already says what is wrong and what to do.
KNOWN_ERRORS: tuple[type[Exception], ...] = (SettingsError, ClusterError, DatabaseError, ValueError)

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}").register(app)


def main() -> None:
    try:
        app(standalone_mode=False)
    except KNOWN_ERRORS as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
    except (typer.Exit, typer.Abort) as exc:
        sys.exit(getattr(exc, "exit_code", 1))
    except Exception as exc:  # click's usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
