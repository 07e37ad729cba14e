"""Request bodies of field work: inspections, hazards and their transitions, campaigns, checklists.
Shapes only; the values (items of the checklist version, postings held that day, deadlines after
the finding, ...) are checked by gis.fieldwork, which names the field in its 422."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_Forbid = ConfigDict(extra="forbid")


class ResultIn(BaseModel):
    model_config = _Forbid
    code: str = Field(..., max_length=40, description="the checklist item's code, e.g. `escape_window`")
    result: str = Field(..., description="pass, fail or na (not applicable)")
    note: str | None = Field(None, max_length=2000)
    deadline: str | None = Field(
        None, max_length=40, description="a failed item's rectification deadline (default: the item's period)"
    )
    responsible_party: str | None = Field(None, description="landlord, tenant or business (default: the item's)")


class InspectionIn(BaseModel):
    """A joint inspection: the inspectors' postings, each checked item's result, when and where."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "inspectors": [12, 31],
                    "at": "2026-05-01T10:30",
                    "lon": 120.921,
                    "lat": 30.842,
                    "results": [
                        {"code": "escape_window", "result": "fail", "note": "防盗窗焊死"},
                        {"code": "smoke_alarm", "result": "pass"},
                    ],
                }
            ]
        },
    )
    inspectors: list[int] = Field(..., max_length=10, description="posting ids of the joint team")
    results: list[ResultIn] = Field(..., max_length=200)
    checklist_kind: str | None = Field(None, description="default rental_safety")
    checklist_version: int | None = Field(None, ge=1, le=100_000, description="default: the latest version of the kind")
    at: str | None = Field(None, max_length=40, description="when (no offset = county time; default now)")
    lon: float | None = None
    lat: float | None = None
    crs: str = Field("wgs84", description="wgs84, gcj02 or bd09")
    room: str | None = Field(None, max_length=40)
    notes: str | None = Field(None, max_length=4000)
    client_id: str | None = Field(
        None, max_length=64, description="the phone's id of this inspection: a resend returns the first (200)"
    )


class HazardIn(BaseModel):
    """A hazard reported directly: a building or a position."""

    model_config = _Forbid
    category: str = Field(..., max_length=32)
    severity: str | None = Field(None, description="low, medium (default) or high")
    responsible_party: str | None = Field(None, description="landlord, tenant or business")
    description: str | None = Field(None, max_length=4000)
    found_at: str | None = Field(None, max_length=40, description="default now")
    deadline: str | None = Field(None, max_length=40, description="default: found_at plus the severity's days")
    building_id: int | None = None
    lon: float | None = None
    lat: float | None = None
    crs: str = "wgs84"
    incident_id: int | None = Field(None, description="the incident that revealed it (linked both ways)")


class HazardTransitionIn(BaseModel):
    model_config = _Forbid
    action: str = Field(
        ..., description="notify, start, submit, reinspect (or notified, rectifying, submitted, rectified)"
    )
    result: str | None = Field(None, description="a re-inspection's result: pass or fail")
    deadline: str | None = Field(None, max_length=40, description="a new rectification deadline")
    note: str | None = Field(None, max_length=2000)


class RaiseIncidentIn(BaseModel):
    model_config = _Forbid
    category: str | None = Field(None, description="default: from the hazard's category")
    description: str | None = Field(None, max_length=4000)


class CampaignIn(BaseModel):
    model_config = _Forbid
    name: str = Field(..., max_length=200)
    checklist_kind: str | None = None
    checklist_version: int | None = Field(None, ge=1, le=100_000)
    area_code: str = Field(..., max_length=32)
    starts_on: str = Field(..., max_length=10)
    ends_on: str = Field(..., max_length=10)
    building_ids: list[int] | None = Field(None, description="default: the rental buildings of the area")


class ChecklistItemIn(BaseModel):
    model_config = _Forbid
    code: str = Field(..., max_length=40)
    text: str = Field(..., max_length=500)
    severity: str
    rectify_days: int = Field(..., ge=1, le=365)
    hazard_category: str = Field(..., max_length=32)
    party: str = "landlord"


class ChecklistIn(BaseModel):
    model_config = _Forbid
    name: str = Field(..., max_length=200)
    items: list[ChecklistItemIn] = Field(..., max_length=200)


class RiskIntervalIn(BaseModel):
    model_config = _Forbid
    days: int = Field(..., ge=1, le=3650)
