"""The records attachments belong to: one line per kind, naming its table and how its scope and
position are read.

An attachment names its owner generically (``owner_kind``, ``owner_id``: migration 0020), so every
kind of field record uses the same table, store and endpoints. A kind is one ``OwnerKind`` in
``OWNERS``; the API then serves ``POST/GET /<path>/{id}/attachments`` for it (api.routers.attachments)
and checks the caller's scope through it. A kind's table must have ``id`` and the ``<layer>_code``
columns of ``gis.people.scope.Scope.where`` (directly, or through a join in ``source``), and a point
``geom`` in 4326 (or None when its records have no position). For example, when their tables land:

    "hazard": OwnerKind("hazard", "hazards", "hazards t"),
    "visit": OwnerKind("visit", "visits", "visits t"),
    "inspection": OwnerKind("inspection", "inspections", "inspections t JOIN buildings b ON b.id = t.building_id",
                            scope_alias="b"),
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from gis.core.vocab import ATTACHMENT_OWNER_KINDS
from gis.people.scope import SCOPE_LAYERS, Scope
from gis.spatial.areas import Conn


@dataclass(frozen=True)
class OwnerKind:
    """``kind`` as stored in attachments.owner_kind; ``path`` the URL segment (/incidents/{id});
    ``source`` the FROM clause whose main table is aliased ``t``; ``scope_alias`` the alias whose
    ``<layer>_code`` columns the scope is matched on; ``position`` a point expression or None."""

    kind: str
    path: str
    source: str
    scope_alias: str = "t"
    position: str | None = "t.geom"
    layers: tuple[str, ...] = SCOPE_LAYERS

    def __post_init__(self) -> None:
        if self.kind not in ATTACHMENT_OWNER_KINDS:
            raise ValueError(f"owner kind {self.kind!r} is not one of {ATTACHMENT_OWNER_KINDS} (gis.core.vocab)")


# Identifiers only, fixed here in code: every value (ids, scope codes) is a bound parameter.
OWNERS: dict[str, OwnerKind] = {
    "incident": OwnerKind("incident", "incidents", "incidents t"),
    "hazard": OwnerKind("hazard", "hazards", "hazards t"),
    # A visit and an inspection are in the scope of their building; their position is where the
    # worker or the team stood.
    "visit": OwnerKind("visit", "visits", "visits t JOIN buildings b ON b.id = t.building_id", scope_alias="b"),
    "inspection": OwnerKind(
        "inspection", "inspections", "inspections t JOIN buildings b ON b.id = t.building_id", scope_alias="b"
    ),
}


class OwnerNotFound(LookupError):
    """No such record, or one outside the caller's scope: the same answer (404)."""

    def __init__(self, kind: str, owner_id: int) -> None:
        super().__init__(f"no {kind} with id {owner_id}")
        self.kind = kind
        self.owner_id = owner_id


def owner_kind(kind: str) -> OwnerKind:
    found = OWNERS.get(kind)
    if found is None:
        raise ValueError(f"attachments of {kind!r} are not served; kinds: {', '.join(OWNERS)}")
    return found


def locate(conn: Conn, kind: str, owner_id: int, scope: Scope) -> tuple[float, float] | None:
    """The owner's position (lon, lat in WGS-84; None when it has none), after checking that it
    exists inside ``scope`` (OwnerNotFound otherwise)."""
    owner = owner_kind(kind)
    in_scope, params = scope.where(owner.scope_alias, layers=owner.layers)
    point = owner.position or "NULL::geometry"
    query = sa.text(
        f"SELECT ST_X({point}) AS lon, ST_Y({point}) AS lat FROM {owner.source} "  # noqa: S608
        f"WHERE t.id = :owner_id AND {in_scope}"
    )
    row = conn.execute(query, {"owner_id": owner_id, **params}).one_or_none()
    if row is None:
        raise OwnerNotFound(kind, owner_id)
    return None if row.lon is None else (float(row.lon), float(row.lat))
