"""Webhooks of organisation units (create, list, change, delete), their delivery log, and a test ping.

A webhook belongs to an org unit and receives the events of the incidents inside the unit's area
(gis.outbound.fanout). Its secret signs every request (gis.outbound.signing); it is shown in full
only when the webhook is created (or the secret replaced), afterwards only its first characters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from gis.core import audit
from gis.core.vocab import DELIVERY_STATUSES, EVENT_ACTIONS, EVENT_TYPES, INCIDENT_STATUSES
from gis.incidents import rules
from gis.outbound import signing
from gis.outbound.fanout import DELIVER_TASK, OUTBOUND_QUEUE, delivery_lock
from gis.spatial.areas import Conn
from gis.work.jobs import defer

# What a webhook may subscribe to: the pushed event types, the log's actions, the target statuses.
SUBSCRIBABLE = frozenset((*EVENT_TYPES, *EVENT_ACTIONS, *rules.ACTIONS, *INCIDENT_STATUSES))
MAX_URL = 2000
_COLUMNS = "w.id, ou.code AS org_unit, w.url, w.secret, w.events, w.active, w.created_by, w.created_at, w.updated_at"


_LOG_COLUMNS = (
    "id, webhook_id, hotline_code, event_id, incident_id, event_type, payload, status, attempts, "
    "last_status_code, last_error, created_at, last_attempt_at, next_attempt_at, delivered_at"
)


class WebhookInputError(ValueError):
    """Bad webhook input; ``field`` names it and ``value`` is what was given."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.value, self.reason = field, value, reason


class WebhookNotFound(LookupError):
    pass


