"""Callbacks (回访): after an incident reported by a resident or a hotline is closed, someone calls
the reporter back and records satisfied / basically satisfied / dissatisfied. A dissatisfied
result within ``REOPEN_WITHIN`` of the closing reopens the incident to its last lead holder (a
new offer with its acceptance deadline, and a fresh handling deadline), recorded as a ``reopen``
event in its history. The latest result of an incident counts for the satisfaction KPI
(gis.analysis.kpis); residents' own ratings are callbacks of the channel ``resident_rating``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from gis.core import audit
from gis.incidents import rules
from gis.incidents.errors import IncidentInputError
from gis.incidents.intake import clean_text
from gis.incidents.reopen import reopen
from gis.incidents.workflow import IllegalTransition, IncidentNotFound
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn

RESULTS = ("satisfied", "basically_satisfied", "dissatisfied")
CHANNELS = ("callback", "resident_rating", "hotline")
# The sources whose reporters are called back: the residents and the hotlines.
CALLED_BACK_SOURCES = ("resident_app", "hotline_12345", "hotline_110")
REOPEN_WITHIN = dt.timedelta(days=7)


class CallbackInputError(IncidentInputError):
    """A callback value is unusable (the API answers 422 naming the field)."""


# The incident, locked; ``in_scope`` is the caller's scope condition (its values bound).
_LOCK_SQL = (
    "SELECT id, status, source, escalation_level, reported_at, deadline_at, closed_at "
    "FROM incidents WHERE id = :id AND {in_scope} FOR UPDATE"
)
_DUE_SQL = (
    "SELECT i.id, i.source, i.category, i.closed_at, i.reporter_name, i.reporter_phone, i.town_code, i.grid_code "
    "FROM incidents i WHERE i.status = 'closed' AND i.source = ANY(:sources) AND i.closed_at >= :since "
    "AND NOT EXISTS (SELECT 1 FROM incident_callbacks c WHERE c.incident_id = i.id) "
    "AND {in_scope} ORDER BY i.closed_at LIMIT :n"
)


def _lock(conn: Conn, incident_id: int, scope: Scope, statuses: tuple[str, ...]) -> sa.RowMapping:
    in_scope, params = scope.where()
    row = (
        conn.execute(
            sa.text(_LOCK_SQL.format(in_scope=in_scope)),
            {"id": incident_id, **params},
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise IncidentNotFound(incident_id)
    if row["status"] not in statuses:
        why = "a callback follows closing" if statuses == ("closed",) else f"it is rated once {' or '.join(statuses)}"
        raise IllegalTransition(incident_id, row["status"], "callback", rules.TRANSITIONS[row["status"]], why=why)
    return row


def record_callback(
    conn: Conn,
    incident_id: int,
    result: str,
    actor: str,
    *,
    note: str | None = None,
    channel: str = "callback",
    now: dt.datetime | None = None,
    scope: Scope = WHOLE_COUNTY,
    statuses: tuple[str, ...] = ("closed",),
) -> dict[str, Any]:
    """Record a callback result of an incident in one of ``statuses`` (staff call back closed
    incidents; residents rate theirs once handled: gis.channels.ratings); a dissatisfied one
    reopens it (gis.incidents.reopen) unless it closed more than ``REOPEN_WITHIN`` ago. An incident
    outside ``scope`` is not found."""
    if result not in RESULTS:
        raise CallbackInputError("result", f"{str(result)[:40]!r} is not one of {', '.join(RESULTS)}")
    if channel not in CHANNELS:
        raise CallbackInputError("channel", f"{str(channel)[:40]!r} is not one of {', '.join(CHANNELS)}")
    note = clean_text({"note": note}, "note")
    now = now or dt.datetime.now(dt.UTC)
    incident = _lock(conn, incident_id, scope, statuses)
    closed_at = incident["closed_at"]
    reopens = result == "dissatisfied" and (closed_at is None or now - closed_at <= REOPEN_WITHIN)
    callback_id = conn.execute(
        sa.text(
            "INSERT INTO incident_callbacks (incident_id, at, result, channel, note, actor, reopened) "
            "VALUES (:i, :at, :r, :c, :n, :a, :re) RETURNING id"
        ),
        {"i": incident_id, "at": now, "r": result, "c": channel, "n": note, "a": actor, "re": reopens},
    ).scalar_one()
    status = incident["status"]
    if reopens:
        why = f"reopened: dissatisfied {channel.replace('_', ' ')}" + (f": {note}" if note else "")
        status = reopen(conn, incident_id, actor, why, now) or status
    audit.record(
        conn, actor, "incident.callback", f"incident/{incident_id}", result=result, channel=channel, reopened=reopens
    )
    return {
        "id": int(callback_id),
        "incident_id": incident_id,
        "at": now.isoformat(),
        "result": result,
        "channel": channel,
        "note": note,
        "reopened": reopens,
        "status": status,
    }


def due_callbacks(conn: Conn, scope: Scope = WHOLE_COUNTY, days: int = 7, limit: int = 100) -> list[dict[str, Any]]:
    """The callback tasks: incidents of the called-back sources closed in the last ``days`` days
    with no callback yet, oldest closing first."""
    in_scope, params = scope.where("i")
    rows = conn.execute(
        sa.text(_DUE_SQL.format(in_scope=in_scope)),
        {
            "sources": list(CALLED_BACK_SOURCES),
            "since": dt.datetime.now(dt.UTC) - dt.timedelta(days=days),
            "n": limit,
            **params,
        },
    ).mappings()
    return [{**r, "closed_at": r["closed_at"].isoformat()} for r in rows]
