"""The one reading of time values that requests, pages and commands take.

The rule, the same on every endpoint and command:

* A time without an offset is county time (Asia/Shanghai, ``COUNTY_TZ``), never the server's or
  the database session's zone.
* ``Z`` and explicit offsets (``+08:00``, ``-0500``) are honoured.
* A date alone (``2024-05-01``) means the start of that day (00:00 county time) for the start of a
  window, and the end of that day for the end of a window and for an instant such as ``as_of``.
  Windows are end-exclusive, so "the end of the day" is 00:00 county time of the next day.
* A window whose start is not before its end (reversed or empty) is an error naming both values.
* Garbage, NUL bytes, overlong text and years outside 1900..2200 are errors naming the field and
  the value; they keep PostgreSQL and Python far from their overflow limits.

The accepted text is ISO 8601's common form: ``YYYY-MM-DD``, optionally followed by ``T`` or a
space, ``HH:MM``, optional ``:SS`` and fraction (microseconds are kept), and optional ``Z`` or
``±HH:MM``/``±HHMM``/``±HH`` (or with seconds, as Python writes the county's
pre-1901 local mean time): every RFC 3339 date-time but leap seconds. Values come back as aware
datetimes in county time with a fixed offset: a fixed offset compares and subtracts as absolute
time (two ``ZoneInfo`` datetimes of one zone compare by wall clock, wrong in the hour the
1986-1991 summer time repeated).

The FastAPI side (query parameters with their old names as aliases) is ``api.timeparams``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from gis.core.vocab import COUNTY_TZ

__all__ = ["COUNTY_TZ", "MAX_LENGTH", "MAX_YEAR", "MIN_YEAR", "TimeValueError", "check_window", "parse_time"]

Bound = Literal["start", "end", "instant"]

MIN_YEAR = 1900
MAX_YEAR = 2200
MAX_LENGTH = 40  # the longest accepted form is 32 characters; more is not a time

# ASCII digits only: re's \d would also take Arabic-Indic or full-width digits.
_TIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[T ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]{1,9}))?)?"
    r"(?P<zone>Z|[+-][0-9]{2}(?::?[0-9]{2}(?::?[0-9]{2})?)?)?)?",
    re.ASCII | re.IGNORECASE,
)
_EXAMPLE = "e.g. 2024-05-01, 2024-05-01T08:30, 2024-05-01T08:30:00+08:00 or 2024-05-01T00:30:00Z"
# RFC 3339 allows offsets up to 23:59; they are converted to county time before any database sees them.
MAX_OFFSET = dt.timedelta(hours=23, minutes=59)


class TimeValueError(ValueError):
    """A time value (or a window of two) is unusable. ``field`` and ``value`` name the offending
    parameter and what was given; for a window they name the end (``message`` names both)."""

    def __init__(self, field: str, value: object, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.message = message


def _shown(value: object) -> str:
    if not isinstance(value, str):
        return repr(value)[: MAX_LENGTH * 2]
    return repr(value[:MAX_LENGTH] + "…" if len(value) > MAX_LENGTH else value)


def _fail(field: str, value: object, reason: str) -> TimeValueError:
    return TimeValueError(field, value, f"{field}: {_shown(value)} {reason}")


def _county(when: dt.datetime) -> dt.datetime:
    """``when`` (aware) in county time with a fixed offset (see the module docstring)."""
    local = when.astimezone(COUNTY_TZ)
    offset = local.utcoffset()
    assert offset is not None  # astimezone to a ZoneInfo is always aware
    return local.replace(tzinfo=dt.timezone(offset))


def _check_year(field: str, value: object, year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise _fail(field, value, f"is outside the years {MIN_YEAR}..{MAX_YEAR}")


def _day_bound(day: dt.date, bound: Bound) -> dt.datetime:
    if bound != "start":
        day += dt.timedelta(days=1)  # the end of a day is the next midnight (windows are end-exclusive)
    return _county(dt.datetime.combine(day, dt.time(), COUNTY_TZ))


def _zone(field: str, value: str, text: str) -> dt.tzinfo:
    if text.upper() == "Z":
        return dt.UTC
    digits = text[1:].replace(":", "")
    minutes, seconds = int(digits[2:4] or 0), int(digits[4:] or 0)
    offset = dt.timedelta(hours=int(digits[:2]), minutes=minutes, seconds=seconds)
    if offset > MAX_OFFSET or minutes >= 60 or seconds >= 60:
        raise _fail(field, value, f"has the offset {text}; offsets go from -23:59 to +23:59")
    return dt.timezone(-offset if text[0] == "-" else offset)


def _parse_text(value: str, bound: Bound, field: str) -> dt.datetime:
    if "\x00" in value:
        raise _fail(field, value, "contains a NUL character")
    if len(value) > MAX_LENGTH:
        raise _fail(field, value, f"is {len(value)} characters long; a time has at most {MAX_LENGTH}")
    text = value.strip()
    if not text:
        raise _fail(field, value, f"is empty; give a date or date-time, {_EXAMPLE}")
    match = _TIME.fullmatch(text)
    if match is None:
        raise _fail(field, value, f"is not a date or date-time, {_EXAMPLE}")
    _check_year(field, value, int(text[:4]))
    try:
        day = dt.date.fromisoformat(match["date"])
        if match["hour"] is None:
            return _day_bound(day, bound)
        fraction = (match["fraction"] or "")[:6].ljust(6, "0")  # microseconds; finer digits are dropped
        clock = dt.time(int(match["hour"]), int(match["minute"]), int(match["second"] or 0), int(fraction or 0))
    except ValueError as exc:  # month 13, 30 February, 25 o'clock
        raise _fail(field, value, f"is not a valid date or time ({exc})") from None
    zone = _zone(field, value, match["zone"]) if match["zone"] else COUNTY_TZ
    return _county(dt.datetime.combine(day, clock, zone))


def parse_time(value: str | dt.date | dt.datetime, *, bound: Bound, field: str) -> dt.datetime:
    """``value`` as an aware datetime (county time, fixed offset) by the module's rule.

    ``bound`` says what a bare date means: ``start`` its 00:00, ``end`` and ``instant`` the end
    of the day (00:00 of the next day). ``field`` names the parameter in errors
    (``TimeValueError``)."""
    if isinstance(value, dt.datetime):
        _check_year(field, value, value.year)
        return _county(value if value.tzinfo is not None else value.replace(tzinfo=COUNTY_TZ))
    if isinstance(value, dt.date):
        _check_year(field, value, value.year)
        return _day_bound(value, bound)
    if isinstance(value, str):
        return _parse_text(value, bound, field)
    raise _fail(field, value, f"is a {type(value).__name__}, not a date or date-time")


def check_window(
    start: dt.datetime | None, end: dt.datetime | None, *, start_field: str = "start", end_field: str = "end"
) -> None:
    """Raise ``TimeValueError`` (naming both values) when ``start`` is not before ``end``: a
    reversed window is a mistake and an empty one can hold nothing. A missing side passes."""
    if start is None or end is None:
        return
    # Compare as UTC: aware datetimes of one tzinfo object compare by wall clock.
    if start.astimezone(dt.UTC) >= end.astimezone(dt.UTC):
        what = "is empty" if start == end else "is reversed"
        raise TimeValueError(
            end_field,
            end.isoformat(),
            f"{start_field}/{end_field}: the window {start_field}={start.isoformat()} .. "
            f"{end_field}={end.isoformat()} {what}; {start_field} must be before {end_field}",
        )
