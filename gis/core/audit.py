"""The audit log: every change records who did what to which target."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa

from gis.spatial.areas import Conn


def record(conn: Conn, actor: str, action: str, target: str | None = None, **detail: Any) -> None:
    conn.execute(
        sa.text("INSERT INTO audit_log (actor, action, target, detail) VALUES (:a, :act, :t, CAST(:d AS jsonb))"),
        {"a": actor, "act": action, "t": target, "d": json.dumps(detail, ensure_ascii=False, default=str)},
    )


def search(
    conn: Conn,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 100,
    offset: int = 0,
    actors: list[str] | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """Audit entries matching every given filter (``at`` in [start, end)), newest first, with the
    total count. ``actors``: only entries by these (a scoped reader's accounts); None: anyone."""
    where = [
        "(CAST(:actor AS text) IS NULL OR actor = :actor)",
        "(CAST(:action AS text) IS NULL OR action LIKE :action_like)",
        "(CAST(:target AS text) IS NULL OR target = :target)",
        "(CAST(:start AS timestamptz) IS NULL OR at >= :start)",
        "(CAST(:end AS timestamptz) IS NULL OR at < :end)",
        "(CAST(:actors AS text[]) IS NULL OR actor = ANY(:actors))",
    ]
    params = {
        "actor": actor,
        "action": action,
        "target": target,
        "start": start,
        "end": end,
        "actors": actors,
        # "incident." matches every incident action; "%" and "_" in input are literal text.
        "action_like": None
        if action is None
        else action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        + ("%" if action.endswith(".") else ""),
        "limit": limit,
        "offset": offset,
    }
    clause = " AND ".join(where)
    total = conn.execute(sa.text(f"SELECT count(*) FROM audit_log WHERE {clause}"), params).scalar_one()  # noqa: S608
    rows = conn.execute(
        sa.text(
            f"SELECT id, at, actor, action, target, detail FROM audit_log WHERE {clause} "  # noqa: S608
            "ORDER BY at DESC, id DESC LIMIT :limit OFFSET :offset"
        ),
        params,
    ).all()
    return int(total), [dict(r._mapping) for r in rows]
