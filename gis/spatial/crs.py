"""Coordinate systems at the edge of the service, and metric helpers.

Phone apps in China rarely report WGS-84.  Amap, WeChat and Tencent maps give
GCJ-02 (the state-mandated obfuscated datum) and Baidu gives BD-09, which is a
further offset of GCJ-02.  Everything inside gridmap is stored in WGS-84, so
coordinates are converted once, where they enter or leave the service.

Two facts shape the code:

* GCJ-02 is only defined inside China.  Following the common convention, the
  offset is applied only to points inside a rough bounding box of China
  (lon 72.004..137.8347, lat 0.8293..55.8271); outside that box every
  WGS-84 <-> GCJ-02 conversion is the identity.  The box is coarse (it
  contains parts of neighbouring countries), which is accepted practice.
* GCJ-02 has no closed-form inverse, so ``gcj02_to_wgs84`` iterates the
  forward formula until every point reproduces its input to within
  ``INVERSE_TOLERANCE_M`` metres.  BD-09 does have a published closed-form
  inverse, but it is only approximate, so it is refined the same way.

The BD-09 offset is applied everywhere (it is a plain formula on top of
GCJ-02, with no bounding box).

All conversion functions accept Python floats or numpy arrays of any shape
(broadcast against each other) and return floats for scalar input, arrays
otherwise.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

if TYPE_CHECKING:
    import pyproj

FloatArray = npt.NDArray[np.float64]
Coord = TypeVar("Coord", float, FloatArray)
GeomT = TypeVar("GeomT", bound=BaseGeometry)
ArrayFn = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]

# Krasovsky 1940 ellipsoid, as used by the published GCJ-02 formulas.
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0

_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)

INVERSE_TOLERANCE_M = 0.01
_MAX_ITERATIONS = 30
# Metres per degree of latitude on a sphere of the WGS-84 mean radius; only
# used to judge convergence of the inverses, where 1 % error is irrelevant.
_METRES_PER_DEGREE = 6371008.8 * math.pi / 180.0

METRIC_EPSG = 4549  # CGCS2000 / 3-degree Gauss-Kruger CM 120E; covers Jiashan
_WGS84_EPSG = 4326


class UnknownCRSError(ValueError):
    """The caller named a coordinate system we do not accept."""


class CoordinateError(ValueError):
    """A longitude or latitude is not a finite number in range."""


class InputCRS(enum.StrEnum):
    """Coordinate systems a client may send or ask for.

    A ``str`` subclass, so members compare equal to (and format as) their values.
    """

    wgs84 = "wgs84"
    gcj02 = "gcj02"
    bd09 = "bd09"


_CRS_ALIASES: dict[str, InputCRS] = {
    "wgs84": InputCRS.wgs84,
    "wgs-84": InputCRS.wgs84,
    "epsg:4326": InputCRS.wgs84,
    "4326": InputCRS.wgs84,
    "gcj02": InputCRS.gcj02,
    "gcj-02": InputCRS.gcj02,
    "amap": InputCRS.gcj02,
    "bd09": InputCRS.bd09,
    "bd-09": InputCRS.bd09,
    "baidu": InputCRS.bd09,
}


def parse_crs(value: str | InputCRS) -> InputCRS:
    """Map a user-supplied name (case-insensitive alias) to an ``InputCRS``."""
    if isinstance(value, InputCRS):
        return value
    if not isinstance(value, str):
        raise UnknownCRSError(f"coordinate system must be a string, got {type(value).__name__}: {value!r}")
    found = _CRS_ALIASES.get(value.strip().lower())
    if found is None:
        accepted = ", ".join(sorted(_CRS_ALIASES))
        raise UnknownCRSError(f"unknown coordinate system {value!r}; accepted (case-insensitive): {accepted}")
    return found


# --- plumbing: scalars in, scalars out; arrays in, arrays out ---------------


def _apply(fn: ArrayFn, lon: Any, lat: Any) -> tuple[Any, Any]:
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    out_x, out_y = fn(x, y)
    if scalar:
        return float(out_x), float(out_y)
    return out_x, out_y


# --- GCJ-02 ----------------------------------------------------------------


def _in_china(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.bool_]:
    # NaN compares False, so non-finite input is left alone (identity).
    return (lon >= _CHINA_LON[0]) & (lon <= _CHINA_LON[1]) & (lat >= _CHINA_LAT[0]) & (lat <= _CHINA_LAT[1])


def _gcj_shift_lat(x: FloatArray, y: FloatArray) -> FloatArray:
    pi = math.pi
    out = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y
    out = out + 0.2 * np.sqrt(np.abs(x))
    out = out + (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    out = out + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    out = out + (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    return out


def _gcj_shift_lon(x: FloatArray, y: FloatArray) -> FloatArray:
    pi = math.pi
    out = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y
    out = out + 0.1 * np.sqrt(np.abs(x))
    out = out + (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    out = out + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    out = out + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    return out


def _wgs_to_gcj(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    dlat = _gcj_shift_lat(lon - 105.0, lat - 35.0)
    dlon = _gcj_shift_lon(lon - 105.0, lat - 35.0)
    rad_lat = lat / 180.0 * math.pi
    magic = 1.0 - _KRASOVSKY_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_KRASOVSKY_A / sqrt_magic * np.cos(rad_lat) * math.pi)
    inside = _in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def _residual_m(dlon: FloatArray, dlat: FloatArray, lat: FloatArray) -> FloatArray:
    east = dlon * np.cos(np.radians(lat))
    return np.hypot(east, dlat) * _METRES_PER_DEGREE


def _invert(
    forward: ArrayFn,
    target_lon: FloatArray,
    target_lat: FloatArray,
    start_lon: FloatArray,
    start_lat: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Solve forward(lon, lat) == target by fixed-point iteration.

    The offsets vary slowly with position, so subtracting the current misfit
    converges geometrically (a handful of steps).  Points that cannot be
    solved exactly -- GCJ-02 jumps at the edge of the China box, so a few
    targets there have no preimage -- get the best iterate seen.
    """
    lon, lat = start_lon.copy(), start_lat.copy()
    best_lon, best_lat = lon.copy(), lat.copy()
    # Non-finite targets can never be met; mark them solved up front.
    solvable = np.isfinite(target_lon) & np.isfinite(target_lat)
    best_err = np.where(solvable, np.inf, 0.0)
    for _ in range(_MAX_ITERATIONS):
        got_lon, got_lat = forward(lon, lat)
        miss_lon, miss_lat = got_lon - target_lon, got_lat - target_lat
        err = _residual_m(miss_lon, miss_lat, target_lat)
        better = err < best_err
        best_lon = np.where(better, lon, best_lon)
        best_lat = np.where(better, lat, best_lat)
        best_err = np.where(better, err, best_err)
        if not np.any(best_err > INVERSE_TOLERANCE_M):
            break
        lon, lat = lon - miss_lon, lat - miss_lat
    return best_lon, best_lat


