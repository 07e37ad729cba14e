"""Drafts and edit operations on the mini county (see tests/conftest.py for its exact layout)."""

from __future__ import annotations

import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import LineString, box
from sqlalchemy.engine import Connection

from boundaries import edits
from boundaries.drafts import (
    DraftClosedError,
    DraftError,
    create_draft,
    discard_draft,
    get_draft,
    load_features,
    rebase_draft,
)
from boundaries.generations import publish_layers
from gis.spatial.areas import current_generation, load_layer

G1, G2 = "330421001001001", "330421001001002"  # west and east grid of town 1, village 1 (south)
M12 = "33042100100100102"  # north micro-grid of G1: x 120.90-120.91, y 30.835-30.84


def _geom(conn: Connection, draft: int, code: str) -> shapely.Geometry:
    f = load_features(conn, draft)
    return f.geometry[f["code"] == code].iloc[0]


def test_draft_copies_the_scope_from_the_generation_in_force(connection: Connection, mini_county) -> None:
    town = create_draft(connection, "grid", "330421001", author="planner")
    county = create_draft(connection, "grid", None, author="planner")
    village = create_draft(connection, "micro_grid", "330421002002", author="planner")
    assert sorted(load_features(connection, town)["code"]) == sorted(
        c for c in mini_county.grids["code"] if c.startswith("330421001")
    )
    assert len(load_features(connection, county)) == 8
    assert sorted(load_features(connection, village)["code"]) == [
        "33042100200200101",
        "33042100200200102",
        "33042100200200201",
        "33042100200200202",
    ]
    info = get_draft(connection, town)
    assert (info.layer, info.scope_code, info.base_generation, info.features) == (
        "grid",
        "330421001",
        mini_county.generation,
        4,
    )


def test_bad_draft_requests_are_refused(connection: Connection, mini_county) -> None:
    with pytest.raises(DraftError, match="scope '999'"):
        create_draft(connection, "grid", "999", author="p")
    with pytest.raises(ValueError, match="unknown layer"):
        create_draft(connection, "parish", None, author="p")


def test_split_keeps_the_code_on_the_larger_piece(connection: Connection, mini_county) -> None:
    d = create_draft(connection, "grid", "330421001", author="p")
    before = _geom(connection, d, G1)
    codes = edits.split_polygon(
        connection, d, [[120.904, 30.829], [120.904, 30.841]], actor="p", code=G1, new_code="330421001001003"
    )
    assert codes == [G1, "330421001001003"]
    west, east = _geom(connection, d, "330421001001003"), _geom(connection, d, G1)
    assert west.bounds == pytest.approx((120.90, 30.83, 120.904, 30.84))
    assert east.bounds == pytest.approx((120.904, 30.83, 120.91, 30.84))
    assert shapely.union_all([west, east]).symmetric_difference(before).area < 1e-12
    # The line found the polygon by itself when not named.
    edits.split_polygon(connection, d, [[120.915, 30.829], [120.915, 30.841]], actor="p", new_code="330421001001004")
    assert len(load_features(connection, d)) == 6
    with pytest.raises(edits.EditError, match="does not cut"):
        edits.split_polygon(connection, d, [[120.95, 30.80], [120.96, 30.80]], actor="p", code=G2, new_code="x")


def test_merge_unions_and_records_what_it_absorbed(connection: Connection, mini_county) -> None:
    d = create_draft(connection, "grid", "330421001", author="p")
    edits.merge_polygons(connection, d, [G1, G2], actor="p")
    f = load_features(connection, d)
    merged = f[f["code"] == G1].iloc[0]
    assert merged["geometry"].equals(box(120.90, 30.83, 120.92, 30.84).normalize()) or (
        merged["geometry"].symmetric_difference(box(120.90, 30.83, 120.92, 30.84)).area < 1e-12
    )
    assert merged["attrs"]["absorbs"] == [G2]
    assert merged["households"] == 800
    assert G2 not in set(f["code"])
    county = create_draft(connection, "grid", None, author="p")
    with pytest.raises(edits.EditError, match="connected"):
        edits.merge_polygons(connection, county, [G1, "330421002002002"], actor="p")


