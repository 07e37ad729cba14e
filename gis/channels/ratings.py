"""Residents' ratings (满意度评价) of their matter, the reopening a dissatisfied rating causes, and
the satisfaction figures read from the ratings.

A ticket is rated once, after its matter is handled (handled, verified, closed or rejected).
``dissatisfied`` reopens the incident by ``gis.incidents.rules.REOPEN`` (closed → in_progress,
rejected → reported) with a fresh handling deadline and its deadline job, recorded in the
incident's history (action ``reopen``) and the audit log, in the rating's transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from gis.channels import tickets
from gis.channels.errors import FIELD_ZH, PublicInputError, RatingRefused
from gis.channels.public import RATEABLE
from gis.core import audit
from gis.core.settings import Settings, get_settings
from gis.core.vocab import ESCALATION_LEVELS
from gis.incidents import rules
from gis.spatial.areas import Conn
from gis.work.jobs import schedule_deadline

RATINGS: dict[str, tuple[str, str]] = {
    "satisfied": ("满意", "satisfied"),
    "basically_satisfied": ("基本满意", "basically satisfied"),
    "dissatisfied": ("不满意", "dissatisfied"),
}
MAX_NOTE = 500


def reopen(
    conn: Conn, incident_id: int, actor: str, note: str | None, settings: Settings, now: dt.datetime
) -> str | None:
    """Send a handled or ended incident back (rules.REOPEN); returns the new status, None when it is
    still open work (nothing to reopen)."""
    row = (
        conn.execute(
            sa.text("SELECT status, category, escalation_level FROM incidents WHERE id = :id FOR UPDATE"),
            {"id": incident_id},
        )
        .mappings()
        .one()
    )
    target = rules.REOPEN.get(row["status"])
    if target is None:
        return None
    deadline = rules.deadline_for(row["category"], now, settings.deadline_hours)
    conn.execute(
        sa.text("UPDATE incidents SET status = :to, closed_at = NULL, deadline_at = :d WHERE id = :id"),
        {"to": target, "d": deadline, "id": incident_id},
    )
    conn.execute(
        sa.text(
            "INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note) "
            "VALUES (:id, :now, :actor, 'reopen', :frm, :to, :note)"
        ),
        {"id": incident_id, "now": now, "actor": actor, "frm": row["status"], "to": target, "note": note},
    )
    if row["escalation_level"] != ESCALATION_LEVELS[-1]:  # the county centre's deadline escalates nothing
        schedule_deadline(conn, incident_id, deadline, row["escalation_level"])
    audit.record(conn, actor, "incident.reopen", f"incident/{incident_id}", **{"from": row["status"], "to": target})
    return target


def rate(
    conn: Conn,
    ticket: str,
    token: str | None,
    rating: Any,
    note: Any = None,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    settings = settings or get_settings()
    now = now or dt.datetime.now(dt.UTC)
    if not isinstance(rating, str) or rating not in RATINGS:
        raise PublicInputError("rating", rating, FIELD_ZH["rating"], f"unknown rating; accepted: {', '.join(RATINGS)}")
    if note is not None and not isinstance(note, str):
        raise PublicInputError("note", note, FIELD_ZH["note"], "must be text")
    note = (note or "").strip() or None
    if note and (len(note) > MAX_NOTE or "\x00" in note):
        raise PublicInputError("note", note[:40], FIELD_ZH["note"], f"at most {MAX_NOTE} characters, no NUL")
    found = tickets.find_ticket(conn, ticket, token, lock=True)  # the lock orders two ratings of one ticket
    if tickets.ticket_ratings(conn, found["id"]) is not None:
        raise RatingRefused("该事项您已评价过，不能重复评价", "this ticket has already been rated")
    status = conn.execute(
        sa.text("SELECT status FROM incidents WHERE id = :id"), {"id": found["incident_id"]}
    ).scalar_one()
    if status not in RATEABLE:
        raise RatingRefused(
            "事项尚未处理完成，处理完成后才能评价", f"the matter is still {status}; rate it once handled"
        )
    reopened = None
    if rating == "dissatisfied":
        text = f"resident dissatisfied (ticket {found['ticket']})" + (f": {note}" if note else "")
        reopened = reopen(conn, found["incident_id"], f"resident:{found['ticket']}", text, settings, now)
    conn.execute(
        sa.text(
            "INSERT INTO public_ratings (ticket_id, incident_id, rating, note, reopened, created_at) "
            "VALUES (:t, :i, :r, :n, :re, :now)"
        ),
        {"t": found["id"], "i": found["incident_id"], "r": rating, "n": note, "re": reopened is not None, "now": now},
    )
    return {"ticket": found["ticket"], "rating": rating, "reopened": reopened is not None}


def satisfaction(
    conn: Conn, start: dt.datetime | None = None, end: dt.datetime | None = None, by: str = "town"
) -> list[dict[str, Any]]:
    """Ratings per town (``by='town'``) or village in [start, end): counts of each rating and the
    satisfaction rate, (satisfied + basically satisfied) / rated."""
    column = {"town": "i.town_code", "village": "i.village_code"}.get(by)
    if column is None:
        raise ValueError(f"by: {by!r} is not one of town, village")
    rows = conn.execute(
        sa.text(
            f"SELECT {column} AS code, "  # noqa: S608 - the column is one of two constants
            "count(*) FILTER (WHERE r.rating = 'satisfied') AS satisfied, "
            "count(*) FILTER (WHERE r.rating = 'basically_satisfied') AS basically_satisfied, "
            "count(*) FILTER (WHERE r.rating = 'dissatisfied') AS dissatisfied, count(*) AS rated "
            "FROM public_ratings r JOIN incidents i ON i.id = r.incident_id "
            "WHERE (CAST(:start AS timestamptz) IS NULL OR r.created_at >= :start) "
            "AND (CAST(:end AS timestamptz) IS NULL OR r.created_at < :end) "
            f"GROUP BY {column} ORDER BY {column}"
        ),
        {"start": start, "end": end},
    ).mappings()
    out = []
    for r in rows:
        row = dict(r)
        row["rate"] = round((row["satisfied"] + row["basically_satisfied"]) / row["rated"], 4)
        out.append(row)
    return out