def _gcj_to_wgs(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _invert(_wgs_to_gcj, lon, lat, lon, lat)


# --- BD-09 -----------------------------------------------------------------


def _gcj_to_bd(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_to_gcj_closed_form(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    x, y = lon - 0.0065, lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _bd_to_gcj(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    start_lon, start_lat = _bd_to_gcj_closed_form(lon, lat)
    return _invert(_gcj_to_bd, lon, lat, start_lon, start_lat)


def _wgs_to_bd(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _gcj_to_bd(*_wgs_to_gcj(lon, lat))


def _bd_to_wgs(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _gcj_to_wgs(*_bd_to_gcj(lon, lat))


def _identity(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return lon.copy(), lat.copy()


# --- public point conversions ----------------------------------------------


def wgs84_to_gcj02(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """WGS-84 -> GCJ-02 (identity outside the China box)."""
    return _apply(_wgs_to_gcj, lon, lat)


def gcj02_to_wgs84(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """GCJ-02 -> WGS-84, iterated to within ``INVERSE_TOLERANCE_M`` metres."""
    return _apply(_gcj_to_wgs, lon, lat)


def gcj02_to_bd09(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """GCJ-02 -> BD-09."""
    return _apply(_gcj_to_bd, lon, lat)


def bd09_to_gcj02(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """BD-09 -> GCJ-02 (closed form refined to ``INVERSE_TOLERANCE_M``)."""
    return _apply(_bd_to_gcj, lon, lat)


def wgs84_to_bd09(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """WGS-84 -> BD-09 (via GCJ-02)."""
    return _apply(_wgs_to_bd, lon, lat)


def bd09_to_wgs84(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """BD-09 -> WGS-84 (via GCJ-02)."""
    return _apply(_bd_to_wgs, lon, lat)


_TO_WGS84: dict[InputCRS, ArrayFn] = {
    InputCRS.wgs84: _identity,
    InputCRS.gcj02: _gcj_to_wgs,
    InputCRS.bd09: _bd_to_wgs,
}
_FROM_WGS84: dict[InputCRS, ArrayFn] = {
    InputCRS.wgs84: _identity,
    InputCRS.gcj02: _wgs_to_gcj,
    InputCRS.bd09: _wgs_to_bd,
}


def to_wgs84(lon: Coord, lat: Coord, crs: InputCRS | str) -> tuple[Coord, Coord]:
    """Convert coordinates given in ``crs`` to WGS-84."""
    return _apply(_TO_WGS84[parse_crs(crs)], lon, lat)


def from_wgs84(lon: Coord, lat: Coord, crs: InputCRS | str) -> tuple[Coord, Coord]:
    """Convert WGS-84 coordinates to ``crs``."""
    return _apply(_FROM_WGS84[parse_crs(crs)], lon, lat)


# --- geometries --------------------------------------------------------------


def transform_geometry(geom: GeomT, fn: ArrayFn) -> GeomT:
    """Apply a vectorised (lon, lat) -> (lon, lat) function to every vertex.

    Z values, where present, are carried through unchanged.
    """

    def adapter(coords: FloatArray) -> FloatArray:
        out = coords.copy()
        out[:, 0], out[:, 1] = fn(coords[:, 0], coords[:, 1])
        return out

    result: GeomT = shapely.transform(geom, adapter, include_z=None)
    return result


def geometry_to_wgs84(geom: GeomT, crs: InputCRS | str) -> GeomT:
    """Convert a shapely geometry given in ``crs`` to WGS-84."""
    parsed = parse_crs(crs)
    if parsed is InputCRS.wgs84:
        return geom
    return transform_geometry(geom, _TO_WGS84[parsed])


def geometry_from_wgs84(geom: GeomT, crs: InputCRS | str) -> GeomT:
    """Convert a WGS-84 shapely geometry to ``crs``."""
    parsed = parse_crs(crs)
    if parsed is InputCRS.wgs84:
        return geom
    return transform_geometry(geom, _FROM_WGS84[parsed])


# --- metric work -------------------------------------------------------------


@lru_cache(maxsize=1)
def _metric_transformers() -> tuple[pyproj.Transformer, pyproj.Transformer]:
    # Building a Transformer reads proj.db; do it once per process. pyproj is imported here, not
    # at the top: the datum shifts above need only numpy, and pyproj adds to every CLI start.
    import pyproj

    forward = pyproj.Transformer.from_crs(_WGS84_EPSG, METRIC_EPSG, always_xy=True)
    inverse = pyproj.Transformer.from_crs(METRIC_EPSG, _WGS84_EPSG, always_xy=True)
    return forward, inverse


@lru_cache(maxsize=1)
def _geod() -> pyproj.Geod:
    import pyproj

    return pyproj.Geod(ellps="WGS84")


def to_metric(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """WGS-84 lon/lat -> EPSG:4549 easting/northing in metres."""
    forward, _ = _metric_transformers()
    return _apply(lambda x, y: forward.transform(x, y), lon, lat)


def from_metric(x: Coord, y: Coord) -> tuple[Coord, Coord]:
    """EPSG:4549 easting/northing in metres -> WGS-84 lon/lat."""
    _, inverse = _metric_transformers()
    return _apply(lambda e, n: inverse.transform(e, n), x, y)


def metres_between(lon1: Coord, lat1: Coord, lon2: Coord, lat2: Coord) -> Coord:
    """Geodesic distance on the WGS-84 ellipsoid, element-wise."""
    scalar = all(np.ndim(v) == 0 for v in (lon1, lat1, lon2, lat2))
    a, b, c, d = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (lon1, lat1, lon2, lat2)))
    _, _, dist = _geod().inv(a, b, c, d)
    distance: Any = float(dist) if scalar else np.asarray(dist, dtype=np.float64)
    return distance


# --- validation --------------------------------------------------------------


def _check_one(name: str, value: Any, limit: float) -> None:
    arr = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(arr) | (np.abs(arr) > limit)
    if not np.any(bad):
        return
    if arr.ndim == 0:
        where, item = name, float(arr)
    else:
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        shown = index[0] if len(index) == 1 else index
        where, item = f"{name}[{shown}]", float(arr[index])
    if not math.isfinite(item):
        raise CoordinateError(f"{where}={item} is not a finite number")
    raise CoordinateError(f"{where}={item} is out of range [-{limit:g}, {limit:g}]")


def check_lonlat(lon: Any, lat: Any) -> None:
    """Raise ``CoordinateError`` naming the first bad longitude or latitude.

    Accepts scalars or arrays; longitudes must lie in [-180, 180] and
    latitudes in [-90, 90], and both must be finite.
    """
    for name, value in (("lon", lon), ("lat", lat)):
        try:
            np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise CoordinateError(f"{name}={value!r} is not a number") from None
    _check_one("lon", lon, 180.0)
    _check_one("lat", lat, 90.0)
