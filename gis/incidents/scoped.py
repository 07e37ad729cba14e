"""Intake by a scoped key (``gis.people.scope``): the report must fall inside the key's scope.

Where an incident falls is known once it is assigned, which the insert does; so a scoped report
is stored in a savepoint, checked, and rolled back when it falls outside (``OutsideScope``, which
the API answers with 403 naming the unit and the scope). Nothing of a refused report stays: not
the row, not its history, not its audit entry. Unscoped keys keep the one-statement autocommit
path (``gis.incidents.intake.create_incident`` directly).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from gis.core.settings import Settings
from gis.core.vocab import ASSIGNED_LAYERS
from gis.incidents.intake import create_incident
from gis.people.scope import Scope


class OutsideScope(PermissionError):
    """The report falls outside the key's scope; ``unit`` names where it falls."""

    def __init__(self, unit: str, scope: Scope) -> None:
        super().__init__(f"the incident falls in {unit}, outside this key's scope {scope.label()}")
        self.unit = unit


def create_incident_in_scope(
    session: Session,
    scope: Scope,
    data: Mapping[str, Any],
    actor: str,
    idempotency_key: str | None = None,
    settings: Settings | None = None,
) -> tuple[dict[str, Any], bool]:
    """``create_incident`` for a key limited to ``scope``: (incident, created), or OutsideScope with
    nothing stored. A replay of an incident outside the scope is refused the same way."""
    with session.begin_nested():
        incident, created = create_incident(session, data, actor, idempotency_key, settings)
        if not scope.contains_any(incident.get(f"{layer}_code") for layer in ASSIGNED_LAYERS):
            unit = incident.get("grid_code") or incident.get("town_code") or "no grid of the county"
            raise OutsideScope(str(unit), scope)
    return incident, created
