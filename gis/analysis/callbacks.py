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
from gis.core.settings import get_settings
from gis.dispatch.assignments import accept_window, insert_offer
from gis.dispatch.routing import OFFER_QUEUE, OFFER_TASK
from gis.incidents import rules
from gis.incidents.errors import IncidentInputError
from gis.incidents.intake import clean_text
from gis.incidents.workflow import IllegalTransition, IncidentNotFound
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn
from gis.work.jobs import defer, schedule_deadline

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


def _lock_closed(conn: Conn, incident_id: int, scope: Scope) -> sa.RowMapping:
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
    if row["status"] != "closed":
        raise IllegalTransition(
            incident_id, row["status"], "callback", rules.TRANSITIONS[row["status"]], why="a callback follows closing"
        )
    return row


def _last_lead(conn: Conn, incident_id: int) -> sa.RowMapping | None:
    return (
        conn.execute(
            sa.text(
                "SELECT person_id, org_unit_id FROM incident_assignments WHERE incident_id = :i AND role = 'lead' "
                "AND kind = 'dispatch' AND state IN ('offered', 'accepted', 'done') "
                "ORDER BY offered_at DESC, id DESC LIMIT 1"
            ),
            {"i": incident_id},
        )
        .mappings()
        .one_or_none()
    )


def _reopen(conn: Conn, incident: sa.RowMapping, actor: str, now: dt.datetime, why: str) -> str:
    """Back into the loop: to the last lead holder (dispatched) or, with none, to be dispatched
    (accepted); the handling deadline starts again with the span the incident had. Returns the
    new status."""
    incident_id = int(incident["id"])
    lead = _last_lead(conn, incident_id)
    status = "dispatched" if lead is not None else "accepted"
    span = incident["deadline_at"] - incident["reported_at"]
    deadline = now + span
    level = incident["escalation_level"]
    conn.execute(
        sa.text(
            "UPDATE incidents SET status = :s, closed_at = NULL, closed_level = NULL, handled_at = NULL, "
            "verified_at = NULL, deadline_at = :d WHERE id = :id"
        ),
        {"s": status, "d": deadline, "id": incident_id},
    )
    if rules.next_level(level) is not None:
        schedule_deadline(conn, incident_id, deadline, level)
    note = why
    if lead is not None:
        accept_by = now + accept_window(incident["source"], get_settings())
        offer = insert_offer(
            conn, incident_id, kind="dispatch", role="lead", person_id=lead["person_id"],
            org_unit_id=lead["org_unit_id"], level=level, accept_by=accept_by, now=now, actor=actor, note=why,
        )  # fmt: skip
        defer(
            conn, OFFER_TASK, {"assignment_id": offer}, queue=OFFER_QUEUE, at=accept_by, lock=f"incident:{incident_id}"
        )
        holder = f"person {lead['person_id']}" if lead["person_id"] is not None else f"org unit {lead['org_unit_id']}"
        note = f"{why}; offered again to {holder}"
    conn.execute(
        sa.text(
            "INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note) "
            "VALUES (:id, :at, :actor, 'reopen', 'closed', :to, :note)"
        ),
        {"id": incident_id, "at": now, "actor": actor, "to": status, "note": note},
    )
    return status


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
) -> dict[str, Any]:
    """Record a callback result of a closed incident; a dissatisfied one within ``REOPEN_WITHIN``
    of the closing reopens it. An incident outside ``scope`` is not found."""
    if result not in RESULTS:
        raise CallbackInputError("result", f"{str(result)[:40]!r} is not one of {', '.join(RESULTS)}")
    if channel not in CHANNELS:
        raise CallbackInputError("channel", f"{str(channel)[:40]!r} is not one of {', '.join(CHANNELS)}")
    note = clean_text({"note": note}, "note")
    now = now or dt.datetime.now(dt.UTC)
    incident = _lock_closed(conn, incident_id, scope)
    reopen = result == "dissatisfied" and now - incident["closed_at"] <= REOPEN_WITHIN
    callback_id = conn.execute(
        sa.text(
            "INSERT INTO incident_callbacks (incident_id, at, result, channel, note, actor, reopened) "
            "VALUES (:i, :at, :r, :c, :n, :a, :re) RETURNING id"
        ),
        {"i": incident_id, "at": now, "r": result, "c": channel, "n": note, "a": actor, "re": reopen},
    ).scalar_one()
    status = "closed"
    if reopen:
        status = _reopen(conn, incident, actor, now, f"reopened: dissatisfied {channel.replace('_', ' ')}")
    audit.record(
        conn, actor, "incident.callback", f"incident/{incident_id}", result=result, channel=channel, reopened=reopen
    )
    return {
        "id": int(callback_id),
        "incident_id": incident_id,
        "at": now.isoformat(),
        "result": result,
        "channel": channel,
        "note": note,
        "reopened": reopen,
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
