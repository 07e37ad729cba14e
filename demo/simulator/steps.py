"""The simulator's people at work: what is due (three queries over the simulator's incidents),
what each holder and centre decides (drawn from the seed and a stable key), and the steps, each
through the product's functions (gis.dispatch, gis.incidents.workflow): no status is written here.

Offers: a person's lead offer is accepted after a share of its window (beta(2, 5): most early),
6 % are declined with a reason after a while (the town's centre re-dispatches to another person of
the grid, else to the village station), 5 % are left to expire (the worker's offer-deadline job
escalates them); co offers and summonses are accepted or, 10 %, left; units accept 97 %.
Leads: once accepted, the centre registers (立案) and dispatches (派遣) the incident, the holder
travels (110 and public order: ~6 min; others ~25; units ~40), arrives near the incident, works,
and reports it handled after a share of its deadline (beta(2, 5) x 0.8, at most ~2.5 h typical;
3 % late, past the deadline, so that the deadline job escalates them). 4 % are escalated by hand
(the next level's centre takes over); a third of the categories a department deals with get
that department summoned (吹哨). Centres verify (~20 min) and close (~8 min).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from demo.simulator.cast import DEPARTMENT_FOR, Cast, county_of
from gis.core.vocab import COUNTY_TZ
from gis.dispatch import assignments, manual, orders
from gis.dispatch.assignments import Holder, IncidentGone
from gis.dispatch.errors import DispatchConflict, NotPermitted
from gis.incidents import workflow
from gis.incidents.errors import IncidentInputError
from gis.spatial.areas import Conn

if TYPE_CHECKING:
    from gis.core.settings import Settings

Wall = Callable[[float], dt.timedelta]
REFUSED = (
    DispatchConflict,
    NotPermitted,
    IncidentInputError,
    IncidentGone,
    workflow.IllegalTransition,
    workflow.IncidentNotFound,
)
DECLINE_REASONS = ("请假不在岗", "非本网格事项", "正在处置其他紧急事件", "超出职责范围，需上级协调")
FAST = ("hotline_110",)
FAST_CATEGORIES = ("public_order", "theft", "fraud", "fire_outbreak", "mass_gathering", "family_conflict")
NEXT_CENTRE = {"village": "village_station", "town": "town_centre", "county": "county_centre"}

# The holder (``holder``) as the decisions' keys name it: never by database id. Ids depend on what
# the database went through (sequences move on with every rolled-back insert, a reload numbers
# anew), and a day drawn from them changed with them (the simulator test after other tests saw no
# decline). A person by ID card, else name and phone; a unit by its code.
OPEN_OFFERS = sa.text(
    "SELECT a.id AS assignment_id, a.incident_id, a.kind, a.role, a.person_id, a.org_unit_id, a.level, "
    "a.offered_at, a.accept_by, i.source, i.category, i.external_id, i.grid_code, i.village_code, i.town_code, "
    "i.county_code, "
    "CASE WHEN a.person_id IS NOT NULL THEN 'p:' || coalesce(hp.id_card, hp.name || '/' || coalesce(hp.phone, '')) "
    "ELSE 'u:' || hu.code END AS holder, "
    # How many offers of this incident the holder had before: a re-dispatch to the same holder is
    # a new decision (the same key would repeat an ignored offer's fate at every re-dispatch).
    "(SELECT count(*) FROM incident_assignments b WHERE b.incident_id = a.incident_id AND b.id < a.id "
    "AND b.person_id IS NOT DISTINCT FROM a.person_id AND b.org_unit_id IS NOT DISTINCT FROM a.org_unit_id) AS nth "
    "FROM incident_assignments a JOIN incidents i ON i.id = a.incident_id "
    "LEFT JOIN people hp ON hp.id = a.person_id LEFT JOIN org_units hu ON hu.id = a.org_unit_id "
    "WHERE a.state = 'offered' AND a.accept_by IS NOT NULL AND i.external_id LIKE :p "
    "AND i.status NOT IN ('closed', 'rejected') "
    "ORDER BY a.offered_at, a.id LIMIT :limit"
)
WORKING_LEADS = sa.text(
    "SELECT a.id AS assignment_id, a.incident_id, a.person_id, a.org_unit_id, a.level, a.accepted_at, i.status, "
    "i.escalation_level, i.category, i.source, i.external_id, i.reported_at, i.deadline_at, i.grid_code, "
    "i.village_code, i.town_code, i.county_code, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, EXISTS (SELECT 1 FROM "
    "incident_assignments s WHERE s.incident_id = i.id AND s.kind = 'summon') AS summoned, "
    "CASE WHEN a.person_id IS NOT NULL THEN 'p:' || coalesce(hp.id_card, hp.name || '/' || coalesce(hp.phone, '')) "
    "ELSE 'u:' || hu.code END AS holder "
    "FROM incident_assignments a JOIN incidents i ON i.id = a.incident_id "
    "LEFT JOIN people hp ON hp.id = a.person_id LEFT JOIN org_units hu ON hu.id = a.org_unit_id "
    "WHERE a.state = 'accepted' AND a.role = 'lead' AND a.kind = 'dispatch' "
    "AND i.status IN ('reported', 'accepted', 'dispatched', 'in_progress') AND i.external_id LIKE :p "
    "ORDER BY a.accepted_at, a.id LIMIT :limit"
)
TO_CHECK = sa.text(
    "SELECT i.id AS incident_id, i.status, i.handled_at, i.verified_at, i.external_id, i.town_code, i.county_code "
    "FROM incidents i WHERE i.id IN (SELECT incident_id FROM incident_assignments WHERE role = 'lead' "
    "AND state = 'done') AND i.status IN ('handled', 'verified') AND i.external_id LIKE :p ORDER BY i.id LIMIT :limit"
)

# Pending incidents nobody holds (no rule found anyone, an expiry at the top, a decline with no one
# to take over): the centre dispatches them by hand. ``:floor``: no older incident is the simulator's.
UNHELD = sa.text(
    "SELECT i.id AS incident_id, i.external_id, i.reported_at, i.grid_code, i.village_code, i.town_code, "
    "i.county_code, "
    "CAST(NULL AS bigint) AS person_id FROM incidents i WHERE i.id >= :floor AND i.external_id LIKE :p "
    "AND i.status IN ('reported', 'accepted', 'dispatched', 'in_progress') AND NOT EXISTS (SELECT 1 FROM "
    "incident_assignments a WHERE a.incident_id = i.id AND a.role = 'lead' AND a.kind = 'dispatch' "
    "AND a.state IN ('offered', 'accepted')) ORDER BY i.id LIMIT :limit"
)
UNHELD_AFTER_S = 600.0  # simulated: a dispatcher notices within about ten minutes


@dataclass(frozen=True)
class Plan:
    action: str  # accept, decline or ignore
    after_s: float  # wall seconds after the offer


def _key(row: dict[str, Any], *parts: object) -> str:
    """A decision's stable key: the report's number, the holder (``holder``: no database id), the level."""
    return "|".join(str(p) for p in (row["external_id"], row["holder"], row.get("level"), *parts))


def offer_plan(seed: int, row: dict[str, Any]) -> Plan:
    from demo.simulator.play import fate

    again = (row["nth"],) if row.get("nth") else ()  # a first offer keeps the key it always had
    rng = fate(seed, _key(row, "offer", row["kind"], row["role"], *again))
    window = (row["accept_by"] - row["offered_at"]).total_seconds()
    u = float(rng.random())
    if row["kind"] == "summon" or row["role"] == "co":
        ignore, decline = 0.10, 0.0
    elif row["person_id"] is None:
        ignore, decline = 0.03, 0.0
    else:
        ignore, decline = 0.05, 0.06
    if u < ignore:
        return Plan("ignore", window)
    if u < ignore + decline:
        return Plan("decline", window * float(rng.uniform(0.05, 0.4)))
    return Plan("accept", window * float(rng.beta(2.0, 5.0)))


def _minutes(rng: Any, median_min: float, sigma: float = 0.5) -> float:
    return float(median_min * 60.0 * rng.lognormal(0.0, sigma))


def lead_plan(seed: int, row: dict[str, Any], wall: Wall) -> list[tuple[str, dt.timedelta]]:
    """The holder's steps after acceptance, each with its wall delay after ``accepted_at``."""
    from demo.simulator.play import fate

    rng = fate(seed, _key(row, "lead"))
    fast = row["source"] in FAST or row["category"] in FAST_CATEGORIES
    travel = wall(_minutes(rng, 6 if fast else (25 if row["person_id"] is not None else 40)))
    span = row["deadline_at"] - row["reported_at"]  # already at the simulated pace (the intake's settings)
    if rng.random() < 0.03:
        work = span * float(rng.uniform(1.05, 1.5))  # late: the deadline job escalates it meanwhile
    else:
        work = min(span * float(rng.beta(2.0, 5.0)) * 0.8, wall(_minutes(rng, 150, 0.7)))
    plan = [("register", dt.timedelta(0)), ("arrive", travel)]
    if rng.random() < 0.04 and row["level"] != "county":
        plan.append(("escalate", travel + work * 0.3))
    if row["category"] in DEPARTMENT_FOR and rng.random() < 0.35:
        plan.append(("summon", travel + work * 0.2))
    plan.append(("handle", travel + work))
    return sorted(plan, key=lambda p: p[1])


