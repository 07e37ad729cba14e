"""Publishing, impact, history and roll back on the mini county."""

from __future__ import annotations

import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import box
from sqlalchemy.engine import Connection

from boundaries import edits
from boundaries.drafts import create_draft, get_draft, rebase_draft
from boundaries.history import diff_generations, generations
from boundaries.impact import preview_impact
from boundaries.publish import StaleDraftError, publish_draft, restore_generation
from gis.spatial.areas import current_generation, load_layer
from gis.spatial.reassign import reassign_extent, reassign_extent_sql

G1, G2 = "330421001001001", "330421001001002"
M12 = "33042100100100102"  # x 120.90-120.91, y 30.835-30.84, in G1


def _seed(conn: Connection) -> dict[str, int]:
    """Two buildings and three incidents in M12, one building in G1's other micro-grid."""
    ids = {}
    for code, x, y, hh in (("b1", 120.905, 30.837, 40), ("b2", 120.906, 30.838, 25), ("b3", 120.905, 30.832, 70)):
        ids[code] = conn.execute(
            sa.text(
                "INSERT INTO buildings (code, households, geom) VALUES (:c, :h, ST_Point(:x, :y, 4326)) RETURNING id"
            ),
            {"c": code, "h": hh, "x": x, "y": y},
        ).scalar_one()
    conn.execute(
        sa.text(
            "INSERT INTO addresses (full_text, normalized, precision, geom) "
            "VALUES ('测试路1号', '测试路1号', 'house', ST_Point(120.907, 30.839, 4326))"
        )
    )
    conn.execute(
        sa.text(
            "INSERT INTO hazards (category, severity, status, found_at, geom) "
            "VALUES ('fire', 'high', 'open', now(), ST_Point(120.904, 30.836, 4326))"
        )
    )
    for name, status in (("open", "in_progress"), ("new", "reported"), ("closed", "closed")):
        ids[name] = conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, status, geom) "
                "VALUES ('litter', 'test', now() - interval '1 day', :s, ST_Point(120.905, 30.836, 4326)) RETURNING id"
            ),
            {"s": status},
        ).scalar_one()
    return ids


def _codes(conn: Connection, table: str, row_id: int) -> tuple[str, str, int]:
    r = conn.execute(
        sa.text(f"SELECT grid_code, micro_grid_code, generation_id FROM {table} WHERE id = :i"), {"i": row_id}
    ).one()
    return r.grid_code, r.micro_grid_code, r.generation_id


def _move_m12(conn: Connection) -> int:
    d = create_draft(conn, "grid", "330421001", author="planner", note="M12 joins G2")
    edits.move_micro_grid(conn, d, M12, G2, actor="planner")
    return d


def test_impact_preview_counts_what_moves(connection: Connection, mini_county) -> None:
    _seed(connection)
    report = preview_impact(connection, _move_m12(connection))
    assert report["changed"] == [G1, G2]
    assert report["moves"] == [
        {"from": G1, "to": G2, "buildings": 2, "addresses": 1, "hazards": 1, "open_incidents": 2, "households": 65}
    ]
    assert report["totals"] == {"buildings": 2, "addresses": 1, "hazards": 1, "open_incidents": 2, "households": 65}
    assert report["polygons"][G1]["out"]["buildings"] == 2 and report["polygons"][G2]["in"]["households"] == 65


