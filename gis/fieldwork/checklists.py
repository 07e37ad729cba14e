"""Versioned checklists (检查表): a kind (rental safety, fire, production safety, street shops,
enterprises) in numbered versions. A version never changes once written: a new edition of the
rules is a new version, and each inspection keeps the version it was made with, so an old
inspection's results keep their meaning. Each item says what its failure implies: the hazard's
severity, the days given to rectify it, its hazard category and the party usually responsible.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from gis.core import audit
from gis.core.vocab import CHECKLIST_KINDS, HAZARD_CATEGORIES, HAZARD_PARTIES, HAZARD_SEVERITIES
from gis.fieldwork.common import FieldworkInputError, NotFound, text
from gis.spatial.areas import Conn

_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_ITEMS = 200

_HEAD = "SELECT id, kind, version, name, created_at FROM checklists"
_ITEMS_SQL = sa.text(
    "SELECT code, position, text, severity, rectify_days, hazard_category, party "
    "FROM checklist_items WHERE checklist_id = :id ORDER BY position"
)

# Versions are immutable, so a version read once serves every later request of this process.
_cache: dict[int, dict[str, Any]] = {}
_cache_lock = threading.Lock()


def _load(conn: Conn, row: Mapping[str, Any] | sa.RowMapping) -> dict[str, Any]:
    cached = _cache.get(row["id"])
    if cached is not None:
        return cached
    items = [dict(r) for r in conn.execute(_ITEMS_SQL, {"id": row["id"]}).mappings()]
    checklist = {
        "id": row["id"],
        "kind": row["kind"],
        "version": row["version"],
        "name": row["name"],
        "created_at": row["created_at"],
        "items": items,
    }
    with _cache_lock:
        _cache[row["id"]] = checklist
    return checklist


def item_map(checklist: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["code"]: item for item in checklist["items"]}


def find(conn: Conn, kind: str, version: int | None = None) -> dict[str, Any] | None:
    """Version ``version`` of ``kind`` (None: the latest), with its items; None when there is none."""
    if version is None:
        sql = f"{_HEAD} WHERE kind = :kind ORDER BY version DESC LIMIT 1"
    else:
        sql = f"{_HEAD} WHERE kind = :kind AND version = :version"
    row = conn.execute(sa.text(sql), {"kind": kind, "version": version}).mappings().one_or_none()
    return None if row is None else _load(conn, row)


def by_id(conn: Conn, checklist_id: int) -> dict[str, Any]:
    cached = _cache.get(checklist_id)
    if cached is not None:
        return cached
    row = (
        conn.execute(
            sa.text("SELECT id, kind, version, name, created_at FROM checklists WHERE id = :id"), {"id": checklist_id}
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound("checklist", checklist_id)
    return _load(conn, row)


def requested(data: Mapping[str, Any], default_kind: str = "rental_safety") -> tuple[str, int | None]:
    """The kind and version a body names (``checklist_kind``, ``checklist_version``; None: the latest)."""
    kind = data.get("checklist_kind") or default_kind
    if kind not in CHECKLIST_KINDS:
        raise FieldworkInputError("checklist_kind", f"{str(kind)[:40]!r} is not one of {', '.join(CHECKLIST_KINDS)}")
    version = data.get("checklist_version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version > 100_000):
        raise FieldworkInputError("checklist_version", f"{version!r} is not a version number (1, 2, ...)")
    if version is not None and version < 1:
        raise FieldworkInputError("checklist_version", f"{version!r} is not a version number (1, 2, ...)")
    return str(kind), version


def missing(kind: str, version: int | None) -> FieldworkInputError:
    what = f"version {version} of {kind!r}" if version is not None else f"any version of {kind!r}"
    return FieldworkInputError("checklist_version" if version is not None else "checklist_kind", f"there is no {what}")


def resolve(conn: Conn, data: Mapping[str, Any], default_kind: str = "rental_safety") -> dict[str, Any]:
    """The checklist an inspection or campaign body names (the latest version of the kind when no
    version is given); 422 naming the field otherwise."""
    kind, version = requested(data, default_kind)
    found = find(conn, kind, version)
    if found is None:
        raise missing(kind, version)
    return found


def list_checklists(conn: Conn) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            "SELECT c.id, c.kind, c.version, c.name, c.created_at, count(i.code) AS items "
            "FROM checklists c LEFT JOIN checklist_items i ON i.checklist_id = c.id "
            "GROUP BY c.id ORDER BY c.kind, c.version"
        )
    ).mappings()
    return [dict(r) for r in rows]


def _item(raw: Any, n: int) -> dict[str, Any]:
    where = f"items[{n}]"
    if not isinstance(raw, Mapping):
        raise FieldworkInputError(where, "must be an object")
    code = raw.get("code")
    if not isinstance(code, str) or not _CODE.match(code):
        raise FieldworkInputError(f"{where}.code", f"{str(code)[:60]!r} is not a code (a-z, 0-9, _; at most 40)")
    body = text(raw, "text", 500, label=f"{where}.text")
    if body is None:
        raise FieldworkInputError(f"{where}.text", "missing")
    severity = raw.get("severity")
    if severity not in HAZARD_SEVERITIES:
        raise FieldworkInputError(f"{where}.severity", f"{severity!r} is not one of {', '.join(HAZARD_SEVERITIES)}")
    days = raw.get("rectify_days")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
        raise FieldworkInputError(f"{where}.rectify_days", f"{days!r} is not a number of days from 1 to 365")
    category = raw.get("hazard_category")
    if category not in HAZARD_CATEGORIES:
        raise FieldworkInputError(
            f"{where}.hazard_category", f"{str(category)[:60]!r} is not one of {', '.join(HAZARD_CATEGORIES)}"
        )
    party = raw.get("party", "landlord")
    if party not in HAZARD_PARTIES:
        raise FieldworkInputError(f"{where}.party", f"{party!r} is not one of {', '.join(HAZARD_PARTIES)}")
    return {"code": code, "text": body, "severity": severity, "days": days, "cat": category, "party": party}


def create_version(conn: Conn, kind: str, name: str, items: Sequence[Any], actor: str) -> dict[str, Any]:
    """The next version of ``kind`` with these items (the previous versions stay as they are)."""
    if kind not in CHECKLIST_KINDS:
        raise FieldworkInputError("kind", f"{str(kind)[:40]!r} is not one of {', '.join(CHECKLIST_KINDS)}")
    title = text({"name": name}, "name", 200)
    if title is None:
        raise FieldworkInputError("name", "missing")
    if not items or len(items) > MAX_ITEMS:
        raise FieldworkInputError("items", f"give 1 to {MAX_ITEMS} items, got {len(items)}")
    checked = [_item(raw, n) for n, raw in enumerate(items)]
    seen: set[str] = set()
    for n, item in enumerate(checked):
        if item["code"] in seen:
            raise FieldworkInputError(f"items[{n}].code", f"{item['code']!r} appears twice")
        seen.add(item["code"])
    # One version number per kind even with two writers at once: the unique (kind, version) refuses
    # the second, and the lock makes the second wait for the first instead.
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('checklist:' || :kind))"), {"kind": kind})
    checklist_id = conn.execute(
        sa.text(
            "INSERT INTO checklists (kind, version, name, created_by) "
            "SELECT CAST(:kind AS varchar), coalesce(max(version), 0) + 1, :name, :actor FROM checklists "
            "WHERE kind = CAST(:kind AS varchar) RETURNING id"  # one type for the one parameter
        ),
        {"kind": kind, "name": title, "actor": actor},
    ).scalar_one()
    conn.execute(
        sa.text(
            "INSERT INTO checklist_items (checklist_id, code, position, text, severity, rectify_days, "
            "hazard_category, party) VALUES (:id, :code, :pos, :text, :severity, :days, :cat, :party)"
        ),
        [{"id": checklist_id, "pos": n, **item} for n, item in enumerate(checked, start=1)],
    )
    audit.record(conn, actor, "checklist.create", f"checklist/{checklist_id}", kind=kind, items=len(checked))
    return by_id(conn, checklist_id)
