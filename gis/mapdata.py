"""The data behind the command-centre maps: boundary layers, incident heat, buildings, hazards.

Every function returns plain Python (GeoJSON dicts, lists of ``[lat, lon, weight]``) so that the
folium page builders, the JSON endpoints the pages poll and the CLI share one code path.

Two concerns shape it:

* **Size.** folium writes every point into the page. Above a threshold the heat is aggregated on
  the server into weighted cells of a fine square grid (100 m); each cell sits at the mean
  position of its incidents. Leaflet.heat itself sums weights into screen cells of ``radius/2``
  pixels (about 300 m at county zoom), so cells of 100 m paint the same picture as raw points.
  Boundaries are simplified as a coverage (shared edges stay shared) and rounded to ~1 m.
* **Display datum.** Overlays are stored in WGS-84; for GCJ-02 base maps (Amap tiles) every
  coordinate is shifted on the way out (``display_crs="gcj02"``), never in the database.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from threading import Lock
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import orjson
import shapely
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis import crs, incident_rules
from gis.areas import IN_GENERATION, Conn, check_layer, current_generation
from gis.names import INCIDENT_STATUSES
from gis.privacy import (
    ID_CARD_FIELDS,
    NAME_FIELDS,
    PHONE_FIELDS,
    field_masker,
    mask_staff,
    role_sees_personal_data,
)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
WINDOWS = ("today", "7d", "30d", "90d", "365d", "custom")
_WINDOW_DAYS = {"7d": 7, "30d": 30, "90d": 90, "365d": 365}
MAX_RANGE_DAYS = 3 * 366
# Statuses in which an incident still waits for handling (the intake rules' "pending").
OPEN_STATUSES = incident_rules.PENDING_STATUSES
# Overdue on the maps: pending and past its deadline, or escalated already (escalation moves the
# deadline on by the next level's hours, but the incident missed the one it had).
OVERDUE_SQL = "status = ANY(:open) AND (deadline_at < :now OR escalation_level <> 'grid')"
DONE_STATUSES = ("handled", "verified", "closed")
DEFAULT_CELL_M = 100.0
REFERENCE_LAT = 30.85  # Jiashan; used only when no boundaries are loaded
DEFAULT_TOLERANCE_M = {"county": 20.0, "town": 10.0, "village": 5.0, "station": 10.0}
COORD_DECIMALS = 5  # ~1 m: finer than any screen pixel at the zooms the pages use
PERSONAL_FIELDS = PHONE_FIELDS | ID_CARD_FIELDS | NAME_FIELDS
_VALUE = re.compile(r"^[\w\-.·]{1,32}$")


class MapQueryError(ValueError):
    """A map filter or argument is unusable; the message names the field and the value."""


# --- filters ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentFilter:
    """Which incidents a map shows: a time window and optional category/source/status lists."""

    start: dt.datetime
    end: dt.datetime
    window: str = "custom"
    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    def sql(self, alias: str = "") -> tuple[str, dict[str, Any]]:
        """A WHERE fragment (without WHERE) and its parameters."""
        p = f"{alias}." if alias else ""
        parts = [f"{p}reported_at >= :f_start", f"{p}reported_at < :f_end"]
        params: dict[str, Any] = {"f_start": self.start, "f_end": self.end}
        for column, values in (("category", self.categories), ("source", self.sources), ("status", self.statuses)):
            if values:
                parts.append(f"{p}{column} = ANY(:f_{column})")
                params[f"f_{column}"] = list(values)
        return " AND ".join(parts), params

    def query(self) -> dict[str, str]:
        """The filter as URL query parameters (what the page form submits)."""
        out = {"window": self.window}
        if self.window == "custom":
            out["from"] = self.start.astimezone(LOCAL_TZ).date().isoformat()
            out["to"] = (self.end.astimezone(LOCAL_TZ) - dt.timedelta(seconds=1)).date().isoformat()
        for key, values in (("category", self.categories), ("source", self.sources), ("status", self.statuses)):
            if values:
                out[key] = ",".join(values)
        return out


def _values(field_name: str, raw: str | Sequence[str] | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    items = raw.split(",") if isinstance(raw, str) else [v for r in raw for v in r.split(",")]
    out: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if not _VALUE.match(item):
            raise MapQueryError(f"{field_name}: {item[:40]!r} is not a valid value (letters, digits, _-.; max 32)")
        if field_name == "status" and item not in INCIDENT_STATUSES:
            raise MapQueryError(f"status: {item!r} is not one of {', '.join(INCIDENT_STATUSES)}")
        if item not in out:
            out.append(item)
    return tuple(out)


def _day(field_name: str, value: str | dt.date | dt.datetime) -> dt.datetime:
    """A date or datetime as an aware datetime; a bare date means local (China) midnight."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=LOCAL_TZ)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), LOCAL_TZ)
    text = value.strip()
    try:
        if len(text) <= 10:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), LOCAL_TZ)
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise MapQueryError(f"{field_name}: {text[:40]!r} is not a date (YYYY-MM-DD) or ISO datetime") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=LOCAL_TZ)


