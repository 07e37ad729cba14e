"""Incident heat: counts, and weighted cells of a fine square grid (100 m) at the mean position of
their incidents, per window or per time frame.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from gis.core.vocab import ASSIGNED_LAYERS, COUNTY_TZ, COUNTY_TZ_NAME
from gis.incidents.filter import IncidentFilter
from gis.outputs.features import FloatArray, _display, _float_columns, _rounded, cell_degrees, check_display_crs
from gis.outputs.mapfilter import COORD_DECIMALS, DEFAULT_CELL_M, REFERENCE_LAT, MapQueryError
from gis.outputs.maplayers import layer_bounds
from gis.spatial.areas import Conn


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
    where, params = flt.where("")
    if limit is None:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM incidents WHERE {where}"), params).scalar_one())  # noqa: S608
    sql = f"SELECT count(*) FROM (SELECT 1 FROM incidents WHERE {where} LIMIT :lim) s"  # noqa: S608
    return int(conn.execute(sa.text(sql), {**params, "lim": limit + 1}).scalar_one())


def count_in_area(conn: Conn, flt: IncidentFilter, column: str, code: str) -> int:
    """Incidents matching ``flt`` assigned to unit ``code`` (``column`` e.g. beat_code)."""
    layer = column.removesuffix("_code")
    if layer not in ASSIGNED_LAYERS or column == layer:
        raise MapQueryError(f"column: {column!r} is not one of {', '.join(f'{a}_code' for a in ASSIGNED_LAYERS)}")
    where, params = flt.replace(**{layer: (code,)}).where("")
    return int(conn.execute(sa.text(f"SELECT count(*) FROM incidents WHERE {where}"), params).scalar_one())  # noqa: S608


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
    where, params = flt.where("")
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
    if flt.start is None or flt.end is None:
        raise MapQueryError("from/to: heat frames need a report window")
    days = (flt.end - flt.start).days + 1
    if by == "day" and days > max_days:
        raise MapQueryError(f"from/to: {days} days is more than {max_days} daily frames; pick a shorter period")
    where, params = flt.where("")
    if by == "hour":
        key = f"extract(hour FROM reported_at AT TIME ZONE '{COUNTY_TZ_NAME}')::int"
        labels = [f"{h:02d}:00" for h in range(24)]
    else:
        first = flt.start.astimezone(COUNTY_TZ).date()
        key = f"(reported_at AT TIME ZONE '{COUNTY_TZ_NAME}')::date - DATE '{first}'"
        last = (flt.end.astimezone(COUNTY_TZ) - dt.timedelta(microseconds=1)).date()
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
