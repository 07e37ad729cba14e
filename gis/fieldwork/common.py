"""What the field-work modules share: their errors and the checks of raw input values.

Input errors are ``IncidentInputError`` subclasses, so the API answers them like every other bad
field: 422 with ``loc`` naming the field (``results[2].code``) and a message naming the value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from gis.core import timeparse
from gis.incidents.errors import IncidentInputError
from gis.incidents.intake import number
from gis.spatial import crs as gcrs

# A finding cannot predate the county's digital records, nor lie ahead of the server's clock by
# more than a phone's clock skew.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
CLOCK_SKEW = dt.timedelta(minutes=5)


class FieldworkInputError(IncidentInputError):
    """Bad field-work input; ``field`` names it (a path such as ``results[1].code``)."""


class NotFound(LookupError):
    """A row that does not exist, or lies outside the caller's scope (the same answer: 404)."""

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"no {kind} {key}")
        self.kind = kind
        self.key = key


def text(data: Mapping[str, Any], field: str, max_length: int, *, label: str | None = None) -> str | None:
    """An optional text value, stripped; None when absent or blank."""
    value = data.get(field)
    name = label or field
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldworkInputError(name, f"must be text, got {type(value).__name__}")
    value = value.strip()
    if "\x00" in value:  # PostgreSQL text cannot hold NUL
        raise FieldworkInputError(name, "contains a NUL character")
    if len(value) > max_length:
        raise FieldworkInputError(name, f"is {len(value)} characters long; at most {max_length} allowed")
    return value or None


def choice(data: Mapping[str, Any], field: str, accepted: tuple[str, ...], *, label: str | None = None) -> str | None:
    """An optional value from a vocabulary."""
    value = data.get(field)
    if value is None:
        return None
    if value not in accepted:
        raise FieldworkInputError(label or field, f"{str(value)[:60]!r} is not one of {', '.join(accepted)}")
    return str(value)


def instant(
    data: Mapping[str, Any], field: str, now: dt.datetime, *, label: str | None = None, future_ok: bool = False
) -> dt.datetime | None:
    """An optional time by the one time rule (no offset = county time); not before 2000 and, unless
    ``future_ok`` (deadlines), not ahead of ``now`` by more than a clock skew."""
    value = data.get(field)
    name = label or field
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise FieldworkInputError(name, f"{value.isoformat()} has no time zone")
        when = value
    else:
        try:
            when = timeparse.parse_time(value, bound="instant", field=name)
        except timeparse.TimeValueError as exc:
            raise FieldworkInputError(name, exc.message.removeprefix(f"{name}: ")) from None
    if when < EARLIEST:
        raise FieldworkInputError(name, f"{when.isoformat()} is before {EARLIEST:%Y}")
    if not future_ok and when > now + CLOCK_SKEW:
        raise FieldworkInputError(name, f"{when.isoformat()} is in the future (server time {now.isoformat()})")
    return when


def position(data: Mapping[str, Any]) -> tuple[float, float] | None:
    """The optional ``lon``/``lat`` (in ``crs``: wgs84, gcj02 or bd09, like every input) as WGS-84."""
    raw_lon, raw_lat = data.get("lon"), data.get("lat")
    if raw_lon is None and raw_lat is None:
        return None
    if raw_lon is None or raw_lat is None:
        raise FieldworkInputError("lon" if raw_lon is None else "lat", "missing; give lon and lat together")
    lon, lat = number("lon", raw_lon, FieldworkInputError), number("lat", raw_lat, FieldworkInputError)
    if abs(lat) > 90:
        raise FieldworkInputError("lat", f"{lat} is out of range [-90, 90]")
    if abs(lon) > 180:
        raise FieldworkInputError("lon", f"{lon} is out of range [-180, 180]")
    try:
        crs = gcrs.parse_crs(data.get("crs") or "wgs84")
    except gcrs.UnknownCRSError as exc:
        raise FieldworkInputError("crs", str(exc)) from None
    wgs_lon, wgs_lat = gcrs.to_wgs84(lon, lat, crs)
    return float(wgs_lon), float(wgs_lat)


def as_aware(value: Any) -> Any:
    """A JSON time string (what ``json_build_object`` gives) as an aware datetime; other values unchanged."""
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value
