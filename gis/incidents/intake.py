"""Live incident intake (事件上报) and reading incidents back.

``create_incident`` validates a raw mapping (the API body, a CLI row), converts the coordinate to
WGS-84 at the edge (or geocodes the address), and stores the incident in ONE statement: the
duplicate search, the insert (assignment is done by the database trigger), the first history event
and the audit entry. One round trip keeps live intake fast; the unique indexes on
``(source, external_id)`` and ``idempotency_key`` make a replay (or a racing twin) return the first
row instead of a second one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.core import timeparse
from gis.core.predicates import is_current, is_escalated, is_open, is_overdue
from gis.core.prepared import execute_prepared, positional
from gis.core.settings import Settings, get_settings
from gis.core.vocab import ASSIGN_COLUMNS
from gis.dispatch.routing import dispatch_ctes, offer_events_select, routing_params
from gis.incidents import rules
from gis.incidents.errors import IncidentInputError as IncidentInputError
from gis.spatial import crs as gcrs
from gis.spatial.address_text import AddressError
from gis.spatial.areas import Conn
from gis.work.jobs import deadline_jobs_sql

# Clients' clocks drift; a report a few minutes "in the future" is clock skew, not an error.
CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_LENGTHS = {
    "external_id": 64,
    "idempotency_key": 128,
    "address": 200,
    "description": 4000,
    "reporter_name": 100,
    "reporter_phone": 20,
    "note": 2000,
}
# The loop's timestamps (migration 0016), besides reported_at and closed_at.
DISPATCH_TIMES = ("dispatched_at", "accepted_at", "on_scene_at", "handled_at", "verified_at")
# Who the automatic dispatch at intake is, in the history and on the assignments.
SYSTEM_DISPATCHER = "system"
# Reports older than this are history for the bulk importer, not live intake.
EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
_PHONE = re.compile(r"^\+?[0-9][0-9 \-]{2,18}[0-9]$")

# Every reader of incidents selects this one JSON object (alias ``i``): one column decodes far faster
# than thirty-odd separately described ones, which matters at hundreds of reports per second.
_FIELDS = {
    **{
        c: f"i.{c}"
        for c in (
            "id",
            "category",
            "source",
            "external_id",
            "status",
            "reported_at",
            "created_at",
            "deadline_at",
            "escalation_level",
            "escalated_at",
            "closed_at",
            *DISPATCH_TIMES,
            "closed_level",
            "possible_duplicate_of",
            "received_crs",
            "received_lon",
            "received_lat",
            "address_text",
            "address_id",
            "description",
            "reporter_name",
            "reporter_phone",
            *ASSIGN_COLUMNS,
        )
    },
    "lon": "ST_X(i.geom)",
    "lat": "ST_Y(i.geom)",
    "overdue": is_overdue("i"),
    "escalated": is_escalated("i"),
}
COLUMNS = "json_build_object(" + ", ".join(f"'{k}', {v}" for k, v in _FIELDS.items()) + ") AS incident"
_TIMES = ("reported_at", "created_at", "deadline_at", "escalated_at", "closed_at", *DISPATCH_TIMES)


def describe(row: Mapping[Any, Any]) -> dict[str, Any]:
    """An incident (the JSON object of ``COLUMNS``) as the service presents it: its fields with
    times as datetimes, plus labels from the rules."""
    out = dict(row)
    for key in _TIMES:
        if out[key] is not None:
            out[key] = dt.datetime.fromisoformat(out[key])
    category = rules.CATEGORIES.get(out["category"])
    out["category_zh"] = category.zh if category else None
    out["risk_group"] = category.risk_group if category else None
    out["status_zh"] = rules.STATUSES[out["status"]][0]
    out["escalation_level_zh"] = rules.ESCALATION_LEVELS[out["escalation_level"]][0]
    return out


@dataclass(frozen=True)
class Located:
    lon: float  # WGS-84
    lat: float
    received_crs: str
    received_lon: float | None
    received_lat: float | None
    address_id: int | None
    # WGS-84 of the point with lon and lat swapped, when that is a valid point: the insert checks
    # whether the point misses the county while its swap hits it (see ``_INSERT_SQL``).
    swap_lon: float | None = None
    swap_lat: float | None = None


# --- validation --------------------------------------------------------------------------------


def number(field: str, value: Any, error: type[IncidentInputError] = IncidentInputError) -> float:
    """A finite number from JSON (a number or numeric text); ``error`` (naming ``field``) otherwise.
    Every input of a position goes through it (intake, field work)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise error(field, f"{value!r} is not a number")
    try:
        out = float(value)
    except ValueError:
        raise error(field, f"{value!r} is not a number") from None
    if not math.isfinite(out):
        raise error(field, f"{value!r} is not a finite number")
    return out


