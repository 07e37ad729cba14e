"""Incident statistics per area level and period (the rules are in gis.incidents.stats)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from api.auth import Viewer
from api.deps import SessionDep
from api.schemas.incidents import Stats
from api.timeparams import TimeWindow, time_window
from gis.incidents.stats import incident_stats

router = APIRouter(tags=["stats"])

StatsWindow = Annotated[
    TimeWindow, Depends(time_window(start_description="reported at or after this time; default end - 30 days, end now"))
]


@router.get(
    "/stats",
    response_model=Stats,
    summary="Incident counts, closure rate, overdue counts and mean handling time",
    responses={422: {"description": "a parameter is wrong; `detail[].loc` names it"}},
)
def stats_route(
    principal: Viewer,
    session: SessionDep,
    window: StatsWindow,
    level: Annotated[Literal["town", "village", "grid"], Query(description="area level to group by")] = "town",
    period: Annotated[Literal["day", "week", "month"], Query(description="period to group by (China time)")] = "month",
    category: Annotated[list[str] | None, Query(max_length=50)] = None,
    source: Annotated[list[str] | None, Query(max_length=10)] = None,
) -> dict[str, Any]:
    """Per area and period, for incidents reported in [start, end): total, closed, rejected,
    overdue (still pending with the deadline passed now), closure rate = closed / (total -
    rejected), mean handling time = mean(closed_at - reported_at) over closed incidents in hours;
    and the same over the whole range in `totals`."""
    return incident_stats(
        session,
        level=level,
        period=period,
        start=window.start,
        end=window.end,
        category=category,
        source=source,
    )