def _is_bare_date(value: str | dt.date) -> bool:
    if isinstance(value, dt.datetime):
        return False
    return isinstance(value, dt.date) or len(value.strip()) <= 10


def parse_filter(
    window: str | None = None,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    category: str | Sequence[str] | None = None,
    source: str | Sequence[str] | None = None,
    status: str | Sequence[str] | None = None,
    now: dt.datetime | None = None,
) -> IncidentFilter:
    """Build a filter from URL-style values. ``end`` as a bare date is inclusive (the whole day).

    ``window`` is one of today, 7d, 30d, 90d, 365d, custom (default 7d, or custom when a date is
    given). Relative windows end now; "today" starts at local midnight (Asia/Shanghai).
    """
    now = (now or dt.datetime.now(dt.UTC)).astimezone(LOCAL_TZ)
    window = (window or "").strip() or ("custom" if start or end else "7d")
    if window not in WINDOWS:
        raise MapQueryError(f"window: {window!r} is not one of {', '.join(WINDOWS)}")
    if window == "custom":
        if not start and not end:
            raise MapQueryError("window: 'custom' needs from and/or to (YYYY-MM-DD)")
        end_at = _day("to", end) if end else now
        if end and _is_bare_date(end):
            end_at += dt.timedelta(days=1)  # "to" a date includes that whole day
        start_at = _day("from", start) if start else end_at - dt.timedelta(days=30)
    elif window == "today":
        start_at, end_at = now.replace(hour=0, minute=0, second=0, microsecond=0), now
    else:
        start_at, end_at = now - dt.timedelta(days=_WINDOW_DAYS[window]), now
    if end_at <= start_at:
        raise MapQueryError(f"from/to: the range {start_at.date()}..{end_at.date()} is empty; 'from' must precede 'to'")
    if end_at - start_at > dt.timedelta(days=MAX_RANGE_DAYS):
        raise MapQueryError(f"from/to: the range is longer than {MAX_RANGE_DAYS} days")
    return IncidentFilter(
        start_at, end_at, window, _values("category", category), _values("source", source), _values("status", status)
    )


# --- coordinates -------------------------------------------------------------------------------

FloatArray = npt.NDArray[np.float64]


def _display(lon: FloatArray, lat: FloatArray, display_crs: str) -> tuple[FloatArray, FloatArray]:
    if display_crs == "wgs84":
        return lon, lat
    return crs.from_wgs84(lon, lat, display_crs)


def check_display_crs(value: str) -> str:
    if value not in ("wgs84", "gcj02"):
        raise MapQueryError(f"display_crs: {value!r} is not wgs84 or gcj02")
    return value


def _float_columns(rows: Sequence[Sequence[Any]], width: int) -> list[FloatArray]:
    """The columns of query rows as float arrays.

    Through zip: numpy takes over a second to convert 50,000 SQLAlchemy rows directly (they are
    not tuples), and attribute access per row and field is not much better.
    """
    if not rows:
        return [np.empty(0, dtype=float) for _ in range(width)]
    return [np.array(column, dtype=float) for column in zip(*rows, strict=True)]


def _rounded(values: FloatArray, decimals: int = COORD_DECIMALS) -> list[float]:
    rounded: list[float] = np.round(np.asarray(values, dtype=float), decimals).tolist()
    return rounded


def point_features(rows: Iterable[dict[str, Any]], display_crs: str, role: str | None) -> dict[str, Any]:
    """Rows with ``lon``/``lat`` keys (WGS-84) as a GeoJSON FeatureCollection, personal data masked."""
    items = list(rows)
    if not items:
        return {"type": "FeatureCollection", "features": []}
    names = list(items[0])
    return _point_collection(names, [tuple(r[k] for k in names) for r in items], display_crs, role)


