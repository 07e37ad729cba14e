"""Request and response shapes of the webhooks (/org-units/{code}/webhooks, /webhooks) and of the
hotline adapters' configuration (/hotlines). Values are checked by gis.outbound and gis.hotlines,
whose errors name the field (422)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gis.core.vocab import EVENT_ACTIONS, EVENT_TYPES

_EVENTS = (
    f"event types ({', '.join(EVENT_TYPES)}), log actions ({', '.join(EVENT_ACTIONS)}, and the workflow's "
    "verbs: `close`, ...) or target statuses (`closed`, ...: a change to it); empty: every event"
)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000, description="the receiver: an http:// or https:// URL")
    events: list[str] = Field(default_factory=list, max_length=50, description=_EVENTS)
    secret: str | None = Field(None, description="HMAC-SHA256 key, 16-200 characters; left out: one is made")
    active: bool = True


class WebhookPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(None, max_length=2000)
    events: list[str] | None = Field(None, max_length=50, description=_EVENTS)
    secret: str | None = Field(None, description="a new key (16-200 characters)")
    active: bool | None = None


class WebhookOut(BaseModel):
    id: int
    org_unit: str
    url: str
    secret: str | None = Field(description="in full only in the answer that set it; else its first characters")
    events: list[str]
    active: bool
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime


class Delivery(BaseModel):
    id: int
    webhook_id: int | None
    hotline_code: str | None
    event_id: int | None = Field(description="the incident event delivered; null for a test ping")
    incident_id: int | None
    event_type: str
    payload: dict[str, Any]
    status: str = Field(description="pending, delivered, failed (retries left) or gave_up")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: dt.datetime
    last_attempt_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None


class DeliveryPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[Delivery]


class PingOut(BaseModel):
    delivery_id: int
    status: str
    created_at: dt.datetime
    job_id: int


class HotlineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    callback_url: str | None = Field(None, max_length=2000, description="where status callbacks go; null: none")
    secret: str | None = Field(None, description="HMAC-SHA256 key of the callbacks; made when a URL is first set")
    active: bool | None = Field(None, description="false: tickets are refused (403) and no callbacks are sent")


class HotlineOut(BaseModel):
    code: str
    name: str
    callback_url: str | None
    secret: str | None
    active: bool
    updated_by: str | None
    updated_at: dt.datetime


class CategoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: str = Field(max_length=32, description="gridmap's category code")
    their_name: str | None = Field(None, max_length=100, description="the hotline's name of its category")


class CategoryOut(BaseModel):
    their_code: str
    their_name: str | None
    category: str
    updated_by: str
    updated_at: dt.datetime
