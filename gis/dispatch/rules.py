"""The routing rules as data (``routing_rules``, read by gis.dispatch.routing): listing, adding,
switching off. Each value is checked against the vocabularies; a rule naming an org unit must
name one that exists. Every change is audited."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gis.core import audit
from gis.core.vocab import ASSIGNMENT_ROLES, ESCALATION_LEVELS, PERSON_TARGETS, ROUTING_PICKS, ROUTING_TARGETS
from gis.dispatch.errors import DispatchInputError
from gis.incidents import rules
from gis.spatial.areas import Conn

RULE_COLUMNS = "id, source, category, level, target, org_unit_code, role, priority, pick, enabled, note"
_FIELDS = "source, category, level, target, org_unit_code, role, priority, pick, note"
_INSERT = f"INSERT INTO routing_rules ({_FIELDS}) VALUES (:{_FIELDS.replace(', ', ', :')}) RETURNING {RULE_COLUMNS}"  # noqa: S608


def list_rules(conn: Conn, *, enabled_only: bool = False) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            f"SELECT {RULE_COLUMNS} FROM routing_rules "  # noqa: S608
            "WHERE NOT :only OR enabled ORDER BY priority, id"
        ),
        {"only": enabled_only},
    )
    return [dict(r._mapping) for r in rows]


def _one_of(field: str, value: Any, known: Any, required: bool = False) -> Any:
    if value is None and not required:
        return None
    if not isinstance(value, str) or value not in known:
        raise DispatchInputError(field, f"{value!r} is not one of {', '.join(known)}")
    return value


def create_rule(conn: Conn, actor: str, data: dict[str, Any]) -> dict[str, Any]:
    """A new rule: source, category, level (each optional: any), target, org_unit_code (for the
    target ``org_unit``), role (lead or co), priority (smaller first), pick (``first`` or, for a
    lead rule of a person target, ``nearest``: gis.dispatch.routing), note."""
    values = {
        "source": _one_of("source", data.get("source"), rules.SOURCES),
        "category": _one_of("category", data.get("category"), rules.CATEGORIES),
        "level": _one_of("level", data.get("level"), ESCALATION_LEVELS),
        "target": _one_of("target", data.get("target"), ROUTING_TARGETS, required=True),
        "role": _one_of("role", data.get("role") or "lead", ASSIGNMENT_ROLES, required=True),
        "org_unit_code": data.get("org_unit_code"),
        "priority": data.get("priority", 100),
        "pick": _one_of("pick", data.get("pick") or "first", ROUTING_PICKS, required=True),
        "note": str(data.get("note") or "")[:500],
    }
    code = values["org_unit_code"]
    if values["target"] == "org_unit":
        if not code:
            raise DispatchInputError("org_unit_code", "is required for the target org_unit")
        if conn.execute(sa.text("SELECT 1 FROM org_units WHERE code = :c"), {"c": code}).scalar() is None:
            raise DispatchInputError("org_unit_code", f"no organisation unit with code {code!r}")
    elif code is not None:
        raise DispatchInputError("org_unit_code", f"only the target org_unit names a unit, not {values['target']}")
    if values["pick"] == "nearest" and values["target"] not in PERSON_TARGETS:
        raise DispatchInputError(
            "pick", f"'nearest' chooses among people on duty ({', '.join(PERSON_TARGETS)}), not {values['target']}"
        )
    if values["pick"] == "nearest" and values["role"] != "lead":
        raise DispatchInputError("pick", "'nearest' chooses a lead; a co rule offers the incident to all its holders")
    if isinstance(values["priority"], bool) or not isinstance(values["priority"], int):
        raise DispatchInputError("priority", f"{values['priority']!r} is not an integer")
    if not -1_000_000 <= values["priority"] <= 1_000_000:
        raise DispatchInputError("priority", f"{values['priority']} is out of range [-1000000, 1000000]")
    row = conn.execute(
        sa.text(_INSERT),
        values,
    ).one()
    detail = {("routes_to" if k == "target" else k): v for k, v in values.items()}  # ``target`` is the audit's own
    audit.record(conn, actor, "routing_rule.create", f"routing_rule/{row.id}", **detail)
    return dict(row._mapping)


def set_enabled(conn: Conn, actor: str, rule_id: int, enabled: bool) -> dict[str, Any] | None:
    """Switch a rule on or off (rules are kept: assignments name the rule that made them)."""
    row = conn.execute(
        sa.text(f"UPDATE routing_rules SET enabled = :e WHERE id = :id RETURNING {RULE_COLUMNS}"),  # noqa: S608
        {"e": enabled, "id": rule_id},
    ).one_or_none()
    if row is not None:
        audit.record(
            conn, actor, "routing_rule.enable" if enabled else "routing_rule.disable", f"routing_rule/{rule_id}"
        )
    return dict(row._mapping) if row is not None else None