def _point_collection(
    names: Sequence[str], rows: Sequence[Sequence[Any]], display_crs: str, role: str | None
) -> dict[str, Any]:
    """``point_features`` for rows given as tuples of the columns ``names`` (as a query returns them).

    Works column by column: masking and time formatting are decided once per column, and no
    mapping is built per row; the layers run to tens of thousands of rows.
    """
    if not rows:
        return {"type": "FeatureCollection", "features": []}
    columns = dict(zip(names, zip(*rows, strict=True), strict=True))
    lon, lat = _display(np.array(columns["lon"], dtype=float), np.array(columns["lat"], dtype=float), display_crs)
    keys = [k for k in names if k not in ("lon", "lat")]
    sees = role_sees_personal_data(role)
    values: list[Sequence[Any]] = []
    for key in keys:
        column: Sequence[Any] = columns[key]
        masker = None if sees else field_masker(key)
        if masker is not None:
            # As mask_record: only text is masked; anything else passes unchanged.
            column = [masker(v) if isinstance(v, str) else v for v in column]
        elif any(isinstance(v, dt.date) for v in column[:50]):
            column = [_jsonable(v) for v in column]
        values.append(column)
    records = zip(*values, strict=True) if values else [()] * len(rows)  # rows with no field but lon/lat
    # Empty fields are left out: the pages poll these, and most rows have some.
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {k: v for k, v in zip(keys, row, strict=True) if v is not None},
                "geometry": {"type": "Point", "coordinates": [x, y]},
            }
            for row, x, y in zip(records, _rounded(lon), _rounded(lat), strict=True)
        ],
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(LOCAL_TZ).isoformat(timespec="minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# --- boundary layers ---------------------------------------------------------------------------

_layer_cache: dict[tuple[str, ...], dict[str, Any]] = {}
_layer_lock = Lock()


def _db_key(conn: Conn) -> str:
    engine = conn.get_bind() if isinstance(conn, Session) else conn.engine
    return engine.engine.url.render_as_string(hide_password=True)


def _resolve_generation(conn: Conn, generation: int | None) -> int:
    gen = generation if generation is not None else current_generation(conn)
    if gen is None:
        raise MapQueryError("no boundary generation is published yet; load boundaries first (gridmap seed jiashan)")
    return gen


def _simplified_layer(conn: Conn, layer: str, generation: int, tolerance_m: float, display_crs: str) -> dict[str, Any]:
    """The whole layer as GeoJSON, simplified as a coverage in metres, cached per generation.

    A published generation never changes, so the cache needs no invalidation; the database URL is
    part of the key because tests and benchmarks use several databases in one process.
    """
    key = (_db_key(conn), layer, str(generation), f"{tolerance_m:g}", display_crs)
    with _layer_lock:
        hit = _layer_cache.get(key)
    if hit is not None:
        return hit
    # Read straight into shapely (no GeoDataFrame, and not the attrs column, which the pages do
    # not show): building the frame and decoding attrs cost more than the simplification.
    rows = conn.execute(
        sa.text(
            "SELECT code, name, parent_code, households, ST_AsBinary(geom) AS wkb "  # noqa: S608
            f"FROM areas WHERE layer = :layer AND {IN_GENERATION} ORDER BY code"
        ),
        {"layer": check_layer(layer), "g": generation},
    ).all()
    geoms = shapely.from_wkb([bytes(r[4]) for r in rows]) if rows else np.empty(0, dtype=object)
    if len(geoms) and tolerance_m > 0:
        # Simplified in degrees with the tolerance converted at the layer's latitude: for display
        # this matches a metric simplification, without projecting every vertex twice.
        bounds = shapely.total_bounds(geoms)
        dx, dy = cell_degrees(tolerance_m, (bounds[1] + bounds[3]) / 2)
        geoms = shapely.coverage_simplify(geoms, min(dx, dy), simplify_boundary=True)
    if display_crs != "wgs84":
        geoms = shapely.transform(geoms, lambda c: np.column_stack(_display(c[:, 0], c[:, 1], display_crs)))
    if len(geoms):
        geoms = shapely.transform(geoms, lambda c: np.round(c, COORD_DECIMALS))
    # shapely's C GeoJSON writer is ~3x faster than building dicts with mapping().
    shapes = [orjson.loads(text) for text in shapely.to_geojson(geoms)] if len(geoms) else []
    features = [
        {
            "type": "Feature",
            "properties": {
                "code": code,
                "name": name,
                "parent_code": parent,
                "households": None if hh is None else int(hh),
                "layer": layer,
            },
            "geometry": shape,
        }
        for (code, name, parent, hh, _), shape in zip(rows, shapes, strict=True)
    ]
    collection = {"type": "FeatureCollection", "features": features}
    with _layer_lock:
        if len(_layer_cache) > 64:
            _layer_cache.clear()
        _layer_cache[key] = collection
    return collection


def layer_geojson(
    conn: Conn,
    layer: str,
    generation: int | None = None,
    *,
    codes: Iterable[str] | None = None,
    parent_codes: Iterable[str] | None = None,
    tolerance_m: float | None = None,
    display_crs: str = "wgs84",
) -> dict[str, Any]:
    """Polygons of ``layer`` in force in ``generation`` (default: the current one) as GeoJSON.

    ``codes``/``parent_codes`` keep only those units. Properties: code, name, parent_code,
    households, layer. The features are shared with a cache: copy before mutating them.
    """
    check_layer(layer)
    check_display_crs(display_crs)
    tol = DEFAULT_TOLERANCE_M.get(layer, 2.0) if tolerance_m is None else tolerance_m
    if tol < 0:
        raise MapQueryError(f"tolerance_m: {tol} must be >= 0")
    full = _simplified_layer(conn, layer, _resolve_generation(conn, generation), tol, display_crs)
    if codes is None and parent_codes is None:
        return full
    keep_codes = set(codes) if codes is not None else None
    keep_parents = set(parent_codes) if parent_codes is not None else None
    features = [
        f
        for f in full["features"]
        if (keep_codes is None or f["properties"]["code"] in keep_codes)
        and (keep_parents is None or f["properties"]["parent_code"] in keep_parents)
    ]
    return {"type": "FeatureCollection", "features": features}


def area_bounds(conn: Conn, layer: str, code: str, generation: int | None = None) -> tuple[float, ...] | None:
    """(min lon, min lat, max lon, max lat) of one unit, or None if it does not exist."""
    row = conn.execute(
        sa.text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "  # noqa: S608
            f"(SELECT ST_Extent(geom) AS e FROM areas WHERE layer = :layer AND code = :code AND {IN_GENERATION}) s"
        ),
        {"layer": check_layer(layer), "code": code, "g": _resolve_generation(conn, generation)},
    ).one()
    return None if row[0] is None else tuple(float(v) for v in row)


