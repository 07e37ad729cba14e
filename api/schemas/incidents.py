"""Schemas of the incident endpoints (intake, workflow, listing) and of the statistics."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from api.timeparams import CountyInstant
from gis.incidents import rules
from gis.incidents.totals import EXACT_UP_TO, TTL_S

# NaN and infinity pass the schema and are refused by gis.incidents.intake with the field named: FastAPI's
# default 422 echoes the input, and a NaN echoed back cannot be encoded as JSON.
Coordinate = Annotated[float, Field(allow_inf_nan=True)]

_CATEGORIES = ", ".join(f"`{c.code}` {c.zh}" for c in rules.CATEGORIES.values())
_SOURCES = ", ".join(f"`{code}` {zh}" for code, (zh, _) in rules.SOURCES.items())
_STATUSES = ", ".join(f"`{code}` {zh}" for code, (zh, _) in rules.STATUSES.items())
_ACTIONS = ", ".join(f"`{verb}` → {to}" for verb, to in rules.ACTIONS.items())


class IncidentIn(BaseModel):
    """A reported incident: a coordinate (with its `crs`) or an address, what happened and who says so."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "lon": 120.9265,
                    "lat": 30.8412,
                    "crs": "wgs84",
                    "category": "ebike_charging",
                    "source": "grid_patrol",
                    "external_id": "patrol-20240501-0042",
                    "reported_at": "2024-05-01T08:30:00+08:00",
                    "description": "楼道内电动车飞线充电",
                    "reporter_name": "张三",
                    "reporter_phone": "13812345678",
                },
                {
                    "address": "嘉善县罗星街道东门大街12号",
                    "category": "dispute",
                    "source": "hotline_12345",
                    "external_id": "12345-2024-000981",
                    "description": "邻里噪音纠纷",
                },
            ]
        },
    )

    lon: Coordinate | None = Field(None, description="longitude in `crs`; give lon and lat, or `address`")
    lat: Coordinate | None = Field(None, description="latitude in `crs`")
    crs: str = Field("wgs84", description="coordinate system of lon/lat: `wgs84`, `gcj02` (Amap, WeChat) or `bd09`")
    address: str | None = Field(
        None, max_length=200, description="address text, geocoded against the standard addresses when no lon/lat"
    )
    category: str = Field(..., description=f"incident category: {_CATEGORIES}")
    source: str = Field(..., description=f"where the report came from: {_SOURCES}")
    external_id: str | None = Field(
        None, max_length=64, description="the id in the source system; `(source, external_id)` makes intake idempotent"
    )
    reported_at: CountyInstant | None = Field(
        None,
        description="when it was reported (ISO-8601; no zone = county time, Asia/Shanghai; default now; ≤ 5 min ahead)",
    )
    description: str | None = Field(None, max_length=4000)
    reporter_name: str | None = Field(None, max_length=100, description="masked for roles below dispatcher")
    reporter_phone: str | None = Field(None, max_length=20, description="masked for roles below dispatcher")


class HistoryEvent(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    action: str = Field(description="report, a transition verb or status, or escalate")
    from_status: str | None
    to_status: str | None
    note: str | None


class Incident(BaseModel):
    """An incident with its assignment (town … beat under the boundary generation in force while it is open,
    kept once it is closed or rejected) and deadline."""

    id: int
    category: str
    category_zh: str | None
    risk_group: str | None
    source: str
    external_id: str | None
    status: str = Field(description=f"status in the closed loop: {_STATUSES}")
    status_zh: str
    reported_at: dt.datetime
    created_at: dt.datetime
    deadline_at: dt.datetime | None
    overdue: bool = Field(description="pending (not yet handled) and past its deadline")
    escalated: bool = Field(description="escalated above the grid (escalation_level is not grid)")
    escalation_level: str = Field(description="grid, village, town (镇街综治中心) or county (县社会治理中心)")
    escalation_level_zh: str
    escalated_at: dt.datetime | None
    closed_at: dt.datetime | None
    dispatched_at: dt.datetime | None = Field(None, description="first offered to a holder (派遣)")
    accepted_at: dt.datetime | None = Field(None, description="the lead holder accepted (接单)")
    on_scene_at: dt.datetime | None = Field(None, description="a holder arrived on the scene (到场)")
    handled_at: dt.datetime | None = Field(None, description="handled (处置完成)")
    verified_at: dt.datetime | None = Field(None, description="verified (核查)")
    closed_level: str | None = Field(None, description="the escalation level it was closed or rejected at")
    possible_duplicate_of: int | None = Field(
        description="nearest open incident of the same category close by in space and time, if any"
    )
    lon: float = Field(description="WGS-84")
    lat: float = Field(description="WGS-84")
    received_crs: str
    received_lon: float | None
    received_lat: float | None
    address_text: str | None
    address_id: int | None
    description: str | None
    reporter_name: str | None
    reporter_phone: str | None
    town_code: str | None
    village_code: str | None
    grid_code: str | None
    micro_grid_code: str | None
    station_code: str | None
    beat_code: str | None
    generation_id: int | None
    assign_status: str | None = Field(description="inside, snapped (within the tolerance) or outside_jurisdiction")
    snap_distance_m: float | None
    history: list[HistoryEvent] | None = Field(None, description="the incident's history, oldest first")


class IncidentPage(BaseModel):
    total: int = Field(
        description=f"incidents matching the filters; exact up to {EXACT_UP_TO:,}, "
        f"above that counted at most {TTL_S:g} s ago"
    )
    limit: int
    offset: int
    items: list[Incident]


class TransitionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"action": "accept", "note": "属实，立案"}]}
    )

    action: str = Field(..., max_length=24, description=f"a verb ({_ACTIONS}) or the target status itself")
    note: str | None = Field(None, max_length=2000)


class EscalateIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"note": "涉及多个村，提级镇街综治中心"}]}
    )

    note: str | None = Field(None, max_length=2000)


class Conflict(BaseModel):
    detail: str
    current_status: str
    requested: str
    allowed: list[str] = Field(description="the statuses the incident may move to next")


class StatsRow(BaseModel):
    period_start: dt.date = Field(description="first day of the period (China time)")
    area_code: str | None = Field(description="null for incidents outside the jurisdiction")
    area_name: str | None
    total: int
    closed: int
    rejected: int
    open: int = Field(description="not closed or rejected")
    pending: int = Field(description="waiting for handling (reported, accepted, dispatched, in_progress)")
    overdue: int = Field(description="pending and past the deadline now")
    escalated: int = Field(description="open and escalated above the grid")
    closure_rate: float | None = Field(description="closed / (total - rejected)")
    mean_handling_hours: float | None = Field(description="mean of closed_at - reported_at over closed incidents")


class StatsTotals(BaseModel):
    total: int
    closed: int
    rejected: int
    open: int
    pending: int
    overdue: int
    escalated: int
    closure_rate: float | None
    mean_handling_hours: float | None


class Stats(BaseModel):
    level: str
    period: str
    start: dt.datetime
    end: dt.datetime
    totals: StatsTotals
    rows: list[StatsRow]
