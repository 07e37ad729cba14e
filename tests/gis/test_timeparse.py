"""The one time rule (gis.core.timeparse), unit by unit."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gis.core.timeparse import MAX_YEAR, MIN_YEAR, TimeValueError, check_window, parse_time

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN = dt.timezone(dt.timedelta(hours=8))


@pytest.mark.parametrize(
    ("text", "bound", "expected"),
    [
        ("2024-05-01T08:30", "start", dt.datetime(2024, 5, 1, 8, 30, tzinfo=CN)),  # naive = county time
        ("2024-05-01 08:30:15", "end", dt.datetime(2024, 5, 1, 8, 30, 15, tzinfo=CN)),
        ("2024-05-01T08:30:15.25", "instant", dt.datetime(2024, 5, 1, 8, 30, 15, 250000, tzinfo=CN)),
        ("2024-05-01T00:30:00Z", "start", dt.datetime(2024, 5, 1, 0, 30, tzinfo=dt.UTC)),
        ("2024-05-01t00:30:00z", "start", dt.datetime(2024, 5, 1, 0, 30, tzinfo=dt.UTC)),
        ("2024-05-01T08:30-05:00", "start", dt.datetime(2024, 5, 1, 13, 30, tzinfo=dt.UTC)),
        ("2024-05-01T08:30+0530", "start", dt.datetime(2024, 5, 1, 3, 0, tzinfo=dt.UTC)),
        ("2024-05-01T08:30+08", "start", dt.datetime(2024, 5, 1, 8, 30, tzinfo=CN)),
        ("2024-05-01T08:30:00.123456789+08:00", "start", dt.datetime(2024, 5, 1, 8, 30, 0, 123456, tzinfo=CN)),
        # A date alone: its start for a window's start, its end (next midnight) otherwise.
        ("2024-05-01", "start", dt.datetime(2024, 5, 1, tzinfo=CN)),
        ("2024-05-01", "end", dt.datetime(2024, 5, 2, tzinfo=CN)),
        ("2024-05-01", "instant", dt.datetime(2024, 5, 2, tzinfo=CN)),
        ("  2024-05-01  ", "start", dt.datetime(2024, 5, 1, tzinfo=CN)),
        ("2024-12-31", "end", dt.datetime(2025, 1, 1, tzinfo=CN)),
        # County time had summer time in 1986-1991: naive July 1988 is +09:00.
        ("1988-07-01T12:00", "start", dt.datetime(1988, 7, 1, 3, tzinfo=dt.UTC)),
        ("1988-07-01", "end", dt.datetime(1988, 7, 1, 15, tzinfo=dt.UTC)),
    ],
)
def test_the_rule(text: str, bound: str, expected: dt.datetime) -> None:
    got = parse_time(text, bound=bound, field="t")  # type: ignore[arg-type]
    assert got == expected
    assert got.utcoffset() == got.astimezone(SHANGHAI).utcoffset()  # answered in county time


def test_dates_and_datetimes_follow_the_same_rule() -> None:
    assert parse_time(dt.date(2024, 5, 1), bound="start", field="t") == dt.datetime(2024, 5, 1, tzinfo=CN)
    assert parse_time(dt.date(2024, 5, 1), bound="end", field="t") == dt.datetime(2024, 5, 2, tzinfo=CN)
    assert parse_time(dt.datetime(2024, 5, 1, 9), bound="end", field="t") == dt.datetime(2024, 5, 1, 9, tzinfo=CN)
    aware = dt.datetime(2024, 5, 1, 9, tzinfo=dt.UTC)
    assert parse_time(aware, bound="start", field="t") == aware


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("yesterday", "not a date"),
        ("2024-5-1", "not a date"),
        ("20240501", "not a date"),
        ("2024-05-01T8:30", "not a date"),
        ("2024-05-01+08:00", "not a date"),  # an offset needs a time
        ("２０２４-05-01", "not a date"),  # full-width digits
        ("٢٠٢٤-05-01", "not a date"),  # Arabic-Indic digits
        ("2024-13-01", "not a valid date"),
        ("2024-02-30", "not a valid date"),
        ("2024-05-01T24:00", "not a valid date"),
        ("2024-05-01T23:59:60", "not a valid date"),  # leap seconds are not kept
        ("2024-05-01T08:00+24:00", "offset"),
        ("2024-05-01T08:00+08:60", "offset"),
        ("1899-12-31", "outside the years"),
        ("2201-01-01T00:00Z", "outside the years"),
        ("9999-12-31", "outside the years"),
        ("0000-01-01", "outside the years"),
        ("2024-05-01\x00", "NUL"),
        ("2024-05-01" + " " * 40, "characters long"),
        (12345, "not a date"),
        (None, "not a date"),
        (dt.date(1, 1, 1), "outside the years"),
        (dt.datetime(9999, 12, 31, 23, 59), "outside the years"),
    ],
)
def test_bad_values_name_field_and_value(value: object, reason: str) -> None:
    with pytest.raises(TimeValueError, match=reason) as err:
        parse_time(value, bound="start", field="as_of")  # type: ignore[arg-type]
    assert err.value.field == "as_of" and err.value.value == value
    assert str(err.value).startswith("as_of: ")


def test_the_end_of_the_last_allowed_day_is_still_representable() -> None:
    assert parse_time(f"{MAX_YEAR}-12-31", bound="end", field="t").year == MAX_YEAR + 1
    assert parse_time(f"{MIN_YEAR}-01-01", bound="start", field="t").year == MIN_YEAR


def test_windows_must_hold_time() -> None:
    a = parse_time("2024-05-01", bound="start", field="start")
    b = parse_time("2024-05-01", bound="end", field="end")
    check_window(a, b)  # one whole day
    check_window(a, None)
    check_window(None, None)
    with pytest.raises(TimeValueError, match="empty") as empty:
        check_window(a, a, start_field="from", end_field="to")
    assert "from=2024-05-01T00:00:00+08:00" in str(empty.value) and "to=" in str(empty.value)
    with pytest.raises(TimeValueError, match="reversed") as reversed_:
        check_window(b, a)
    assert a.isoformat() in str(reversed_.value) and b.isoformat() in str(reversed_.value)
    # The same instant spelled in two zones is an empty window, not a reversed one.
    with pytest.raises(TimeValueError, match="empty"):
        check_window(dt.datetime(2024, 5, 1, tzinfo=CN), dt.datetime(2024, 4, 30, 16, tzinfo=dt.UTC))


@given(st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2200, 12, 30)))
def test_naive_text_is_county_time_and_round_trips(moment: dt.datetime) -> None:
    text = moment.isoformat()
    got = parse_time(text, bound="start", field="t")
    assert got == moment.replace(tzinfo=SHANGHAI)
    # The instant spelled with its offset, in UTC, or in any zone is the same instant.
    assert parse_time(got.isoformat(), bound="start", field="t") == got
    assert parse_time(got.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"), bound="end", field="t") == got


@given(st.text(max_size=60))
def test_any_text_parses_or_names_the_field(text: str) -> None:
    try:
        got = parse_time(text, bound="end", field="end")
    except TimeValueError as exc:
        assert exc.field == "end" and str(exc).startswith("end: ")
    else:
        assert got.tzinfo is not None and MIN_YEAR <= got.year <= MAX_YEAR + 1
