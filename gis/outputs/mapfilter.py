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
from gis.core.timeparse import TimeValueError, check_window, parse_time
from gis.core.vocab import COUNTY_TZ
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


def with_window(
    flt: IncidentFilter, window: str | None, default: str = "7d", now: dt.datetime | None = None
) -> IncidentFilter:
    """``flt`` with the map pages' report window. ``window`` is one of today, 7d, 30d, 90d, 365d,
    custom; without it, custom when ``flt`` has a start or end, else ``default``. Relative windows
    end now; "today" starts at county midnight. A custom window keeps ``flt``'s start and end; a
    missing end is now, a missing start 30 days before the end. At most ``MAX_RANGE_DAYS``."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(COUNTY_TZ)
    window = (window or "").strip() or ("custom" if flt.start or flt.end else default)
    if window not in WINDOWS:
        raise MapQueryError(f"window: {window!r} is not one of {', '.join(WINDOWS)}")
    if window == "custom":
        if flt.start is None and flt.end is None:
            raise MapQueryError("window: 'custom' needs from and/or to (YYYY-MM-DD)")
        end_at = flt.end or now
        start_at = flt.start or end_at - dt.timedelta(days=30)
    elif window == "today":
        start_at, end_at = now.replace(hour=0, minute=0, second=0, microsecond=0), now
    else:
        start_at, end_at = now - dt.timedelta(days=_WINDOW_DAYS[window]), now
    try:
        check_window(start_at, end_at, start_field="from", end_field="to")
    except TimeValueError as exc:
        raise MapQueryError(exc.message) from None
    if end_at - start_at > dt.timedelta(days=MAX_RANGE_DAYS):
        raise MapQueryError(f"from/to: the range is longer than {MAX_RANGE_DAYS} days")
    return flt.replace(start=start_at, end=end_at, window=window)


def parse_filter(
    window: str | None = None,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    category: str | Sequence[str] | None = None,
    source: str | Sequence[str] | None = None,
    status: str | Sequence[str] | None = None,
    now: dt.datetime | None = None,
) -> IncidentFilter:
    """A filter from URL-style values (the CLI's and the pages' own calls; requests go through
    ``api.params.incident_filter``). Times are read by ``gis.core.timeparse``: ``end`` as a bare
    date includes that whole day. The window is as ``with_window`` makes it (default 7d)."""
    try:
        start_at = parse_time(start, bound="start", field="from") if start else None
        end_at = parse_time(end, bound="end", field="to") if end else None
    except TimeValueError as exc:
        raise MapQueryError(exc.message) from None
    flt = IncidentFilter(
        category=_values("category", category), source=_values("source", source), status=_values("status", status)
    )
    return with_window(flt.replace(start=start_at, end=end_at), window, now=now)
