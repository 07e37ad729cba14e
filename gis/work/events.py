"""The incident event log read as a stream: what ``GET /events`` pushes.

Push is a projection of committed facts. The log is ``incident_events`` (written by intake and by
the workflow); its ids are one global sequence and serve as the stream's event ids. Readers read
the log after their own last id (each API process every 100 ms while it has streams,
gis.work.eventhub; no NOTIFY: migration 0028), so following live, catching up after an outage
and a client's ``Last-Event-ID`` resume are one and the same read (``read_after``).

Ids are handed out at insert and become visible at commit, so a later id can commit before an
earlier one (two workers taking reports at once). A reader that has seen id 105 but not 104
remembers 104 as a gap and asks for it again for ``GAP_WAIT_S`` (``Cursor``); an id that never
commits (a rolled-back transaction) is forgotten after that.

Each event row carries, joined at read time from its incident (the intake statement stays as it
is), the incident's assignment codes (what a stream's scope filter needs) and the fields of the
live map layer's feature, encoded once per event and per masking (``Event.encoded``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from gis.core.privacy import role_sees_personal_data
from gis.core.vocab import ASSIGNED_LAYERS, COUNTY_TZ
from gis.outputs.features import _point_collection
from gis.people.keys import Principal
from gis.spatial.areas import Conn

# How far back a resume reaches: a client away longer reloads its layers (event ``resync``).
BACKLOG_EVENTS = 1000
BACKLOG_AGE = dt.timedelta(hours=24)
# How long a missing id is waited for before it is taken for a rolled-back insert.
GAP_WAIT_S = 30.0
MAX_GAPS = 10_000
# Only the ids this close below a newly read one are waited for: a transaction holding an older id
# has been open while GAP_SPAN later ids were taken (about 7 s of intake at 700 events/s). A wider
# hole is ids that will never come (rolled back, deleted, a failed import): waiting for all of it
# once filled MAX_GAPS, after which no new gap was noted for GAP_WAIT_S and late commits were lost
# (bench/bench_events.py --demo: 2 of 4,000 events missing on every stream).
GAP_SPAN = 2_000
BATCH = 2000
# More than this many events behind (a seeding or import of history): jump to the end of the log
# and tell the streams to reload, rather than push history through every stream.
MAX_LAG = 20_000

CODE_COLUMNS = tuple(f"{layer}_code" for layer in ASSIGNED_LAYERS)
# The live layer's feature properties (gis.outputs.mappoints._INCIDENT_COLUMNS), then lon and lat.
FEATURE_COLUMNS = (
    "id",
    "category",
    "source",
    "status",
    "reported_at",
    "deadline_at",
    "escalation_level",
    "address_text",
    "reporter_name",
    "reporter_phone",
    "grid_code",
    "lon",
    "lat",
)
_SELECT = (
    "SELECT e.id AS event_id, e.incident_id, e.at, e.actor, e.action, e.from_status, e.to_status, e.note, "
    + ", ".join(f"i.{c}" for c in CODE_COLUMNS if c != "grid_code")
    + ", i.id, i.category, i.source, i.status, i.reported_at, i.deadline_at, i.escalation_level, "
    "i.address_text, i.reporter_name, i.reporter_phone, i.grid_code, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat "
    "FROM incident_events e JOIN incidents i ON i.id = e.incident_id "
)
_AFTER = sa.text(_SELECT + "WHERE e.id > :after AND e.at >= :since ORDER BY e.id LIMIT :lim")
_NEWEST_SQL = _SELECT + "WHERE e.id > :after AND e.id <= :upto ORDER BY e.id DESC LIMIT :lim"
_NEWEST = sa.text(f"SELECT * FROM ({_NEWEST_SQL}) AS newest ORDER BY event_id")  # noqa: S608 - constants only
_IDS = sa.text(_SELECT + "WHERE e.id = ANY(:ids) ORDER BY e.id")


def event_type(action: str, to_status: str | None, note: str | None) -> str:
    """The SSE event name of a log row: ``incident.created``, ``incident.escalated``,
    ``incident.overdue`` (escalated by the deadline) or ``incident.status`` (any other step:
    accepted, dispatched, closed, ...; the new status is in the data)."""
    if action == "report":
        return "incident.created"
    if action == "escalate":
        return "incident.overdue" if (note or "").startswith("overdue:") else "incident.escalated"
    return "incident.status"


@dataclass
class Event:
    id: int
    type: str
    at: dt.datetime
    codes: dict[str, str | None]  # the incident's assignment, for the scope filter
    data: dict[str, Any]  # the event's own fields
    feature_row: tuple[Any, ...]  # FEATURE_COLUMNS of the incident as read
    _encoded: dict[tuple[bool, str], bytes] = field(default_factory=dict, repr=False)

    def encoded(self, role: str | None, display_crs: str = "wgs84") -> bytes:
        """The SSE message (``id``, ``event``, ``data``) with personal data masked for ``role``;
        built once per masking and reused by every stream that sends it."""
        sees = role_sees_personal_data(role)
        key = (sees, display_crs)
        hit = self._encoded.get(key)
        if hit is None:
            collection = _point_collection(FEATURE_COLUMNS, [self.feature_row], display_crs, role)
            payload = {**self.data, "feature": collection["features"][0]}
            text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
            hit = self._encoded[key] = f"id: {self.id}\nevent: {self.type}\ndata: {text}\n\n".encode()
        return hit


def _event(row: sa.Row[Any]) -> Event:
    m = row._mapping
    codes = {c: m[c] for c in CODE_COLUMNS}
    data = {
        "id": m["event_id"],
        "incident_id": m["incident_id"],
        "at": m["at"].astimezone(COUNTY_TZ).isoformat(),  # county time, as the pages show times
        "actor": m["actor"],
        "action": m["action"],
        "from_status": m["from_status"],
        "to_status": m["to_status"],
        "note": m["note"],
        **codes,
    }
    kind = event_type(m["action"], m["to_status"], m["note"])
    return Event(m["event_id"], kind, m["at"], codes, data, tuple(m[c] for c in FEATURE_COLUMNS))


def read_after(conn: Conn, after: int, *, limit: int | None = None, since: dt.datetime | None = None) -> list[Event]:
    """Committed events with an id above ``after`` (and not older than ``since``), oldest first."""
    since = since or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    rows = conn.execute(_AFTER, {"after": after, "since": since, "lim": limit or BATCH})
    return [_event(r) for r in rows]


def read_ids(conn: Conn, ids: list[int]) -> list[Event]:
    return [_event(r) for r in conn.execute(_IDS, {"ids": ids})] if ids else []


def latest_id(conn: Conn) -> int:
    """The largest committed event id (0 for an empty log): where a stream without a resume starts."""
    return int(conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM incident_events")).scalar_one())


def backlog(conn: Conn, after: int, upto: int, now: dt.datetime | None = None) -> tuple[list[Event], bool]:
    """The events a client resuming from ``after`` missed, up to ``upto`` (the live reader's
    position): at most ``BACKLOG_EVENTS`` of them and none older than ``BACKLOG_AGE``. The flag
    says the backlog was cut (the client must reload what it shows rather than patch it)."""
    since = (now or dt.datetime.now(dt.UTC)) - BACKLOG_AGE
    events = [e for e in read_after(conn, after, limit=BACKLOG_EVENTS + 1, since=since) if e.id <= upto]
    cut = len(events) > BACKLOG_EVENTS
    if not cut and upto > after and (not events or events[0].id > after + 1):
        # Something before the first event returned is missing: too old, or never committed.
        older = conn.execute(
            sa.text("SELECT count(*) FROM incident_events WHERE id > :after AND id <= :upto AND at < :since"),
            {"after": after, "upto": upto, "since": since},
        ).scalar_one()
        cut = bool(older)
    if len(events) > BACKLOG_EVENTS:  # the newest of them: the client reloads the rest anyway
        events = [_event(r) for r in conn.execute(_NEWEST, {"after": after, "upto": upto, "lim": BACKLOG_EVENTS})]
    return events, cut


def visible(event: Event, principal: Principal) -> bool:
    """Whether a stream of ``principal`` may see ``event``: the one place the caller's scope is
    applied (gis.people.scope: inside when any of the incident's assignment codes is; an incident
    outside the county only for whole-county keys; nothing for a lookup-only scope)."""
    return principal.scope.contains_any(event.codes.values())


class Cursor:
    """A reader's position in the log: the largest id read, and the smaller ids not yet seen
    (inserted, perhaps not yet committed) that are asked for again until ``GAP_WAIT_S`` passes."""

    def __init__(self, last_id: int) -> None:
        self.last_id = last_id
        self.gaps: dict[int, float] = {}  # id -> monotonic time first missed
        self.jumped = False  # set by a read that skipped history (MAX_LAG); the reader clears it

    def read(self, conn: Conn) -> list[Event]:
        """New events since the last read, gap fillers included, in id order."""
        now = time.monotonic()
        for gap in [g for g, t in self.gaps.items() if now - t > GAP_WAIT_S]:
            del self.gaps[gap]
        found = read_ids(conn, sorted(self.gaps)) if self.gaps else []
        for event in found:
            self.gaps.pop(event.id, None)
        fresh = read_after(conn, self.last_id)
        expected = self.last_id + 1
        for event in fresh:
            for gap in range(max(expected, event.id - GAP_SPAN), event.id):
                self.gaps[gap] = now
            expected = event.id + 1
        if len(self.gaps) > MAX_GAPS:  # the newest are the ones still likely to come
            for gap in sorted(self.gaps)[: len(self.gaps) - MAX_GAPS]:
                del self.gaps[gap]
        if fresh:
            self.last_id = fresh[-1].id
        if len(fresh) == BATCH and latest_id(conn) - self.last_id > MAX_LAG:
            self.last_id = latest_id(conn)
            self.gaps.clear()
            self.jumped = True
            return []
        return found + fresh
