"""Reading field-work JSON values one field at a time, each error naming the field with its row or
point index (``visits[2].at``): phones send batches, and the worker must learn which row to fix."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from gis.core.timeparse import TimeValueError, parse_time
from gis.fieldwork.errors import FieldworkInputError
from gis.spatial.crs import InputCRS, parse_crs

# A phone's clock may run a little ahead of the server's: times up to this far ahead are accepted.
CLOCK_SKEW = dt.timedelta(minutes=2)
MAX_TEXT = 2000
MAX_LINKS = 50


def require_object(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FieldworkInputError(field, value, f"must be a JSON object, not {type(value).__name__}")
    return value


def check_keys(row: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in row:
        if key not in allowed:
            raise FieldworkInputError(
                f"{where}.{key}", row[key], f"is not a field; accepted: {', '.join(sorted(allowed))}"
            )


def integer(row: dict[str, Any], key: str, where: str, *, required: bool = False) -> int | None:
    value = row.get(key)
    if value is None:
        if required:
            raise FieldworkInputError(f"{where}.{key}", None, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise FieldworkInputError(f"{where}.{key}", value, f"{value!r} is not a positive integer id")
    return value


def text(row: dict[str, Any], key: str, where: str, *, required: bool = False, max_len: int = MAX_TEXT) -> str | None:
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise FieldworkInputError(f"{where}.{key}", value, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise FieldworkInputError(f"{where}.{key}", value, f"{value!r} is not a non-empty string")
    if len(value) > max_len or "\x00" in value:
        raise FieldworkInputError(f"{where}.{key}", value[:40], f"is longer than {max_len} characters or holds NUL")
    return value.strip()


def flag(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise FieldworkInputError(field, value, f"{value!r} is not true or false")
    return value


def id_list(row: dict[str, Any], key: str, where: str) -> list[int]:
    value = row.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_LINKS:
        raise FieldworkInputError(f"{where}.{key}", value, f"must be a list of at most {MAX_LINKS} ids")
    out: list[int] = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item < 2**63:
            raise FieldworkInputError(f"{where}.{key}[{i}]", item, f"{item!r} is not a positive integer id")
        if item not in out:
            out.append(item)
    return out


def instant(value: object, field: str, now: dt.datetime, *, not_before: dt.datetime | None = None) -> dt.datetime:
    """A time by the one time rule (gis.core.timeparse), refused when in the future."""
    if value is None:
        raise FieldworkInputError(field, None, "is required")
    if not isinstance(value, str):
        raise FieldworkInputError(field, value, f"{value!r} is not a date-time string")
    try:
        when = parse_time(value, bound="instant", field=field)
    except TimeValueError as exc:
        raise FieldworkInputError(field, value, exc.message.removeprefix(f"{field}: ")) from None
    if when > now + CLOCK_SKEW:
        raise FieldworkInputError(field, value, f"{value!r} is in the future (server time {now.isoformat()})")
    if not_before is not None and when < not_before:
        raise FieldworkInputError(field, value, f"{value!r} is before {not_before.isoformat()}")
    return when


def crs_of(value: object, field: str) -> InputCRS:
    try:
        return parse_crs(value if value is not None else "wgs84")  # type: ignore[arg-type]
    except ValueError as exc:
        raise FieldworkInputError(field, value, str(exc)) from None


def coordinate(value: object, field: str, limit: float) -> float:
    """One longitude (limit 180) or latitude (limit 90): a finite number in range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldworkInputError(field, value, f"{value!r} is not a number")
    number = float(value)
    if not math.isfinite(number) or abs(number) > limit:
        raise FieldworkInputError(field, value, f"{value!r} is out of range [-{limit:g}, {limit:g}]")
    return number
