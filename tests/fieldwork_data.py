"""Field-work test data on the mini county: a grid worker posted to grid G1, a lattice of buildings in
G1 (known positions and households), one building with an address in another town (scope tests)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.core.vocab import COUNTY_TZ
from gis.people import write

G1 = "330421001001001"  # x 120.900 .. 120.910, y 30.830 .. 30.840
TOWN1 = "330421001"
OTHER_TOWN_GRID = "330421002001001"  # x 120.920 .. 120.930
LATTICE = 6  # 6 x 6 buildings


@dataclass(frozen=True)
class Field:
    person_id: int
    posting_id: int
    buildings: list[int]  # G1's lattice, row by row (south to north), west to east
    positions: list[tuple[float, float]]
    other_building: int  # in OTHER_TOWN_GRID
    other_address: int
    address: int  # an address of buildings[0]


def seed(conn: Connection) -> Field:
    person = write.create_person(conn, "tests", name="走访员")["id"]
    posting = write.add_posting(
        conn, "tests", person, {"role": "grid_worker", "area_code": G1, "starts_on": "2020-01-01"}
    )
    ids, positions = [], []
    for j in range(LATTICE):
        for i in range(LATTICE):
            lon, lat = 120.9008 + i * 0.0016, 30.8308 + j * 0.0016
            ids.append(
                conn.execute(
                    sa.text(
                        "INSERT INTO buildings (code, households, geom) VALUES (:c, :h, "
                        "ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"
                    ),
                    {"c": f"FW-{i}-{j}", "h": 2 + i, "x": lon, "y": lat},
                ).scalar_one()
            )
            positions.append((lon, lat))
    other = conn.execute(
        sa.text(
            "INSERT INTO buildings (code, households, geom) VALUES ('FW-other', 3, "
            "ST_SetSRID(ST_MakePoint(120.925, 30.835), 4326)) RETURNING id"
        )
    ).scalar_one()

    def address(building: int, lon: float, lat: float, text: str) -> int:
        return conn.execute(
            sa.text(
                "INSERT INTO addresses (full_text, normalized, precision, building_id, geom) VALUES "
                "(:t, :t, 'house', :b, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"
            ),
            {"t": text, "b": building, "x": lon, "y": lat},
        ).scalar_one()

    return Field(
        person_id=person,
        posting_id=posting["id"],
        buildings=ids,
        positions=positions,
        other_building=other,
        other_address=address(other, 120.925, 30.835, "测试镇2某路2号"),
        address=address(ids[0], *positions[0], "测试镇1某路1号"),
    )


def walk_today(now: dt.datetime, minutes: float, n: int, step_s: float) -> tuple[dt.datetime, list[dt.datetime]]:
    """A patrol's start and ``n`` fix times ending before ``now``, all on ``now``'s county day: the
    layers show the patrols started on a day, so a walk begun before county midnight would be
    yesterday's (tests run at any hour). Starts ``minutes`` before now, or at midnight if later."""
    midnight = dt.datetime.combine(now.astimezone(COUNTY_TZ).date(), dt.time(), COUNTY_TZ)
    start = max(now - dt.timedelta(minutes=minutes), midnight)
    step = min(step_s, (now - start).total_seconds() / (n + 1))
    return start, [start + dt.timedelta(seconds=step * (i + 1)) for i in range(n)]
