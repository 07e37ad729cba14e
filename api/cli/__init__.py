"""The ``gridmap`` command. Each module here registers its commands with ``register(app)``; every
command calls the same functions the API calls. Known failures print one line, never a traceback.

Start-up time matters here (every invocation, even ``--help``, imports this package and every
command module), so the command modules import the heavy parts (pandas, geopandas, folium,
SQLAlchemy, the gis/boundaries/maps modules) inside the command functions; only typer, rich and
light name lists are imported when the commands are registered.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, add_completion=False, help="gridmap: grid governance on PostGIS")
err = Console(stderr=True, soft_wrap=True)

# Errors whose message already says what is wrong and what to do, as (module, class name). They
# are looked up in sys.modules when something fails, so that naming them here imports nothing: an
# exception of one of these classes can only exist once its module has been imported.
KNOWN_ERRORS: tuple[tuple[str, str], ...] = (
    ("gis.core.settings", "SettingsError"),
    ("gis.core.cluster", "ClusterError"),
    ("gis.core.db", "DatabaseError"),
    ("gis.shards.routing", "ShardUnavailable"),
)

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}").register(app)


def is_known_error(exc: BaseException) -> bool:
    if isinstance(exc, ValueError):
        return True
    for module_name, class_name in KNOWN_ERRORS:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(exc, getattr(module, class_name)):
            return True
    return False


def main() -> None:
    try:
        # Outside standalone mode click does not exit on ``typer.Exit(code)``: it returns the code.
        # Dropping it made every "exits 1 when ..." command (verify, boundaries validate) exit 0.
        code = app(standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code:
            sys.exit(code)
    except (typer.Exit, typer.Abort) as exc:
        sys.exit(getattr(exc, "exit_code", 1))
    except Exception as exc:
        if is_known_error(exc):
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            sys.exit(1)
        import click

        if isinstance(exc, click.ClickException):  # click's usage errors
            exc.show()
            sys.exit(exc.exit_code)
        raise
