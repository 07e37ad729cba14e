"""Request and response bodies of dispatch (api.routers.dispatch)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class DispatchIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"person_id": 12, "role": "lead", "note": "就近处置"}]}
    )

    person_id: int | None = Field(None, ge=1, le=2**63 - 1, description="the person to offer it to")
    org_unit: str | None = Field(None, max_length=32, description="or the organisation unit (code)")
    role: str = Field("lead", max_length=8, description="lead (replaces the active lead) or co")
    note: str | None = Field(None, max_length=2000)


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignment_id: int | None = Field(
        None, ge=1, le=2**63 - 1, description="which of your assignments (default: yours)"
    )


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "不属本网格，请改派"}]})

    reason: str | None = Field(None, max_length=2000, description="required: why the offer is declined")
    assignment_id: int | None = Field(None, ge=1, le=2**63 - 1)


class ArriveIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"lon": 120.905, "lat": 30.832}]})

    lon: float = Field(..., ge=-180, le=180, description="WGS-84")
    lat: float = Field(..., ge=-90, le=90, description="WGS-84")


class SummonIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"org_units": ["330421-ZHZF"], "report_by": "2026-05-01T10:00"}]},
    )

    org_units: list[str] = Field(..., min_length=1, max_length=20, description="codes of the units summoned (吹哨)")
    report_by: str = Field(..., max_length=40, description="report-in deadline (no offset: county time)")
    note: str | None = Field(None, max_length=2000)


class SuperviseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instruction: str = Field(..., max_length=2000, description="the supervision order (督办)")
    due_at: str = Field(..., max_length=40, description="the reply is due by this time (no offset: county time)")


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reply: str | None = Field(None, max_length=2000, description="required: the answer to the supervision order")


class RemindIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=2000)


class Assignment(BaseModel):
    id: int
    incident_id: int
    kind: str = Field(description="dispatch, or summon (吹哨报到: accepting is reporting in)")
    role: str = Field(description="lead or co")
    person_id: int | None
    org_unit_id: int | None
    org_unit: str | None = Field(description="the unit's code")
    state: str = Field(description="offered, accepted, declined, done or withdrawn")
    level: str
    rule_id: int | None = Field(description="the routing rule that made the offer (None: by hand)")
    accept_by: dt.datetime | None
    offered_at: dt.datetime
    offered_by: str
    accepted_at: dt.datetime | None
    accepted_by: str | None
    declined_at: dt.datetime | None
    declined_by: str | None
    decline_reason: str | None
    done_at: dt.datetime | None
    done_by: str | None
    withdrawn_at: dt.datetime | None
    note: str | None


class Task(BaseModel):
    assignment_id: int
    kind: str
    role: str
    state: str
    accept_by: dt.datetime | None = Field(description="accept (or report in) by this time")
    offered_at: dt.datetime
    offered_by: str
    accepted_at: dt.datetime | None
    person_id: int | None
    org_unit: str | None
    note: str | None
    incident_id: int
    category: str
    source: str
    status: str
    escalation_level: str
    reported_at: dt.datetime
    deadline_at: dt.datetime | None = Field(description="the incident's handling deadline")
    grid_code: str | None
    beat_code: str | None
    address_text: str | None
    lon: float
    lat: float


class Supervision(BaseModel):
    id: int
    incident_id: int
    at: dt.datetime
    actor: str
    due_at: dt.datetime
    instruction: str
    reply: str | None
    replied_at: dt.datetime | None
    replied_by: str | None


class Reminded(BaseModel):
    incident_id: int
    reminded: list[str]
    at: dt.datetime


class RoutingRuleIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"category": "pollution", "target": "org_unit", "org_unit_code": "330421-ZHZF",
                                         "role": "co", "priority": 50}]},
    )  # fmt: skip

    source: str | None = Field(None, max_length=24, description="match this source (none: any)")
    category: str | None = Field(None, max_length=32, description="match this category (none: any)")
    level: str | None = Field(None, max_length=8, description="match this escalation level (none: any)")
    target: str = Field(..., max_length=16)
    org_unit_code: str | None = Field(None, max_length=32, description="the unit, for the target org_unit")
    role: str = Field("lead", max_length=4)
    priority: int = Field(100, ge=-1_000_000, le=1_000_000, description="smaller first")
    pick: str = Field(
        "first",
        max_length=8,
        description="first (roster order) or nearest: the on-duty person with the nearest recent patrol "
        "position (lead rules of grid_worker, aux_police, beat_officer)",
    )
    note: str | None = Field(None, max_length=500)


class RoutingRule(BaseModel):
    id: int
    source: str | None
    category: str | None
    level: str | None
    target: str
    org_unit_code: str | None
    role: str
    priority: int
    pick: str
    enabled: bool
    note: str
