"""Shared test data of field work: a rental building in the mini county's grid 330421001001001 and
a joint team (a grid worker and an auxiliary police officer) posted there."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

GRID = "330421001001001"
TOWN = "330421001"
# Inside that grid (town 1 west of 120.92, village 1 south of 30.84, grid 1 the western half).
LON, LAT = 120.905, 30.835


@dataclass(frozen=True)
class Field:
    building_id: int
    worker_posting: int
    police_posting: int


def add_building(conn: Connection, code: str, lon: float = LON, lat: float = LAT, rental: bool = True) -> int:
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO buildings (code, name, is_rental, landlord_name, landlord_phone, geom) "
                "VALUES (:code, '出租房', :rental, '张三', '13800001234', ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
                "RETURNING id"
            ),
            {"code": code, "rental": rental, "lon": lon, "lat": lat},
        ).scalar_one()
    )


def add_posting(conn: Connection, name: str, role: str, area: str = GRID) -> int:
    person = conn.execute(sa.text("INSERT INTO people (name) VALUES (:n) RETURNING id"), {"n": name}).scalar_one()
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO postings (person_id, role, layer, area_code, starts_on) "
                "VALUES (:p, :role, 'grid', :area, :day) RETURNING id"
            ),
            {"p": person, "role": role, "area": area, "day": dt.date(2020, 1, 1)},
        ).scalar_one()
    )


def make_field(conn: Connection, code: str = "B-TEST-1") -> Field:
    return Field(
        add_building(conn, code),
        add_posting(conn, "李网格", "grid_worker"),
        add_posting(conn, "王辅警", "aux_police"),
    )
