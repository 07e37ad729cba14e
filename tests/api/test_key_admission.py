"""A key sent as ``?key=`` is admitted like one sent in a header: one rate limit per key across
the map pages, their data, OGC, tiles and exports, and across uvicorn's worker processes.

A real API (uvicorn, 2 workers) runs on a committed scratch database holding the mini county,
with a limit of 5 requests a minute per key. The five kinds of endpoint each answer one request
of a fresh key, which spends its 5 tokens whichever worker answered; then each kind answers
429 with ``Retry-After``. Counted per worker, or by code that bypasses the admission, the second
round would have passed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest

from boundaries.generations import publish_layers
from boundaries.sample import build_mini_county
from gis.core import db
from gis.people.keys import create_key
from tests.conftest import api_server, scratch_database

LIMIT = 5
# One of each kind that accepts a browser's or a desktop GIS's ?key=.
ENDPOINTS = {
    "map page": ("/maps/command-center", {}),
    "map data": ("/maps/data/layers/grid.geojson", {}),
    "OGC": ("/ogc/collections", {}),
    "tile": ("/tiles/grids/10/856/418.mvt", {}),
    "export": ("/export/grids", {"format": "geojson"}),
}


@pytest.fixture(scope="module")
def scratch_db(database_url: str) -> Iterator[str]:
    """The mini county, committed in a database of its own."""
    with scratch_database(database_url, "admission") as url:
        eng = db.make_engine(url, pool_size=1, max_overflow=0)
        with eng.begin() as conn:
            publish_layers(
                conn, build_mini_county(), note="admission test", author="tests",
                published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            )  # fmt: skip
        eng.dispose()
        yield url


def _key(url: str, name: str) -> str:
    eng = db.make_engine(url, pool_size=1, max_overflow=0)
    with eng.begin() as conn:
        key = create_key(conn, "viewer", name)
    eng.dispose()
    return key


@pytest.fixture(scope="module")
def server(scratch_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn with 2 workers on the scratch database, LIMIT requests a minute per key."""
    env = {
        "GRIDMAP_DATABASE_URL": scratch_db,
        "GRIDMAP_RATE_LIMIT_PER_MINUTE": str(LIMIT),
        "GRIDMAP_VAR_DIR": str(tmp_path_factory.mktemp("var")),  # a rate-limit table of its own
    }
    with api_server(env, tmp_path_factory.mktemp("server") / "uvicorn.log", workers=2) as base:
        yield base


def _get(client: httpx.Client, kind: str, key: str) -> httpx.Response:
    path, params = ENDPOINTS[kind]
    return client.get(path, params={**params, "key": key})


def test_query_keys_count_against_one_limit_across_endpoints_and_workers(server: str, scratch_db: str) -> None:
    with httpx.Client(base_url=server, timeout=60) as client:
        # Warm the workers' first builds with other keys (buckets of their own), so that the
        # measured rounds run well inside the 12 s in which one token refills.
        for n in range(2):
            warm = _key(scratch_db, f"warm-up {n}")
            for kind in ENDPOINTS:
                assert _get(client, kind, warm).status_code == 200, kind
        key = _key(scratch_db, "browser")
        first = {kind: _get(client, kind, key) for kind in ENDPOINTS}
        assert {k: r.status_code for k, r in first.items()} == dict.fromkeys(ENDPOINTS, 200)
        second = {kind: _get(client, kind, key) for kind in ENDPOINTS}
        assert {k: r.status_code for k, r in second.items()} == dict.fromkeys(ENDPOINTS, 429)
        for kind, response in second.items():
            assert int(response.headers["Retry-After"]) >= 1, kind
            assert "rate limit" in response.json()["detail"], kind
        # A header key of the same principal shares the bucket; another key still has its own.
        assert client.get("/maps/data/layers/grid.geojson", headers={"X-API-Key": key}).status_code == 429
        assert _get(client, "tile", _key(scratch_db, "other")).status_code == 200
