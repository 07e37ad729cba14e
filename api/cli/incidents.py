"""``gridmap incidents ...``: escalation of overdue incidents, and the ones outside the jurisdiction."""

from __future__ import annotations

import datetime as dt

import typer
from rich.console import Console
from rich.table import Table

# The gis modules (SQLAlchemy, the ORM models) are imported inside the commands: see
# api/cli/__init__.py.

out = Console(soft_wrap=True)


def register(app: typer.Typer) -> None:
    group = typer.Typer(no_args_is_help=True, help="incidents: escalation, outside the jurisdiction")
    app.add_typer(group, name="incidents")

    @group.command("escalate")
    def escalate(
        now: str = typer.Option(None, help="pretend it is this time (ISO-8601; no zone = China time); default now"),
    ) -> None:
        """Escalate every pending incident past its deadline one level (grid → village → town → county).

        `gridmap worker` does this by itself (each deadline as a job, and a sweep every minute); this
        runs it once, by hand."""
        from gis.core.db import engine_from_settings, transaction
        from gis.core.timeparse import parse_time
        from gis.incidents.workflow import escalate_overdue

        when = parse_time(now, bound="instant", field="--now") if now else dt.datetime.now(dt.UTC)
        engine = engine_from_settings()
        with transaction(engine) as session:
            moved = escalate_overdue(session, when, actor="cli")
        out.print(f"escalated {moved} overdue incident(s)")

    @group.command("outside")
    def outside(limit: int = typer.Option(50, min=1, max=1000, help="how many to show")) -> None:
        """List open incidents outside the jurisdiction, for a person to forward or correct."""
        from gis.core.db import engine_from_settings, transaction
        from gis.incidents.filter import IncidentFilter
        from gis.incidents.query import list_incidents

        engine = engine_from_settings()
        with transaction(engine) as session:
            items, total = list_incidents(
                session, IncidentFilter(assign_status=("outside_jurisdiction",), open_only=True), limit
            )
        table = Table("id", "reported", "category", "source", "lon", "lat", "status", title=f"{total} outside")
        for i in items:
            table.add_row(
                str(i["id"]),
                f"{i['reported_at']:%Y-%m-%d %H:%M}",
                i["category"],
                i["source"],
                f"{i['lon']:.6f}",
                f"{i['lat']:.6f}",
                i["status"],
            )
        out.print(table)
