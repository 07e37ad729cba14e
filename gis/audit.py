"""The audit log: every change records who did what to which target."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from gis.areas import Conn


def record(conn: Conn, actor: str, action: str, target: str | None = None, **detail: Any) -> None:
    conn.execute(
        sa.text("INSERT INTO audit_log (actor, action, target, detail) VALUES (:a, :act, :t, CAST(:d AS jsonb))"),
        {"a": actor, "act": action, "t": target, "d": json.dumps(detail, ensure_ascii=False, default=str)},
    )
