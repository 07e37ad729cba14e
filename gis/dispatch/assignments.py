"""Assignments: dispatching an incident to a person or an organisation unit by hand, and the
holder's steps (accept, decline with a reason, arrive on scene). Every step locks the incident
(inside the caller's scope: outside is 404, as a missing id), writes the assignment, the
incident's history (``incident_events``: the SSE stream carries it) and the audit log, in the
caller's transaction: an error leaves nothing half-written.

Who acts on an assignment is the caller's account's person or unit (``Holder``, from the API
key's Principal): an assignment held by someone else is refused (403).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gis.core import audit
from gis.core.settings import Settings, get_settings
from gis.core.vocab import ASSIGNMENT_ROLES, COUNTY_TZ, FINAL_STATUSES
from gis.dispatch.errors import DispatchConflict, DispatchInputError, NotPermitted
from gis.dispatch.routing import OFFER_QUEUE, OFFER_TASK
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn
from gis.work.jobs import defer

CODES = ("town_code", "village_code", "grid_code", "micro_grid_code", "station_code", "beat_code")
ASSIGNMENT_COLUMNS = (
    "a.id, a.incident_id, a.kind, a.role, a.person_id, a.org_unit_id, ou.code AS org_unit, a.state, a.level, "
    "a.rule_id, a.accept_by, a.offered_at, a.offered_by, a.accepted_at, a.accepted_by, a.declined_at, "
    "a.declined_by, a.decline_reason, a.done_at, a.done_by, a.withdrawn_at, a.note"
)


class IncidentGone(LookupError):
    """No such incident, or outside the caller's scope (the same answer: 404)."""

    def __init__(self, incident_id: int) -> None:
        super().__init__(f"no incident with id {incident_id}")
        self.incident_id = incident_id


@dataclass(frozen=True)
class Holder:
    """Who acts: the account's name (the actor in the history) and its person or unit."""

    actor: str
    person_id: int | None = None
    org_unit_id: int | None = None