def check_url(value: object, field: str = "url") -> str:
    """An http(s) URL with a host; what a receiver's address must be."""
    if not isinstance(value, str) or not value.strip():
        raise WebhookInputError(field, value, "is required: an http:// or https:// URL")
    url = value.strip()
    if len(url) > MAX_URL:
        raise WebhookInputError(field, url[:80], f"is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number or out of range
    except ValueError as exc:
        raise WebhookInputError(field, url, f"is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookInputError(field, url, "must be an http:// or https:// URL with a host")
    del port
    return url


def check_events(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise WebhookInputError("events", value, "must be a list of event types, actions or statuses")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or item not in SUBSCRIBABLE:
            allowed = ", ".join(sorted(SUBSCRIBABLE))
            raise WebhookInputError("events", item, f"{item!r} is no event type, action or status; one of {allowed}")
        if item not in out:
            out.append(item)
    return out


def check_secret(value: object) -> str:
    if value is None:
        return signing.new_secret()
    if not isinstance(value, str) or not 16 <= len(value) <= 200:
        raise WebhookInputError("secret", "(hidden)", "must be 16 to 200 characters (leave it out to get one made)")
    return value


def masked(hook: Mapping[str, Any]) -> dict[str, Any]:
    """A webhook as listed: the secret reduced to its first characters."""
    out = dict(hook)
    out["secret"] = f"{out['secret'][:4]}…" if out.get("secret") else None
    return out


def _unit_id(conn: Conn, org_unit: str) -> int:
    found = conn.execute(sa.text("SELECT id FROM org_units WHERE code = :c"), {"c": org_unit}).scalar()
    if found is None:
        raise WebhookNotFound(f"no organisation unit with code {org_unit!r}")
    return int(found)


def get_webhook(conn: Conn, webhook_id: int) -> dict[str, Any]:
    row = conn.execute(
        sa.text(f"SELECT {_COLUMNS} FROM webhooks w JOIN org_units ou ON ou.id = w.org_unit_id WHERE w.id = :id"),  # noqa: S608
        {"id": webhook_id},
    ).one_or_none()
    if row is None:
        raise WebhookNotFound(f"no webhook {webhook_id}")
    return dict(row._mapping)


def webhook_area(conn: Conn, webhook_id: int) -> str:
    """The area code of the webhook's unit (what a scoped admin's scope is checked against)."""
    row = conn.execute(
        sa.text("SELECT ou.area_code FROM webhooks w JOIN org_units ou ON ou.id = w.org_unit_id WHERE w.id = :id"),
        {"id": webhook_id},
    ).one_or_none()
    if row is None:
        raise WebhookNotFound(f"no webhook {webhook_id}")
    return str(row.area_code)


def list_webhooks(conn: Conn, org_unit: str) -> list[dict[str, Any]]:
    unit = _unit_id(conn, org_unit)
    rows = conn.execute(
        sa.text(
            f"SELECT {_COLUMNS} FROM webhooks w JOIN org_units ou ON ou.id = w.org_unit_id "  # noqa: S608
            "WHERE w.org_unit_id = :u ORDER BY w.id"
        ),
        {"u": unit},
    )
    return [dict(r._mapping) for r in rows]


def create_webhook(conn: Conn, actor: str, org_unit: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """A new webhook of ``org_unit``: url, events (empty: all), secret (made when left out), active."""
    unit = _unit_id(conn, org_unit)
    url = check_url(data.get("url"))
    events = check_events(data.get("events"))
    secret = check_secret(data.get("secret"))
    active = bool(data.get("active", True))
    new_id = conn.execute(
        sa.text(
            "INSERT INTO webhooks (org_unit_id, url, secret, events, active, created_by) "
            "VALUES (:u, :url, :secret, :events, :active, :actor) RETURNING id"
        ),
        {"u": unit, "url": url, "secret": secret, "events": events, "active": active, "actor": actor},
    ).scalar_one()
    audit.record(conn, actor, "webhook.create", f"webhook:{new_id}", org_unit=org_unit, url=url, events=events)
    return get_webhook(conn, int(new_id))


def update_webhook(conn: Conn, actor: str, webhook_id: int, data: Mapping[str, Any]) -> dict[str, Any]:
    """Change the fields given (url, events, secret, active); the others stay."""
    get_webhook(conn, webhook_id)
    sets: dict[str, Any] = {}
    if "url" in data:
        sets["url"] = check_url(data["url"])
    if "events" in data:
        sets["events"] = check_events(data["events"])
    if "secret" in data:
        sets["secret"] = check_secret(data["secret"])
    if "active" in data:
        if not isinstance(data["active"], bool):
            raise WebhookInputError("active", data["active"], "must be true or false")
        sets["active"] = data["active"]
    if sets:
        assignments = ", ".join(f"{k} = :{k}" for k in sets)  # the keys are the fixed names above
        conn.execute(
            sa.text(f"UPDATE webhooks SET {assignments}, updated_at = now() WHERE id = :id"),  # noqa: S608
            {**sets, "id": webhook_id},
        )
        changed = {k: ("(changed)" if k == "secret" else v) for k, v in sets.items()}
        audit.record(conn, actor, "webhook.update", f"webhook:{webhook_id}", **changed)
    return get_webhook(conn, webhook_id)


def delete_webhook(conn: Conn, actor: str, webhook_id: int) -> None:
    """Remove a webhook and its delivery log; queued jobs of its deliveries find nothing and end."""
    hook = get_webhook(conn, webhook_id)
    conn.execute(sa.text("DELETE FROM webhooks WHERE id = :id"), {"id": webhook_id})
    audit.record(conn, actor, "webhook.delete", f"webhook:{webhook_id}", org_unit=hook["org_unit"], url=hook["url"])


def list_deliveries(
    conn: Conn, webhook_id: int, *, status: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[int, list[dict[str, Any]]]:
    """The delivery log of a webhook, newest first: (total, rows)."""
    get_webhook(conn, webhook_id)
    return delivery_log(conn, "webhook_id", webhook_id, status=status, limit=limit, offset=offset)


def delivery_log(
    conn: Conn, column: str, target: int | str, *, status: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[int, list[dict[str, Any]]]:
    """The deliveries to one receiver (``column`` webhook_id or hotline_code), newest first."""
    if column not in ("webhook_id", "hotline_code"):
        raise ValueError(f"no delivery target column {column!r}")
    if status is not None and status not in DELIVERY_STATUSES:
        raise WebhookInputError("status", status, f"must be one of {', '.join(DELIVERY_STATUSES)}")
    where = f"{column} = :w AND (CAST(:s AS text) IS NULL OR status = :s)"
    params = {"w": target, "s": status}
    total = conn.execute(sa.text(f"SELECT count(*) FROM webhook_deliveries WHERE {where}"), params).scalar_one()  # noqa: S608
    rows = conn.execute(
        sa.text(
            f"SELECT {_LOG_COLUMNS} FROM webhook_deliveries "  # noqa: S608
            f"WHERE {where} ORDER BY id DESC LIMIT :lim OFFSET :off"
        ),
        {**params, "lim": limit, "off": offset},
    )
    return int(total), [dict(r._mapping) for r in rows]


def ping(conn: Conn, actor: str, webhook_id: int, now: dt.datetime | None = None) -> dict[str, Any]:
    """Queue a test delivery (``webhook.ping``) through the same log and job as the events;
    returns the delivery row (pending; its outcome shows in the log)."""
    hook = get_webhook(conn, webhook_id)
    now = now or dt.datetime.now(dt.UTC)
    payload = {"type": "webhook.ping", "webhook_id": webhook_id, "org_unit": hook["org_unit"], "at": now.isoformat()}
    row = conn.execute(
        sa.text(
            "INSERT INTO webhook_deliveries (webhook_id, event_type, payload) "
            "VALUES (:w, 'webhook.ping', CAST(:p AS jsonb)) RETURNING id, status, created_at"
        ),
        {"w": webhook_id, "p": signing.body_bytes(payload).decode()},
    ).one()
    job = defer(
        conn, DELIVER_TASK, {"delivery_id": row.id}, queue=OUTBOUND_QUEUE, lock=delivery_lock(webhook_id, None, None)
    )
    audit.record(conn, actor, "webhook.ping", f"webhook:{webhook_id}", delivery_id=row.id)
    return {"delivery_id": row.id, "status": row.status, "created_at": row.created_at, "job_id": job}
