"""Who serves where: postings listed by area, role and date, and the team (班子) of a place.

The team of a place is every posting in force whose area is one of the units covering it: the
grid, the micro-grid, the village (so the chief grid leader 总网格长 of a village shows on every
grid of it), the police beat (the beat officer) and the station. Department and command-centre
staff are reached through their organisation units, not listed on every point.

``TeamBook`` holds the teams in memory for the coordinate lookups (gis.spatial.lookup): postings
in force on one county day, per unit, in full and masked. It is rebuilt when people or postings
change (NOTIFY, migration 0011) and after county midnight, when postings start or end by date.
A lookup ``as_of`` a past date gets that date's boundaries but today's team; ``team_of`` and
``list_postings`` answer for any day.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from gis.core.privacy import mask_id_card, mask_staff
from gis.core.vocab import COUNTY_TZ
from gis.people.rules import TEAM_ORDER, TEAM_ROLES, county_today
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.people.write import POSTING_COLUMNS, POSTING_FROM
from gis.spatial.areas import Conn

# The order units of a place are listed in when roles tie.
TEAM_LAYERS = ("grid", "micro_grid", "village", "beat", "station")
IN_FORCE = "pe.status = 'active' AND po.starts_on <= :on AND (po.ends_on IS NULL OR po.ends_on >= :on)"


def list_postings(
    conn: Conn,
    *,
    area_code: str | None = None,
    layer: str | None = None,
    role: str | None = None,
    active_on: dt.date | None = None,
    person_id: int | None = None,
    org_unit: str | None = None,
    limit: int = 100,
    offset: int = 0,
    scope: Scope = WHOLE_COUNTY,
) -> tuple[int, list[dict[str, Any]]]:
    """Postings matching every given filter (``active_on``: in force that day, person active) whose
    area is inside ``scope`` (a code-prefix test; postings elsewhere are absent, not counted)."""
    in_scope, scope_params = scope.code_where("po.area_code")
    where = [
        "(CAST(:area AS text) IS NULL OR po.area_code = :area)",
        "(CAST(:layer AS text) IS NULL OR po.layer = :layer)",
        "(CAST(:role AS text) IS NULL OR po.role = :role)",
        "(CAST(:person AS bigint) IS NULL OR po.person_id = :person)",
        "(CAST(:unit AS text) IS NULL OR ou.code = :unit)",
        in_scope,
    ]
    params: dict[str, Any] = {
        "area": area_code,
        "layer": layer,
        "role": role,
        "person": person_id,
        "unit": org_unit,
        "limit": limit,
        "offset": offset,
        **scope_params,
    }
    if active_on is not None:
        where.append(IN_FORCE)
        params["on"] = active_on
    clause = " AND ".join(where)
    total = conn.execute(sa.text(f"SELECT count(*) FROM {POSTING_FROM} WHERE {clause}"), params).scalar_one()  # noqa: S608
    rows = conn.execute(
        sa.text(
            f"SELECT {POSTING_COLUMNS} FROM {POSTING_FROM} WHERE {clause} "  # noqa: S608
            "ORDER BY po.layer, po.area_code, po.role, po.starts_on, po.id LIMIT :limit OFFSET :offset"
        ),
        params,
    ).all()
    return int(total), [dict(r._mapping) for r in rows]


def mask_posting(posting: dict[str, Any], sees_personal_data: bool) -> dict[str, Any]:
    out = mask_staff(posting, sees_personal_data)
    if not sees_personal_data and "id_card" in out:
        out["id_card"] = mask_id_card(out["id_card"])
    return out


def team_of(
    conn: Conn, units: Iterable[tuple[str, str | None]], sees_personal_data: bool, on: dt.date | None = None
) -> list[dict[str, Any]]:
    """The team serving the given (layer, code) units on day ``on`` (default today), in role order:
    role, name, phone (masked unless seen), and the layer and code of the area each is posted to."""
    pairs = [(layer, code) for layer, code in units if code is not None]
    if not pairs:
        return []
    rows = conn.execute(
        sa.text(
            "SELECT po.id, po.role, pe.name, pe.phone, po.layer, po.area_code FROM postings po "  # noqa: S608
            "JOIN people pe ON pe.id = po.person_id "
            "JOIN unnest(CAST(:layers AS text[]), CAST(:codes AS text[])) AS u(layer, code) "
            f"ON po.layer = u.layer AND po.area_code = u.code WHERE {IN_FORCE} AND po.role = ANY(:roles)"
        ),
        {
            "layers": [p[0] for p in pairs],
            "codes": [p[1] for p in pairs],
            "on": on or county_today(),
            "roles": list(TEAM_ROLES),
        },
    ).all()
    order = {pair: i for i, pair in enumerate(pairs)}
    ranked = sorted(rows, key=lambda r: (TEAM_ORDER[r.role], order[(r.layer, r.area_code)], r.id))
    return [mask_staff(_entry(r.role, r.name, r.phone, r.layer, r.area_code), sees_personal_data) for r in ranked]


def _entry(role: str, name: str, phone: str | None, layer: str, code: str) -> dict[str, Any]:
    return {"role": role, "name": name, "phone": phone, "layer": layer, "area_code": code}


def _next_midnight_s() -> float:
    """Seconds until the next county midnight, when postings may start or end."""
    now = dt.datetime.now(COUNTY_TZ)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), COUNTY_TZ)
    return (midnight - now).total_seconds()


@dataclass
class TeamBook:
    """Team postings in force on one day, per (layer, code): (rank, full entry, masked entry)."""

    by_unit: dict[tuple[str, str], list[tuple[int, dict[str, Any], dict[str, Any]]]] = field(default_factory=dict)
    expires: float = float("inf")  # time.monotonic() after which the day has changed
    _merged: dict[tuple[object, ...], list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def from_db(cls, conn: Conn, on: dt.date | None = None) -> TeamBook:
        rows = conn.execute(
            sa.text(
                "SELECT po.id, po.role, pe.name, pe.phone, po.layer, po.area_code FROM postings po "  # noqa: S608
                f"JOIN people pe ON pe.id = po.person_id WHERE {IN_FORCE} AND po.role = ANY(:roles) "
                "ORDER BY po.layer, po.area_code, po.id"
            ),
            {"on": on or county_today(), "roles": list(TEAM_ROLES)},
        ).all()
        book = cls(expires=time.monotonic() + _next_midnight_s() if on is None else float("inf"))
        for r in rows:
            full = _entry(r.role, r.name, r.phone, r.layer, r.area_code)
            book.by_unit.setdefault((r.layer, r.area_code), []).append(
                (TEAM_ORDER[r.role], full, mask_staff(full, False))
            )
        return book

    @property
    def fresh(self) -> bool:
        return time.monotonic() < self.expires

    def of(self, units: dict[str, Any], sees_personal_data: bool) -> list[dict[str, Any]]:
        """The team of a place given its unit codes by layer (grid, micro_grid, village, beat, station)."""
        key = (*(units.get(layer) for layer in TEAM_LAYERS), sees_personal_data)
        found = self._merged.get(key)
        if found is None:
            entries = []
            for pos, layer in enumerate(TEAM_LAYERS):
                code = units.get(layer)
                if code is not None:
                    for rank, full, masked in self.by_unit.get((layer, str(code)), ()):
                        entries.append((rank, pos, full if sees_personal_data else masked))
            entries.sort(key=lambda t: (t[0], t[1]))
            found = [e for _, _, e in entries]
            # Distinct places are bounded by the units' combinations; the book is rebuilt on change.
            self._merged[key] = found
        return found

    def of_grid(self, grid_code: str | None, sees_personal_data: bool) -> list[dict[str, Any]]:
        """The postings to one grid only (the old per-grid staff list)."""
        if grid_code is None:
            return []
        return [e[1] if sees_personal_data else e[2] for e in self.by_unit.get(("grid", grid_code), [])]
