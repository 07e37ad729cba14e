"""API keys: random secrets shown once, stored as SHA-256 hashes (high-entropy keys need no slow hash)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from gis.core.models import ROLES
from gis.spatial.areas import Conn


class ApiKeyError(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    key_id: int
    name: str
    role: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(conn: Conn, role: str, name: str) -> str:
    """Create a key and return it in full; only its hash is stored."""
    if role not in ROLES:
        raise ApiKeyError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if not name.strip():
        raise ApiKeyError("a key needs a name")
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(24)
    conn.execute(
        sa.text("INSERT INTO api_keys (name, role, prefix, key_hash) VALUES (:n, :r, :p, :h)"),
        {"n": name.strip(), "r": role, "p": prefix, "h": _hash(secret)},
    )
    return f"gm_{prefix}_{secret}"


def verify_key(conn: Conn, presented: str) -> Principal | None:
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "gm":
        return None
    row = conn.execute(
        sa.text("SELECT id, name, role, key_hash FROM api_keys WHERE prefix = :p AND revoked_at IS NULL"),
        {"p": parts[1]},
    ).one_or_none()
    if row is None or not hmac.compare_digest(row.key_hash, _hash(parts[2])):
        return None
    return Principal(row.id, row.name, row.role)


def list_keys(conn: Conn) -> list[dict[str, object]]:
    rows = conn.execute(
        sa.text("SELECT id, name, role, prefix, created_at, last_used_at, revoked_at FROM api_keys ORDER BY id")
    ).all()
    return [dict(r._mapping) for r in rows]


def revoke_key(conn: Conn, key_id: int) -> bool:
    revoked = conn.execute(
        sa.text("UPDATE api_keys SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL RETURNING id"),
        {"id": key_id, "now": dt.datetime.now(dt.UTC)},
    ).scalar()
    return revoked is not None
