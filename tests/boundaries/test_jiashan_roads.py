"""The Jiashan demo's road lines: planned roads clipped to their town, stored in ``roads`` under the
names the addresses use, and found by redistricting proposals (gis.analysis.redistrict_roads)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import LineString, box
from sqlalchemy.engine import Connection

from demo.jiashan.dataset import JiashanDataset, build_dataset
from demo.jiashan.load import ROAD_SOURCE, _clear, store_demo_roads
from demo.jiashan.roads import Road, locate, road_lines
from gis.analysis.redistrict import queen_neighbors
from gis.analysis.redistrict_roads import SHARE_MIN, links, road_buffer
from gis.spatial.crs import METRIC_EPSG
from gis.spatial.roads import roads_within, store_roads


def test_road_lines_are_clipped_split_at_the_seat_and_match_locate() -> None:
    town = box(0, 0, 2000, 1000)
    roads = [
        Road("中山东路", "中山西路", (1000.0, 500.0), (1.0, 0.0)),
        Road("解放北路", "解放南路", (1000.0, 500.0), (0.0, 1.0)),
        Road("人民路", "人民路", (-500.0, 200.0), (1.0, 0.0)),
        Road("远方路", "远方路", (0.0, 5000.0), (1.0, 0.0)),  # misses the town: not stored
    ]
    lines = road_lines(roads, town)
    by_name = {name: line for name, _kind, line in lines}
    assert sorted(by_name) == sorted(["中山东路", "中山西路", "解放北路", "解放南路", "人民路"])
    assert {kind for name, kind, _l in lines if name != "人民路"} == {"main"}
    assert by_name["中山东路"].bounds == pytest.approx((1000, 500, 2000, 500))
    assert by_name["中山西路"].bounds == pytest.approx((0, 500, 1000, 500))
    assert by_name["人民路"].bounds == pytest.approx((0, 200, 2000, 200))
    assert all(town.covers(line) for line in by_name.values())
    # In a convex town every point's nearest line is the one its address names.
    rng = np.random.default_rng(4)
    x, y = rng.uniform(0, 2000, 300), rng.uniform(0, 1000, 300)
    names, _numbers = locate(roads, x, y)
    keys = list(by_name)
    geoms = np.array([by_name[k] for k in keys], dtype=object)
    nearest = shapely.distance(shapely.points(x, y)[:, None], geoms[None, :]).argmin(axis=1)
    assert [keys[k] for k in nearest] == names


@pytest.fixture(scope="module")
def dataset() -> JiashanDataset:
    return build_dataset(seed=1, incidents=5000)


def _other_half(dataset: JiashanDataset) -> dict[str, str]:
    """Split roads' halves: the same stem (name less its 东路/西路 or 南路/北路) in one town."""
    pairs: dict[str, str] = {}
    for _town, group in dataset.roads.groupby("town_code"):
        names = group["name"].tolist()
        for a in names:
            for b in names:
                if a != b and a[-2:] in ("东路", "西路", "南路", "北路") and a[:-2] == b[:-2]:
                    pairs[a] = b
    return pairs


@pytest.mark.slow
def test_stored_demo_roads_agree_with_the_addresses(connection: Connection, dataset: JiashanDataset) -> None:
    stored = store_demo_roads(connection, dataset)
    assert stored == len(dataset.roads) and stored >= 6 * len(dataset.towns)
    assert set(dataset.roads.geom_type) <= {"LineString", "MultiLineString"}
    houses = dataset.buildings[dataset.buildings["kind"] == "street_house"]
    sample = houses.sample(400, random_state=2)
    half = _other_half(dataset)
    # A house is named after the nearest road of its own town (the generator's town of the house).
    town_roads = dataset.roads.groupby("town_code")["name"].agg(list).to_dict()
    town_of = sample["_gen_village"].str[:9]
    agree = 0
    for town, group in sample.groupby(town_of):
        nearest = connection.execute(
            sa.text(
                "SELECT (SELECT r.name FROM roads r WHERE r.source = :s AND r.name = ANY(:names) "
                f"ORDER BY ST_Distance(ST_Transform(r.geom, {METRIC_EPSG}), "
                f"ST_Transform(ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326), {METRIC_EPSG})) LIMIT 1) "
                "FROM unnest(CAST(:lon AS float8[]), CAST(:lat AS float8[])) WITH ORDINALITY AS p(lon, lat, i) "
                "ORDER BY p.i"
            ),
            {"s": ROAD_SOURCE, "names": town_roads[town], "lon": group["lon"].tolist(), "lat": group["lat"].tolist()},
        ).scalars()
        agree += sum(n in (road, half.get(road)) for n, road in zip(nearest, group["road"], strict=True))
    # Clipping to the town can drop the foot of a rare house's perpendicular (about 1 in 1,000).
    assert agree >= 0.98 * len(sample), (agree, len(sample))

    # A redistricting proposal of the seat's town finds these roads along its micro-grid borders.
    town = dataset.roads["town_code"].value_counts().index[0]
    micro = dataset.micro_grids[dataset.micro_grids["code"].str.startswith(town)].reset_index(drop=True)
    lines = roads_within(connection, tuple(micro.total_bounds))
    assert len(lines) >= len(town_roads[town])
    found = links(micro.to_crs(METRIC_EPSG), queen_neighbors(micro), road_buffer(lines))
    assert found.on_road.sum() > 0 and (found.share >= SHARE_MIN).any()

    # The demo's replace clears its own roads, and only those.
    store_roads(connection, [("测试路", LineString([(120.90, 30.835), (120.92, 30.835)]))], source="tests")
    _clear(connection)
    left = connection.execute(sa.text("SELECT source, count(*) FROM roads GROUP BY source")).all()
    assert [tuple(r) for r in left] == [("tests", 1)]
