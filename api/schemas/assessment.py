"""Request bodies of the assessment (考核): schemes and manual adjustments. Shapes only; the values
(indicator names, weights summing to 100, the month, the bound of the points) are checked by
gis.assessment, which names the field and the value in its 422."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_Forbid = ConfigDict(extra="forbid")


class IndicatorIn(BaseModel):
    model_config = _Forbid
    name: str = Field(..., max_length=40, description="one of the indicators (see GET /assessment-schemes)")
    weight: float = Field(..., description="its weight; the weights of a scheme sum to 100")
    target: float = Field(..., description="the raw value scoring 100 (rates 0..1, counts)")
    floor: float = Field(..., description="the raw value scoring 0; target < floor: lower is better")


class SchemeIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "year": 2026,
                    "indicators": [
                        {"name": "visits", "weight": 40, "target": 1.0, "floor": 0.5},
                        {"name": "overdue", "weight": 30, "target": 0, "floor": 5},
                        {"name": "satisfaction", "weight": 30, "target": 0.98, "floor": 0.8},
                    ],
                    "max_adjustment": 10,
                    "note": "2026年网格员考核方案",
                }
            ]
        },
    )
    year: int = Field(..., description="the year the scheme is for")
    county: str | None = Field(None, max_length=6, description="six-digit county code (default: the county in force)")
    indicators: list[IndicatorIn] = Field(..., max_length=20)
    max_adjustment: float = Field(10, description="bound of manual points per person or grid and month (±)")
    note: str | None = Field(None, max_length=2000)


class AdjustmentIn(BaseModel):
    model_config = _Forbid
    period: str = Field(..., max_length=20, description="the month, YYYY-MM")
    level: str = Field(..., max_length=10, description="person or grid")
    key: str | int = Field(..., description="the person's id or the grid's code")
    points: float = Field(..., description="points added (negative: taken off), within ± the scheme's max_adjustment")
    reason: str = Field(..., max_length=2000, description="why (required; kept in the audit log)")