def clean_text(data: Mapping[str, Any], field: str) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise IncidentInputError(field, f"must be text, got {type(value).__name__}")
    value = value.strip()
    if "\x00" in value:  # PostgreSQL text cannot hold NUL
        raise IncidentInputError(field, "contains a NUL character")
    if len(value) > MAX_LENGTHS[field]:
        raise IncidentInputError(field, f"is {len(value)} characters long; at most {MAX_LENGTHS[field]} allowed")
    return value or None


def parse_time(field: str, value: Any, now: dt.datetime) -> dt.datetime:
    """An aware instant by the one time rule (``gis.core.timeparse``: no offset = county time, a bare
    date is the end of that day), from the live intake's range: after 1990, at most a clock skew ahead."""
    try:
        when = timeparse.parse_time(value, bound="instant", field=field)
    except timeparse.TimeValueError as exc:
        raise IncidentInputError(field, exc.message.removeprefix(f"{field}: ")) from None
    if when < EARLIEST:
        raise IncidentInputError(
            field, f"{when.isoformat()} is before {EARLIEST:%Y}; load history with the bulk import"
        )
    if when > now + CLOCK_SKEW:
        raise IncidentInputError(field, f"{when.isoformat()} is in the future (server time {now.isoformat()})")
    return when


_IN_COUNTY = (
    f"SELECT 1 FROM areas WHERE layer IN ('county', 'town') AND {is_current()} "  # noqa: S608
    "AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint({x}, {y}), 4326))"
)


def _in_county(conn: Conn, lon: float, lat: float) -> bool:
    found = conn.execute(sa.text(f"SELECT EXISTS ({_IN_COUNTY.format(x=':lon', y=':lat')})"), {"lon": lon, "lat": lat})
    return bool(found.scalar())


def _swap_lands_inside(conn: Conn, lon: float, lat: float, crs: gcrs.InputCRS) -> bool:
    """Would the point (lon=lat, lat=lon) lie in the county? Used only to word the error."""
    if abs(lon) > 90 or abs(lat) > 180:
        return False
    swapped_lon, swapped_lat = gcrs.to_wgs84(lat, lon, crs)
    return _in_county(conn, swapped_lon, swapped_lat)


SWAP_HINT = "lon and lat look swapped: swapping them puts the point inside the county"


def _locate_point(conn: Conn, data: Mapping[str, Any], crs: gcrs.InputCRS) -> Located:
    raw_lon, raw_lat = data.get("lon"), data.get("lat")
    if raw_lon is None:
        raise IncidentInputError("lon", "missing; give lon and lat together")
    if raw_lat is None:
        raise IncidentInputError("lat", "missing; give lon and lat together")
    lon, lat = number("lon", raw_lon), number("lat", raw_lat)
    if abs(lat) > 90:
        hint = f"; {SWAP_HINT}" if _swap_lands_inside(conn, lon, lat, crs) else ""
        raise IncidentInputError("lat", f"{lat} is out of range [-90, 90]{hint}")
    if abs(lon) > 180:
        raise IncidentInputError("lon", f"{lon} is out of range [-180, 180]")
    wgs_lon, wgs_lat = gcrs.to_wgs84(lon, lat, crs)
    located = Located(wgs_lon, wgs_lat, crs.value, lon, lat, None)
    if abs(lon) <= 90:  # else the swap is no point at all (true for every point in China)
        swap_lon, swap_lat = gcrs.to_wgs84(lat, lon, crs)
        located = dataclasses.replace(located, swap_lon=swap_lon, swap_lat=swap_lat)
    return located


def _locate_address(conn: Conn, address: str) -> Located:
    from gis.spatial.geocode import geocode  # the lookup module; imported here to keep intake light

    try:
        result = geocode(conn, address)
    except AddressError as exc:
        raise IncidentInputError("address", str(exc)) from None
    if result.match is None:
        candidates = [
            {"address_id": c.address_id, "full_text": c.full_text, "score": round(c.score, 3), "precision": c.precision}
            for c in result.candidates
        ]
        raise IncidentInputError(
            "address", f"{address!r} matches no standard address with enough confidence", candidates=candidates
        )
    m = result.match
    return Located(m.lon, m.lat, "wgs84", None, None, m.address_id)


