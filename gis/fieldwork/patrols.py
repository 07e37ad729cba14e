"""Patrols (巡查): started for a grid, fed with batches of GPS points, ended.

Points come in WGS-84, GCJ-02 or BD-09 (``crs`` of the batch) and are stored in WGS-84. A batch is
refused whole (nothing stored) when any point is unusable: not a number, out of range, a time
in the future or before the patrol started (after it ended), each error naming ``points[i]``.

Speed policy: a point reached from the last kept point (the latest earlier point that is not
flagged) faster than the configured limit (150 km/h) is stored *flagged*: kept for the record,
left out of the track and of coverage. Flags are a function of the whole stored sequence, worked
out again on every batch, so a batch that arrives late (a phone's resend) gives the same flags as
if the points had come in order. A point at an instant already stored for the patrol is a resend
and is not stored again. After each batch the patrol's display track (the kept points as a line,
simplified by ``TRACK_TOLERANCE_M`` in a metric projection) and its length are stored again.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import sqlalchemy as sa

from gis.fieldwork import inputs as fi
from gis.fieldwork.errors import FieldworkForbidden, FieldworkInputError, FieldworkNotFound
from gis.people.keys import Principal
from gis.people.scope import Scope
from gis.spatial.areas import IN_GENERATION, Conn, current_generation
from gis.spatial.crs import METRIC_EPSG, to_wgs84

MAX_POINTS = 5000
TRACK_TOLERANCE_M = 3.0
_PATROL_FIELDS = frozenset({"person_id", "posting_id", "grid_code", "started_at"})
_BATCH_FIELDS = frozenset({"crs", "points"})
_POINT_FIELDS = frozenset({"lon", "lat", "t"})

_PATROL = sa.text(
    "SELECT id, person_id, posting_id, grid_code, started_at, ended_at, point_count, flagged_count, length_m, "
    "recorded_by, created_at FROM patrols WHERE id = :id"
)

# The display track and figures from the kept points, in one statement.
_RETRACK = sa.text(
    "WITH kept AS (SELECT geom, t FROM patrol_points WHERE patrol_id = :id AND NOT flagged), "
    "line AS (SELECT CASE WHEN count(*) > 1 THEN ST_MakeLine(geom ORDER BY t) END AS g FROM kept) "
    "UPDATE patrols SET "
    "track = (SELECT ST_Transform(ST_Simplify(ST_Transform(g, :metric), :tol), 4326) FROM line), "
    "length_m = coalesce((SELECT ST_Length(ST_Transform(g, :metric)) FROM line), 0), "
    "point_count = (SELECT count(*) FROM patrol_points WHERE patrol_id = :id), "
    "flagged_count = (SELECT count(*) FROM patrol_points WHERE patrol_id = :id AND flagged) "
    "WHERE id = :id RETURNING point_count, flagged_count, length_m"
)


def _grid_in_scope(conn: Conn, code: str, scope: Scope, field: str) -> None:
    generation = current_generation(conn)
    found = conn.execute(
        sa.text(f"SELECT 1 FROM areas WHERE layer = 'grid' AND code = :code AND {IN_GENERATION}"),  # noqa: S608
        {"code": code, "g": generation},
    ).first()
    if found is None or not scope.contains(code):
        raise FieldworkNotFound(field, f"no grid {code!r} in the boundaries in force")


def get_patrol(conn: Conn, patrol_id: int, scope: Scope) -> dict[str, Any]:
    """A patrol (404 when missing or its grid is outside ``scope``)."""
    row = conn.execute(_PATROL, {"id": patrol_id}).mappings().first()
    if row is None or not scope.contains(row["grid_code"]):
        raise FieldworkNotFound("patrol_id", f"no patrol {patrol_id}")
    return dict(row)


def start(conn: Conn, payload: object, caller: Principal, now: dt.datetime | None = None) -> dict[str, Any]:
    """Start a patrol of a grid inside the caller's scope."""
    now = now or dt.datetime.now(dt.UTC)
    body = fi.require_object(payload, "body")
    fi.check_keys(body, _PATROL_FIELDS, "body")
    person_id = fi.integer(body, "person_id", "body") or caller.person_id
    if person_id is None:
        raise FieldworkInputError("body.person_id", None, "is required (the key is not a person's)")
    if person_id != caller.person_id and caller.person_id is not None and caller.role in ("viewer", "reporter"):
        raise FieldworkForbidden("person_id: a reporter key starts only its own person's patrols")
    grid = fi.text(body, "grid_code", "body", required=True, max_len=32) or ""
    _grid_in_scope(conn, grid, caller.scope, "body.grid_code")
    if conn.execute(sa.text("SELECT 1 FROM people WHERE id = :id"), {"id": person_id}).first() is None:
        raise FieldworkNotFound("body.person_id", f"no person {person_id}")
    posting_id = fi.integer(body, "posting_id", "body")
    if posting_id is not None:
        owner = conn.execute(sa.text("SELECT person_id FROM postings WHERE id = :id"), {"id": posting_id}).scalar()
        if owner is None:
            raise FieldworkNotFound("body.posting_id", f"no posting {posting_id}")
        if owner != person_id:
            raise FieldworkInputError("body.posting_id", posting_id, f"is not a posting of person {person_id}")
    started = fi.instant(body.get("started_at") or now.isoformat(), "body.started_at", now)
    patrol_id = conn.execute(
        sa.text(
            "INSERT INTO patrols (person_id, posting_id, grid_code, started_at, recorded_by) "
            "VALUES (:person, :posting, :grid, :started, :by) RETURNING id"
        ),
        {"person": person_id, "posting": posting_id, "grid": grid, "started": started, "by": caller.name},
    ).scalar_one()
    return get_patrol(conn, patrol_id, caller.scope)


