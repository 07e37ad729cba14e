"""The fan-out: new incident events -> one delivery row (and one delivery job) per receiver.

Run by the periodic job ``outbound_fanout`` (gis.outbound.tasks, every 2 s) in ONE transaction:
lock the cursor row, read the events after it, match them to the receivers, insert the delivery
rows, queue their jobs, move the cursor. Everything commits together or not at all, so a worker
killed mid-run leaves the cursor where it was and the next run does the same work again.

Exactly once: the cursor row is taken ``FOR UPDATE SKIP LOCKED``, so a second fan-out running at
the same moment (another worker) returns at once instead of reading the same events; and the
delivery log is unique per (receiver, event), inserted with ``ON CONFLICT DO NOTHING``, and a job is
queued only for a row this run inserted. A run repeated over the same events (a cursor moved
back, a retry after a crash) therefore queues nothing twice.

Ids are handed out at insert and become visible at commit, so a later id can commit before an
earlier one. As in gis.work.events, an id found missing below the newest read is a gap, kept with
the cursor and asked for again for ``GAP_WAIT_S`` (an id that never commits was rolled back).

Receivers:
* a webhook of an org unit gets the events of the incidents inside the unit's area (a code of the
  incident starts with the unit's area code, the rule of gis.people.scope; a county-level unit gets
  every incident) whose type, action or new status it subscribed to (none listed: all);
* a hotline system with a callback URL gets the status changes of its own tickets (incidents of
  source ``hotline_<code>`` with an external id) in ``CALLBACK_STATUSES``, and, once a ticket is
  dispatched, a new lead's offer or acceptance (a re-dispatch, a dispatch step that leaves the
  status): who handles it now (``callback_status``). Intake's routing offers a report to its first
  lead while it is still ``reported``; that offer is not yet a dispatch (派遣, gis.dispatch.routing),
  so the hotline hears of it as the holder of its ``accepted`` callback, not as ``dispatched``.
Payloads carry no personal data (reporter names and phones stay in gridmap; a person holding an
incident is named by their unit, or masked to the surname).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gis.core.privacy import mask_name
from gis.core.vocab import ASSIGNED_LAYERS, COUNTY_TZ
from gis.incidents import rules
from gis.spatial.areas import Conn
from gis.work.events import GAP_WAIT_S, MAX_GAPS, event_type
from gis.work.jobs import NAMESPACE

OUTBOUND_QUEUE = "outbound"
DELIVER_TASK = f"{NAMESPACE}:deliver"
BATCH = 500
# The status changes a hotline is told about (its 回单): accepted, dispatched, handled, closed
# with the result, and rejected (not taken on, with the reason).
CALLBACK_STATUSES = ("accepted", "rejected", "dispatched", "handled", "closed")

_CODES = tuple(f"{layer}_code" for layer in ASSIGNED_LAYERS)
# The lead holding the incident when the event happened (offered by then, not yet declined or
# withdrawn; a person's unit from their posting): the fan-out runs later, when the lead may have
# changed again.
_LEAD_AT_EVENT = """LEFT JOIN LATERAL (
    SELECT a.offered_at, a.accepted_at,
        CASE WHEN a.accepted_at <= e.at THEN 'accepted' ELSE 'offered' END AS holder_state,
        coalesce(ou.code, pu.code) AS holder_code, coalesce(ou.name, pu.name) AS holder_unit,
        p.name AS holder_person
    FROM incident_assignments a
    LEFT JOIN org_units ou ON ou.id = a.org_unit_id
    LEFT JOIN people p ON p.id = a.person_id
    LEFT JOIN LATERAL (
        SELECT u.code, u.name FROM postings po JOIN org_units u ON u.id = po.org_unit_id
        WHERE po.person_id = a.person_id AND po.starts_on <= e.at AND (po.ends_on IS NULL OR po.ends_on >= e.at)
        ORDER BY po.id LIMIT 1) pu ON true
    WHERE a.incident_id = e.incident_id AND a.role = 'lead' AND a.kind = 'dispatch' AND a.offered_at <= e.at
      AND (a.declined_at IS NULL OR a.declined_at > e.at) AND (a.withdrawn_at IS NULL OR a.withdrawn_at > e.at)
    ORDER BY a.offered_at DESC, a.id DESC LIMIT 1) h ON true """
_SELECT = (
    "SELECT e.id, e.incident_id, e.at, e.actor, e.action, e.from_status, e.to_status, e.note, "
    "i.category, i.source, i.external_id, i.status, i.escalation_level, i.deadline_at, i.address_text, "
    + ", ".join(f"i.{c}" for c in _CODES)
    + ", ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, "
    "h.holder_code, h.holder_unit, h.holder_person, h.holder_state, "
    "(e.action = 'dispatch' AND h.offered_at = e.at) OR (e.action = 'accept' AND h.accepted_at = e.at) AS lead_step "
    "FROM incident_events e JOIN incidents i ON i.id = e.incident_id " + _LEAD_AT_EVENT
)
_AFTER = sa.text(_SELECT + "WHERE e.id > :after ORDER BY e.id LIMIT :lim")
_IDS = sa.text(_SELECT + "WHERE e.id = ANY(:ids) ORDER BY e.id")
_LATEST = sa.text("SELECT coalesce(max(id), 0) FROM incident_events")
_CURSOR = sa.text("SELECT last_event_id, gaps FROM outbound_cursor WHERE id = 1 FOR UPDATE SKIP LOCKED")
_MOVE = sa.text(
    "UPDATE outbound_cursor SET last_event_id = :last, gaps = CAST(:gaps AS jsonb), updated_at = now() WHERE id = 1"
)
_WEBHOOKS = sa.text(
    "SELECT w.id, w.events, ou.code AS org_unit, ou.layer, ou.area_code "
    "FROM webhooks w JOIN org_units ou ON ou.id = w.org_unit_id WHERE w.active"
)
_HOTLINES = sa.text("SELECT code FROM hotline_systems WHERE active AND callback_url IS NOT NULL")
# A delivery job's lock: per receiver and incident. Job ids order the jobs of one lock, so a
# receiver gets one incident's events in the order they happened; a receiver that is down holds
# back only that incident's later events, never other incidents' or other receivers'.
_LOCK = (
    "'outbound:' || coalesce('webhook:' || webhook_id, 'hotline:' || hotline_code) "
    "|| ':' || coalesce(CAST(incident_id AS text), 'ping')"
)


def delivery_lock(webhook_id: int | None, hotline_code: str | None, incident_id: int | None) -> str:
    """The lock ``_LOCK`` computes, for a job queued from Python (a ping)."""
    target = f"webhook:{webhook_id}" if webhook_id is not None else f"hotline:{hotline_code}"
    return f"outbound:{target}:{incident_id if incident_id is not None else 'ping'}"


# The delivery rows in the order given, then their jobs in the same order.
_INSERT = sa.text(f"""
    WITH rows AS (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
            webhook_id bigint, hotline_code text, event_id bigint, incident_id bigint, event_type text,
            payload jsonb, ord bigint)),
    ins AS (
        INSERT INTO webhook_deliveries (webhook_id, hotline_code, event_id, incident_id, event_type, payload)
        SELECT webhook_id, hotline_code, event_id, incident_id, event_type, payload FROM rows ORDER BY ord
        ON CONFLICT DO NOTHING
        RETURNING id, webhook_id, hotline_code, incident_id)
    INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args)
    SELECT '{OUTBOUND_QUEUE}', '{DELIVER_TASK}', {_LOCK}, jsonb_build_object('delivery_id', id)
    FROM ins ORDER BY id
    RETURNING id""")  # noqa: S608 - constants only


@dataclass(frozen=True)
class Webhook:
    id: int
    events: frozenset[str]
    org_unit: str
    layer: str
    area_code: str

    def wants(self, row: sa.Row[Any], kind: str) -> bool:
        m = row._mapping
        # A status is matched by a change to it, not by a step that leaves it (dispatch steps).
        changed = {m["to_status"]} if m["to_status"] != m["from_status"] else set()
        if self.events and not self.events & {kind, m["action"], *changed}:
            return False
        if self.layer == "county":  # the county centre: every incident, also those outside any grid
            return True
        return any(m[c] is not None and m[c].startswith(self.area_code) for c in _CODES)


def _iso(value: Any) -> str | None:
    return value.astimezone(COUNTY_TZ).isoformat() if value is not None else None


def webhook_payload(row: sa.Row[Any], kind: str, org_unit: str) -> dict[str, Any]:
    """What a webhook receives for an event: the event, and the incident without personal data."""
    m = row._mapping
    category = rules.CATEGORIES.get(m["category"])
    return {
        "event_id": m["id"],
        "type": kind,
        "at": _iso(m["at"]),
        "actor": m["actor"],
        "action": m["action"],
        "from_status": m["from_status"],
        "to_status": m["to_status"],
        "note": m["note"],
        "holder": holder(row),
        "org_unit": org_unit,
        "incident": {
            "id": m["incident_id"],
            "category": m["category"],
            "category_zh": category.zh if category else None,
            "source": m["source"],
            "status": m["status"],
            "escalation_level": m["escalation_level"],
            "deadline_at": _iso(m["deadline_at"]),
            "address_text": m["address_text"],
            "lon": m["lon"],
            "lat": m["lat"],
            **{c: m[c] for c in _CODES},
        },
    }


def callback_status(row: sa.Row[Any]) -> str | None:
    """The status a hotline is told of for this event, or None (no callback): a change to a status
    of ``CALLBACK_STATUSES``; or, while the ticket is dispatched, a lead's offer (re-dispatch) or
    acceptance, which leave the status but change who handles it."""
    m = row._mapping
    to = m["to_status"]
    if to != m["from_status"]:
        return to if to in CALLBACK_STATUSES else None
    return "dispatched" if to == "dispatched" and m["lead_step"] else None


def holder(row: sa.Row[Any]) -> dict[str, Any] | None:
    """Who holds the incident as its lead (派遣给谁): the unit (a person's: the unit of their
    posting), and for a person the name masked to the surname; None while nobody does."""
    m = row._mapping
    if m["holder_state"] is None:
        return None
    return {
        "org_unit": m["holder_code"],
        "name": m["holder_unit"],
        "person": mask_name(m["holder_person"]),
        "state": m["holder_state"],  # offered, or accepted by the holder
    }


def callback_payload(row: sa.Row[Any], hotline: str, status: str | None = None) -> dict[str, Any]:
    """The status callback (回单) to a hotline, keyed by its own ticket id."""
    m = row._mapping
    status = status or m["to_status"]
    return {
        "system": hotline,
        "external_id": m["external_id"],
        "gridmap_id": m["incident_id"],
        "event_id": m["id"],  # increasing per ticket: the order of the callbacks
        "status": status,
        "status_zh": rules.STATUSES[status][0] if status in rules.STATUSES else None,
        "at": _iso(m["at"]),
        "actor": m["actor"],
        "action": m["action"],
        "holder": holder(row),
        "escalation_level": m["escalation_level"],
        # The handling result or the reason, as the handler wrote it (the note of the step).
        "result": m["note"] if status in ("handled", "closed", "rejected") else None,
        "note": m["note"],
    }


def _targets(conn: Conn) -> tuple[list[Webhook], dict[str, str]]:
    hooks = [
        Webhook(r.id, frozenset(r.events or ()), r.org_unit, r.layer, r.area_code) for r in conn.execute(_WEBHOOKS)
    ]
    hotlines = {f"hotline_{r.code}": r.code for r in conn.execute(_HOTLINES)}
    return hooks, hotlines


def _deliveries(rows: list[sa.Row[Any]], hooks: list[Webhook], hotlines: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for row in rows:
        m = row._mapping
        kind = event_type(m["action"], m["to_status"], m["note"])
        base = {"event_id": m["id"], "incident_id": m["incident_id"]}
        for hook in hooks:
            if hook.wants(row, kind):
                payload = webhook_payload(row, kind, hook.org_unit)
                out.append({**base, "webhook_id": hook.id, "event_type": kind, "payload": payload})
        code = hotlines.get(m["source"])
        status = callback_status(row) if code and m["external_id"] else None
        if code and status:
            payload = callback_payload(row, code, status)
            out.append({**base, "hotline_code": code, "event_type": "hotline.status", "payload": payload})
    return out


@dataclass
class FanoutResult:
    ran: bool  # False: another fan-out held the cursor
    events: int = 0
    queued: int = 0


def fan_out(conn: Conn, limit: int = BATCH, now: float | None = None) -> FanoutResult:
    """One step of the fan-out in the caller's transaction (see the module docstring); the caller
    commits. Reads at most ``limit`` new events."""
    cursor = conn.execute(_CURSOR).one_or_none()
    if cursor is None:
        return FanoutResult(ran=False)
    now = time.time() if now is None else now
    last = int(cursor.last_event_id)
    gaps = {int(k): float(v) for k, v in (cursor.gaps or {}).items() if now - float(v) <= GAP_WAIT_S}
    hooks, hotlines = _targets(conn)
    if not hooks and not hotlines:
        # Nobody to deliver to: skip the log to its end rather than read it (no receiver made
        # later is owed the events from before it existed).
        conn.execute(_MOVE, {"last": conn.execute(_LATEST).scalar_one(), "gaps": "{}"})
        return FanoutResult(ran=True)
    found = list(conn.execute(_IDS, {"ids": sorted(gaps)})) if gaps else []
    for row in found:
        gaps.pop(int(row.id), None)
    fresh = list(conn.execute(_AFTER, {"after": last, "lim": limit}))
    expected = last + 1
    for row in fresh:
        for gap in range(expected, min(int(row.id), expected + MAX_GAPS - len(gaps))):
            gaps[gap] = now
        expected = int(row.id) + 1
    if fresh:
        last = int(fresh[-1].id)
    rows = found + fresh
    queued = 0
    deliveries = _deliveries(rows, hooks, hotlines)
    if deliveries:
        # Every key present for jsonb_to_recordset; ``ord`` keeps the order of the events.
        full = [{"webhook_id": None, "hotline_code": None, **d, "ord": k} for k, d in enumerate(deliveries)]
        queued = len(conn.execute(_INSERT, {"rows": json.dumps(full, default=str)}).all())
    conn.execute(_MOVE, {"last": last, "gaps": json.dumps({str(k): v for k, v in gaps.items()})})
    return FanoutResult(ran=True, events=len(rows), queued=queued)


def fan_out_all(conn_factory: Any, budget_s: float = 10.0) -> FanoutResult:
    """Fan out until caught up (or ``budget_s`` passes), one transaction per batch:
    ``conn_factory()`` gives a context manager of a transaction (gis.core.db.transaction)."""
    total = FanoutResult(ran=False)
    end = time.monotonic() + budget_s
    while True:
        with conn_factory() as conn:
            step = fan_out(conn)
        if not step.ran:
            return total
        total.ran = True
        total.events += step.events
        total.queued += step.queued
        if step.events < BATCH or time.monotonic() > end:
            return total