def overlapping_areas(
    conn: Conn, layer: str, code: str, other_layer: str, generation: int | None = None, min_share: float = 0.001
) -> list[dict[str, Any]]:
    """Units of ``other_layer`` that overlap unit ``code`` of ``layer`` by area (not just an edge).

    ``share`` is the part of the other unit that lies inside this one (0..1).
    """
    gen = _resolve_generation(conn, generation)
    rows = conn.execute(
        sa.text(
            "SELECT o.code, o.name, o.households, "
            "ST_Area(ST_Intersection(o.geom, a.geom)::geography) / nullif(ST_Area(o.geom::geography), 0) AS share "
            "FROM areas a JOIN areas o ON o.layer = :other AND ST_Intersects(o.geom, a.geom) "
            "AND o.gen_from <= :g AND (o.gen_to IS NULL OR o.gen_to > :g) "
            "WHERE a.layer = :layer AND a.code = :code AND a.gen_from <= :g AND (a.gen_to IS NULL OR a.gen_to > :g) "
            "ORDER BY o.code"
        ),
        {"layer": check_layer(layer), "code": code, "other": check_layer(other_layer), "g": gen},
    ).mappings()
    return [
        {"code": r["code"], "name": r["name"], "households": r["households"], "share": round(float(r["share"] or 0), 4)}
        for r in rows
        if (r["share"] or 0) >= min_share
    ]


# --- incident heat ------------------------------------------------------------------------------


@dataclass
class HeatData:
    """Heat points ``[lat, lon, weight]``; ``aggregated`` tells whether they are cells or incidents."""

    points: list[list[float]]
    total: int
    aggregated: bool
    cell_m: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def count_incidents(conn: Conn, flt: IncidentFilter, limit: int | None = None) -> int:
    """Incidents matching ``flt``; with ``limit``, counting stops at limit + 1 (cheap threshold test)."""
    where, params = flt.sql()
    if limit is None:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM incidents WHERE {where}"), params).scalar_one())  # noqa: S608
    sql = f"SELECT count(*) FROM (SELECT 1 FROM incidents WHERE {where} LIMIT :lim) s"  # noqa: S608
    return int(conn.execute(sa.text(sql), {**params, "lim": limit + 1}).scalar_one())


AREA_COLUMNS = ("town_code", "village_code", "grid_code", "micro_grid_code", "station_code", "beat_code")


def count_in_area(conn: Conn, flt: IncidentFilter, column: str, code: str) -> int:
    """Incidents matching ``flt`` assigned to unit ``code`` (``column`` e.g. beat_code)."""
    if column not in AREA_COLUMNS:
        raise MapQueryError(f"column: {column!r} is not one of {', '.join(AREA_COLUMNS)}")
    where, params = flt.sql()
    sql = f"SELECT count(*) FROM incidents WHERE {where} AND {column} = :code"  # noqa: S608
    return int(conn.execute(sa.text(sql), {**params, "code": code}).scalar_one())


