from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel


class AuditEntry(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any]


class AuditPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[AuditEntry]