def pending(action: str, row: dict[str, Any]) -> bool:
    """Whether the step still has to be taken, by the incident's state."""
    status = row["status"]
    if action == "register":
        return bool(status in ("reported", "accepted"))
    if action == "arrive":
        return bool(status == "dispatched")
    if action == "escalate":
        return bool(status == "in_progress" and row["escalation_level"] == row["level"])
    if action == "summon":
        return bool(status == "in_progress" and not row["summoned"])
    return bool(status == "in_progress")  # handle


def check_plan(seed: int, row: dict[str, Any]) -> tuple[str, dt.datetime | None, float]:
    """The centre's check of a handled incident (verify) and then its closing; sim seconds."""
    from demo.simulator.play import fate

    rng = fate(seed, f"{row['external_id']}|check|{row['status']}")
    if row["status"] == "handled":
        return "verify", row["handled_at"], _minutes(rng, 20)
    return "close", row["verified_at"], _minutes(rng, 8)


def _holder(conn: Conn, cast: Cast, row: dict[str, Any]) -> Holder:
    if row["person_id"] is not None:
        return Holder(cast.person(conn, int(row["person_id"])), person_id=int(row["person_id"]))
    return Holder(cast.unit(conn, int(row["org_unit_id"])), org_unit_id=int(row["org_unit_id"]))