def _cells_sql(where: str, frame_key: str | None = None) -> str:
    """Incidents binned into cells of :dx by :dy degrees, with their mean position and count.

    The subquery is fenced with OFFSET 0 so that ST_X/ST_Y run once per row, not once per use:
    on a year of incidents they are most of the cost. With ``frame_key`` (an SQL expression)
    cells are also split by it, returned as ``k``.

    The mean is sum / count rather than avg(): avg() of float8 also accumulates the sum of
    squares, which made it a third of the query; the sums are added in the same order, so the
    result is the same to the last bit.
    """
    key_inner = f"{frame_key} AS k, " if frame_key else ""
    key_outer = "k, " if frame_key else ""
    key_group = ", k" if frame_key else ""
    return (
        f"SELECT {key_outer}count(*) AS n, sum(x) / count(*) AS x, sum(y) / count(*) AS y FROM ("  # noqa: S608
        f"SELECT {key_inner}ST_X(geom) AS x, ST_Y(geom) AS y FROM incidents WHERE {where} OFFSET 0) s "
        f"GROUP BY floor(x / :dx), floor(y / :dy){key_group}"
    )


def cell_degrees(cell_m: float, lat: float) -> tuple[float, float]:
    """Degrees of longitude and latitude spanning ``cell_m`` metres at latitude ``lat``.

    Binning lon/lat directly is several times faster than transforming every incident to
    EPSG:4549 first, and across a county (< 1 degree) the cells stay square to within 1 %.
    """
    rad = np.radians(lat)
    # Metres per degree on the WGS-84 ellipsoid (standard series expansions).
    m_lat = 111132.954 - 559.822 * np.cos(2 * rad) + 1.175 * np.cos(4 * rad)
    m_lon = 111412.84 * np.cos(rad) - 93.5 * np.cos(3 * rad)
    return float(cell_m / m_lon), float(cell_m / m_lat)


def _reference_lat(conn: Conn) -> float:
    """Latitude at which cells are made square: the middle of the county (or of the grids)."""
    for layer in ("county", "grid"):
        try:
            bounds = layer_bounds(conn, layer)
        except MapQueryError:
            return REFERENCE_LAT
        if bounds is not None:
            return (bounds[1] + bounds[3]) / 2
    return REFERENCE_LAT


def heat_data(
    conn: Conn,
    flt: IncidentFilter,
    threshold: int,
    *,
    cell_m: float = DEFAULT_CELL_M,
    display_crs: str = "wgs84",
) -> HeatData:
    """Heat points for ``flt``: raw incidents up to ``threshold``, weighted cells above it."""
    if threshold < 1:
        raise MapQueryError(f"threshold: {threshold} must be >= 1")
    if cell_m <= 0:
        raise MapQueryError(f"cell_m: {cell_m} must be > 0")
    check_display_crs(display_crs)
    where, params = flt.sql()
    found = count_incidents(conn, flt, limit=threshold)
    if found <= threshold:
        rows = conn.execute(
            sa.text(f"SELECT ST_X(geom) AS x, ST_Y(geom) AS y FROM incidents WHERE {where}"),  # noqa: S608
            params,
        ).all()
        x, y = _float_columns(rows, 2)
        lon, lat = _display(x, y, display_crs)
        points = np.round(np.column_stack([lat, lon]), COORD_DECIMALS).tolist()
        return HeatData(points, len(points), False)
    dx, dy = cell_degrees(cell_m, _reference_lat(conn))
    rows = conn.execute(sa.text(_cells_sql(where)), {**params, "dx": dx, "dy": dy}).all()
    n, x, y = _float_columns(rows, 3)
    lon, lat = _display(x, y, display_crs)
    # Four decimals (~10 m) are plenty for cells of 100 m, and keep the page a fifth smaller.
    weights: list[int] = n.astype(np.int64).tolist()
    points = [[a, b, w] for a, b, w in zip(_rounded(lat, 4), _rounded(lon, 4), weights, strict=True)]
    return HeatData(points, int(n.sum()), True, cell_m)


@dataclass
class HeatFrames:
    """Frames for HeatMapWithTime: ``frames[i]`` is a list of ``[lat, lon, weight 0..1]``."""

    labels: list[str]
    frames: list[list[list[float]]]
    total: int
    cell_m: float


