"""Request and response bodies of /analysis/redistrict."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field


class RedistrictIn(BaseModel):
    area_code: str = Field(
        min_length=1, max_length=32, description="a town or village in force (or a grid, for micro_grid)"
    )
    layer: Literal["grid", "micro_grid"] = Field(
        "grid", description="the units to propose: grids built from micro-grids, or micro-grids built from buildings"
    )
    band_min: int | None = Field(
        None, ge=1, description="fewest households a unit may hold (default: the settings for the layer)"
    )
    band_max: int | None = Field(
        None, ge=1, description="most households a unit may hold (default: the settings for the layer)"
    )
    roads: bool = Field(True, description="prefer roads (table roads) as the units' borders")
    balance: Literal["households", "workload"] = Field(
        "households", description="what to even out between units: households, or incidents of the last 90 days"
    )
    edge_slack: int = Field(
        1,
        ge=0,
        le=8,
        description="how much rougher an edge a balancing move may make: 0 = most compact, 8 = most even",
    )


class RedistrictRunOut(BaseModel):
    id: int
    area_code: str
    params: dict[str, Any]
    status: Literal["queued", "running", "done", "infeasible", "failed"]
    progress: float
    message: str
    draft_id: int | None
    draft_url: str | None = Field(None, description="the draft's impact preview page")
    editor_url: str | None = Field(None, description="the draft's editor page")
    report: dict[str, Any] | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