def test_move_shared_edge_changes_both_neighbours(connection: Connection, mini_county) -> None:
    d = create_draft(connection, "grid", "330421001", author="p")
    edits.move_shared_edge(connection, d, G1, G2, LineString([(120.912, 30.83), (120.912, 30.84)]), actor="p")
    a, b = _geom(connection, d, G1), _geom(connection, d, G2)
    assert a.bounds == pytest.approx((120.90, 30.83, 120.912, 30.84))
    assert b.bounds == pytest.approx((120.912, 30.83, 120.92, 30.84))
    assert a.intersection(b).area == 0 and a.touches(b)


def test_move_micro_grid_between_grids(connection: Connection, mini_county) -> None:
    d = create_draft(connection, "grid", "330421001", author="p")
    edits.move_micro_grid(connection, d, M12, G2, actor="p")
    assert _geom(connection, d, G1).symmetric_difference(box(120.90, 30.83, 120.91, 30.835)).area < 1e-12
    grown = _geom(connection, d, G2)
    assert grown.area == pytest.approx(
        box(120.90, 30.835, 120.92, 30.84).area + box(120.91, 30.83, 120.92, 30.835).area
    )
    # In a micro-grid draft the move is a change of parent.
    m = create_draft(connection, "micro_grid", "330421001001", author="p")
    edits.move_micro_grid(connection, m, M12, G2, actor="p")
    f = load_features(connection, m)
    assert f.loc[f["code"] == M12, "parent_code"].iloc[0] == G2


def test_rename_and_recode(connection: Connection, mini_county) -> None:
    d = create_draft(connection, "grid", "330421001", author="p")
    edits.rename(connection, d, G1, actor="p", name="新名字", new_code="330421001001009")
    f = load_features(connection, d).set_index("code")
    assert f.loc["330421001001009", "name"] == "新名字"
    assert f.loc["330421001001009", "attrs"]["previous_code"] == G1
    assert G1 not in f.index
    with pytest.raises(edits.EditError, match="already has code"):
        edits.rename(connection, d, G2, actor="p", new_code="330421001001009")


def test_edits_leave_the_generation_in_force_untouched(connection: Connection, mini_county) -> None:
    before = load_layer(connection, "grid", mini_county.generation)
    d = create_draft(connection, "grid", None, author="p")
    edits.merge_polygons(connection, d, [G1, G2], actor="p")
    after = load_layer(connection, "grid", current_generation(connection) or 0)
    assert current_generation(connection) == mini_county.generation
    assert list(after["code"]) == list(before["code"])
    assert all(a.equals(b) for a, b in zip(after.geometry, before.geometry, strict=True))
    audit = (
        connection.execute(sa.text("SELECT action FROM audit_log WHERE target = :t ORDER BY id"), {"t": f"draft:{d}"})
        .scalars()
        .all()
    )
    assert audit == ["draft.create", "draft.merge"]


def test_discarded_draft_refuses_edits(connection: Connection, mini_county) -> None:
    d = create_draft(connection, "grid", "330421001", author="p")
    discard_draft(connection, d, actor="p")
    with pytest.raises(DraftClosedError, match="discarded"):
        edits.rename(connection, d, G1, actor="p", name="x")


def test_rebase_keeps_planner_edits_and_takes_upstream_changes(connection: Connection, mini_county) -> None:
    d = create_draft(connection, "grid", "330421001", author="p")
    edits.rename(connection, d, G1, actor="p", name="planner's name")
    # Someone publishes a new generation in which G2 and another grid changed.
    layers = {"grid": load_layer(connection, "grid", mini_county.generation)}
    layers["grid"].loc[layers["grid"]["code"] == G2, "name"] = "upstream name"
    layers["grid"].loc[layers["grid"]["code"] == G1, "name"] = "upstream G1"
    publish_layers(connection, layers, note="upstream", author="other")
    result = rebase_draft(connection, d, actor="p")
    f = load_features(connection, d).set_index("code")
    assert result["conflicts"] == [G1]
    assert f.loc[G1, "name"] == "planner's name"
    assert f.loc[G2, "name"] == "upstream name"
    assert get_draft(connection, d).base_generation == current_generation(connection)