def heat_frames(
    conn: Conn,
    flt: IncidentFilter,
    by: str,
    *,
    budget: int = 60_000,
    cell_m: float = DEFAULT_CELL_M,
    display_crs: str = "wgs84",
    max_days: int = 92,
) -> HeatFrames:
    """Incident heat per hour of day (``by="hour"``, 24 frames) or per day (``by="day"``).

    Cells start at ``cell_m`` and double until all frames together hold at most ``budget``
    points, so a long period still makes a small page. Weights are scaled to 0..1 by the 99th
    percentile over all frames, so that frames compare with each other.
    """
    if by not in ("hour", "day"):
        raise MapQueryError(f"by: {by!r} is not 'hour' or 'day'")
    check_display_crs(display_crs)
    days = (flt.end - flt.start).days + 1
    if by == "day" and days > max_days:
        raise MapQueryError(f"from/to: {days} days is more than {max_days} daily frames; pick a shorter period")
    where, params = flt.sql()
    if by == "hour":
        key = "extract(hour FROM reported_at AT TIME ZONE 'Asia/Shanghai')::int"
        labels = [f"{h:02d}:00" for h in range(24)]
    else:
        key = f"(reported_at AT TIME ZONE 'Asia/Shanghai')::date - DATE '{flt.start.astimezone(LOCAL_TZ).date()}'"
        first = flt.start.astimezone(LOCAL_TZ).date()
        last = (flt.end.astimezone(LOCAL_TZ) - dt.timedelta(microseconds=1)).date()
        labels = [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    dx, dy = cell_degrees(cell_m, _reference_lat(conn))
    rows = conn.execute(sa.text(_cells_sql(where, key)), {**params, "dx": dx, "dy": dy}).all()
    frame, n, x, y = _float_columns(rows, 4)
    k = frame.astype(np.int64)
    size = cell_m
    while len(k) > budget:
        size *= 2
        k, n, x, y = _coarsen(k, n, x, y, dx * size / cell_m, dy * size / cell_m)
    lon, lat = _display(x, y, display_crs)
    scale = float(np.percentile(n, 99)) if len(n) else 1.0
    weights = np.round(np.minimum(n / max(scale, 1.0), 1.0), 3)
    frames: list[list[list[float]]] = [[] for _ in labels]
    for f, a, b, w in zip(k, _rounded(lat), _rounded(lon), weights, strict=True):
        if 0 <= f < len(frames):
            frames[int(f)].append([a, b, float(w)])
    return HeatFrames(labels, frames, int(n.sum()), size)


def _coarsen(
    k: npt.NDArray[np.int64], n: FloatArray, x: FloatArray, y: FloatArray, sx: float, sy: float
) -> tuple[npt.NDArray[np.int64], FloatArray, FloatArray, FloatArray]:
    """Merge weighted cells into cells of ``sx`` by ``sy`` degrees, keeping weighted mean positions."""
    keys = np.column_stack([k, np.floor(x / sx), np.floor(y / sy)])
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    total: FloatArray = np.bincount(inverse, weights=n).astype(np.float64)
    mx = np.bincount(inverse, weights=n * x) / total
    my = np.bincount(inverse, weights=n * y) / total
    frame: npt.NDArray[np.int64] = uniq[:, 0].astype(np.int64)
    return frame, total, mx, my


# --- points: overdue and live incidents, buildings, hazards -----------------------------------

_INCIDENT_COLUMNS = (
    "id, category, source, status, reported_at, deadline_at, escalation_level, address_text, "
    "reporter_name, reporter_phone, grid_code, ST_X(geom) AS lon, ST_Y(geom) AS lat"
)


def overdue_incidents(
    conn: Conn,
    flt: IncidentFilter | None = None,
    *,
    now: dt.datetime | None = None,
    grid_code: str | None = None,
    limit: int = 2000,
    role: str | None = None,
    display_crs: str = "wgs84",
) -> dict[str, Any]:
    """Overdue incidents (see OVERDUE_SQL), oldest first, whatever their report time.

    The window of ``flt`` is ignored on purpose: an incident reported last month and still open
    is exactly what the command centre must see today. Category and source filters apply.
    """
    params: dict[str, Any] = {"now": now or dt.datetime.now(dt.UTC), "open": list(OPEN_STATUSES), "lim": limit}
    where = [OVERDUE_SQL]
    if flt is not None:
        for column, values in (("category", flt.categories), ("source", flt.sources)):
            if values:
                where.append(f"{column} = ANY(:{column})")
                params[column] = list(values)
    if grid_code is not None:
        where.append("grid_code = :grid")
        params["grid"] = grid_code
    # The filter runs in a fenced subquery (OFFSET 0) and is sorted afterwards: left to itself the
    # planner walks the whole reported_at index hoping to meet `lim` overdue rows early, reading
    # every incident (150 ms on a year of them) to return a couple of thousand. id breaks ties so
    # that the order, and the page, do not depend on the plan.
    rows = conn.execute(
        sa.text(
            f"SELECT {_INCIDENT_COLUMNS} FROM (SELECT * FROM incidents WHERE {' AND '.join(where)} "  # noqa: S608
            "OFFSET 0) AS incidents ORDER BY reported_at, id LIMIT :lim"
        ),
        params,
    )
    return _point_collection(list(rows.keys()), rows.all(), display_crs, role)


def count_overdue(conn: Conn, flt: IncidentFilter | None = None, *, now: dt.datetime | None = None) -> int:
    """How many open incidents are past their deadline (category/source filters apply)."""
    params: dict[str, Any] = {"now": now or dt.datetime.now(dt.UTC), "open": list(OPEN_STATUSES)}
    where = [OVERDUE_SQL]
    if flt is not None:
        for column, values in (("category", flt.categories), ("source", flt.sources)):
            if values:
                where.append(f"{column} = ANY(:{column})")
                params[column] = list(values)
    sql = f"SELECT count(*) FROM incidents WHERE {' AND '.join(where)}"  # noqa: S608
    return int(conn.execute(sa.text(sql), params).scalar_one())


def recent_incidents(
    conn: Conn,
    flt: IncidentFilter,
    *,
    grid_code: str | None = None,
    created_since: dt.datetime | None = None,
    limit: int = 500,
    role: str | None = None,
    display_crs: str = "wgs84",
) -> dict[str, Any]:
    """The latest incidents matching ``flt`` (and received since ``created_since``), newest first."""
    where, params = flt.sql()
    if grid_code is not None:
        where += " AND grid_code = :grid"
        params["grid"] = grid_code
    if created_since is not None:
        where += " AND created_at >= :since"
        params["since"] = created_since
    rows = conn.execute(
        sa.text(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE {where} "  # noqa: S608
            "ORDER BY reported_at DESC, id DESC LIMIT :lim"
        ),
        {**params, "lim": limit},
    )
    return _point_collection(list(rows.keys()), rows.all(), display_crs, role)


RISK_LEVELS = ("high", "medium", "low")


def rental_buildings(
    conn: Conn,
    *,
    risk_levels: Sequence[str] = (),
    grid_code: str | None = None,
    role: str | None = None,
    display_crs: str = "wgs84",
    limit: int = 100_000,
) -> dict[str, Any]:
    """Rental buildings (出租房屋) with inspection results; landlord details masked per ``role``."""
    bad = [r for r in risk_levels if r not in RISK_LEVELS]
    if bad:
        raise MapQueryError(f"risk: {bad[0]!r} is not one of {', '.join(RISK_LEVELS)}")
    where: list[str] = ["is_rental"]
    params: dict[str, Any] = {"lim": limit}
    if risk_levels:
        where.append("risk_level = ANY(:risk)")
        params["risk"] = list(risk_levels)
    if grid_code is not None:
        where.append("grid_code = :grid")
        params["grid"] = grid_code
    rows = conn.execute(
        sa.text(
            "SELECT id, code, name, risk_level, tenants, rooms, escape_window, ebike_charging, wiring, "  # noqa: S608
            "last_inspected_at, landlord_name, landlord_phone, grid_code, ST_X(geom) AS lon, ST_Y(geom) AS lat "
            f"FROM buildings WHERE {' AND '.join(where)} ORDER BY id LIMIT :lim"
        ),
        params,
    )
    return _point_collection(list(rows.keys()), rows.all(), display_crs, role)


def hazard_points(
    conn: Conn,
    *,
    categories: Sequence[str] = (),
    statuses: Sequence[str] = (),
    grid_code: str | None = None,
    display_crs: str = "wgs84",
    limit: int = 50_000,
) -> dict[str, Any]:
    """Hazard points (隐患点) by category and status."""
    where: list[str] = ["true"]
    params: dict[str, Any] = {"lim": limit}
    for column, values in (("category", categories), ("status", statuses)):
        if values:
            where.append(f"{column} = ANY(:{column})")
            params[column] = list(_values(column if column != "status" else "hazard status", values))
    if grid_code is not None:
        where.append("grid_code = :grid")
        params["grid"] = grid_code
    rows = conn.execute(
        sa.text(
            "SELECT id, category, severity, status, description, found_at, rectify_by, grid_code, "  # noqa: S608
            f"ST_X(geom) AS lon, ST_Y(geom) AS lat FROM hazards WHERE {' AND '.join(where)} ORDER BY id LIMIT :lim"
        ),
        params,
    )
    return _point_collection(list(rows.keys()), rows.all(), display_crs, None)


def hazard_categories(conn: Conn) -> list[str]:
    return list(conn.execute(sa.text("SELECT DISTINCT category FROM hazards ORDER BY 1")).scalars())


def incident_choices() -> dict[str, list[str]]:
    """Categories and sources for the filter form: those the intake rules accept.

    Taken from the rules rather than the table: a DISTINCT over a year of incidents costs a
    full scan on every page view, and intake refuses any other value anyway.
    """
    return {"category": list(incident_rules.CATEGORIES), "source": list(incident_rules.SOURCES)}


# --- per-grid figures ---------------------------------------------------------------------------


def grid_stats(
    conn: Conn,
    flt: IncidentFilter,
    *,
    codes: Sequence[str] | None = None,
    now: dt.datetime | None = None,
    role: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Per grid: incidents in the window (total, open, closed), overdue now, rental buildings,
    open hazards, and the staff (phones masked per ``role``)."""
    where, params = flt.sql()
    params |= {"now": now or dt.datetime.now(dt.UTC), "open": list(OPEN_STATUSES), "done": list(DONE_STATUSES)}
    code_filter = ""
    if codes is not None:
        code_filter = " AND grid_code = ANY(:codes)"
        params["codes"] = list(codes)
    out: dict[str, dict[str, Any]] = {}

    def slot(code: str) -> dict[str, Any]:
        return out.setdefault(
            code,
            {"incidents": 0, "open": 0, "done": 0, "overdue": 0, "rentals": 0, "hazards_open": 0, "staff": []},
        )

    for r in conn.execute(
        sa.text(
            "SELECT grid_code, count(*) AS n, count(*) FILTER (WHERE status = ANY(:open)) AS open, "  # noqa: S608
            "count(*) FILTER (WHERE status = ANY(:done)) AS done "
            f"FROM incidents WHERE {where}{code_filter} AND grid_code IS NOT NULL GROUP BY grid_code"
        ),
        params,
    ):
        slot(r.grid_code).update(incidents=r.n, open=r.open, done=r.done)
    for r in conn.execute(
        sa.text(
            f"SELECT grid_code, count(*) AS n FROM incidents WHERE {OVERDUE_SQL}"  # noqa: S608
            f"{code_filter} AND grid_code IS NOT NULL GROUP BY grid_code"
        ),
        params,
    ):
        slot(r.grid_code)["overdue"] = r.n
    for r in conn.execute(
        sa.text(
            "SELECT grid_code, count(*) AS n FROM buildings WHERE is_rental"  # noqa: S608
            f"{code_filter} AND grid_code IS NOT NULL GROUP BY grid_code"
        ),
        params,
    ):
        slot(r.grid_code)["rentals"] = r.n
    for r in conn.execute(
        sa.text(
            "SELECT grid_code, count(*) AS n FROM hazards WHERE status <> 'rectified'"  # noqa: S608
            f"{code_filter} AND grid_code IS NOT NULL GROUP BY grid_code"
        ),
        params,
    ):
        slot(r.grid_code)["hazards_open"] = r.n
    staff = conn.execute(
        sa.text(
            "SELECT grid_code, role, name, phone FROM staff WHERE active"  # noqa: S608
            f"{code_filter} ORDER BY grid_code, role, id"
        ),
        params,
    ).mappings()
    for person in staff:
        entry = {k: person[k] for k in ("role", "name", "phone")}
        slot(person["grid_code"])["staff"].append(mask_staff(entry, role_sees_personal_data(role)))
    return out


def weekly_trend(conn: Conn, flt: IncidentFilter, grid_code: str) -> list[dict[str, Any]]:
    """Incidents per ISO week (local time) and category in one grid, with how many are done."""
    where, params = flt.sql()
    rows = conn.execute(
        sa.text(
            "SELECT date_trunc('week', reported_at AT TIME ZONE 'Asia/Shanghai')::date AS week, category, "  # noqa: S608
            "count(*) AS n, count(*) FILTER (WHERE status = ANY(:done)) AS done "
            f"FROM incidents WHERE {where} AND grid_code = :grid GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        {**params, "grid": grid_code, "done": list(DONE_STATUSES)},
    ).mappings()
    return [{"week": r["week"], "category": r["category"], "count": r["n"], "done": r["done"]} for r in rows]


def layer_bounds(conn: Conn, layer: str, generation: int | None = None) -> tuple[float, float, float, float] | None:
    """(min lon, min lat, max lon, max lat) of a whole layer, or None when it is empty."""
    row = conn.execute(
        sa.text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "  # noqa: S608
            f"(SELECT ST_Extent(geom) AS e FROM areas WHERE layer = :layer AND {IN_GENERATION}) s"
        ),
        {"layer": check_layer(layer), "g": _resolve_generation(conn, generation)},
    ).one()
    return None if row[0] is None else (float(row[0]), float(row[1]), float(row[2]), float(row[3]))