# --- intake ------------------------------------------------------------------------------------


def _compact(sql: str) -> str:
    """SQL without comments and runs of blanks: shorter to send and to parse when a connection
    prepares it (with dispatch it is over 4 kB anyway, hence gis.core.prepared)."""
    lines = (line.split("--", 1)[0] for line in sql.splitlines())
    return re.sub(r"\s+", " ", " ".join(lines)).strip()


# ``near`` is the open incidents in a box around the point, read from the partial GiST index of open
# incidents (migration 0009) and nothing else: MATERIALIZED keeps the time and category tests out
# of the index choice, which otherwise (in a generic plan, or with many recent reports) combined
# the box with a scan of every report of the last hours. The geodesic, time and category tests then
# run on the few rows inside the box. The assignment trigger
# reads the snap tolerance from a setting: p is computed before the row is inserted, and the setting
# lasts for this statement's transaction (also when the caller runs in autocommit). ``job`` schedules
# the deadline job (gis.work.jobs) with the row: it commits or rolls back with the incident.
# ``route_cand`` .. ``offer_jobs`` dispatch it (gis.dispatch.routing): the offers to the holders
# the routing rules find on duty, their events (in ``ev``, after the report's) and the lead
# offer's acceptance-deadline job.
_JOB = deadline_jobs_sql("(SELECT id AS incident_id, escalation_level AS level, deadline_at AS at FROM ins)")
_INSERT_SQL = sa.text(
    _compact(f"""
        WITH p AS (
            SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g,
                   CASE WHEN CAST(:swap_lon AS float8) IS NULL THEN false
                        WHEN EXISTS ({_IN_COUNTY.format(x=":lon", y=":lat")}) THEN false
                        ELSE EXISTS ({_IN_COUNTY.format(x=":swap_lon", y=":swap_lat")}) END AS swapped,
                   set_config('gridmap.snap_tolerance_m', :snap_tolerance, true) AS tolerance),
        near AS MATERIALIZED (
            SELECT o.id, o.geom, o.category, o.reported_at FROM incidents o
            WHERE o.geom && ST_MakeEnvelope(:lon - :dx, :lat - :dy, :lon + :dx, :lat + :dy, 4326)
              AND {is_open("o")}),
        dup AS (
            SELECT o.id FROM near o
            WHERE o.category = :category AND o.reported_at BETWEEN :dup_from AND :dup_to
              AND ST_DWithin(o.geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :radius)
            ORDER BY ST_Distance(o.geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography), o.id
            LIMIT 1),
        ins AS (
            INSERT INTO incidents (category, source, external_id, idempotency_key, reported_at, received_crs,
                received_lon, received_lat, address_text, address_id, description, reporter_name,
                reporter_phone, status, deadline_at, escalation_level, possible_duplicate_of, geom)
            SELECT :category, :source, :external_id, :idempotency_key, :reported_at, :received_crs,
                :received_lon, :received_lat, :address_text, :address_id, :description, :reporter_name,
                :reporter_phone, 'reported', :deadline_at, 'grid', (SELECT id FROM dup), p.g
            FROM p WHERE NOT p.swapped
            ON CONFLICT DO NOTHING
            RETURNING *),
        {dispatch_ctes("ins", with_events=False, actor="CAST(:dispatcher AS text)", fresh=True)},
        ev AS (
            INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note)
            SELECT id, :now, :actor, 'report', NULL, 'reported', :event_note FROM ins
            UNION ALL ({offer_events_select("offers", "CAST(:dispatcher AS text)")})),
        au AS (
            INSERT INTO audit_log (actor, action, target, detail)
            SELECT :actor, 'incident.create', 'incident/' || id,
                   jsonb_build_object('category', category, 'source', source, 'grid_code', grid_code,
                                      'assign_status', assign_status, 'possible_duplicate_of', possible_duplicate_of)
            FROM ins),
        job AS ({_JOB})
        SELECT p.swapped, {COLUMNS} FROM p LEFT JOIN ins i ON true
        """)  # noqa: S608 - only constants are formatted in
)


_INSERT = positional(_INSERT_SQL)


