"""The incident filter at the request edge: ONE dependency, ``incident_filter``, used by every route
that filters incidents (listing, statistics, map pages and their data, ...), so that a parameter
has one name, one syntax and one meaning everywhere (``gis.incidents.filter``).

Several values of a field are given by repeating the parameter or comma-separated
(``?grid=a&grid=b`` or ``?grid=a,b``). The report window is ``start``/``end`` (read by
``gis.core.timeparse``; the old names ``reported_from``/``reported_to`` and the map pages'
``from``/``to`` are deprecated aliases), or ``window`` (today, 7d, 30d, 90d, 365d, custom) as the
map pages' forms send it. A bad value answers 422 naming the parameter and the value.

The filter carries the caller's scope (``gis.people.scope``): whatever the parameters say, a
scoped key selects nothing outside its areas. The principal is the request's one admission
(FastAPI solves ``current_principal`` once per request), so this costs no second key check.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from pydantic import StringConstraints

from api.auth import current_principal
from api.timeparams import TimeWindow, time_window, unprocessable
from gis.incidents.filter import FilterError, IncidentFilter, parse_bbox
from gis.outputs.mapfilter import WINDOWS, MapQueryError, with_window
from gis.people.keys import Principal

# Bounded so that the schema says what is accepted: codes and names are short, lists are small.
Values = Annotated[
    list[Annotated[str, StringConstraints(max_length=200)]] | None,
    Query(max_length=50, description="repeat the parameter or separate values with commas"),
]
Flag = Annotated[bool | None, Query(description="true: only these; false: only the others")]

_Window = Annotated[
    TimeWindow,
    Depends(
        time_window(
            start_aliases=("reported_from", "from"),
            end_aliases=("reported_to", "to"),
            start_description="reported at or after this time; a bare date is its 00:00",
            end_description="reported before this time; a bare date includes that whole day",
        )
    ),
]


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v.strip() for raw in values or () for v in raw.split(",") if v.strip())


def incident_filter(
    principal: Annotated[Principal, Depends(current_principal)],
    times: _Window,
    county: Values = None,
    town: Values = None,
    village: Values = None,
    grid: Values = None,
    micro_grid: Values = None,
    station: Values = None,
    beat: Values = None,
    category: Values = None,
    source: Values = None,
    status: Values = None,
    risk_group: Values = None,
    assign_status: Values = None,
    assignee: Annotated[
        list[Annotated[str, StringConstraints(max_length=200)]] | None,
        Query(max_length=50, description="held by this person (id) or organisation unit (code)"),
    ] = None,
    assignment_state: Annotated[
        list[Annotated[str, StringConstraints(max_length=200)]] | None,
        Query(max_length=50, description="with an assignment in this state (offered, accepted, declined, ...)"),
    ] = None,
    open_only: Annotated[bool, Query(alias="open", description="only open incidents (not closed/rejected)")] = False,
    pending: Flag = None,
    overdue: Flag = None,
    escalated: Flag = None,
    bbox: Annotated[str | None, Query(max_length=200, description="minlon,minlat,maxlon,maxlat (WGS-84)")] = None,
    window: Annotated[str | None, Query(description=f"report window: {', '.join(WINDOWS)} (map pages)")] = None,
) -> IncidentFilter:
    try:
        flt = IncidentFilter(
            county=_split(county),
            town=_split(town),
            village=_split(village),
            grid=_split(grid),
            micro_grid=_split(micro_grid),
            station=_split(station),
            beat=_split(beat),
            category=_split(category),
            source=_split(source),
            status=_split(status),
            risk_group=_split(risk_group),
            assign_status=_split(assign_status),
            assignee=_split(assignee),
            assignment_state=_split(assignment_state),
            open_only=open_only,
            pending=pending,
            overdue=overdue,
            escalated=escalated,
            start=times.start,
            end=times.end,
            bbox=parse_bbox(bbox) if bbox else None,
            scope=principal.scope,
        )
        return with_window(flt, window) if window and window.strip() else flt
    except FilterError as exc:
        # The value as the client sent it (a bbox of inf or nan is not JSON once parsed).
        given = bbox if exc.field == "bbox" else exc.value if isinstance(exc.value, str) else str(exc.value)
        raise unprocessable((exc.field, given, str(exc))) from None
    except MapQueryError as exc:
        raise unprocessable(("window", window, str(exc))) from None


IncidentFilterDep = Annotated[IncidentFilter, Depends(incident_filter)]