def _redispatch(conn: Conn, cast: Cast, row: dict[str, Any], now: dt.datetime, settings: Settings, why: str) -> bool:
    """The town's centre offers the incident to a person of the grid on duty other than the one
    who declined (the grid leader first), else to the village station, the town's command room or
    the county centre, the first that exists."""
    centre = cast.centre(conn, row["town_code"], row["county_code"])
    other = conn.execute(
        sa.text(
            "SELECT po.person_id FROM postings po JOIN people pe ON pe.id = po.person_id WHERE po.layer = 'grid' "
            "AND po.area_code = :g AND po.person_id IS DISTINCT FROM :p AND pe.status = 'active' "
            "AND po.role IN ('grid_leader', 'grid_worker', 'part_time_worker') AND po.starts_on <= :t "
            "AND (po.ends_on IS NULL OR po.ends_on >= :t) ORDER BY po.role = 'grid_leader' DESC, po.person_id LIMIT 1"
        ),
        {"g": row["grid_code"], "p": row.get("person_id"), "t": now.astimezone(COUNTY_TZ).date()},
    ).scalar()
    if other is not None:
        manual.dispatch(conn, row["incident_id"], centre, person_id=int(other), now=now, settings=settings, note=why)
        return True
    for kind, area in (("village_station", row["village_code"]), ("town_centre", row["town_code"]),
                       ("county_centre", county_of(row["town_code"], row["county_code"]))):  # fmt: skip
        unit = cast.find_unit(conn, kind, area or "") if area else None
        if unit is not None:
            manual.dispatch(conn, row["incident_id"], centre, org_unit=unit[1], now=now, settings=settings, note=why)
            return True
    return False


