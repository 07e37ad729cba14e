"""Request and response bodies of the boundary-planning API."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from gis.core.models import LAYERS


class DraftCreate(BaseModel):
    layer: Literal[LAYERS] = Field(description="layer to redraw: town, village, grid, micro_grid, station, beat")  # type: ignore[valid-type]
    scope_code: str | None = Field(None, description="a town or village code; omit for the whole county")
    note: str = Field("", description="why the draft exists")


class DraftOut(BaseModel):
    id: int
    layer: str
    scope_code: str | None
    base_generation: int
    status: str
    author: str
    note: str
    created_at: dt.datetime
    updated_at: dt.datetime
    published_generation: int | None
    features: int


class Operation(BaseModel):
    """One edit. Fields used per ``op``:

    * ``split``: ``line`` (GeoJSON LineString or [[lon, lat], ...]), ``new_code``, optional ``code``, ``new_name``;
    * ``merge``: ``codes``, optional ``into``;
    * ``move_micro_grid``: ``micro_grid``, ``to_grid``;
    * ``move_edge``: ``code``, ``code_b``, ``line``;
    * ``rename``: ``code`` and any of ``new_code``, ``name``, ``parent_code``, ``households``;
    * ``delete``: ``code``, optional ``successor`` (takes over its open incidents).
    """

    op: Literal["split", "merge", "move_micro_grid", "move_edge", "rename", "delete"]
    code: str | None = None
    code_b: str | None = None
    codes: list[str] | None = None
    into: str | None = None
    new_code: str | None = None
    new_name: str | None = None
    name: str | None = None
    parent_code: str | None = None
    households: int | None = Field(None, ge=0)
    micro_grid: str | None = None
    to_grid: str | None = None
    successor: str | None = None
    line: dict[str, Any] | list[list[float]] | None = None


class FeatureCollectionIn(BaseModel):
    type: Literal["FeatureCollection"]
    features: list[dict[str, Any]]


class PublishIn(BaseModel):
    note: str = Field("", description="why: goes into the generation and the audit log")


class RestoreIn(BaseModel):
    note: str = ""
    county: str | None = Field(
        None,
        pattern=r"^[0-9]{6}$",
        description="restore only this county's units (a key of one county restores its own county)",
    )


class GenerationOut(BaseModel):
    id: int
    layers: list[str]
    note: str
    author: str
    based_on: int | None
    created_at: dt.datetime
    published_at: dt.datetime | None
    in_force: bool


class PostingDecisionIn(BaseModel):
    """A planner's decision about people in a draft: ``move`` ``posting_id`` to ``to_code``, ``end``
    ``posting_id`` at publish, or ``add`` ``person_id`` as ``role`` on ``to_code`` from the publish day."""

    action: Literal["move", "end", "add"]
    posting_id: int | None = Field(None, ge=1, description="the posting to move or end")
    to_code: str | None = Field(None, max_length=32, description="a unit of the draft (move, add)")
    person_id: int | None = Field(None, ge=1, description="the person to post (add)")
    role: str | None = Field(None, max_length=24, description="the role to post them as (add), e.g. grid_leader")