def end(
    conn: Conn, patrol_id: int, payload: object, caller: Principal, now: dt.datetime | None = None
) -> dict[str, Any]:
    """End a patrol (at ``ended_at``, default now); ending it again keeps the first end."""
    now = now or dt.datetime.now(dt.UTC)
    patrol = get_patrol(conn, patrol_id, caller.scope)
    body = fi.require_object(payload if payload is not None else {}, "body")
    fi.check_keys(body, frozenset({"ended_at"}), "body")
    if patrol["ended_at"] is None:
        ended = fi.instant(
            body.get("ended_at") or now.isoformat(), "body.ended_at", now, not_before=patrol["started_at"]
        )
        last = conn.execute(sa.text("SELECT max(t) FROM patrol_points WHERE patrol_id = :id"), {"id": patrol_id})
        latest = last.scalar()
        if latest is not None and ended < latest:
            raise FieldworkInputError("body.ended_at", body.get("ended_at"), f"is before the last point ({latest})")
        conn.execute(sa.text("UPDATE patrols SET ended_at = :e WHERE id = :id"), {"e": ended, "id": patrol_id})
    return get_patrol(conn, patrol_id, caller.scope)


def _parse_points(body: dict[str, Any], patrol: dict[str, Any], now: dt.datetime) -> tuple[Any, ...]:
    points = body.get("points")
    if not isinstance(points, list) or not points:
        raise FieldworkInputError("points", points if not isinstance(points, list) else [], "must be a non-empty list")
    if len(points) > MAX_POINTS:
        raise FieldworkInputError("points", len(points), f"holds {len(points)} points; at most {MAX_POINTS} a batch")
    crs = fi.crs_of(body.get("crs"), "crs")
    upper = patrol["ended_at"]
    lon = np.empty(len(points))
    lat = np.empty(len(points))
    times: list[dt.datetime] = []
    for i, raw in enumerate(points):
        where = f"points[{i}]"
        point = fi.require_object(raw, where)
        fi.check_keys(point, _POINT_FIELDS, where)
        lon[i] = fi.coordinate(point.get("lon"), f"{where}.lon", 180.0)
        lat[i] = fi.coordinate(point.get("lat"), f"{where}.lat", 90.0)
        when = fi.instant(point.get("t"), f"{where}.t", now, not_before=patrol["started_at"] - fi.CLOCK_SKEW)
        if upper is not None and when > upper:
            raise FieldworkInputError(f"{where}.t", point.get("t"), f"is after the patrol ended ({upper.isoformat()})")
        times.append(when)
    if crs != "wgs84":
        lon, lat = to_wgs84(lon, lat, crs)
    return crs, lon, lat, times