def act(
    conn: Conn,
    cast: Cast,
    action: str,
    row: dict[str, Any],
    now: dt.datetime,
    seed: int,
    settings: Settings,
    wall: Wall,
) -> bool:
    """Take one step; False when there was nothing to do it with (no department to summon)."""
    from demo.simulator.play import fate

    iid = int(row["incident_id"])
    if action == "accept":
        assignments.accept(conn, iid, _holder(conn, cast, row), assignment_id=row["assignment_id"], now=now)
    elif action == "decline":
        reason = DECLINE_REASONS[int(fate(seed, _key(row, "reason")).integers(len(DECLINE_REASONS)))]
        assignments.decline(conn, iid, _holder(conn, cast, row), reason, assignment_id=row["assignment_id"], now=now)
        if row["role"] == "lead":
            _redispatch(conn, cast, row, now, settings, "re-dispatched after a decline")
    elif action == "redispatch":
        return _redispatch(conn, cast, row, now, settings, "no one held it: dispatched by hand")
    elif action == "register":
        centre = cast.centre(conn, row["town_code"], row["county_code"])
        if row["status"] == "reported":
            workflow.transition(conn, iid, "accepted", centre, now=now)
        workflow.transition(conn, iid, "dispatched", centre, now=now)
    elif action == "arrive":
        holder = _holder(conn, cast, row)
        rng = fate(seed, _key(row, "arrive"))
        dx, dy = rng.normal(0.0, 0.0002, 2)
        assignments.arrive(conn, iid, holder, float(row["lon"] + dx), float(row["lat"] + dy), now=now)
        workflow.transition(conn, iid, "in_progress", holder.actor, now=now)
    elif action == "escalate":
        holder = _holder(conn, cast, row)
        moved = workflow.escalate(conn, iid, holder.actor, note="超出本级处置能力，提请上级协调", now=now)
        unit = cast.find_unit(conn, NEXT_CENTRE[moved["escalation_level"]], _area(row, moved["escalation_level"]))
        if unit is not None:
            centre = cast.centre(conn, row["town_code"], row["county_code"])
            manual.dispatch(conn, iid, centre, org_unit=unit[1], now=now, settings=settings,
                            note="escalated by the holder")  # fmt: skip
    elif action == "summon":
        county = county_of(row["town_code"], row["county_code"])
        dept = cast.find_unit(conn, "department", f"{county}-{DEPARTMENT_FOR[row['category']]}")
        if dept is None:
            return False
        centre = cast.centre(conn, row["town_code"], row["county_code"])
        orders.summon(conn, iid, centre, [dept[1]], now + wall(2 * 3600), note="吹哨报到：请派员到场协同处置",
                      now=now)  # fmt: skip
    elif action == "handle":
        workflow.transition(conn, iid, "handled", _holder(conn, cast, row).actor, now=now)
    elif action in ("verify", "close"):
        target = "verified" if action == "verify" else "closed"
        workflow.transition(conn, iid, target, cast.centre(conn, row["town_code"], row["county_code"]), now=now)
    else:
        raise ValueError(f"unknown simulator step {action!r}")
    return True


def _area(row: dict[str, Any], level: str) -> str:
    if level in ("village", "town"):
        return str(row.get(f"{level}_code") or "")
    return county_of(row.get("town_code"), row.get("county_code"))


def play_worker(conn: Conn, now: dt.datetime) -> Iterator[str]:
    """What `gridmap worker` would do by ``now``: expire the due offers and escalate the overdue
    incidents (the jobs' own bodies), for runs without a worker (tests, benchmarks)."""
    from gis.dispatch.deadlines import expire_offer

    due = conn.execute(
        sa.text(
            "SELECT id FROM incident_assignments WHERE state = 'offered' AND role = 'lead' AND kind = 'dispatch' "
            "AND accept_by <= :now ORDER BY accept_by, id"
        ),
        {"now": now},
    ).scalars()
    for assignment_id in list(due):
        if expire_offer(conn, int(assignment_id), now):
            yield "expire (worker)"
    for _ in range(workflow.escalate_overdue(conn, now)):
        yield "overdue (worker)"
