"""The parameters of a point lookup: lon/lat/crs and ``as_of`` parsed and range-checked, each error
naming its parameter (``LookupInputError``); used by gis.spatial.lookup and the API's lookup routes."""

from __future__ import annotations

import datetime as dt
import math

from gis.core.timeparse import TimeValueError, parse_time
from gis.spatial.crs import CoordinateError, InputCRS, check_lonlat, parse_crs


class LookupInputError(ValueError):
    """A lookup parameter is unusable; ``param`` names it (lon, lat, crs, as_of, address)."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.reason = message


def parse_as_of(text: str | dt.date | None) -> dt.datetime | None:
    """``as_of`` as an aware instant by the one time rule (``gis.core.timeparse``: a bare date means
    the end of that day in county time, so a generation published during the day counts as in
    force "at that date"); None when absent or empty. Errors are ``LookupInputError("as_of")``."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    try:
        return parse_time(text, bound="instant", field="as_of")
    except TimeValueError as exc:
        raise LookupInputError("as_of", exc.message.removeprefix("as_of: ")) from None


def parse_point(lon: object, lat: object, crs: object = "wgs84") -> tuple[float, float, InputCRS]:
    """Validate raw lon/lat/crs values; the error names the parameter. Returns floats and the CRS."""
    values = []
    for name, raw in (("lon", lon), ("lat", lat)):
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raise LookupInputError(name, "is required")
        if isinstance(raw, bool):
            raise LookupInputError(name, f"{raw!r} is not a number")
        try:
            value = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise LookupInputError(name, f"{raw!r} is not a number") from None
        if not math.isfinite(value):
            raise LookupInputError(name, f"{raw!r} is not a finite number")
        values.append(value)
    try:
        parsed_crs = parse_crs(crs if crs is not None else "wgs84")  # type: ignore[arg-type]
    except ValueError as exc:
        raise LookupInputError("crs", str(exc)) from None
    return values[0], values[1], parsed_crs


def range_error(lon: float, lat: float) -> LookupInputError | None:
    """The out-of-range error for a point, or None when lon is in [-180, 180] and lat in [-90, 90]."""
    if -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0:
        return None  # the common case, without numpy
    try:
        check_lonlat(lon, lat)
    except CoordinateError as exc:
        param = "lat" if str(exc).startswith("lat") else "lon"
        return LookupInputError(param, str(exc))
    return None
