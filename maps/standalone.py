"""Standalone map files: one HTML file per page with every script, style and layer inside it.

Used by ``gridmap map ...`` to hand a map to people with no access to the server (a briefing, an
isolated screen). There is no server to poll, so the live layer is left out and the legend says
when the snapshot was made.
"""

from __future__ import annotations

from gis.outputs.mapdata import IncidentFilter
from gis.spatial.areas import Conn
from maps import beat_page, command_center, grid_dashboard, heat_time
from maps.page import PageContext, render

PAGES = ("command-center", "heatmap-time", "grid", "beat")


class UnknownPageError(ValueError):
    pass


def build_html(
    conn: Conn, page: str, ctx: PageContext, flt: IncidentFilter, *, code: str | None = None, by: str = "hour"
) -> str:
    """The HTML of ``page`` (one of PAGES); ``code`` names the grid or beat."""
    if page not in PAGES:
        raise UnknownPageError(f"page: {page!r} is not one of {', '.join(PAGES)}")
    if page == "command-center":
        m = command_center.build(conn, ctx, flt)
    elif page == "heatmap-time":
        m = heat_time.build(conn, ctx, flt, by)
    else:
        if not code:
            raise UnknownPageError(f"page {page!r} needs the {page}'s code")
        found = (grid_dashboard if page == "grid" else beat_page).build(conn, ctx, code, flt)
        if found is None:
            raise UnknownPageError(f"no {page} with code {code!r} in the boundaries in force")
        m = found
    return render(m, ctx)
