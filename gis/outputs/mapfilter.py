"""The map pages' incident filter: windows, codes and categories as the pages and their JSON endpoints
take them, made into the one ``gis.incidents.filter.IncidentFilter``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from gis.core.privacy import (
    ID_CARD_FIELDS,
    NAME_FIELDS,
    PHONE_FIELDS,
)
from gis.core.vocab import COUNTY_TZ as LOCAL_TZ
from gis.incidents.filter import IncidentFilter

WINDOWS = ("today", "7d", "30d", "90d", "365d", "custom")


_WINDOW_DAYS = {"7d": 7, "30d": 30, "90d": 90, "365d": 365}


MAX_RANGE_DAYS = 3 * 366


DEFAULT_CELL_M = 100.0


REFERENCE_LAT = 30.85  # Jiashan; used only when no boundaries are loaded


DEFAULT_TOLERANCE_M = {"county": 20.0, "town": 10.0, "village": 5.0, "station": 10.0}


COORD_DECIMALS = 5  # ~1 m: finer than any screen pixel at the zooms the pages use


PERSONAL_FIELDS = PHONE_FIELDS | ID_CARD_FIELDS | NAME_FIELDS


_VALUE = re.compile(r"^[\w\-.·]{1,32}$")


class MapQueryError(ValueError):
    """A map filter or argument is unusable; the message names the field and the value."""


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
        category=_values("category", category),
        source=_values("source", source),
        status=_values("status", status),
        start=start_at,
        end=end_at,
        window=window,
    )