def _metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Distance between two nearby points: metres per degree on the WGS-84 ellipsoid at their mean
    latitude (the standard series), within a few millimetres per kilometre of the geodesic at
    the distances between GPS fixes, and ~50 times cheaper per pair than a geodesic call."""
    phi = math.radians((lat1 + lat2) / 2)
    m_lat = 111132.954 - 559.822 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
    m_lon = 111412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)
    return math.hypot((lon2 - lon1) * m_lon, (lat2 - lat1) * m_lat)


def speed_flags(t_s: np.ndarray, lon: np.ndarray, lat: np.ndarray, max_kmh: float) -> tuple[np.ndarray, np.ndarray]:
    """Per point (sorted by time): flagged, and the speed in km/h from the last kept point (NaN for
    the first). A point at the same instant as the last kept one is flagged unless it is within a
    metre of it (a repeated fix)."""
    n = len(t_s)
    flagged = np.zeros(n, dtype=bool)
    speed = np.full(n, np.nan)
    xs, ys, ts = lon.tolist(), lat.tolist(), t_s.tolist()
    last = 0
    for i in range(1, n):
        metres = _metres(xs[last], ys[last], xs[i], ys[i])
        seconds = ts[i] - ts[last]
        kmh = metres / seconds * 3.6 if seconds > 0 else (0.0 if metres <= 1.0 else float("inf"))
        speed[i] = kmh
        if kmh > max_kmh:
            flagged[i] = True
        else:
            last = i
    return flagged, speed


def add_points(
    conn: Conn,
    patrol_id: int,
    payload: object,
    caller: Principal,
    *,
    max_speed_kmh: float = 150.0,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Store a batch of points (all or nothing) and work the speed flags out again; see the module."""
    now = now or dt.datetime.now(dt.UTC)
    patrol = get_patrol(conn, patrol_id, caller.scope)
    body = fi.require_object(payload, "body")
    fi.check_keys(body, _BATCH_FIELDS, "body")
    crs, lon, lat, times = _parse_points(body, patrol, now)
    # One batch at a time per patrol: the flags depend on every stored point.
    conn.execute(sa.text("SELECT 1 FROM patrols WHERE id = :id FOR UPDATE"), {"id": patrol_id})
    stored = conn.execute(
        sa.text(
            "SELECT id, t AS at, ST_X(geom) AS lon, ST_Y(geom) AS lat, flagged, speed_kmh FROM patrol_points "
            "WHERE patrol_id = :id ORDER BY t"
        ),
        {"id": patrol_id},
    ).all()
    known = {r.at for r in stored}
    new_index: dict[dt.datetime, int] = {}
    for i, when in enumerate(times):
        if when not in known and when not in new_index:
            new_index[when] = i
    # The merged sequence: stored points (with ids) and new ones (id None), by time.
    merged: list[tuple[Any, ...]] = [(r.at, r.lon, r.lat, r.id, r.flagged, r.speed_kmh, -1) for r in stored]
    merged += [(when, float(lon[i]), float(lat[i]), None, False, None, i) for when, i in new_index.items()]
    merged.sort(key=lambda m: m[0])
    t_s = np.array([m[0].timestamp() for m in merged])
    flags, speeds = speed_flags(t_s, np.array([m[1] for m in merged]), np.array([m[2] for m in merged]), max_speed_kmh)
    changed_ids, changed_flags, changed_speeds = [], [], []
    new_rows = []
    flagged_indices = []
    for m, flag, speed in zip(merged, flags, speeds, strict=True):
        kmh = None if np.isnan(speed) or np.isinf(speed) else round(float(speed), 2)
        if m[3] is None:
            new_rows.append((m[0], m[1], m[2], bool(flag), kmh))
            if flag:
                flagged_indices.append(m[6])
        elif bool(flag) != m[4] or kmh != m[5]:
            changed_ids.append(m[3])
            changed_flags.append(bool(flag))
            changed_speeds.append(kmh)
    if new_rows:
        conn.execute(
            sa.text(
                "INSERT INTO patrol_points (patrol_id, t, received_crs, flagged, speed_kmh, geom) "
                "SELECT :id, t, :crs, f, s, ST_SetSRID(ST_MakePoint(x, y), 4326) FROM unnest("
                "CAST(:t AS timestamptz[]), CAST(:x AS float8[]), CAST(:y AS float8[]), CAST(:f AS boolean[]), "
                "CAST(:s AS float8[])) AS u(t, x, y, f, s)"
            ),
            {
                "id": patrol_id,
                "crs": str(crs),
                "t": [r[0] for r in new_rows],
                "x": [r[1] for r in new_rows],
                "y": [r[2] for r in new_rows],
                "f": [r[3] for r in new_rows],
                "s": [r[4] for r in new_rows],
            },
        )
    if changed_ids:
        conn.execute(
            sa.text(
                "UPDATE patrol_points p SET flagged = u.f, speed_kmh = u.s FROM unnest("
                "CAST(:ids AS bigint[]), CAST(:f AS boolean[]), CAST(:s AS float8[])) AS u(id, f, s) WHERE p.id = u.id"
            ),
            {"ids": changed_ids, "f": changed_flags, "s": changed_speeds},
        )
    figures = conn.execute(_RETRACK, {"id": patrol_id, "metric": METRIC_EPSG, "tol": TRACK_TOLERANCE_M}).one()
    return {
        "patrol_id": patrol_id,
        "received": len(times),
        "stored": len(new_rows),
        "duplicates": len(times) - len(new_rows),
        "flagged": sorted(flagged_indices),
        "point_count": figures.point_count,
        "flagged_count": figures.flagged_count,
        "length_m": round(float(figures.length_m), 1),
    }