def test_publish_reassigns_open_records_and_keeps_history(connection: Connection, mini_county) -> None:
    ids = _seed(connection)
    old = mini_county.generation
    assert _codes(connection, "incidents", ids["closed"])[:2] == (G1, M12)
    d = _move_m12(connection)
    result = publish_draft(connection, d, actor="planner", note="rebalance households")
    new = result.generation
    assert current_generation(connection) == new
    assert result.layers == {
        "grid": {"added": [], "removed": [], "changed": [G1, G2]},
        "micro_grid": {"added": [], "removed": [], "changed": [M12]},
    }
    assert _codes(connection, "buildings", ids["b1"]) == (G2, M12, new)
    assert _codes(connection, "incidents", ids["open"]) == (G2, M12, new)
    assert _codes(connection, "incidents", ids["new"]) == (G2, M12, new)
    assert _codes(connection, "incidents", ids["closed"]) == (G1, M12, old)  # handled under the old grid
    assert _codes(connection, "buildings", ids["b3"])[:2] == (G1, "33042100100100101")
    assert {r.table: r.changed for r in result.reassigned} == {
        "buildings": 2,
        "addresses": 1,
        "hazards": 1,
        "incidents": 2,
    }
    # The in-process reassignment agrees with the SQL join and with gridmap_assign row by row.
    extent = shapely.to_wkb(box(120.90, 30.83, 120.92, 30.84))
    assert all(r.changed == 0 for r in reassign_extent_sql(connection, new, extent))
    assert all(r.changed == 0 for r in reassign_extent(connection, new, extent))
    naive = connection.execute(
        sa.text(
            "SELECT count(*) FROM buildings b, LATERAL gridmap_assign(b.geom, now()) a "
            "WHERE a.grid_code IS DISTINCT FROM b.grid_code OR a.beat_code IS DISTINCT FROM b.beat_code"
        )
    ).scalar()
    assert naive == 0
    # Old generation still queryable; the micro-grid has a new parent in the new one.
    before, after = load_layer(connection, "grid", old), load_layer(connection, "grid", new)
    assert before.set_index("code").geometry[G1].equals(box(120.90, 30.83, 120.91, 30.84).normalize()) or (
        before.set_index("code").geometry[G1].symmetric_difference(box(120.90, 30.83, 120.91, 30.84)).area < 1e-12
    )
    assert after.set_index("code").geometry[G1].area == pytest.approx(box(120.90, 30.83, 120.91, 30.835).area)
    micro = load_layer(connection, "micro_grid", new).set_index("code")
    assert micro.loc[M12, "parent_code"] == G2
    assert get_draft(connection, d).status == "published"
    audit = connection.execute(sa.text("SELECT actor, detail FROM audit_log WHERE action = 'boundaries.publish'")).one()
    assert audit.actor == "planner" and audit.detail["why"] == "rebalance households"
    # History: listing and diff.
    gens = generations(connection)
    assert [g["id"] for g in gens][-1] == new and gens[-1]["in_force"]
    diff = diff_generations(connection, old, new)
    assert [c["code"] for c in diff["layers"]["grid"]["changed"]] == [G1, G2]
    g1 = diff["layers"]["grid"]["changed"][0]
    assert g1["area_change_m2"] == pytest.approx(-g1["area_before_m2"] / 2, rel=1e-3)
    assert diff["layers"]["micro_grid"]["changed"][0]["what"] == ["parent_code"]
    assert diff["totals"] == {
        "grid": {"added": 0, "removed": 0, "changed": 2},
        "micro_grid": {"added": 0, "removed": 0, "changed": 1},
    }


def test_stale_draft_is_refused_then_rebased(connection: Connection, mini_county) -> None:
    first = _move_m12(connection)
    second = create_draft(connection, "grid", "330421002", author="other")
    edits.rename(connection, second, "330421002001001", actor="other", name="新名称")
    published = publish_draft(connection, first, actor="planner").generation
    with pytest.raises(StaleDraftError, match=f"generation {published}.*rebase") as err:
        publish_draft(connection, second, actor="other")
    assert err.value.superseded_by == published and err.value.base == mini_county.generation
    assert current_generation(connection) == published
    rebase_draft(connection, second, actor="other")
    assert publish_draft(connection, second, actor="other").generation > published


def test_restore_publishes_an_earlier_generation_again(connection: Connection, mini_county) -> None:
    ids = _seed(connection)
    old = mini_county.generation
    moved = publish_draft(connection, _move_m12(connection), actor="planner").generation
    result = restore_generation(connection, old, actor="admin", note="undo")
    assert result.generation > moved and current_generation(connection) == result.generation
    assert _codes(connection, "buildings", ids["b1"]) == (G1, M12, result.generation)
    restored = load_layer(connection, "grid", result.generation)
    original = load_layer(connection, "grid", old)
    assert all(a.equals(b) for a, b in zip(restored.geometry, original.geometry, strict=True))
    assert diff_generations(connection, old, result.generation)["layers"] == {}
    with pytest.raises(ValueError, match="already in force"):
        restore_generation(connection, result.generation, actor="admin")