def lock_incident(conn: Conn, incident_id: int, scope: Scope = WHOLE_COUNTY) -> sa.RowMapping:
    in_scope, params = scope.where()
    row = (
        conn.execute(
            sa.text(
                f"SELECT id, status, source, escalation_level, {', '.join(CODES)} FROM incidents "  # noqa: S608
                f"WHERE id = :id AND {in_scope} FOR UPDATE"
            ),
            {"id": incident_id, **params},
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise IncidentGone(incident_id)
    return row


def log_event(
    conn: Conn, incident_id: int, at: dt.datetime, actor: str, action: str, status: str, note: str | None
) -> None:
    """A history entry that leaves the status as it is (dispatch steps are not loop statuses)."""
    conn.execute(
        sa.text(
            "INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note) "
            "VALUES (:id, :at, :actor, :action, :s, :s, :note)"
        ),
        {"id": incident_id, "at": at, "actor": actor, "action": action, "s": status, "note": note},
    )


def get_assignment(conn: Conn, assignment_id: int) -> dict[str, Any]:
    row = conn.execute(
        sa.text(
            f"SELECT {ASSIGNMENT_COLUMNS} FROM incident_assignments a "  # noqa: S608
            "LEFT JOIN org_units ou ON ou.id = a.org_unit_id WHERE a.id = :id"
        ),
        {"id": assignment_id},
    ).one()
    return dict(row._mapping)


def list_assignments(conn: Conn, incident_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            f"SELECT {ASSIGNMENT_COLUMNS} FROM incident_assignments a "  # noqa: S608
            "LEFT JOIN org_units ou ON ou.id = a.org_unit_id WHERE a.incident_id = :id ORDER BY a.id"
        ),
        {"id": incident_id},
    )
    return [dict(r._mapping) for r in rows]


def _serves(area: str, layer: str, incident: sa.RowMapping) -> bool:
    return layer == "county" or area in {incident[c] for c in CODES}


def _where_of(incident: sa.RowMapping) -> str:
    return ", ".join(f"{c.removesuffix('_code')} {incident[c]}" for c in ("grid_code", "beat_code") if incident[c])


def resolve_holder(
    conn: Conn,
    incident: sa.RowMapping,
    person_id: int | None,
    org_unit: str | None,
    scope: Scope,
    today: dt.date,
    *,
    county_units_anywhere: bool = False,
) -> tuple[int | None, int | None, str]:
    """(person id, unit id, label) of the holder named by ``person_id`` or ``org_unit`` (a code),
    after checking that it exists, serves the incident's area (a posting in force today, or the
    unit's area, covers one of the incident's units; county-wide ones cover all) and lies inside
    ``scope`` (county-wide units too, for a summons: ``county_units_anywhere``)."""
    if (person_id is None) == (org_unit is None):
        raise DispatchInputError("person_id", "give exactly one of person_id and org_unit")
    if person_id is not None:
        status = conn.execute(sa.text("SELECT status FROM people WHERE id = :id"), {"id": person_id}).scalar()
        if status is None:
            raise DispatchInputError("person_id", f"no person with id {person_id}")
        if status != "active":
            raise DispatchInputError("person_id", f"person {person_id} has left")
        postings = conn.execute(
            sa.text(
                "SELECT layer, area_code FROM postings WHERE person_id = :id AND starts_on <= :today "
                "AND (ends_on IS NULL OR ends_on >= :today) ORDER BY id"
            ),
            {"id": person_id, "today": today},
        ).all()
        if not postings:
            raise DispatchInputError("person_id", f"person {person_id} has no posting in force today")
        serving = [p for p in postings if _serves(p.area_code, p.layer, incident)]
        if not serving:
            areas = ", ".join(f"{p.layer} {p.area_code}" for p in postings)
            why = f"person {person_id} serves {areas}, not the incident's area ({_where_of(incident)})"
            raise DispatchInputError("person_id", why)
        if not any(scope.contains(p.area_code) for p in serving):
            raise NotPermitted(f"person {person_id} serves areas outside your scope ({scope.label()})")
        return person_id, None, f"person {person_id}"
    unit = conn.execute(
        sa.text("SELECT id, layer, area_code FROM org_units WHERE code = :c"), {"c": org_unit}
    ).one_or_none()
    if unit is None:
        raise DispatchInputError("org_unit", f"no organisation unit with code {org_unit!r}")
    if not _serves(unit.area_code, unit.layer, incident):
        why = f"unit {org_unit} is responsible for {unit.layer} {unit.area_code}, not the incident's area"
        raise DispatchInputError("org_unit", f"{why} ({_where_of(incident)})")
    if not (scope.contains(unit.area_code) or (county_units_anywhere and unit.layer == "county")):
        raise NotPermitted(f"unit {org_unit} is outside your scope ({scope.label()})")
    return None, int(unit.id), f"org unit {org_unit}"


def accept_window(source: str, settings: Settings) -> dt.timedelta:
    seconds = settings.accept_within_110_s if source == "hotline_110" else settings.accept_within_s
    return dt.timedelta(seconds=seconds)


def insert_offer(
    conn: Conn,
    incident_id: int,
    *,
    kind: str,
    role: str,
    person_id: int | None,
    org_unit_id: int | None,
    level: str,
    accept_by: dt.datetime | None,
    now: dt.datetime,
    actor: str,
    note: str | None = None,
) -> int:
    """A new offer; a holder already holding the incident is a conflict (409)."""
    held = conn.execute(
        sa.text(
            "SELECT state FROM incident_assignments WHERE incident_id = :i AND state IN ('offered', 'accepted') "
            "AND (person_id = :p OR org_unit_id = :o)"
        ),
        {"i": incident_id, "p": person_id, "o": org_unit_id},
    ).scalar()
    if held is not None:
        raise DispatchConflict(f"incident {incident_id}: that holder already holds it ({held})")
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO incident_assignments (incident_id, kind, role, person_id, org_unit_id, level, "
                "accept_by, offered_at, offered_by, note) VALUES (:i, :kind, :role, :p, :o, :level, :by, :now, "
                ":actor, :note) RETURNING id"
            ),
            {
                "i": incident_id,
                "kind": kind,
                "role": role,
                "p": person_id,
                "o": org_unit_id,
                "level": level,
                "by": accept_by,
                "now": now,
                "actor": actor,
                "note": note,
            },  # fmt: skip
        ).scalar_one()
    )


