"""Incident statistics per area level and period (the rules are in gis.incidents.stats)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.auth import Viewer
from api.deps import SessionDep
from api.params import IncidentFilterDep
from api.schemas.incidents import Stats
from gis.incidents.stats import incident_stats

router = APIRouter(tags=["stats"])


@router.get(
    "/stats",
    response_model=Stats,
    summary="Incident counts, closure rate, overdue counts and mean handling time",
    responses={422: {"description": "a parameter is wrong; `detail[].loc` names it"}},
)
def stats_route(
    principal: Viewer,
    session: SessionDep,
    filters: IncidentFilterDep,
    level: Annotated[Literal["town", "village", "grid"], Query(description="area level to group by")] = "town",
    period: Annotated[Literal["day", "week", "month"], Query(description="period to group by (China time)")] = "month",
) -> dict[str, Any]:
    """Per area and period, for the incidents the filters select reported in [start, end) (default:
    the 30 days before end, which defaults to now): total, closed, rejected, open (not closed or
    rejected), pending (reported, accepted, dispatched, in progress), overdue (pending with the
    deadline passed now), escalated (open and above the grid level), closure rate = closed /
    (total - rejected), mean handling time = mean(closed_at - reported_at) over closed incidents in
    hours; and the same over the whole range in `totals`."""
    return incident_stats(session, level=level, period=period, flt=filters)
