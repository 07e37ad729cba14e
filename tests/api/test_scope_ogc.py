"""Scoped accounts (issue 15) on the OGC API: a key of town A reads A's items only, in JSON, HTML
and vector tiles; B's items are not counted and answer 404 by id; an unscoped key reads all.

tipg reads over its own connection pool, which cannot see a test's uncommitted rows, so the data
is committed in a scratch database of this module, served by an app made for it."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from boundaries.generations import publish_layers
from gis.core import db
from gis.core.settings import Settings
from gis.people.keys import create_key
from tests.conftest import build_mini_county, scratch_database

TOWN_A, TOWN_B = "330421001", "330421002"
# Incidents per town: town A lies west of 120.92, town B east of it (boundaries.sample).
PER_TOWN = 5


@dataclass(frozen=True)
class Keys:
    a: dict[str, str]
    county: dict[str, str]
    lookup: dict[str, str]


def _populate(url: str) -> Keys:
    engine = db.make_engine(url)
    with engine.begin() as conn:
        publish_layers(
            conn,
            build_mini_county(),
            note="scope ogc",
            author="tests",
            published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        )
        conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, description, geom) "
                "SELECT '垃圾堆放', 'app', timestamptz '2024-01-01 08:00+08' + i * interval '1 day', "
                "'town ' || t || ' #' || i, ST_SetSRID(ST_MakePoint(x + i * 0.001, 30.835), 4326) "
                "FROM generate_series(0, :n - 1) AS i, (VALUES ('A', 120.905), ('B', 120.925)) AS towns(t, x)"
            ),
            {"n": PER_TOWN},
        )
        conn.execute(
            sa.text(
                "INSERT INTO buildings (code, name, geom) VALUES "
                "('BA', 'A楼', ST_SetSRID(ST_MakePoint(120.906, 30.836), 4326)), "
                "('BB', 'B楼', ST_SetSRID(ST_MakePoint(120.926, 30.846), 4326))"
            )
        )
        keys = Keys(
            a={"X-API-Key": create_key(conn, "viewer", "ogc-a", TOWN_A)},
            county={"X-API-Key": create_key(conn, "viewer", "ogc-county")},
            lookup={"X-API-Key": create_key(conn, "viewer", "ogc-lookup", "lookup")},
        )
    engine.dispose()
    return keys


@dataclass(frozen=True)
class Served:
    client: TestClient
    keys: Keys


@pytest.fixture(scope="module")
def served(database_url: str) -> Iterator[Served]:
    from api.app import create_app

    with scratch_database(database_url, "scopeogc") as scratch:
        keys = _populate(scratch)
        engine = db.make_engine(scratch)
        app = create_app(Settings(database_url=scratch, rate_limit_per_minute=0, freeze_heap=False), engine=engine)
        with TestClient(app) as client:
            yield Served(client, keys)
        engine.dispose()


def _items(served: Served, collection: str, headers: dict[str, str], **params: object) -> dict[str, object]:
    r = served.client.get(f"/ogc/collections/ogc.{collection}/items", params={"limit": 100, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _codes(page: dict[str, object], prop: str) -> list[str]:
    return [f["properties"][prop] for f in page["features"]]  # type: ignore[attr-defined,index]


def test_point_items_are_limited_to_the_scope(served: Served) -> None:
    mine = _items(served, "incidents", served.keys.a)
    assert mine["numberMatched"] == PER_TOWN and mine["numberReturned"] == PER_TOWN
    assert set(_codes(mine, "town_code")) == {TOWN_A}
    everything = _items(served, "incidents", served.keys.county)
    assert everything["numberMatched"] == 2 * PER_TOWN
    assert set(_codes(everything, "town_code")) == {TOWN_A, TOWN_B}
    assert _codes(_items(served, "buildings", served.keys.a), "code") == ["BA"]
    assert _items(served, "incidents", served.keys.lookup)["numberMatched"] == 0


def test_the_callers_filter_is_kept_and_cannot_widen_the_scope(served: Served) -> None:
    b_only = _items(served, "incidents", served.keys.a, filter=f"town_code = '{TOWN_B}'")
    assert b_only["numberMatched"] == 0
    # An OR in the caller's filter stays inside its own parentheses: still A's rows only.
    either = _items(served, "incidents", served.keys.a, filter=f"town_code = '{TOWN_B}' OR id > 0")
    assert either["numberMatched"] == PER_TOWN and set(_codes(either, "town_code")) == {TOWN_A}
    json_filter = '{"op": "=", "args": [{"property": "town_code"}, "' + TOWN_B + '"]}'
    as_json = _items(served, "incidents", served.keys.a, filter=json_filter, **{"filter-lang": "cql2-json"})
    assert as_json["numberMatched"] == 0
    assert (
        _items(served, "incidents", served.keys.county, filter=f"town_code = '{TOWN_B}'")["numberMatched"] == PER_TOWN
    )


def test_paging_links_do_not_carry_the_scope(served: Served) -> None:
    page = _items(served, "incidents", served.keys.a, limit=2)
    assert page["numberMatched"] == PER_TOWN and page["numberReturned"] == 2
    links = {link["rel"]: link["href"] for link in page["links"]}  # type: ignore[attr-defined]
    assert "next" in links and "LIKE" not in links["next"] and TOWN_A not in links["next"]
    seen = set(_codes(page, "description"))
    href = links["next"]
    while href:
        r = served.client.get(href, headers=served.keys.a)
        assert r.status_code == 200
        seen |= set(_codes(r.json(), "description"))
        href = next((link["href"] for link in r.json()["links"] if link["rel"] == "next"), None)
    assert seen == {f"town A #{i}" for i in range(PER_TOWN)}


def test_items_by_id_outside_the_scope_are_not_found(served: Served) -> None:
    county = _items(served, "incidents", served.keys.county)
    by_town = {f["properties"]["town_code"]: f["id"] for f in county["features"]}  # type: ignore[attr-defined]
    c = served.client
    assert c.get(f"/ogc/collections/ogc.incidents/items/{by_town[TOWN_A]}", headers=served.keys.a).status_code == 200
    hidden = c.get(f"/ogc/collections/ogc.incidents/items/{by_town[TOWN_B]}", headers=served.keys.a)
    assert hidden.status_code == 404
    assert (
        c.get(f"/ogc/collections/ogc.incidents/items/{by_town[TOWN_B]}", headers=served.keys.county).status_code == 200
    )
    grid_b = TOWN_B + "001001"
    assert c.get(f"/ogc/collections/ogc.grids/items/{grid_b}", headers=served.keys.a).status_code == 404
    assert c.get(f"/ogc/collections/ogc.grids/items/{TOWN_A}001001", headers=served.keys.a).status_code == 200


def test_area_collections_are_limited_to_the_scope(served: Served) -> None:
    for collection, count in (("towns", 1), ("villages", 2), ("grids", 4), ("micro_grids", 8), ("counties", 0)):
        page = _items(served, collection, served.keys.a)
        assert page["numberMatched"] == count, collection
        assert all(code.startswith(TOWN_A) for code in _codes(page, "code")), collection
    assert _items(served, "grids", served.keys.county)["numberMatched"] == 8
    # Police beats are not under a town's code: outside a town's scope.
    assert _items(served, "beats", served.keys.a)["numberMatched"] == 0


def test_html_views_are_limited_to_the_scope(served: Served) -> None:
    r = served.client.get("/ogc/collections/ogc.grids/items", params={"f": "html"}, headers=served.keys.a)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert f"{TOWN_A}001001" in r.text and f"{TOWN_B}001001" not in r.text
    county = served.client.get("/ogc/collections/ogc.grids/items", params={"f": "html"}, headers=served.keys.county)
    assert f"{TOWN_B}001001" in county.text


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    x = int((lon + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
    return x, y


def test_vector_tiles_are_limited_to_the_scope(served: Served) -> None:
    z = 12
    x, y = _tile(120.92, 30.84, z)  # one tile holds the whole mini county
    path = f"/ogc/collections/ogc.incidents/tiles/WebMercatorQuad/{z}/{x}/{y}"
    county = served.client.get(path, headers=served.keys.county)
    assert county.status_code == 200, county.text
    assert b"town A #0" in county.content and b"town B #0" in county.content
    mine = served.client.get(path, headers=served.keys.a)
    assert mine.status_code == 200
    assert b"town A #0" in mine.content and b"town B" not in mine.content
