"""Request and response shapes of /staff, /org-units and /staffing. Requests are checked here, at
the edge, with the same rules as the file import (gis.people.rules), so a 422 names the field."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from gis.core.vocab import ORG_UNIT_KINDS, POSTING_ROLES
from gis.people import rules

Role = Literal[POSTING_ROLES]  # type: ignore[valid-type]
Kind = Literal[ORG_UNIT_KINDS]  # type: ignore[valid-type]
Layer = Literal["county", "town", "village", "grid", "micro_grid", "station", "beat"]


def _checked(check: Any, value: Any) -> Any:
    try:
        return check(value)
    except rules.PeopleInputError as exc:
        raise ValueError(exc.reason) from None


class PersonFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("phone", check_fields=False)
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return _checked(rules.check_phone, value)

    @field_validator("id_card", check_fields=False)
    @classmethod
    def _id_card(cls, value: str | None) -> str | None:
        return _checked(rules.check_id_card, value)


class PostingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role = Field(description="grid_leader, grid_worker, aux_police, chief_grid_leader, beat_officer, ...")
    layer: Layer | None = Field(None, description="layer of the area; may be left out when the code says it")
    area_code: str = Field(min_length=1, max_length=32, examples=["330421001001001"])
    starts_on: dt.date | None = Field(None, description="first day (default today, county time)")
    ends_on: dt.date | None = Field(None, description="last day served; none = open")
    org_unit: str | None = Field(None, max_length=32, description="code of the organisation unit it belongs to")
    note: str = Field("", max_length=500)

    @field_validator("ends_on")
    @classmethod
    def _ends_after_start(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("starts_on")
        if value is not None and start is not None and value < start:
            raise ValueError(f"ends before it starts ({start.isoformat()})")
        return value


class PersonIn(PersonFields):
    name: str = Field(min_length=1, max_length=50, examples=["张伟"])
    phone: str | None = Field(None, examples=["13912345678"])
    id_card: str | None = Field(None, description="18-character resident ID card number")
    status: Literal["active", "left"] = "active"
    postings: list[PostingIn] = Field(default_factory=list, description="postings to add with the person")


class PersonPatch(PersonFields):
    name: str | None = Field(None, min_length=1, max_length=50)
    phone: str | None = None
    id_card: str | None = None
    status: Literal["active", "left"] | None = Field(None, description="left: ends the open postings today")


class PostingPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_on: dt.date | None = None
    ends_on: dt.date | None = None
    org_unit: str | None = Field(None, max_length=32)
    note: str | None = Field(None, max_length=500)


class EndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ends_on: dt.date | None = Field(None, description="last day served (default today)")


class PostingOut(BaseModel):
    id: int
    person_id: int
    name: str = Field(description="masked (surname only) for roles below dispatcher")
    phone: str | None = Field(description="masked for roles below dispatcher")
    id_card: str | None = Field(description="masked for roles below dispatcher")
    status: str
    role: str
    layer: str
    area_code: str
    org_unit: str | None
    starts_on: dt.date
    ends_on: dt.date | None
    note: str


class PostingPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[PostingOut]


class PersonOut(BaseModel):
    id: int
    name: str
    phone: str | None
    id_card: str | None
    status: str
    postings: list[PostingOut]


class OrgUnitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=32, examples=["330421001-ZX"])
    name: str = Field(min_length=1, max_length=100, examples=["魏塘街道综合信息指挥室"])
    kind: Kind
    layer: Layer | None = Field(None, description="default: county, town, village or station by kind")
    area_code: str = Field(min_length=1, max_length=32)
    parent_code: str | None = Field(None, max_length=32, description="code of the unit above")
    is_key: bool = Field(False, description="a village station of a key village (重点村)")


class OrgUnitOut(BaseModel):
    id: int
    code: str
    name: str
    kind: str
    layer: str
    area_code: str
    parent_code: str | None
    is_key: bool
    members: int = Field(0, description="postings in force today naming the unit")
