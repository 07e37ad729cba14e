"""``gridmap verify`` checks each point row's county_code against the county of its units (issue #20):
a row filed under another county, or a row outside every county filed elsewhere than the home
county, is found and repaired."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.spatial.verify import check_table, verify

INSIDE = (120.905, 30.833)  # in the mini county (330421)
OUTSIDE = (121.5, 31.5)  # far outside every county


def _building(conn: Connection, code: str, lon: float, lat: float) -> int:
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO buildings (code, geom) VALUES (:c, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"
            ),
            {"c": code, "x": lon, "y": lat},
        ).scalar_one()
    )


def test_a_row_filed_under_the_wrong_county_is_found_and_repaired(connection: Connection, mini_county: Any) -> None:
    inside, outside = _building(connection, "C1", *INSIDE), _building(connection, "C2", *OUTSIDE)
    clean = _building(connection, "C3", *INSIDE)
    assert check_table(connection, "buildings").disagreeing == 0
    home = connection.execute(sa.text("SELECT gridmap_home_county()")).scalar_one()
    # A writer that bypassed the triggers and filed both rows under another county.
    connection.execute(sa.text("SET LOCAL gridmap.bulk = 'on'"))
    connection.execute(
        sa.text("UPDATE buildings SET county_code = '330108' WHERE id = ANY(:ids)"), {"ids": [inside, outside]}
    )
    connection.execute(sa.text("SET LOCAL gridmap.bulk = 'off'"))

    found = check_table(connection, "buildings")
    assert sorted(found.ids.tolist()) == sorted([inside, outside])
    lines = found.sample[found.sample["column"] == "county_code"].sort_values("id")
    assert lines[["id", "stored", "derived"]].values.tolist() == [
        [inside, "330108", "330421"],
        [outside, "330108", home],  # outside every county: the home county
    ]
    assert verify(connection, ["buildings"], repair=True)[0].repaired == 2
    counties = dict(connection.execute(sa.text("SELECT id, county_code FROM buildings")).all())
    assert counties == {inside: "330421", outside: home, clean: "330421"}
    assert check_table(connection, "buildings").disagreeing == 0