def dispatch(
    conn: Conn,
    incident_id: int,
    actor: str,
    *,
    person_id: int | None = None,
    org_unit: str | None = None,
    role: str = "lead",
    note: str | None = None,
    scope: Scope = WHOLE_COUNTY,
    now: dt.datetime | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Dispatch (派遣) by hand: offer the incident to a person or a unit as its lead (replacing the
    active lead: a re-dispatch) or as a co-handler. A lead offered to an accepted (立案) incident
    moves it to ``dispatched``. Returns the new assignment."""
    settings = settings or get_settings()
    now = now or dt.datetime.now(dt.UTC)
    if role not in ASSIGNMENT_ROLES:
        raise DispatchInputError("role", f"{role!r} is not one of {', '.join(ASSIGNMENT_ROLES)}")
    incident = lock_incident(conn, incident_id, scope)
    status = incident["status"]
    if status in FINAL_STATUSES:
        raise DispatchConflict(f"incident {incident_id} is {status}: it is not dispatched any more")
    today = now.astimezone(COUNTY_TZ).date()
    pid, uid, label = resolve_holder(conn, incident, person_id, org_unit, scope, today)
    replaced = ""
    if role == "lead":
        old = conn.execute(
            sa.text(
                "UPDATE incident_assignments SET state = 'withdrawn', withdrawn_at = :now "
                "WHERE incident_id = :i AND role = 'lead' AND kind = 'dispatch' AND state IN ('offered', 'accepted') "
                "AND (person_id IS DISTINCT FROM :p OR org_unit_id IS DISTINCT FROM :o) RETURNING id"
            ),
            {"now": now, "i": incident_id, "p": pid, "o": uid},
        ).scalar()
        replaced = f" (replacing assignment {old})" if old is not None else ""
    accept_by = now + accept_window(incident["source"], settings)
    level = incident["escalation_level"]
    assignment_id = insert_offer(
        conn, incident_id, kind="dispatch", role=role, person_id=pid, org_unit_id=uid, level=level,
        accept_by=accept_by, now=now, actor=actor, note=note,
    )  # fmt: skip
    if role == "lead":
        defer(conn, OFFER_TASK, {"assignment_id": assignment_id}, queue=OFFER_QUEUE, at=accept_by,
              lock=f"incident:{incident_id}")  # fmt: skip
    to = "dispatched" if role == "lead" and status == "accepted" else status
    if to != status:
        conn.execute(sa.text("UPDATE incidents SET status = :s WHERE id = :id"), {"s": to, "id": incident_id})
    text = f"{role} offered to {label}{replaced}" + (f": {note}" if note else "")
    conn.execute(
        sa.text(
            "INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note) "
            "VALUES (:id, :at, :actor, 'dispatch', :frm, :to, :note)"
        ),
        {"id": incident_id, "at": now, "actor": actor, "frm": status, "to": to, "note": text},
    )
    audit.record(conn, actor, "incident.dispatch", f"incident/{incident_id}", assignment=assignment_id, role=role,
                 person_id=pid, org_unit=org_unit)  # fmt: skip
    return get_assignment(conn, assignment_id)


def _callers(conn: Conn, incident_id: int, who: Holder, assignment_id: int | None) -> sa.RowMapping:
    """The caller's assignment on the incident (the given one, else their active one, else their
    latest), locked."""
    if who.person_id is None and who.org_unit_id is None:
        raise NotPermitted("your account is not a person's or a unit's: it holds no assignments")
    row = (
        conn.execute(
            sa.text(
                "SELECT * FROM incident_assignments WHERE incident_id = :i "
                "AND (person_id = :p OR org_unit_id = :o) AND (CAST(:a AS bigint) IS NULL OR id = :a) "
                "ORDER BY state IN ('offered', 'accepted') DESC, id DESC LIMIT 1 FOR UPDATE"
            ),
            {"i": incident_id, "p": who.person_id, "o": who.org_unit_id, "a": assignment_id},
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        what = f"assignment {assignment_id}" if assignment_id is not None else "no assignment"
        raise NotPermitted(f"incident {incident_id}: you hold {what}" if assignment_id is None else
                           f"incident {incident_id}: {what} is not yours")  # fmt: skip
    return row


def accept(
    conn: Conn,
    incident_id: int,
    who: Holder,
    *,
    assignment_id: int | None = None,
    scope: Scope = WHOLE_COUNTY,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The holder accepts their offer (接单; for a summons: reports in). The lead's first
    acceptance stamps the incident's ``accepted_at``."""
    now = now or dt.datetime.now(dt.UTC)
    incident = lock_incident(conn, incident_id, scope)
    mine = _callers(conn, incident_id, who, assignment_id)
    if mine["state"] == "accepted":
        raise DispatchConflict(
            f"assignment {mine['id']} was already accepted at {mine['accepted_at'].isoformat()} "
            f"by {mine['accepted_by']}"
        )
    if mine["state"] != "offered":
        raise DispatchConflict(f"assignment {mine['id']} is {mine['state']}: only an offer can be accepted")
    conn.execute(
        sa.text("UPDATE incident_assignments SET state = 'accepted', accepted_at = :now, accepted_by = :actor "
                "WHERE id = :id"),
        {"now": now, "actor": who.actor, "id": mine["id"]},
    )  # fmt: skip
    if mine["role"] == "lead":
        conn.execute(
            sa.text("UPDATE incidents SET accepted_at = coalesce(accepted_at, :now) WHERE id = :id"),
            {"now": now, "id": incident_id},
        )
    what = "reported in (summons)" if mine["kind"] == "summon" else f"{mine['role']} offer accepted"
    log_event(conn, incident_id, now, who.actor, "accept", incident["status"], f"{what}: assignment {mine['id']}")
    audit.record(conn, who.actor, "incident.accept", f"incident/{incident_id}", assignment=mine["id"])
    return get_assignment(conn, int(mine["id"]))


