"""Reading hazards: one hazard with its history and incident links, and ``GET /hazards`` with the
shared filter semantics of incidents (gis.incidents.filter): area codes of any level and of the
police overlay, several values of a field are alternatives, ``start``/``end`` bound the finding
time (start inclusive, end exclusive), ``overdue`` True keeps only those and False only the others,
and the caller's scope always applies.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gis.core.timeparse import TimeValueError, check_window
from gis.core.vocab import (
    ASSIGN_COLUMNS,
    ASSIGNED_LAYERS,
    HAZARD_PARTIES,
    HAZARD_SEVERITIES,
    HAZARD_SOURCES,
    HAZARD_STATUSES,
)
from gis.fieldwork.common import NotFound
from gis.fieldwork.links import incidents_of
from gis.fieldwork.overdue import is_hazard_overdue
from gis.incidents.filter import FilterError
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn

_CODE = re.compile(r"^[0-9A-Za-z_\-]{1,32}$")
Codes = tuple[str, ...]
_VOCAB = {
    "status": HAZARD_STATUSES,
    "severity": HAZARD_SEVERITIES,
    "responsible_party": HAZARD_PARTIES,
    "source": HAZARD_SOURCES,
}


@dataclass(frozen=True)
class HazardFilter:
    town: Codes = ()
    village: Codes = ()
    grid: Codes = ()
    micro_grid: Codes = ()
    station: Codes = ()
    beat: Codes = ()
    category: Codes = ()
    status: Codes = ()
    severity: Codes = ()
    responsible_party: Codes = ()
    source: Codes = ()
    open_only: bool = False
    overdue: bool | None = None
    building_id: int | None = None
    incident_id: int | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    scope: Scope = WHOLE_COUNTY

    def __post_init__(self) -> None:
        for field in (*ASSIGNED_LAYERS, "category"):
            for value in getattr(self, field):
                if not _CODE.match(value):
                    raise FilterError(field, value, "is not a code (letters, digits, _ and -; at most 32)")
        for field, accepted in _VOCAB.items():
            for value in getattr(self, field):
                if value not in accepted:
                    raise FilterError(field, value, f"is not one of {', '.join(accepted)}")
        try:
            check_window(self.start, self.end)
        except TimeValueError as exc:
            raise FilterError("start", self.start, "", message=exc.message) from None

    def where(self, alias: str = "h", now: str = "now()") -> tuple[str, dict[str, Any]]:
        a = f"{alias}."
        conds: list[str] = []
        params: dict[str, Any] = {}
        for layer in ASSIGNED_LAYERS:
            codes = getattr(self, layer)
            if codes:
                # A code of any level matches the rows inside it (prefix), like the incident filter.
                conds.append(f"{a}{layer}_code LIKE ANY(:f_{layer})")
                params[f"f_{layer}"] = [c + "%" for c in codes]
        for field in ("category", *_VOCAB):
            values = getattr(self, field)
            if values:
                conds.append(f"{a}{field} = ANY(:f_{field})")
                params[f"f_{field}"] = list(values)
        if self.open_only:
            conds.append(f"{a}status <> 'rectified'")
        if self.overdue is not None:
            conds.append(("" if self.overdue else "NOT ") + is_hazard_overdue(alias, now))
        if self.building_id is not None:
            conds.append(f"{a}building_id = :f_building")
            params["f_building"] = self.building_id
        if self.incident_id is not None:
            linked = "SELECT 1 FROM hazard_incidents l WHERE l.incident_id = :f_inc AND l.hazard_id = "
            conds.append(f"EXISTS ({linked}{a}id)")
            params["f_inc"] = self.incident_id
        if self.start is not None:
            conds.append(f"{a}found_at >= :f_start")
            params["f_start"] = self.start
        if self.end is not None:
            conds.append(f"{a}found_at < :f_end")
            params["f_end"] = self.end
        in_scope, scope_params = self.scope.where(alias)
        conds.append(in_scope)
        params.update(scope_params)
        return " AND ".join(conds), params


_COLUMNS = ", ".join(
    [
        *(
            f"h.{c}"
            for c in (
                "id", "category", "severity", "status", "description", "found_at", "rectify_by", "rectified_at",
                "responsible_party", "source", "building_id", "inspection_id", "item_code", "escalation_level",
                "escalated_at", "escalation_due_at", "overdue_at", "notified_at", "submitted_at", "reported_by",
                "updated_at", *ASSIGN_COLUMNS,
            )
        ),
        "ST_X(h.geom) AS lon",
        "ST_Y(h.geom) AS lat",
        f"{is_hazard_overdue('h')} AS overdue",
    ]
)  # fmt: skip


def list_hazards(conn: Conn, flt: HazardFilter, limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    where, params = flt.where("h")
    rows = conn.execute(
        sa.text(
            f"SELECT {_COLUMNS}, count(*) OVER () AS total FROM hazards h WHERE {where} "  # noqa: S608
            "ORDER BY h.found_at DESC, h.id DESC LIMIT :lim OFFSET :off"
        ),
        {**params, "lim": limit, "off": offset},
    ).mappings()
    items = [dict(r) for r in rows]
    total = items[0].pop("total") if items else 0
    for item in items[1:]:
        item.pop("total")
    if not items and offset:
        total = conn.execute(sa.text(f"SELECT count(*) FROM hazards h WHERE {where}"), params).scalar_one()  # noqa: S608
    return items, int(total)


def get_hazard(conn: Conn, hazard_id: int, scope: Scope = WHOLE_COUNTY) -> dict[str, Any]:
    """One hazard with its history (events, oldest first) and its incidents."""
    in_scope, params = scope.where("h")
    row = (
        conn.execute(
            sa.text(f"SELECT {_COLUMNS} FROM hazards h WHERE h.id = :id AND {in_scope}"),  # noqa: S608
            {"id": hazard_id, **params},
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound("hazard", hazard_id)
    out = dict(row)
    events = conn.execute(
        sa.text(
            "SELECT at, actor, action, from_status, to_status, deadline, inspection_id, note FROM hazard_events "
            "WHERE hazard_id = :id ORDER BY id"
        ),
        {"id": hazard_id},
    ).mappings()
    out["history"] = [dict(e) for e in events]
    out["incidents"] = incidents_of(conn, hazard_id)
    return out
