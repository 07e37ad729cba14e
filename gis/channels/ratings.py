"""Residents' ratings (满意度评价) of their matter.

A ticket is rated once, after its matter is handled (handled, verified, closed or rejected). A
rating is a callback of the channel ``resident_rating`` (gis.analysis.callbacks): it counts in the
satisfaction KPI like a staff callback, and ``dissatisfied`` reopens the incident by the one rule
(gis.incidents.reopen: back to its last holder, a fresh deadline, a ``reopen`` event), in the
rating's transaction. ``public_ratings`` keeps which ticket rated (the once-per-ticket rule).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from gis.analysis.callbacks import record_callback
from gis.channels import tickets
from gis.channels.errors import FIELD_ZH, PublicInputError, RatingRefused
from gis.channels.public import RATEABLE
from gis.core.settings import Settings, get_settings
from gis.incidents.workflow import IllegalTransition
from gis.spatial.areas import Conn

RATINGS: dict[str, tuple[str, str]] = {
    "satisfied": ("满意", "satisfied"),
    "basically_satisfied": ("基本满意", "basically satisfied"),
    "dissatisfied": ("不满意", "dissatisfied"),
}
MAX_NOTE = 500


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
    try:
        out = record_callback(
            conn,
            found["incident_id"],
            rating,
            f"resident:{found['ticket']}",
            note=note,
            channel="resident_rating",
            now=now,
            statuses=RATEABLE,
        )
    except IllegalTransition as exc:
        raise RatingRefused(
            "事项尚未处理完成，处理完成后才能评价", f"the matter is still {exc.current}; rate it once handled"
        ) from None
    reopened = out["status"] if out["reopened"] else None
    conn.execute(
        sa.text(
            "INSERT INTO public_ratings (ticket_id, incident_id, rating, note, reopened, created_at) "
            "VALUES (:t, :i, :r, :n, :re, :now)"
        ),
        {"t": found["id"], "i": found["incident_id"], "r": rating, "n": note, "re": reopened is not None, "now": now},
    )
    return {"ticket": found["ticket"], "rating": rating, "reopened": reopened is not None}
