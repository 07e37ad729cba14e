"""Details of one grid (网格) or police beat (警格) under a boundary generation.

Overlaps between grids and beats are measured in EPSG:4549 (metres), as a share of each side's
area, so "beat 0102 covers 37.5 % of grid X" is a plain area ratio. Touching polygons (a shared
edge only) do not overlap.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gis.core.predicates import BACKLOG, backlog_counts, in_generation
from gis.core.privacy import mask_staff, role_sees_personal_data
from gis.incidents.filter import IncidentFilter
from gis.people.roster import team_of
from gis.spatial.areas import IN_GENERATION, Conn
from gis.spatial.crs import METRIC_EPSG

# Below this share (in %), an intersection is numerical noise along a shared edge.
MIN_SHARE_PCT = 0.01


class UnknownUnitError(LookupError):
    """No unit of that layer and code in the generation asked for."""

    def __init__(self, layer: str, code: str, generation: int | None):
        where = "no boundaries are published" if generation is None else f"generation {generation}"
        super().__init__(f"no {layer.replace('_', '-')} with code {code!r} in {where}")
        self.layer = layer
        self.code = code


def _area(conn: Conn, layer: str, code: str, generation: int) -> sa.Row[Any] | None:
    return conn.execute(
        sa.text(
            f"SELECT code, name, parent_code, households FROM areas "  # noqa: S608
            f"WHERE layer = :layer AND code = :code AND {IN_GENERATION}"
        ),
        {"layer": layer, "code": code, "g": generation},
    ).one_or_none()


def _unit(row: sa.Row[Any] | None) -> dict[str, str] | None:
    return None if row is None else {"code": row.code, "name": row.name}


def staff_of(conn: Conn, grid_codes: list[str], role: str | None, roles: tuple[str, ...]) -> list[dict[str, Any]]:
    """Active staff posted to the grids themselves (the ``staff`` view of migration 0011), masked
    (name, phone) for roles below dispatcher."""
    rows = conn.execute(
        sa.text(
            "SELECT grid_code, role, name, phone FROM staff "
            "WHERE active AND grid_code = ANY(:codes) AND role = ANY(:roles) "
            "ORDER BY grid_code, array_position(CAST(:roles AS text[]), CAST(role AS text)), id"
        ),
        {"codes": grid_codes, "roles": list(roles)},
    ).all()
    sees = role_sees_personal_data(role)
    return [
        mask_staff({"grid_code": r.grid_code, "role": r.role, "name": r.name, "phone": r.phone}, sees) for r in rows
    ]


def overlaps(conn: Conn, layer: str, code: str, other: str, generation: int) -> list[dict[str, Any]]:
    """Units of layer ``other`` overlapping unit (``layer``, ``code``), with the shared area in m²
    and as a share (%) of each side, largest share first."""
    rows = conn.execute(
        sa.text(
            f"""
            WITH me AS (
                SELECT ST_Transform(geom, {METRIC_EPSG}) AS m, geom FROM areas
                WHERE layer = :layer AND code = :code AND {IN_GENERATION}
            ), hits AS (
                SELECT o.code, o.name, o.parent_code, ST_Transform(o.geom, {METRIC_EPSG}) AS om, me.m
                FROM areas o, me
                WHERE o.layer = :other AND {in_generation("o")}
                  AND ST_Intersects(o.geom, me.geom)
            )
            SELECT code, name, parent_code, ST_Area(ST_Intersection(om, m)) AS shared,
                   ST_Area(m) AS mine, ST_Area(om) AS theirs
            FROM hits
            """  # noqa: S608
        ),
        {"layer": layer, "code": code, "other": other, "g": generation},
    ).all()
    out = []
    for r in rows:
        pct_mine = 100.0 * r.shared / r.mine if r.mine else 0.0
        pct_theirs = 100.0 * r.shared / r.theirs if r.theirs else 0.0
        if max(pct_mine, pct_theirs) < MIN_SHARE_PCT:
            continue
        out.append(
            {
                "code": r.code,
                "name": r.name,
                "parent_code": r.parent_code,
                "shared_area_m2": round(float(r.shared), 1),
                f"pct_of_{layer}": round(pct_mine, 2),
                f"pct_of_{other}": round(pct_theirs, 2),
            }
        )
    out.sort(key=lambda o: (-o[f"pct_of_{layer}"], o["code"]))
    return out


def incident_counts(conn: Conn, column: str, code: str) -> dict[str, int]:
    """The current backlog (open, pending, overdue, escalated: ``gis.core.vocab``) of incidents
    assigned to a unit (``column`` grid_code or beat_code), and how many were reported in the last
    30 days."""
    if column not in ("grid_code", "beat_code"):
        raise ValueError(f"cannot count incidents by {column!r}")
    where, params = IncidentFilter().replace(**{column.removesuffix("_code"): (code,)}).where("i")
    row = conn.execute(
        sa.text(
            f"SELECT {backlog_counts('i')}, "  # noqa: S608
            f"count(*) FILTER (WHERE i.reported_at >= now() - interval '30 days') AS total_30d "
            f"FROM incidents i WHERE {where}"
        ),
        params,
    ).one()
    return {key: int(getattr(row, key)) for key in (*BACKLOG, "total_30d")}


def grid_details(conn: Conn, code: str, generation: int | None, role: str | None) -> dict[str, Any]:
    """A grid with its hierarchy, households, team, micro-grids (with their leaders), overlapping
    beats and incidents."""
    grid = None if generation is None else _area(conn, "grid", code, generation)
    if grid is None or generation is None:
        raise UnknownUnitError("grid", code, generation)
    village = _area(conn, "village", grid.parent_code, generation) if grid.parent_code else None
    town = _area(conn, "town", village.parent_code, generation) if village is not None and village.parent_code else None
    county = conn.execute(
        sa.text(f"SELECT code, name FROM areas WHERE layer = 'county' AND {IN_GENERATION} ORDER BY code LIMIT 1"),  # noqa: S608
        {"g": generation},
    ).one_or_none()
    micro = conn.execute(
        sa.text(
            f"SELECT code, name, households FROM areas "  # noqa: S608
            f"WHERE layer = 'micro_grid' AND parent_code = :code AND {IN_GENERATION} ORDER BY code"
        ),
        {"code": code, "g": generation},
    ).all()
    counted = conn.execute(
        sa.text("SELECT coalesce(sum(households), 0) FROM buildings WHERE grid_code = :code"), {"code": code}
    ).scalar_one()
    beats = overlaps(conn, "grid", code, "beat", generation)
    stations = _names(conn, "station", [b["parent_code"] for b in beats if b["parent_code"]], generation)
    sees = role_sees_personal_data(role)
    # The whole team: the grid's own, the village's (chief grid leader, community police, liaison
    # cadres), the officers of the beats overlapping it and their stations'.
    units = [("grid", code), ("village", grid.parent_code)]
    units += [("beat", b["code"]) for b in beats] + [("station", s) for s in sorted(stations)]
    team = team_of(conn, units, sees)
    micro_team = team_of(conn, [("micro_grid", m.code) for m in micro], sees)
    for b in beats:
        b["station"] = {"code": b["parent_code"], "name": stations.get(b["parent_code"], b["parent_code"])}
        del b["parent_code"]
    return {
        "code": grid.code,
        "name": grid.name,
        "generation": generation,
        "county": _unit(county),
        "town": _unit(town),
        "village": _unit(village),
        "households": grid.households,
        "households_counted": int(counted),
        "staff": team,
        "micro_grids": [
            {
                "code": m.code,
                "name": m.name,
                "households": m.households,
                "staff": [p for p in micro_team if p["area_code"] == m.code],
            }
            for m in micro
        ],
        "beats": beats,
        "incidents": incident_counts(conn, "grid_code", code),
    }


def beat_details(conn: Conn, code: str, generation: int | None, role: str | None) -> dict[str, Any]:
    """A beat with its station, its officer and station staff, the grids it overlaps and the aux
    police of those grids (网格+警格)."""
    beat = None if generation is None else _area(conn, "beat", code, generation)
    if beat is None or generation is None:
        raise UnknownUnitError("beat", code, generation)
    station = _area(conn, "station", beat.parent_code, generation) if beat.parent_code else None
    grids = overlaps(conn, "beat", code, "grid", generation)
    aux = staff_of(conn, [g["code"] for g in grids], role, roles=("aux_police",))
    by_grid: dict[str, list[dict[str, Any]]] = {}
    for person in aux:
        by_grid.setdefault(person.pop("grid_code"), []).append(person)
    for g in grids:
        del g["parent_code"]
        g["aux_police"] = by_grid.get(g["code"], [])
    return {
        "code": beat.code,
        "name": beat.name,
        "generation": generation,
        "station": _unit(station),
        "staff": team_of(conn, [("beat", beat.code), ("station", beat.parent_code)], role_sees_personal_data(role)),
        "grids": grids,
        "incidents": incident_counts(conn, "beat_code", code),
    }


def _names(conn: Conn, layer: str, codes: list[str], generation: int) -> dict[str, str]:
    if not codes:
        return {}
    rows = conn.execute(
        sa.text(f"SELECT code, name FROM areas WHERE layer = :layer AND code = ANY(:codes) AND {IN_GENERATION}"),  # noqa: S608
        {"layer": layer, "codes": codes, "g": generation},
    ).all()
    return {r.code: r.name for r in rows}
