"""The county's KPIs (/kpis, JSON and XLSX) and callbacks (回访): the definitions and the rules are
in gis.analysis.kpis and gis.analysis.callbacks."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.auth import Dispatcher, Viewer
from api.deps import SessionDep
from api.params import IncidentFilterDep
from api.timeparams import day_param
from gis.analysis import callbacks as cb
from gis.analysis.kpis import GROUPS, KPIS, compute_kpis, period_window, write_xlsx
from gis.core import audit
from gis.core.vocab import COUNTY_TZ

router = APIRouter(tags=["analysis"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_DEFINITIONS = "\n".join(f"- `{k.name}` ({k.label}, {k.unit}): {k.definition}" for k in KPIS)


@router.get(
    "/kpis",
    summary="The county's KPIs (closure, on-time, response times, closing level, escalation, reopen, satisfaction)",
    description="The incidents the filters select that were reported in the period, in total and per group, each "
    "with its change against the previous period of the same length and the same dates a year earlier. The period "
    "is `start`/`end` when both are given, else the `period` (day, ISO week, month, year; county time) that holds "
    f"`date` (default today). KPIs:\n\n{_DEFINITIONS}",
    responses={
        200: {"content": {XLSX: {}}, "description": "JSON, or an XLSX workbook with format=xlsx"},
        422: {"description": "a parameter is wrong; `detail[].loc` names it"},
    },
)
def get_kpis(
    caller: Viewer,
    session: SessionDep,
    filters: IncidentFilterDep,
    day: Annotated[dt.date | None, Depends(day_param("date", "a day of the period (default today, county time)"))],
    group_by: Annotated[
        str, Query(pattern=f"^({'|'.join(GROUPS)})$", description=f"one row per: {', '.join(GROUPS)}")
    ] = "county",
    period: Annotated[Literal["day", "week", "month", "year"], Query(description="the calendar period")] = "month",
    format: Annotated[Literal["json", "xlsx"], Query(description="json or xlsx")] = "json",
) -> Any:
    if filters.start is not None and filters.end is not None:
        start, end = filters.start, filters.end
    else:
        start, end = period_window(period, day or dt.datetime.now(COUNTY_TZ).date())
    data = compute_kpis(session, filters, start, end, group_by=group_by)
    if format == "xlsx":
        audit.record(session, caller.name, "export", "kpis", format="xlsx", group_by=group_by)
        name = f"kpis-{group_by}-{start.astimezone(COUNTY_TZ).date().isoformat()}.xlsx"
        return Response(
            write_xlsx(data), media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )
    return data


class CallbackIn(BaseModel):
    result: Literal["satisfied", "basically_satisfied", "dissatisfied"] = Field(
        description="满意 / 基本满意 / 不满意; dissatisfied within 7 days of closing reopens the incident"
    )
    note: str | None = Field(None, max_length=2000)
    channel: Literal["callback", "hotline"] = "callback"


@router.post(
    "/incidents/{incident_id}/callback",
    status_code=201,
    summary="Record a callback (回访) of a closed incident; dissatisfied within 7 days reopens it to its last holder",
    responses={404: {"description": "no such incident in your scope"}, 409: {"description": "not closed"}},
)
def post_callback(incident_id: int, body: CallbackIn, caller: Dispatcher, session: SessionDep) -> dict[str, Any]:
    return cb.record_callback(
        session, incident_id, body.result, caller.name, note=body.note, channel=body.channel, scope=caller.scope
    )


@router.get("/callbacks/due", summary="Callback tasks: closed resident and hotline incidents not called back yet")
def get_due_callbacks(
    caller: Dispatcher,
    session: SessionDep,
    days: int = Query(7, ge=1, le=90, description="closed within this many days"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    return cb.due_callbacks(session, scope=caller.scope, days=days, limit=limit)
