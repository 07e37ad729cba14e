"""Routing: which people and units an incident is offered to, from the rules (``routing_rules``).

A rule matches an incident by source, category and escalation level (NULL = any) and names a
target (gis.core.vocab.ROUTING_TARGETS): the on-duty holder of a posting of the incident's grid
(grid_worker, aux_police) or beat (beat_officer), the unit responsible for its village, town or the
county (village_centre = the village's work station, town_centre, county_centre: the centre of the
incident's own county, its ``county_code``, so that with several counties in one deployment an
escalation never lands at another county's centre), or a fixed unit (``org_unit``, by code), for
the incidents of that unit's own county only (a unit's area is inside one county: its area code
starts with the county's): a rule naming county A's law enforcement bureau never offers county B's
reports to it; county B names its own bureau in a rule of its own. On duty = an active person with
a posting in force today (county date).

The lead is the matching lead rule of smallest priority that finds someone (ties: the smallest rule
id, then the smallest person or unit id), so a rule for 110 reports (priority 10) beats the default
grid worker (100), and the village station (200) takes over a grid without a worker on duty. Every
matching co rule adds all of its holders. A lead rule whose ``pick`` is ``nearest`` prefers, among its
holders, the one whose latest patrol GPS point (gis.fieldwork.patrols, not flagged, no older than
``position_recent_s``) is nearest the incident, by geodesic distance; holders without a recent point
come after those with one, in the usual order, so nobody with a position means the usual holder.
A holder already holding the incident (offered or accepted) is not offered it again, and no lead is
chosen while the incident has an active lead.

The whole resolution is SQL text over a row source, so that live intake embeds it in its one
statement (``dispatch_ctes``) and the other callers run it for one incident (``route``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from gis.core.settings import Settings, get_settings
from gis.core.vocab import ACTIVE_ASSIGNMENT_STATES, COUNTY_TZ
from gis.spatial.areas import Conn
from gis.work.jobs import NAMESPACE

OFFER_TASK = f"{NAMESPACE}:offer_deadline"
OFFER_QUEUE = "deadlines"
_ACTIVE = ", ".join(f"'{s}'" for s in ACTIVE_ASSIGNMENT_STATES)
_ON_DUTY = "pe.status = 'active' AND po.starts_on <= :today AND (po.ends_on IS NULL OR po.ends_on >= :today)"
# Metres from the incident to the person's latest recent kept patrol point, for a ``nearest`` rule
# and a person only (CASE runs the subquery only then, so the other rules cost nothing): read
# through the patrols of the person (ix_patrols_person_started) and each patrol's points by time
# (the unique (patrol_id, t) index). A patrol ended before the window has no recent point and is
# skipped. Written once, after the holders' union rather than in each of its person branches:
# every execution initialises each copy of a subquery, run or not.
_DISTANCE = """CASE WHEN ru.pick = 'nearest' AND h.person_id IS NOT NULL THEN (
            SELECT ST_Distance(pp.geom::geography, r0.geom::geography)
            FROM patrols pt JOIN patrol_points pp ON pp.patrol_id = pt.id
            WHERE pt.person_id = h.person_id AND pt.started_at <= CAST(:now AS timestamptz)
              AND (pt.ended_at IS NULL OR pt.ended_at >= CAST(:now AS timestamptz) - make_interval(
                  secs => CAST(:recent_s AS float8)))
              AND NOT pp.flagged AND pp.t <= CAST(:now AS timestamptz)
              AND pp.t >= CAST(:now AS timestamptz) - make_interval(secs => CAST(:recent_s AS float8))
            ORDER BY pp.t DESC LIMIT 1) END"""

# Candidates: each matching rule with each holder it finds. The org unit branches are separate
# selects, each gated by its target (a one-time filter), so each reads ix_org_units_area or the code.
_CANDIDATES = f"""
    SELECT r0.id AS incident_id, r0.status, r0.source, r0.escalation_level AS level, ru.id AS rule_id,
           ru.role, ru.priority, h.person_id, h.org_unit_id, {_DISTANCE} AS dist
    FROM {{rows}} r0
    JOIN routing_rules ru ON ru.enabled
        AND (ru.source IS NULL OR ru.source = r0.source)
        AND (ru.category IS NULL OR ru.category = r0.category)
        AND (ru.level IS NULL OR ru.level = r0.escalation_level)
    JOIN LATERAL (
        SELECT po.person_id, CAST(NULL AS integer) AS org_unit_id
        FROM postings po JOIN people pe ON pe.id = po.person_id
        WHERE ru.target IN ('grid_worker', 'aux_police') AND po.role = ru.target
          AND po.layer = 'grid' AND po.area_code = r0.grid_code AND {_ON_DUTY}
        UNION ALL
        SELECT po.person_id, NULL FROM postings po JOIN people pe ON pe.id = po.person_id
        WHERE ru.target = 'beat_officer' AND po.role = 'beat_officer'
          AND po.layer = 'beat' AND po.area_code = r0.beat_code AND {_ON_DUTY}
        UNION ALL
        SELECT NULL, ou.id FROM org_units ou
        WHERE ru.target = 'village_centre' AND ou.layer = 'village' AND ou.area_code = r0.village_code
          AND ou.kind = 'village_station'
        UNION ALL
        SELECT NULL, ou.id FROM org_units ou
        WHERE ru.target = 'town_centre' AND ou.layer = 'town' AND ou.area_code = r0.town_code
          AND ou.kind = 'town_centre'
        UNION ALL
        SELECT NULL, ou.id FROM org_units ou
        WHERE ru.target = 'county_centre' AND ou.layer = 'county' AND ou.area_code = r0.county_code
          AND ou.kind = 'county_centre'
        UNION ALL
        SELECT NULL, ou.id FROM org_units ou WHERE ru.target = 'org_unit' AND ou.code = ru.org_unit_code
          AND left(ou.area_code, 6) = r0.county_code
    ) h ON true
    {{exclude}}"""  # noqa: S608 - constants only
# A holder already holding the incident is not offered it again.
_NOT_HELD = f"""WHERE NOT EXISTS (
        SELECT 1 FROM incident_assignments a
        WHERE a.incident_id = r0.id AND a.state IN ({_ACTIVE})
          AND (a.person_id = h.person_id OR a.org_unit_id = h.org_unit_id))"""  # noqa: S608
_LEAD_HELD = f"""SELECT EXISTS (
                 SELECT 1 FROM incident_assignments a
                 WHERE a.incident_id = c.incident_id AND a.role = 'lead' AND a.kind = 'dispatch'
                   AND a.state IN ({_ACTIVE})) AS lead"""  # noqa: S608

# The chosen holders: the best lead (while an active lead exists: none, or with :lead_to_co, as a
# co-handler: an escalation brings the next level's centre in beside the holder), then each co
# holder once. Within a rule the nearest holder with a recent position comes first (``dist`` is
# NULL for every holder of a ``first`` rule, and for a holder without a recent position).
_ROUTED = """
    SELECT DISTINCT ON (incident_id, coalesce(person_id, 0), coalesce(org_unit_id, 0)) * FROM (
        (SELECT DISTINCT ON (c.incident_id) c.incident_id, c.status, c.source, c.level, c.rule_id,
                CASE WHEN held.lead THEN 'co' ELSE 'lead' END AS role, c.priority, c.person_id, c.org_unit_id
         FROM route_cand c CROSS JOIN LATERAL ({lead_held}) held
         WHERE c.role = 'lead' AND (NOT held.lead OR CAST(:lead_to_co AS boolean))
         ORDER BY c.incident_id, c.priority, c.rule_id, c.dist NULLS LAST, c.person_id, c.org_unit_id)
        UNION ALL
        (SELECT c.incident_id, c.status, c.source, c.level, c.rule_id, c.role, c.priority, c.person_id,
                c.org_unit_id FROM route_cand c WHERE c.role = 'co')
    ) x
    ORDER BY incident_id, coalesce(person_id, 0), coalesce(org_unit_id, 0), role = 'lead' DESC, priority"""


def offer_events_select(offers: str, actor: str = ":actor") -> str:
    """A SELECT of one ``dispatch`` event row per offer of ``offers`` (a CTE with incident_id,
    role, person_id, org_unit_id, offered_at; the incident's status from ``routed``): the columns
    of incident_events. The status does not change: an offer is not yet a dispatch (派遣)."""
    return f"""SELECT o.incident_id, o.offered_at, {actor}, 'dispatch', s.status, s.status,
        o.role || ' offered to ' || coalesce('person ' || o.person_id, 'org unit ' || ou.code)
        FROM {offers} o JOIN (SELECT DISTINCT ON (incident_id) incident_id, status FROM routed) s
            ON s.incident_id = o.incident_id
        LEFT JOIN org_units ou ON ou.id = o.org_unit_id
        ORDER BY o.id"""  # noqa: S608


def offer_jobs_sql(offers: str) -> str:
    """An INSERT of the acceptance-deadline job of every lead offer of ``offers`` (a CTE with id,
    incident_id, role, accept_by), queued like the handling deadlines (gis.work.jobs). Its lock is
    the assignment's, not the incident's: procrastinate runs the jobs of one lock in queue order
    whatever their times, so the incident's handling deadline (days away) would hold it back.
    The job bodies lock the incident's row, which orders them where it matters."""
    return f"""INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, scheduled_at)
        SELECT '{OFFER_QUEUE}', '{OFFER_TASK}', 'assignment:' || o.id,
               jsonb_build_object('assignment_id', o.id), o.accept_by
        FROM {offers} o WHERE o.role = 'lead' AND o.accept_by IS NOT NULL"""  # noqa: S608


def _route_ctes(rows: str, fresh: bool) -> str:
    """``route_cand`` and ``routed`` over ``rows``; ``fresh``: the incidents were inserted by this
    statement (intake), so nobody holds them yet and the holding checks are left out."""
    exclude, lead_held = ("", "SELECT false AS lead") if fresh else (_NOT_HELD, _LEAD_HELD)
    return (
        f"route_cand AS ({_CANDIDATES.format(rows=rows, exclude=exclude)}), "
        f"routed AS ({_ROUTED.format(lead_held=lead_held)})"
    )


def dispatch_ctes(rows: str, *, with_events: bool = True, actor: str = ":actor", fresh: bool = False) -> str:
    """CTEs (to follow ``WITH ...,``) that offer the incidents of ``rows`` to their routed holders:
    ``route_cand``, ``routed``, ``offers`` (the inserted assignments), ``offer_jobs`` and, unless
    the caller writes the events itself (intake, to keep its event ids in order), ``offer_events``.
    ``rows`` has the incidents' columns (id, status, source, category, escalation_level and the
    assignment codes) and geom. Parameters: :now, :today, :accept_s, :accept_110_s, :recent_s
    (``routing_params``) and
    the one named by ``actor`` (a parameter, or SQL text), who offers. ``fresh``: ``rows`` are
    incidents this statement inserts (intake): no one holds them yet, nothing is checked for it."""
    ctes = f"""{_route_ctes(rows, fresh)},
        offers AS (
            INSERT INTO incident_assignments (incident_id, kind, role, person_id, org_unit_id, level, rule_id,
                accept_by, offered_at, offered_by)
            SELECT incident_id, 'dispatch', role, person_id, org_unit_id, level, rule_id,
                CAST(:now AS timestamptz) + make_interval(secs => CASE WHEN source = 'hotline_110'
                    THEN CAST(:accept_110_s AS float8) ELSE CAST(:accept_s AS float8) END),
                :now, {actor}
            FROM routed
            RETURNING id, incident_id, role, person_id, org_unit_id, accept_by, offered_at),
        offer_jobs AS ({offer_jobs_sql("offers")})"""  # noqa: S608
    if with_events:
        ctes += f""",
        offer_events AS (
            INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note)
            {offer_events_select("offers", actor)})"""
    return ctes


def routing_params(now: dt.datetime, settings: Settings | None = None, *, lead_to_co: bool = False) -> dict[str, Any]:
    settings = settings or get_settings()
    return {
        "now": now,
        "lead_to_co": lead_to_co,
        "today": now.astimezone(COUNTY_TZ).date(),
        "accept_s": settings.accept_within_s,
        "accept_110_s": settings.accept_within_110_s,
        "recent_s": settings.position_recent_s,
    }


_ONE = "(SELECT * FROM incidents WHERE id = :incident_id)"
_ROUTE_ONE = sa.text(
    f"WITH {dispatch_ctes(_ONE)} SELECT id, role, person_id, org_unit_id, accept_by FROM offers ORDER BY id"  # noqa: S608
)
_PREVIEW = sa.text(
    f"WITH {_route_ctes(_ONE, fresh=False)} "  # noqa: S608
    "SELECT role, person_id, org_unit_id, rule_id FROM routed ORDER BY role = 'co', rule_id"
)


def route(
    conn: Conn,
    incident_id: int,
    actor: str,
    now: dt.datetime | None = None,
    settings: Settings | None = None,
    *,
    lead_to_co: bool = False,
) -> list[dict[str, Any]]:
    """Offer incident ``incident_id`` to the holders its rules find now (at its current level),
    with the events and the lead's acceptance-deadline job; returns the new offers. ``lead_to_co``
    (an escalation): while someone holds the lead, the lead the rules find joins as a co-handler."""
    now = now or dt.datetime.now(dt.UTC)
    params = {**routing_params(now, settings, lead_to_co=lead_to_co), "actor": actor, "incident_id": incident_id}
    return [dict(r._mapping) for r in conn.execute(_ROUTE_ONE, params)]


def preview(
    conn: Conn, incident_id: int, now: dt.datetime | None = None, settings: Settings | None = None
) -> list[dict[str, Any]]:
    """The holders ``route`` would offer the incident to, without offering."""
    now = now or dt.datetime.now(dt.UTC)
    params = {**routing_params(now, settings), "incident_id": incident_id}
    return [dict(r._mapping) for r in conn.execute(_PREVIEW, params)]
