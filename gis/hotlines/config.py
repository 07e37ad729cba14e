"""The hotline systems' settings (callback URL, secret, on/off) and their category tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from gis.core import audit
from gis.core.vocab import HOTLINE_CODES
from gis.incidents import rules
from gis.outbound import signing
from gis.outbound.webhooks import WebhookInputError, check_url
from gis.spatial.areas import Conn

MAX_CODE = 32


class HotlineNotFound(LookupError):
    pass


def check_code(code: str) -> str:
    if code not in HOTLINE_CODES:
        raise HotlineNotFound(f"no hotline {code!r}; hotlines: {', '.join(HOTLINE_CODES)}")
    return code


def get_system(conn: Conn, code: str) -> dict[str, Any]:
    """A hotline system with its secret masked (see ``set_system`` for when it is shown)."""
    check_code(code)
    row = conn.execute(
        sa.text(
            "SELECT code, name, callback_url, secret, active, updated_by, updated_at "
            "FROM hotline_systems WHERE code = :c"
        ),
        {"c": code},
    ).one()
    out = dict(row._mapping)
    out["secret"] = f"{out['secret'][:4]}…" if out["secret"] else None
    return out


def set_system(conn: Conn, actor: str, code: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Change the callback URL (None: no callbacks), the secret, or ``active``. A callback URL set
    without a secret, on a system that has none, gets one made; it is returned in full once."""
    check_code(code)
    current = conn.execute(sa.text("SELECT secret FROM hotline_systems WHERE code = :c"), {"c": code}).scalar()
    sets: dict[str, Any] = {}
    if "callback_url" in data:
        sets["callback_url"] = None if data["callback_url"] is None else check_url(data["callback_url"], "callback_url")
    if data.get("secret") is not None:
        secret = data["secret"]
        if not isinstance(secret, str) or not 16 <= len(secret) <= 200:
            raise WebhookInputError("secret", "(hidden)", "must be 16 to 200 characters")
        sets["secret"] = secret
    elif sets.get("callback_url") and not current:
        sets["secret"] = signing.new_secret()
    if "active" in data:
        if not isinstance(data["active"], bool):
            raise WebhookInputError("active", data["active"], "must be true or false")
        sets["active"] = data["active"]
    if sets:
        assignments = ", ".join(f"{k} = :{k}" for k in sets)  # fixed names from above
        conn.execute(
            sa.text(
                f"UPDATE hotline_systems SET {assignments}, updated_by = :actor, "  # noqa: S608
                "updated_at = now() WHERE code = :c"
            ),
            {**sets, "actor": actor, "c": code},
        )
        logged = {k: ("(changed)" if k == "secret" else v) for k, v in sets.items()}
        audit.record(conn, actor, "hotline.update", f"hotline:{code}", **logged)
    out = get_system(conn, code)
    if "secret" in sets:
        out["secret"] = sets["secret"]  # shown once, to be given to the hotline's operators
    return out


def list_categories(conn: Conn, code: str) -> list[dict[str, Any]]:
    check_code(code)
    rows = conn.execute(
        sa.text(
            "SELECT their_code, their_name, category, updated_by, updated_at FROM hotline_category_map "
            "WHERE hotline_code = :c ORDER BY their_code"
        ),
        {"c": code},
    )
    return [dict(r._mapping) for r in rows]


def put_category(conn: Conn, actor: str, code: str, their_code: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Map the hotline's category ``their_code`` to gridmap's ``category`` (insert or replace)."""
    check_code(code)
    their_code = their_code.strip()
    if not their_code or len(their_code) > MAX_CODE:
        raise WebhookInputError("their_code", their_code, f"must be 1 to {MAX_CODE} characters")
    try:
        category = rules.check_category(data.get("category"))
    except rules.RuleError as exc:
        raise WebhookInputError("category", data.get("category"), str(exc)) from None
    name = data.get("their_name")
    if name is not None and (not isinstance(name, str) or len(name) > 100):
        raise WebhookInputError("their_name", name, "must be text of at most 100 characters")
    conn.execute(
        sa.text(
            "INSERT INTO hotline_category_map (hotline_code, their_code, their_name, category, updated_by) "
            "VALUES (:c, :t, :n, :cat, :actor) ON CONFLICT (hotline_code, their_code) DO UPDATE SET "
            "their_name = EXCLUDED.their_name, category = EXCLUDED.category, updated_by = EXCLUDED.updated_by, "
            "updated_at = now()"
        ),
        {"c": code, "t": their_code, "n": name, "cat": category, "actor": actor},
    )
    audit.record(conn, actor, "hotline.category", f"hotline:{code}", their_code=their_code, category=category)
    return next(r for r in list_categories(conn, code) if r["their_code"] == their_code)


def delete_category(conn: Conn, actor: str, code: str, their_code: str) -> None:
    check_code(code)
    gone = conn.execute(
        sa.text("DELETE FROM hotline_category_map WHERE hotline_code = :c AND their_code = :t RETURNING 1"),
        {"c": code, "t": their_code},
    ).scalar()
    if gone is None:
        raise HotlineNotFound(f"hotline {code} has no category {their_code!r}")
    audit.record(conn, actor, "hotline.category.delete", f"hotline:{code}", their_code=their_code)


def mapped_category(conn: Conn, code: str, their_code: str) -> str | None:
    found = conn.execute(
        sa.text("SELECT category FROM hotline_category_map WHERE hotline_code = :c AND their_code = :t"),
        {"c": code, "t": their_code},
    ).scalar()
    return None if found is None else str(found)
