"""Time query parameters at the request edge, read by ``gis.core.timeparse`` (its docstring has
the rule: naive = county time, offsets honoured, a bare date is the start of the day for a window's
start and the end of the day for its end and for ``as_of``).

Every endpoint calls its window ``start``/``end``. The names some endpoints used before
(``from``/``to`` on map pages, ``reported_from``/``reported_to`` on ``/incidents``,
``since``/``until`` on ``/audit``) are accepted as deprecated aliases for one release; the
OpenAPI document lists them on the parameter and marks them deprecated.

Usage::

    Window = Annotated[TimeWindow, Depends(time_window(start_aliases=("since",), end_aliases=("until",)))]
    AsOf = Annotated[dt.datetime | None, Depends(as_of_param())]

An empty value (``?start=``, what an HTML form sends for an empty field) counts as absent. Bad
values answer 422 with FastAPI's error shape, ``loc`` naming the parameter as the client spelled it.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import HTTPException, Query
from pydantic import BeforeValidator, ValidationInfo

from gis.core.timeparse import Bound, TimeValueError, check_window, parse_time
from gis.core.vocab import COUNTY_TZ

TIME_RULE = "No offset = county time (Asia/Shanghai); `Z` and offsets are honoured"
ALIAS_NOTE = "deprecated alias of `{name}`, accepted for one release"


@dataclass(frozen=True)
class TimeWindow:
    """A request's window, end-exclusive; either side may be absent. Unpacks as ``start, end``.
    ``start_field``/``end_field`` are the names the client used, for later error messages."""

    start: dt.datetime | None
    end: dt.datetime | None
    start_field: str = "start"
    end_field: str = "end"

    def __iter__(self) -> Iterator[dt.datetime | None]:
        return iter((self.start, self.end))


def unprocessable(*items: tuple[str, object, str]) -> HTTPException:
    """A 422 in FastAPI's validation shape, one entry per (query parameter, value, message)."""
    detail = [{"type": "value_error", "loc": ["query", f], "msg": m, "input": v} for f, v, m in items]
    return HTTPException(422, detail)


def time_error(exc: TimeValueError) -> HTTPException:
    return unprocessable((exc.field, exc.value, exc.message))


def _pick(given: dict[str, str | None], names: Sequence[str]) -> tuple[str, str] | None:
    """The (name, value) given for one time among its names; two names with different values
    are a contradiction, answered 422 naming both."""
    found = [(n, v) for n in names if (v := given.get(n)) is not None and v.strip()]
    if len({v for _, v in found}) > 1:
        (a, va), (b, vb) = found[0], next(p for p in found if p[1] != found[0][1])
        msg = f"{a}={va!r} and {b}={vb!r} name the same parameter with different values; give one"
        raise unprocessable((a, va, msg), (b, vb, msg))
    return found[0] if found else None


def _parse(*picks: tuple[tuple[str, str] | None, Bound]) -> list[dt.datetime | None]:
    """Each picked (name, value) read with its bound; every bad one is named in one 422."""
    out: list[dt.datetime | None] = []
    errors: list[tuple[str, object, str]] = []
    for picked, bound in picks:
        try:
            out.append(None if picked is None else parse_time(picked[1], bound=bound, field=picked[0]))
        except TimeValueError as exc:
            errors.append((exc.field, exc.value, exc.message))
    if errors:
        raise unprocessable(*errors)
    return out


def _query_params(names: Sequence[str], canonical: str, description: str) -> list[inspect.Parameter]:
    aliases = [n for n in names if n != canonical]
    note = (
        f" Old names: {', '.join(f'`{a}`' for a in aliases)} (deprecated, accepted for one release)." if aliases else ""
    )
    return [
        inspect.Parameter(
            f"p_{name}",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=str | None,
            default=Query(
                None,
                alias=name,
                description=f"{description}. {TIME_RULE}.{note}"
                if name == canonical
                else ALIAS_NOTE.format(name=canonical),
                deprecated=name != canonical or None,
                examples=["2024-05-01", "2024-05-01T08:30", "2024-05-01T00:30:00Z"],
            ),
        )
        for name in names
    ]


def _with_signature(func: Callable[..., Any], params: list[inspect.Parameter]) -> Callable[..., Any]:
    # FastAPI reads a dependency's parameters from inspect.signature, which honours __signature__:
    # this is how one function takes a list of query names decided at import time.
    func.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return func


