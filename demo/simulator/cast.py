"""Who acts in the simulation, and where reports come from.

Actors are accounts of the database (``accounts``, created once if missing, through
gis.people.keys.account_for): a person's account for field staff (the grid worker on patrol who
reports, the holder who accepts, arrives and handles), an organisation unit's account for the
centres (立案, dispatch, verification and closing, summonses) and for the units that hold
incidents, and an integration account for each hotline or app that reports. The history's actor
is the account's name, as it is for calls through the API.

Positions: recent stored incidents of the same category (the demo's geography of hotspots and
people), each county's own recent ones (the province demo loads its counties one after another:
the newest incidents overall would all be the last county's), else any recent incident, else a
point inside a grid of the boundaries in force; each jittered a little so that no two reports sit
on the same spot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa

from gis.spatial.areas import Conn

# The integration accounts that report for a source (grid patrols are reported by the grid's worker).
SOURCE_ACCOUNTS = {
    "resident_app": "居民APP接入",
    "hotline_110": "110接警台",
    "hotline_12345": "12345热线平台",
    "grid_patrol": "网格巡查接入",  # a grid without a worker on duty
}
CENTRE_FALLBACK = "县社会治理中心值班"  # no centre unit in the database (an older demo load)
# The department summoned (吹哨) for a category, by the suffix of its code (demo.jiashan.roster).
DEPARTMENT_FOR = {
    "illegal_construction": "ZHZF",
    "environment": "ZHZF",
    "pollution": "ZHZF",
    "production_safety": "YJJ",
    "hazardous_chemicals": "YJJ",
    "fire": "XFJY",
    "ebike_charging": "XFJY",
    "road_facility": "ZJJ",
    "rental_management": "ZJJ",
    "public_service": "SJJ",
}
POOL_PER_CATEGORY = 400


@dataclass(frozen=True)
class Place:
    lon: float
    lat: float
    grid_code: str | None


@dataclass
class Cast:
    """Account names by person, unit and integration, and the pools of positions (cached: the
    accounts, once written, stay)."""

    pools: dict[str, list[Place]] = field(default_factory=dict)
    general: list[Place] = field(default_factory=list)
    _names: dict[tuple[str, object], str] = field(default_factory=dict)
    _units: dict[tuple[str, str], tuple[int, str] | None] = field(default_factory=dict)

    # --- positions -------------------------------------------------------------------------
    def load_places(self, conn: Conn) -> None:
        rows = conn.execute(
            sa.text(
                "SELECT category, lon, lat, grid_code FROM ("
                "  SELECT category, county_code, ST_X(geom) AS lon, ST_Y(geom) AS lat, grid_code,"
                "         row_number() OVER (PARTITION BY county_code, category ORDER BY id DESC) AS rn"
                "  FROM incidents WHERE grid_code IS NOT NULL) x WHERE rn <= :n ORDER BY category, county_code, rn"
            ),
            {"n": POOL_PER_CATEGORY},
        ).all()
        for r in rows:
            self.pools.setdefault(r.category, []).append(Place(r.lon, r.lat, r.grid_code))
        self.general = [p for pool in self.pools.values() for p in pool[:50]]
        if not self.general:
            grids = conn.execute(
                sa.text(
                    "SELECT code, ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT code, ST_PointOnSurface(geom) AS p "
                    "FROM areas WHERE layer = 'grid' AND gen_to IS NULL) g ORDER BY code"
                )
            ).all()
            self.general = [Place(g.lon, g.lat, g.code) for g in grids]

    def place(self, category: str, rng: np.random.Generator) -> Place | None:
        pool = self.pools.get(category) or self.general
        if not pool:
            return None
        base = pool[int(rng.integers(len(pool)))]
        # ~30 m near a stored incident; ~150 m around a grid's inner point (the mini county's fallback).
        spread = 0.0003 if self.pools else 0.0015
        dx, dy = rng.normal(0.0, spread, 2)
        return Place(base.lon + float(dx), base.lat + float(dy), base.grid_code)

    # --- accounts --------------------------------------------------------------------------
    def _account(
        self,
        conn: Conn,
        key: tuple[str, object],
        role: str,
        name: str,
        person: int | None = None,
        unit: int | None = None,
    ) -> str:
        from gis.people import keys

        if key in self._names:
            return self._names[key]
        if person is not None or unit is not None:  # the person's or unit's existing account, else a new one
            account = keys.account_for(
                conn, role, name, person_id=person, org_unit_id=unit
            )  # the person's or unit's existing one, else new
            got = conn.execute(sa.text("SELECT name FROM accounts WHERE id = :a"), {"a": account}).scalar_one()
        else:
            got = conn.execute(
                sa.text(
                    "SELECT name FROM accounts WHERE name = :n AND person_id IS NULL AND org_unit_id IS NULL "
                    "AND disabled_at IS NULL ORDER BY id LIMIT 1"
                ),
                {"n": name},
            ).scalar()
            if got is None:
                keys.account_for(conn, role, name)
                got = name
        self._names[key] = str(got)
        return str(got)

    def person(self, conn: Conn, person_id: int) -> str:
        name = conn.execute(sa.text("SELECT name FROM people WHERE id = :p"), {"p": person_id}).scalar()
        return self._account(conn, ("person", person_id), "reporter", f"{name or '?'} (person {person_id})",
                             person=person_id)  # fmt: skip

    def unit(self, conn: Conn, unit_id: int) -> str:
        name = conn.execute(sa.text("SELECT name FROM org_units WHERE id = :u"), {"u": unit_id}).scalar()
        return self._account(conn, ("unit", unit_id), "dispatcher", str(name or f"unit {unit_id}"),
                             unit=unit_id)  # fmt: skip

    def integration(self, conn: Conn, name: str, role: str = "reporter") -> str:
        return self._account(conn, ("integration", name), role, name)

    def reporter(self, conn: Conn, source: str, grid_code: str | None, today: object) -> str:
        """The account that reports: the grid's worker on duty for a patrol, else the source's
        integration account."""
        if source == "grid_patrol" and grid_code:
            pid = conn.execute(
                sa.text(
                    "SELECT po.person_id FROM postings po JOIN people pe ON pe.id = po.person_id "
                    "WHERE po.layer = 'grid' AND po.area_code = :g AND po.role IN ('grid_worker', 'grid_leader') "
                    "AND pe.status = 'active' AND po.starts_on <= :t AND (po.ends_on IS NULL OR po.ends_on >= :t) "
                    "ORDER BY po.role = 'grid_worker' DESC, po.person_id LIMIT 1"
                ),
                {"g": grid_code, "t": today},
            ).scalar()
            if pid is not None:
                return self.person(conn, int(pid))
        return self.integration(conn, SOURCE_ACCOUNTS[source])

    # --- units -----------------------------------------------------------------------------
    def find_unit(self, conn: Conn, kind: str, area: str) -> tuple[int, str] | None:
        """(id, code) of the unit of ``kind`` responsible for ``area`` (a county centre: the county's
        code; a department: its code, the county's code and its suffix, e.g. 330421-ZHZF), or None.
        Always of one county: with several counties a report is handled by its own county's units."""
        if (kind, area) not in self._units:
            if kind == "department":
                sql, params = "kind = 'department' AND code = :a", {"a": area}
            else:
                sql, params = "kind = :k AND area_code = :a", {"k": kind, "a": area}
            row = conn.execute(
                sa.text(f"SELECT id, code FROM org_units WHERE {sql} ORDER BY id LIMIT 1"),  # noqa: S608
                params,
            ).one_or_none()
            self._units[(kind, area)] = (int(row.id), str(row.code)) if row is not None else None
        return self._units[(kind, area)]

    def centre(self, conn: Conn, town_code: str | None, county_code: str | None = None) -> str:
        """The dispatching and verifying account for an incident: its town's command room, else its
        county's centre (``county_code``, else its town's county, else the home county), else the
        fallback duty account."""
        county = county_of(town_code, county_code)
        for kind, area in (("town_centre", town_code or ""), ("county_centre", county)):
            unit = self.find_unit(conn, kind, area) if area else None
            if unit is not None:
                return self.unit(conn, unit[0])
        return self.integration(conn, CENTRE_FALLBACK, role="dispatcher")


def county_of(town_code: str | None, county_code: str | None = None) -> str:
    """An incident's county: its ``county_code``, else its town's (the first six digits), else
    the home county (gis.core.counties)."""
    from gis.core.counties import home_county

    return county_code or (town_code[:6] if town_code else "") or home_county()


__all__ = ["DEPARTMENT_FOR", "SOURCE_ACCOUNTS", "Cast", "Place", "county_of"]