def decline(
    conn: Conn,
    incident_id: int,
    who: Holder,
    reason: str | None,
    *,
    assignment_id: int | None = None,
    scope: Scope = WHOLE_COUNTY,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The holder declines their offer, saying why (the dispatcher re-dispatches)."""
    now = now or dt.datetime.now(dt.UTC)
    reason = (reason or "").strip()
    if not reason:
        raise DispatchInputError("reason", "is required: say why the offer is declined")
    if len(reason) > 2000:
        raise DispatchInputError("reason", f"is {len(reason)} characters long; at most 2000 allowed")
    incident = lock_incident(conn, incident_id, scope)
    mine = _callers(conn, incident_id, who, assignment_id)
    if mine["state"] != "offered":
        raise DispatchConflict(f"assignment {mine['id']} is {mine['state']}: only an offer can be declined")
    conn.execute(
        sa.text("UPDATE incident_assignments SET state = 'declined', declined_at = :now, declined_by = :actor, "
                "decline_reason = :r WHERE id = :id"),
        {"now": now, "actor": who.actor, "r": reason, "id": mine["id"]},
    )  # fmt: skip
    log_event(conn, incident_id, now, who.actor, "decline", incident["status"],
              f"{mine['role']} offer declined: {reason}")  # fmt: skip
    audit.record(conn, who.actor, "incident.decline", f"incident/{incident_id}", assignment=mine["id"], reason=reason)
    return get_assignment(conn, int(mine["id"]))


def arrive(
    conn: Conn,
    incident_id: int,
    who: Holder,
    lon: float,
    lat: float,
    *,
    scope: Scope = WHOLE_COUNTY,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The holder is on the scene (到场), at (lon, lat) WGS-84: the first arrival stamps the
    incident's ``on_scene_at`` and position. Only an accepted assignment arrives."""
    now = now or dt.datetime.now(dt.UTC)
    for field, value, limit in (("lon", lon, 180), ("lat", lat, 90)):
        if not isinstance(value, int | float) or not math.isfinite(value) or abs(value) > limit:
            raise DispatchInputError(field, f"{value!r} is not a number in [-{limit}, {limit}]")
    incident = lock_incident(conn, incident_id, scope)
    mine = _callers(conn, incident_id, who, None)
    if mine["state"] != "accepted":
        raise DispatchConflict(f"assignment {mine['id']} is {mine['state']}: accept it before arriving")
    conn.execute(
        sa.text(
            "UPDATE incidents SET on_scene_at = coalesce(on_scene_at, :now), "
            "on_scene_geom = coalesce(on_scene_geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) WHERE id = :id"
        ),
        {"now": now, "lon": lon, "lat": lat, "id": incident_id},
    )
    log_event(conn, incident_id, now, who.actor, "arrive", incident["status"], f"on scene at {lon:.6f},{lat:.6f}")
    audit.record(conn, who.actor, "incident.arrive", f"incident/{incident_id}", lon=lon, lat=lat)
    return get_assignment(conn, int(mine["id"]))


def finish(conn: Conn, incident_id: int, actor: str, now: dt.datetime, *, final: bool) -> None:
    """The incident was handled (``final``: or ended): accepted assignments are done; when it
    ended, offers still open are withdrawn (their deadline jobs then change nothing)."""
    conn.execute(
        sa.text(
            "UPDATE incident_assignments SET state = 'done', done_at = :now, done_by = :actor "
            "WHERE incident_id = :i AND state = 'accepted'"
        ),
        {"now": now, "actor": actor, "i": incident_id},
    )
    if final:
        conn.execute(
            sa.text(
                "UPDATE incident_assignments SET state = 'withdrawn', withdrawn_at = :now "
                "WHERE incident_id = :i AND state = 'offered'"
            ),
            {"now": now, "i": incident_id},
        )


def has_lead(conn: Conn, incident_id: int) -> bool:
    return bool(
        conn.execute(
            sa.text(
                "SELECT EXISTS (SELECT 1 FROM incident_assignments WHERE incident_id = :i AND role = 'lead' "
                "AND kind = 'dispatch' AND state IN ('offered', 'accepted'))"
            ),
            {"i": incident_id},
        ).scalar()
    )