def time_window(
    *,
    what: str = "",
    start_aliases: Sequence[str] = (),
    end_aliases: Sequence[str] = (),
    start_description: str | None = None,
    end_description: str | None = None,
) -> Callable[..., TimeWindow]:
    """A dependency reading ``start``/``end`` (and their old names) into a checked ``TimeWindow``:
    reversed or empty windows answer 422 naming both values. ``what`` names what the window
    selects in the parameters' descriptions (e.g. "entries")."""
    start_names, end_names = ("start", *start_aliases), ("end", *end_aliases)
    lead = f"{what} " if what else ""
    start_description = start_description or f"{lead}at or after this time (inclusive); a bare date is its 00:00"
    end_description = end_description or f"{lead}before this time (exclusive); a bare date includes that whole day"

    def dependency(**given: str | None) -> TimeWindow:
        values = {k.removeprefix("p_"): v for k, v in given.items()}
        s_pick, e_pick = _pick(values, start_names), _pick(values, end_names)
        start, end = _parse((s_pick, "start"), (e_pick, "end"))
        s_field, e_field = s_pick[0] if s_pick else "start", e_pick[0] if e_pick else "end"
        try:
            check_window(start, end, start_field=s_field, end_field=e_field)
        except TimeValueError as exc:
            raise unprocessable(
                (s_field, s_pick and s_pick[1], exc.message), (e_field, e_pick and e_pick[1], exc.message)
            ) from None
        return TimeWindow(start, end, s_field, e_field)

    params = _query_params(start_names, "start", start_description)
    params += _query_params(end_names, "end", end_description)
    return _with_signature(dependency, params)


def time_param(
    name: str, *, bound: Bound = "instant", aliases: Sequence[str] = (), description: str = "at this time"
) -> Callable[..., dt.datetime | None]:
    """A dependency reading one time query parameter ``name`` (or its old names); None if absent."""
    names = (name, *aliases)

    def dependency(**given: str | None) -> dt.datetime | None:
        return _parse((_pick({k.removeprefix("p_"): v for k, v in given.items()}, names), bound))[0]

    return _with_signature(dependency, _query_params(names, name, description))


def as_of_param(
    description: str = "boundaries in force at this time; a bare date means the end of that day",
) -> Callable[..., dt.datetime | None]:
    """The ``as_of`` query parameter: an instant, a bare date meaning the end of that day."""
    return time_param("as_of", bound="instant", description=description)


def day_param(name: str, description: str) -> Callable[..., dt.date | None]:
    """A calendar-day query parameter (``on``, ``active_on``) by the same rule: the county-time day
    of the value's start, so ``2024-05-01`` and ``2024-05-01T23:00`` both mean 1 May."""
    instant = time_param(name, bound="start", description=description)

    def dependency(**given: str | None) -> dt.date | None:
        when = instant(**given)
        return when.astimezone(COUNTY_TZ).date() if when else None

    dependency.__signature__ = inspect.signature(instant)  # type: ignore[attr-defined]
    return dependency


def _body_instant(value: object, info: ValidationInfo) -> object:
    if value is None:
        return None
    # TimeValueError is a ValueError: pydantic answers it as a 422 at the field.
    return parse_time(value, bound="instant", field=info.field_name or "time")  # type: ignore[arg-type]


# A time in a JSON body (e.g. an incident's ``reported_at``), read by the same rule as the query
# parameters: the instant, a bare date meaning the end of that day.
CountyInstant = Annotated[dt.datetime, BeforeValidator(_body_instant)]


def ogc_datetime(raw: str, field: str = "datetime") -> str:
    """OGC API's ``datetime`` (an instant, or ``start/end`` with ``..`` or nothing for an open end)
    by the same rule, as the RFC 3339 text (in UTC) that tipg reads: naive is county
    time and a bare date alone means that whole day. Bad values answer 422 naming ``field``."""
    parts = raw.split("/")
    if len(parts) > 2:
        raise unprocessable((field, raw, f"{field}: {raw[:80]!r} is not an instant or an interval start/end"))
    if len(parts) == 1:
        if not raw.strip():
            return ""  # absent, as tipg reads an empty value
        (day_start,) = _parse(((field, raw), "start"))
        assert day_start is not None  # a value was picked
        day_end = parse_time(raw, bound="end", field=field)  # valid: it just parsed as a start
        # A bare date reads as its whole day; a date-time reads the same with either bound.
        return _rfc3339(day_start) if day_start == day_end else f"{_rfc3339(day_start)}/{_rfc3339(day_end)}"
    picks = [None if p.strip() in ("", "..") else (field, p) for p in parts]
    if picks[0] is None and picks[1] is None:
        raise unprocessable((field, raw, f"{field}: {raw!r} is open at both ends; give a start or an end"))
    start, end = _parse((picks[0], "start"), (picks[1], "end"))
    try:
        check_window(start, end, start_field=f"{field} start", end_field=f"{field} end")
    except TimeValueError as exc:
        raise unprocessable((field, raw, exc.message)) from None
    return "/".join(".." if v is None else _rfc3339(v) for v in (start, end))


def _rfc3339(value: dt.datetime) -> str:
    # In UTC: county time before 1901 has an offset in seconds (+08:05:43), which RFC 3339 cannot write.
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
