"""Fast checks of the Jiashan generator's building blocks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from demo.jiashan.allocation import AllocationError, largest_remainder, split_total
from demo.jiashan.coverage import label_faces, node_faces, union_by_label
from demo.jiashan.dataset import DatasetArgumentError, build_dataset
from demo.jiashan.incidents import BIG_RISKS, INCIDENT_CATEGORIES, category_table
from demo.jiashan.names import PersonFactory, id_check_char
from demo.jiashan.outline import (
    OutlineNotFoundError,
    load_divisions,
    load_outline_gcj02,
    short_village_name,
)
from demo.jiashan.partition import PartitionError, power_partition, sample_in_polygon
from demo.jiashan.police import station_name
from demo.jiashan.roads import NumberBook, Road, locate

# An L-shaped parent in GK-like coordinates (large offsets, as in EPSG:4549).
PARENT = Polygon(
    [(580000, 3410000), (584000, 3410000), (584000, 3412000), (582000, 3412000), (582000, 3414000), (580000, 3414000)]
)


def test_power_partition_areas_follow_targets() -> None:
    targets = np.array([1.0, 2.0, 3.0, 1.0, 1.0])
    fit = power_partition(PARENT, targets, np.random.default_rng(3), samples_per_part=600, iterations=40)
    areas = shapely.area(fit.cells)
    assert abs(areas.sum() - PARENT.area) < 1.0
    ratio = (areas / areas.sum()) / (targets / targets.sum())
    assert np.all(np.abs(ratio - 1.0) < 0.15), ratio


def test_power_partition_rejects_bad_targets() -> None:
    with pytest.raises(PartitionError, match="positive"):
        power_partition(PARENT, [1.0, -1.0], np.random.default_rng(0))
    with pytest.raises(PartitionError, match="empty"):
        power_partition(PARENT, [], np.random.default_rng(0))
    with pytest.raises(PartitionError, match="init_sites"):
        power_partition(PARENT, [1.0, 1.0], np.random.default_rng(0), init_sites=np.zeros((3, 2)))


def test_sample_in_polygon_stays_inside() -> None:
    pts = sample_in_polygon(PARENT, 500, np.random.default_rng(1))
    assert pts.shape == (500, 2)
    assert shapely.contains_xy(PARENT, pts[:, 0], pts[:, 1]).all()


def test_nested_cells_become_an_exact_nested_coverage() -> None:
    rng = np.random.default_rng(5)
    outer = power_partition(PARENT, [1.0, 1.0, 2.0], rng)
    parent_of = np.repeat(np.arange(3), 4)
    leaves = np.empty(len(parent_of), dtype=np.object_)
    for i, cell in enumerate(outer.cells):
        leaves[parent_of == i] = power_partition(cell, rng.uniform(1, 2, 4), rng).cells
    # The raw cells are only approximately adjacent ...
    faces = node_faces(PARENT, [leaves, outer.cells])
    label = label_faces(faces, leaves)
    children = np.array(union_by_label(faces, label, len(leaves)), dtype=object)
    parents = np.array(union_by_label(faces, parent_of[label], 3), dtype=object)
    # ... the assembled ones share exact edges at both levels and nest exactly.
    assert shapely.coverage_is_valid(children) and shapely.coverage_is_valid(parents)
    assert abs(shapely.area(children).sum() - PARENT.area) < 1e-3
    for i, whole in enumerate(parents):
        union = shapely.coverage_union_all(children[parent_of == i])
        assert shapely.symmetric_difference(union, whole).area < 1e-6
    assert all(isinstance(g, MultiPolygon) for g in children)


def test_node_faces_drops_holes_of_the_outline() -> None:
    holed = box(0, 0, 100, 100).difference(box(40, 40, 60, 60))
    halves = np.empty(2, dtype=np.object_)
    halves[:] = [box(0, 0, 50, 100), box(50, 0, 100, 100)]
    faces = node_faces(holed, [halves])
    assert abs(shapely.area(faces).sum() - holed.area) < 1e-6


def test_split_total_respects_bounds_and_total() -> None:
    rng = np.random.default_rng(2)
    for total, parts in [(400, 7), (300, 6), (500, 7), (65, 1)]:
        out = split_total(total, parts, 50, 80, rng)
        assert out.sum() == total and len(out) == parts
        assert out.min() >= 50 and out.max() <= 80
    with pytest.raises(AllocationError, match="cannot split 100 into 3"):
        split_total(100, 3, 50, 80, rng)


def test_largest_remainder() -> None:
    out = largest_remainder(10, [1, 1, 1], minimum=2)
    assert out.sum() == 10 and out.min() >= 3
    assert largest_remainder(7, [0, 1], minimum=2).tolist() == [2, 5]
    with pytest.raises(AllocationError):
        largest_remainder(3, [1, 1], minimum=2)


def test_id_numbers_and_people() -> None:
    assert id_check_char("11010519491231002") == "X"  # the GB 11643 worked example
    with pytest.raises(ValueError, match="17 digits"):
        id_check_char("123")
    people = PersonFactory(np.random.default_rng(9)).draw(2000)
    assert people["phone"].is_unique and people["id_card"].is_unique
    assert people["phone"].str.fullmatch(r"1[3-9]\d{9}").all()
    assert all(id_check_char(i[:17]) == i[17] for i in people["id_card"])
    assert people["name"].str.len().between(2, 3).all()


def test_division_names() -> None:
    assert short_village_name("国庆村委会") == "国庆村"
    assert short_village_name("镇北社区居委会") == "镇北社区"
    assert short_village_name("日晖社区") == "日晖社区"
    divisions = load_divisions()
    assert len(divisions.towns) == 9 and len(divisions.villages) == 174
    assert set(divisions.villages["kind"]) == {"community", "village"}
    assert station_name("魏塘街道") == "魏塘派出所" and station_name("大云镇") == "大云派出所"


def test_unknown_outline_code_is_a_clear_error() -> None:
    with pytest.raises(OutlineNotFoundError, match="999999"):
        load_outline_gcj02("999999")


def test_road_numbers_odd_left_even_right() -> None:
    road = Road("中山东路", "中山西路", (0.0, 0.0), (1.0, 0.0))
    names, numbers = locate([road], np.array([105.0, 105.0, -45.0]), np.array([10.0, -10.0, 5.0]))
    assert names == ["中山东路", "中山东路", "中山西路"]
    assert numbers.tolist() == [11, 12, 5]
    book = NumberBook()
    assert [book.claim("中山东路", 11), book.claim("中山东路", 11), book.claim("解放路", 11)] == [11, 13, 11]


def test_category_table_covers_the_four_big_risks() -> None:
    table = category_table()
    assert table["code"].is_unique and len(table) == len(INCIDENT_CATEGORIES)
    assert set(table["big_risk"].dropna()) == set(BIG_RISKS)
    assert table["big_risk"].isna().sum() >= 5
    assert all(abs(sum(c.sources) - 1.0) < 1e-9 for c in INCIDENT_CATEGORIES)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": -1}, "seed"),
        ({"incidents": -5}, "incidents"),
        ({"reference": pd.Timestamp("2026-10-31")}, "time zone"),
    ],
)
def test_build_dataset_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DatasetArgumentError, match=message):
        build_dataset(**kwargs)  # type: ignore[arg-type]


def test_generator_draws_categories_and_sources_from_the_product_tables() -> None:
    from demo.jiashan.incidents import INCIDENT_CATEGORIES, INCIDENT_SOURCES
    from gis.incidents.rules import CATEGORIES, SOURCES

    assert {c.code for c in INCIDENT_CATEGORIES} <= set(CATEGORIES)
    assert set(INCIDENT_SOURCES) <= set(SOURCES)
    # the four big risks are all represented
    groups = {CATEGORIES[c.code].risk_group for c in INCIDENT_CATEGORIES}
    assert {"stability", "conflict", "fire", "production_safety"} <= groups
