"""Two counties in one deployment (issue #20): generations per county, the assignment trigger and
the in-process lookups across both. County A is the mini county (330421); county B (330402) is
the same shape moved 0.1 degrees east and recoded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from boundaries import edits
from boundaries.drafts import create_draft
from boundaries.generations import BoundaryDataError, publish_layers
from boundaries.publish import StaleDraftError, publish_draft
from boundaries.sample import shifted_county
from gis.core.settings import get_settings
from gis.spatial.lookup import LookupService

A, B = "330421", "330402"
DX = 0.1


@pytest.fixture
def two_counties(connection: Connection, mini_county: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("GRIDMAP_COUNTIES", f"{A},{B}")
    get_settings.cache_clear()
    gen = publish_layers(
        connection,
        shifted_county(B, DX),
        note="second test county",
        author="tests",
        published_at=dt.datetime(2020, 1, 2, tzinfo=dt.UTC),
        county=B,
    )
    yield gen
    monkeypatch.delenv("GRIDMAP_COUNTIES")
    get_settings.cache_clear()


def _open_rows(conn: Connection, county: str) -> set[tuple[int, str, str]]:
    rows = conn.execute(
        sa.text("SELECT id, layer, code FROM areas WHERE gen_to IS NULL AND left(code, 6) = :c"), {"c": county}
    ).all()
    return {tuple(r) for r in rows}


def test_publishing_one_county_leaves_the_other_in_force(connection: Connection, two_counties: int) -> None:
    a_rows, b_rows = _open_rows(connection, A), _open_rows(connection, B)
    assert len(a_rows) == len(b_rows) == 1 + 2 + 4 + 8 + 16 + 2 + 3  # county .. micro-grids, stations, beats
    # County A's boundaries published again as A's generation: B's rows are the same rows, open.
    gen = publish_layers(connection, shifted_county(A, 0.0), note="A again", author="tests", county=A)
    assert _open_rows(connection, B) == b_rows
    assert not (_open_rows(connection, A) & a_rows)  # A's were replaced
    county = connection.execute(sa.text("SELECT county_code FROM generations WHERE id = :g"), {"g": gen}).scalar()
    assert county == A
    with pytest.raises(BoundaryDataError, match=f"'{B}001' is not in county {A}"):
        publish_layers(connection, {"town": shifted_county(B, DX)["town"]}, note="x", author="t", county=A)


def test_publishing_a_draft_in_one_county_leaves_the_other_untouched(connection: Connection, two_counties: int) -> None:
    b_rows = _open_rows(connection, B)
    wide = create_draft(connection, "grid", None, author="p")  # a draft of the whole deployment
    draft_b = create_draft(connection, "grid", f"{B}001", author="p")
    draft_a = create_draft(connection, "grid", f"{A}001", author="p")
    g1 = f"{A}001001001"
    edits.rename(connection, draft_a, g1, actor="p", name="A's renamed grid")
    published = publish_draft(connection, draft_a, actor="p")
    assert _open_rows(connection, B) == b_rows
    county = connection.execute(
        sa.text("SELECT county_code FROM generations WHERE id = :g"), {"g": published.generation}
    ).scalar()
    assert county == A
    # B's draft, based on a generation before A's publication, is not stale: A's units are not its.
    h1 = f"{B}001001001"
    edits.rename(connection, draft_b, h1, actor="p", name="B's renamed grid")
    second = publish_draft(connection, draft_b, actor="p")
    assert second.generation > published.generation
    names = dict(
        connection.execute(
            sa.text("SELECT code, name FROM areas WHERE code = ANY(:c) AND gen_to IS NULL"), {"c": [g1, h1]}
        ).all()
    )
    assert names == {g1: "A's renamed grid", h1: "B's renamed grid"}
    # A deployment-wide draft is stale after either county published.
    edits.rename(connection, wide, g1, actor="p", name="renamed")
    with pytest.raises(StaleDraftError):
        publish_draft(connection, wide, actor="p")


def test_trigger_and_lookups_across_counties(connection: Connection, two_counties: int) -> None:
    points = {A: (120.905, 30.832), B: (120.905 + DX, 30.832)}
    for county, (x, y) in points.items():
        got = connection.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, status, geom) "
                "VALUES ('dispute', 'other', now(), 'reported', ST_SetSRID(ST_MakePoint(:x, :y), 4326)) "
                "RETURNING county_code, grid_code"
            ),
            {"x": x, "y": y},
        ).one()
        assert got.county_code == county and got.grid_code == f"{county}001001001"
    service = LookupService()
    answers = service.lookup(connection, [p[0] for p in points.values()], [p[1] for p in points.values()])
    assert [a["grid"]["code"] for a in answers] == [f"{A}001001001", f"{B}001001001"]
    assert [a["beat"]["code"] for a in answers] == [f"{A}P0101", f"{B}P0101"]
    assert [a["county"]["code"] for a in answers] == [A, B]  # each point's own county, not the first
    one = service.lookup_point(connection, *points[B])
    assert one["micro_grid"]["code"] == f"{B}00100100101" and one["status"] == "inside"
    assert one["county"] == {"code": B, "name": f"{B}:嘉善县(测试)"}


def test_restoring_one_county_keeps_the_others_later_changes(connection: Connection, two_counties: int) -> None:
    from boundaries.publish import restore_generation

    g1, h1 = f"{A}001001001", f"{B}001001001"
    for code, scope in ((g1, f"{A}001"), (h1, f"{B}001")):
        draft = create_draft(connection, "grid", scope, author="p")
        edits.rename(connection, draft, code, actor="p", name=f"renamed {code}")
        publish_draft(connection, draft, actor="p")
    restored = restore_generation(connection, two_counties, actor="p", county=A)
    assert restored.layers == {"grid": {"added": [], "removed": [], "changed": [g1]}}
    names = dict(
        connection.execute(
            sa.text("SELECT code, name FROM areas WHERE code = ANY(:c) AND gen_to IS NULL"), {"c": [g1, h1]}
        ).all()
    )
    assert names[h1] == f"renamed {h1}" and names[g1] != f"renamed {g1}"
