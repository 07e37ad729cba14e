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
    found = [(n, v.strip()) for n in names if (v := given.get(n)) is not None and v.strip()]
    if len({v for _, v in found}) > 1:
        (a, va), (b, vb) = found[0], next(p for p in found if p[1] != found[0][1])
        msg = f"{a}={va!r} and {b}={vb!r} name the same parameter with different values; give one"
        raise unprocessable((a, va, msg), (b, vb, msg))
    return found[0] if found else None


def _parse(picked: tuple[str, str] | None, bound: Bound) -> dt.datetime | None:
    if picked is None:
        return None
    try:
        return parse_time(picked[1], bound=bound, field=picked[0])
    except TimeValueError as exc:
        raise time_error(exc) from None


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
    start_aliases: Sequence[str] = (),
    end_aliases: Sequence[str] = (),
    start_description: str = "from this time (inclusive); a bare date is its 00:00",
    end_description: str = "before this time (exclusive); a bare date includes that whole day",
) -> Callable[..., TimeWindow]:
    """A dependency reading ``start``/``end`` (and their old names) into a checked ``TimeWindow``:
    reversed or empty windows answer 422 naming both values."""
    start_names, end_names = ("start", *start_aliases), ("end", *end_aliases)

    def dependency(**given: str | None) -> TimeWindow:
        values = {k.removeprefix("p_"): v for k, v in given.items()}
        s_pick, e_pick = _pick(values, start_names), _pick(values, end_names)
        start, end = _parse(s_pick, "start"), _parse(e_pick, "end")
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
        return _parse(_pick({k.removeprefix("p_"): v for k, v in given.items()}, names), bound)

    return _with_signature(dependency, _query_params(names, name, description))


def as_of_param(
    description: str = "boundaries in force at this time; a bare date means the end of that day",
) -> Callable[..., dt.datetime | None]:
    """The ``as_of`` query parameter: an instant, a bare date meaning the end of that day."""
    return time_param("as_of", bound="instant", description=description)


def _body_instant(value: object, info: ValidationInfo) -> object:
    if value is None:
        return None
    # TimeValueError is a ValueError: pydantic answers it as a 422 at the field.
    return parse_time(value, bound="instant", field=info.field_name or "time")  # type: ignore[arg-type]


# A time in a JSON body (e.g. an incident's ``reported_at``), read by the same rule as the query
# parameters: the instant, a bare date meaning the end of that day.
CountyInstant = Annotated[dt.datetime, BeforeValidator(_body_instant)]