def _insert(conn: Conn, params: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Run the intake statement as a statement prepared on the server (gis.core.prepared): its
    plan does not depend on its values (``near`` pins the index), and planning it was a third of
    its database CPU: 1.3-1.5 ms a report prepared against 2.1-2.3 ms planned each time. It runs
    in whatever transaction ``conn`` is in (autocommit for the API)."""
    connection = conn.connection() if isinstance(conn, Session) else conn
    row: Any = execute_prepared(connection, _INSERT, params).one()
    return bool(row[0]), row[1]


def _replay(conn: Conn, source: str, external_id: str | None, key: str | None) -> dict[str, Any]:
    row = conn.execute(
        sa.text(
            f"SELECT {COLUMNS} FROM incidents i "  # noqa: S608
            "WHERE (CAST(:key AS text) IS NOT NULL AND i.idempotency_key = :key) "
            "   OR (CAST(:ext AS text) IS NOT NULL AND i.source = :source AND i.external_id = :ext) "
            "ORDER BY i.id LIMIT 1"
        ),
        {"key": key, "ext": external_id, "source": source},
    ).one_or_none()
    if row is None:  # the conflicting insert rolled back after blocking ours: nothing to return
        raise RuntimeError("incident insert conflicted but the first row is gone; retry the request")
    return describe(row.incident)


def create_incident(
    conn: Conn,
    data: Mapping[str, Any],
    actor: str,
    idempotency_key: str | None = None,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
) -> tuple[dict[str, Any], bool]:
    """Store a reported incident; returns (incident, created). A replay returns the first row, False."""
    settings = settings or get_settings()
    now = now or dt.datetime.now(dt.UTC)
    try:
        category = rules.check_category(data.get("category"))
    except rules.RuleError as exc:
        raise IncidentInputError("category", str(exc)) from None
    try:
        source = rules.check_source(data.get("source"))
    except rules.RuleError as exc:
        raise IncidentInputError("source", str(exc)) from None
    try:
        crs = gcrs.parse_crs(data.get("crs") or "wgs84")
    except gcrs.UnknownCRSError as exc:
        raise IncidentInputError("crs", str(exc)) from None
    external_id = clean_text(data, "external_id")
    key = clean_text({"idempotency_key": idempotency_key}, "idempotency_key")
    address = clean_text(data, "address")
    description = clean_text(data, "description")
    reporter_name = clean_text(data, "reporter_name")
    reporter_phone = clean_text(data, "reporter_phone")
    if reporter_phone and not _PHONE.match(reporter_phone):
        raise IncidentInputError("reporter_phone", f"{reporter_phone!r} is not a phone number")
    reported_at = parse_time("reported_at", data["reported_at"], now) if data.get("reported_at") else now

    if data.get("lon") is not None or data.get("lat") is not None:
        where = _locate_point(conn, data, crs)
    elif address:
        where = _locate_address(conn, address)
    else:
        raise IncidentInputError("lon", "a location is required: lon and lat (with crs), or an address")

    radius = settings.duplicate_radius_m
    window = dt.timedelta(hours=settings.duplicate_window_hours)
    # Degrees spanning the radius, with margin, for the index-friendly bounding-box prefilter.
    dy = radius / 110_000.0 * 1.1
    dx = dy / max(math.cos(math.radians(where.lat)), 0.01)
    params = {
        "lon": where.lon,
        "lat": where.lat,
        "swap_lon": where.swap_lon,
        "swap_lat": where.swap_lat,
        "category": category,
        "source": source,
        "external_id": external_id,
        "idempotency_key": key,
        "reported_at": reported_at,
        "received_crs": where.received_crs,
        "received_lon": where.received_lon,
        "received_lat": where.received_lat,
        "address_text": address,
        "address_id": where.address_id,
        "description": description,
        "reporter_name": reporter_name,
        "reporter_phone": reporter_phone,
        "deadline_at": rules.deadline_for(category, reported_at, settings.deadline_hours),
        "dup_from": reported_at - window,
        "dup_to": reported_at + window,
        "dx": dx,
        "dy": dy,
        "radius": radius,
        "snap_tolerance": str(settings.snap_tolerance_m),
        **routing_params(now, settings),
        "actor": actor,
        "dispatcher": SYSTEM_DISPATCHER,
        "now": now,
        "event_note": f"source={source}" + (f" external_id={external_id}" if external_id else ""),
    }
    swapped, row = _insert(conn, params)
    if swapped:
        raise IncidentInputError(
            "lon", f"({where.received_lon}, {where.received_lat}) lies outside the county; {SWAP_HINT}"
        )
    if row["id"] is not None:
        return describe(row), True
    return _replay(conn, source, external_id, key), False
