"""``gridmap map ...``: write a map page as one standalone HTML file (assets and data inlined)."""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

import typer

WINDOW_HELP = "today, 7d, 30d, 90d, 365d or custom (default 7d; custom when --start/--end are given)"
# --from/--to were the window's names before; kept as aliases for one release.
TIME_HELP = "no offset = county time (Asia/Shanghai); --{old} is a deprecated alias"


def import_folium_without_pandas() -> None:
    """Import folium without letting it import pandas.

    folium imports pandas, when installed, only to accept DataFrames as locations, which no
    gridmap page passes; pandas is 0.3-0.4 s of this command's start-up. Nothing else the page
    builders import needs it. If pandas or folium is already loaded this does nothing, and pandas
    stays importable afterwards (folium then simply does not know about DataFrames).
    """
    if "folium" in sys.modules or "pandas" in sys.modules:
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` raises ImportError
    try:
        import folium  # noqa: F401
    finally:
        del sys.modules["pandas"]


def register(app: typer.Typer) -> None:
    group = typer.Typer(no_args_is_help=True, help="Write map pages as standalone HTML files (work offline)")
    app.add_typer(group, name="map")

    def write(
        page: str,
        out: Path,
        code: str | None,
        window: str | None,
        start: str | None,
        end: str | None,
        category: str | None,
        source: str | None,
        status: str | None,
        lang: str,
        role: str,
        by: str = "hour",
    ) -> None:
        # Imported here: folium and the page builders are heavy, and every `gridmap` command
        # (not only `gridmap map`) imports this module to register its commands.
        import_folium_without_pandas()
        from gis.core.db import engine_from_settings
        from gis.core.settings import get_settings
        from gis.outputs.mapdata import LayerCache, parse_filter
        from maps.page import PageContext
        from maps.standalone import build_html

        began = time.perf_counter()
        settings = get_settings()
        flt = parse_filter(window, start, end, category, source, status)
        # A cache of its own: a page may draw one layer twice (the command centre's grids).
        ctx = PageContext.from_settings(settings, lang=lang, role=role, standalone=True, layer_cache=LayerCache())
        engine = engine_from_settings(settings)
        # A page is built from hundreds of thousands of small dicts and lists, which make Python's
        # cyclic garbage collector run again and again over everything imported so far (a third
        # of the build time). The few cycles a build leaves (folium's element tree) can wait for
        # the end of this short-lived process, so the collector is paused meanwhile.
        gc.disable()
        try:
            with engine.connect() as conn:
                html = build_html(conn, page, ctx, flt, code=code, by=by)
        finally:
            engine.dispose()
            gc.enable()
        out.parent.mkdir(parents=True, exist_ok=True)
        data = html.encode("utf-8")  # once: the page runs to tens of megabytes
        out.write_bytes(data)
        typer.echo(f"wrote {out} ({len(data) / 1e6:.1f} MB) in {time.perf_counter() - began:.1f} s")

    out_opt = typer.Option(..., "--out", "-o", help="HTML file to write")
    window_opt = typer.Option(None, help=WINDOW_HELP)
    from_opt = typer.Option(
        None, "--start", "--from", help="custom window start, e.g. YYYY-MM-DD; " + TIME_HELP.format(old="from")
    )
    to_opt = typer.Option(
        None, "--end", "--to", help="custom window end; a bare date includes that day; " + TIME_HELP.format(old="to")
    )
    category_opt = typer.Option(None, help="comma-separated incident categories")
    source_opt = typer.Option(None, help="comma-separated sources")
    status_opt = typer.Option(None, help="comma-separated statuses")
    lang_opt = typer.Option("zh", help="zh or en")
    role_opt = typer.Option("viewer", help="mask personal data as for this role (dispatcher and above see it)")

    @group.command("command-center")
    def command_center(
        out: Path = out_opt,
        window: str = window_opt,
        start: str = from_opt,
        end: str = to_opt,
        category: str = category_opt,
        source: str = source_opt,
        status: str = status_opt,
        lang: str = lang_opt,
        role: str = role_opt,
    ) -> None:
        """The command-centre map (boundaries, police, buildings, hazards, heat, overdue incidents)."""
        write("command-center", out, None, window, start, end, category, source, status, lang, role)

    @group.command("heatmap-time")
    def heatmap_time(
        out: Path = out_opt,
        by: str = typer.Option("hour", help="hour (of day) or day"),
        window: str = typer.Option("30d", help=WINDOW_HELP),
        start: str = from_opt,
        end: str = to_opt,
        category: str = category_opt,
        source: str = source_opt,
        status: str = status_opt,
        lang: str = lang_opt,
    ) -> None:
        """Incident heat animated by hour of day or by day."""
        write(
            "heatmap-time",
            out,
            None,
            None if start or end else window,
            start,
            end,
            category,
            source,
            status,
            lang,
            "viewer",
            by,
        )

    @group.command("grid")
    def grid(
        code: str = typer.Argument(..., help="grid code"),
        out: Path = out_opt,
        window: str = typer.Option("90d", help=WINDOW_HELP),
        start: str = from_opt,
        end: str = to_opt,
        lang: str = lang_opt,
        role: str = role_opt,
    ) -> None:
        """One grid's dashboard with trend charts."""
        write("grid", out, code, None if start or end else window, start, end, None, None, None, lang, role)

    @group.command("beat")
    def beat(
        code: str = typer.Argument(..., help="police beat code"),
        out: Path = out_opt,
        window: str = window_opt,
        start: str = from_opt,
        end: str = to_opt,
        lang: str = lang_opt,
    ) -> None:
        """A police beat and the grids it overlaps."""
        write("beat", out, code, window, start, end, None, None, None, lang, "viewer")
