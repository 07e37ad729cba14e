"""Calendar periods in county time, the one definition every analysis uses (KPIs, hot spots,
emerging hot spots): a day, an ISO week (from Monday), a calendar month or a year, as the
end-exclusive window [start, end) of aware datetimes at county midnights."""

from __future__ import annotations

import datetime as dt

from gis.core.vocab import COUNTY_TZ

CALENDAR_PERIODS = ("day", "week", "month", "year")


class PeriodError(ValueError):
    """An unknown period; ``field`` and ``value`` name it."""

    def __init__(self, value: object, accepted: tuple[str, ...] = CALENDAR_PERIODS, field: str = "period") -> None:
        super().__init__(f"{field}: {str(value)[:40]!r} is not one of {', '.join(accepted)}")
        self.field = field
        self.value = value


def period_start(day: dt.date, period: str) -> dt.date:
    """The first day of the period containing ``day``."""
    if period == "day":
        return day
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "year":
        return day.replace(month=1, day=1)
    raise PeriodError(period)


def next_start(start: dt.date, period: str) -> dt.date:
    """The first day of the period after the one starting at ``start``."""
    if period == "day":
        return start + dt.timedelta(days=1)
    if period == "week":
        return start + dt.timedelta(days=7)
    if period == "month":
        return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    if period == "year":
        return start.replace(year=start.year + 1, month=1, day=1)
    raise PeriodError(period)


def county_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), COUNTY_TZ)


def period_of(day: dt.date, period: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the period containing ``day``."""
    start = period_start(day, period)
    return county_midnight(start), county_midnight(next_start(start, period))
