"""API keys: random secrets shown once, stored as SHA-256 hashes (high-entropy keys need no slow hash).

A key belongs to an account (``accounts``): the account has the role and the scope
(``gis.people.scope``) and may belong to a person or an organisation unit. Keys made without
naming an account get one of their own (same name, role and scope); a new key for a person or a
unit with the same role and scope reuses that account, so "their keys" are one account.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from gis.core.vocab import ROLES
from gis.people.scope import WHOLE_COUNTY, Scope, ScopeError
from gis.spatial.areas import Conn


class ApiKeyError(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    """Who calls: the key, its account's role and scope, and the person or unit the account is of
    (None: a system or an integration)."""

    key_id: int
    name: str
    role: str
    scope: Scope = WHOLE_COUNTY
    account_id: int | None = None
    person_id: int | None = None
    org_unit_id: int | None = None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _unit_scope(conn: Conn, org_unit_id: int) -> Scope:
    """An organisation unit's area as a scope (a county-wide unit: the whole county)."""
    row = conn.execute(
        sa.text("SELECT layer, area_code FROM org_units WHERE id = :id"), {"id": org_unit_id}
    ).one_or_none()
    if row is None:
        raise ApiKeyError(f"no organisation unit with id {org_unit_id}")
    return WHOLE_COUNTY if row.layer == "county" else Scope.parse(row.area_code)


def account_for(
    conn: Conn,
    role: str,
    name: str,
    scope: Scope | None = None,
    *,
    person_id: int | None = None,
    org_unit_id: int | None = None,
) -> int:
    """The account of a new key: an existing one of the same person or unit, role and scope, else a
    new one. A unit's key with no scope given is scoped to the unit's area."""
    if role not in ROLES:
        raise ApiKeyError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if not name.strip():
        raise ApiKeyError("a key needs a name")
    if (
        person_id is not None
        and conn.execute(sa.text("SELECT 1 FROM people WHERE id = :id"), {"id": person_id}).scalar() is None
    ):
        raise ApiKeyError(f"no person with id {person_id}")
    if scope is None:
        scope = _unit_scope(conn, org_unit_id) if org_unit_id is not None else WHOLE_COUNTY
    elif org_unit_id is not None:
        _unit_scope(conn, org_unit_id)  # the unit must exist
    try:
        scope.check(conn)
    except ScopeError as exc:
        raise ApiKeyError(str(exc)) from None
    params = {"n": name.strip(), "r": role, "s": scope.stored(), "p": person_id, "o": org_unit_id}
    if person_id is not None or org_unit_id is not None:
        existing = conn.execute(
            sa.text(
                "SELECT id FROM accounts WHERE role = :r AND scope = CAST(:s AS text[]) AND disabled_at IS NULL "
                "AND person_id IS NOT DISTINCT FROM :p AND org_unit_id IS NOT DISTINCT FROM :o ORDER BY id LIMIT 1"
            ),
            params,
        ).scalar()
        if existing is not None:
            return int(existing)
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO accounts (name, role, scope, person_id, org_unit_id) "
                "VALUES (:n, :r, CAST(:s AS text[]), :p, :o) RETURNING id"
            ),
            params,
        ).scalar_one()
    )


def create_key(
    conn: Conn,
    role: str,
    name: str,
    scope: Scope | str | None = None,
    *,
    person_id: int | None = None,
    org_unit_id: int | None = None,
) -> str:
    """Create a key (and its account, see ``account_for``) and return it in full; only its hash is
    stored. ``scope``: a Scope or ``CODE[,CODE]``; None is the whole county (or a unit's area)."""
    if isinstance(scope, str):
        try:
            scope = Scope.parse(scope)
        except ScopeError as exc:
            raise ApiKeyError(str(exc)) from None
    account = account_for(conn, role, name, scope, person_id=person_id, org_unit_id=org_unit_id)
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(24)
    conn.execute(
        sa.text("INSERT INTO api_keys (name, role, prefix, key_hash, account_id) VALUES (:n, :r, :p, :h, :a)"),
        {"n": name.strip(), "r": role, "p": prefix, "h": _hash(secret), "a": account},
    )
    return f"gm_{prefix}_{secret}"


def verify_key(conn: Conn, presented: str) -> Principal | None:
    """The principal of a presented key (None: malformed, unknown, revoked, or its account disabled).
    The role and scope are the account's."""
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "gm":
        return None
    row = conn.execute(
        sa.text(
            "SELECT k.id, k.name, k.key_hash, a.id AS account_id, a.role, a.scope, a.person_id, a.org_unit_id "
            "FROM api_keys k JOIN accounts a ON a.id = k.account_id "
            "WHERE k.prefix = :p AND k.revoked_at IS NULL AND a.disabled_at IS NULL"
        ),
        {"p": parts[1]},
    ).one_or_none()
    if row is None or not hmac.compare_digest(row.key_hash, _hash(parts[2])):
        return None
    return Principal(row.id, row.name, row.role, Scope.parse(row.scope), row.account_id, row.person_id, row.org_unit_id)


def list_keys(conn: Conn) -> list[dict[str, object]]:
    rows = conn.execute(
        sa.text(
            "SELECT k.id, k.name, a.role, k.prefix, k.created_at, k.last_used_at, k.revoked_at, k.account_id, "
            "a.scope, a.person_id, a.org_unit_id FROM api_keys k JOIN accounts a ON a.id = k.account_id ORDER BY k.id"
        )
    ).all()
    return [dict(r._mapping) | {"scope": Scope.parse(r.scope).label()} for r in rows]


def revoke_key(conn: Conn, key_id: int) -> bool:
    revoked = conn.execute(
        sa.text("UPDATE api_keys SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL RETURNING id"),
        {"id": key_id, "now": dt.datetime.now(dt.UTC)},
    ).scalar()
    return revoked is not None


def account_names_within(conn: Conn, scope: Scope) -> list[str]:
    """The names that keys of accounts inside ``scope`` act under (the audit's actors): accounts
    whose scope ``scope`` covers; never county-wide ones unless ``scope`` is the whole county."""
    rows = conn.execute(sa.text("SELECT k.name, a.scope FROM api_keys k JOIN accounts a ON a.id = k.account_id")).all()
    return sorted({r.name for r in rows if scope.covers(Scope.parse(r.scope))})
