"""GeoJSON out of query rows: display datum, rounding to ~1 m, masking of personal fields."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gis.core.privacy import (
    field_masker,
    role_sees_personal_data,
)
from gis.core.vocab import COUNTY_TZ
from gis.outputs.mapfilter import COORD_DECIMALS, MapQueryError
from gis.spatial import crs

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
        return value.astimezone(COUNTY_TZ).isoformat(timespec="minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


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
