"""/analysis/hotspots, /analysis/emerging and /analysis/repeats over HTTP: results, GeoJSON,
scope, and 422s naming the parameter."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from boundaries.sample import MiniCounty
from gis.core.vocab import COUNTY_TZ
from tests.gis.test_hotspots_db import EAST, SIDE, WEEK, WEST, add_incidents, cell_code, plant_week, publish_lattice


@pytest.fixture
def planted(connection: Connection, mini_county: MiniCounty) -> int:
    generation = publish_lattice(connection, mini_county)
    plant_week(connection, WEEK)
    return generation


def test_hotspots_json_and_geojson(client: TestClient, make_key, planted: int) -> None:  # type: ignore[no-untyped-def]
    headers = make_key("viewer")
    r = client.get("/analysis/hotspots", params={"date": WEEK.isoformat(), "permutations": 999}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["generation"] == planted and len(body["rows"]) == SIDE * SIDE
    by_code = {row["code"]: row for row in body["rows"]}
    assert by_code[cell_code(3, 3)]["class"].startswith("hot_")
    assert body["start"].startswith("2026-11-16T00:00:00+08:00")
    r = client.get(
        "/analysis/hotspots",
        params={"date": WEEK.isoformat(), "format": "geojson", "measure": "rate", "permutations": 999},
        headers=headers,
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    features = r.json()["features"]
    assert len(features) == SIDE * SIDE and all(f["geometry"]["type"] == "MultiPolygon" for f in features)
    hot = next(f for f in features if f["properties"]["code"] == cell_code(3, 3))
    assert hot["properties"]["style"]["fillColor"] != "#f7f7f7"


def test_scoped_key_gets_its_units_only(client: TestClient, make_key, planted: int) -> None:  # type: ignore[no-untyped-def]
    params = {"date": WEEK.isoformat(), "permutations": 999}
    whole = client.get("/analysis/hotspots", params=params, headers=make_key("viewer")).json()
    scoped = client.get("/analysis/hotspots", params=params, headers=make_key("viewer", scope=WEST)).json()
    assert {row["code"][:12] for row in scoped["rows"]} == {WEST}
    assert not any(row["code"].startswith(EAST) for row in scoped["rows"])
    # The statistic is county-wide: the scoped key's units carry the same figures.
    same = {row["code"]: row for row in whole["rows"]}
    assert all(row == same[row["code"]] for row in scoped["rows"])
    emerging = client.get(
        "/analysis/emerging", params={**params, "weeks": 4}, headers=make_key("viewer", scope=EAST)
    ).json()
    assert {row["code"][:12] for row in emerging["rows"]} == {EAST}


def test_repeats_api(client: TestClient, make_key, planted: int, connection: Connection) -> None:  # type: ignore[no-untyped-def]
    end = dt.datetime(2026, 11, 30, tzinfo=COUNTY_TZ)
    add_incidents(connection, [(9, 9)] * 3, end - dt.timedelta(days=3))
    params = {"end": "2026-11-30T00:00:00+08:00", "kind": "position"}
    r = client.get("/analysis/repeats", params=params, headers=make_key("viewer"))
    assert r.status_code == 200, r.text
    counts = [loc["count"] for loc in r.json()["locations"]]
    assert 3 in counts
    geo = client.get("/analysis/repeats", params={**params, "format": "geojson"}, headers=make_key("viewer"))
    assert geo.json()["features"][0]["geometry"]["type"] == "Point"
    # A key scoped to the west half does not count the incidents in the east corner.
    west = client.get("/analysis/repeats", params=params, headers=make_key("viewer", scope=WEST)).json()
    assert all(loc["grid_code"].startswith(WEST) for loc in west["locations"])
    assert not any(loc["grid_code"] == cell_code(9, 9) for loc in west["locations"])


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/analysis/hotspots", {"layer": "town"}, "layer"),
        ("/analysis/hotspots", {"period": "year"}, "period"),
        ("/analysis/hotspots", {"measure": "density"}, "measure"),
        ("/analysis/hotspots", {"p_value": "bayes"}, "p_value"),
        ("/analysis/hotspots", {"permutations": "5"}, "permutations"),
        ("/analysis/hotspots", {"date": "yesterday"}, "date"),
        ("/analysis/hotspots", {"start": "2026-11-01"}, "start"),
        ("/analysis/hotspots", {"window": "7d"}, "window"),
        ("/analysis/hotspots", {"category": "nonsense"}, "category"),
        ("/analysis/hotspots", {"format": "xml"}, "format"),
        ("/analysis/emerging", {"weeks": "2"}, "weeks"),
        ("/analysis/emerging", {"weeks": "many"}, "weeks"),
        ("/analysis/repeats", {"days": "0"}, "days"),
        ("/analysis/repeats", {"radius_m": "500"}, "radius_m"),
        ("/analysis/repeats", {"min_count": "1"}, "min_count"),
        ("/analysis/repeats", {"kind": "street"}, "kind"),
        ("/analysis/repeats", {"start": "2026-11-01"}, "start"),
    ],
)
def test_bad_parameters_answer_422_naming_the_field(
    client: TestClient,
    make_key,  # type: ignore[no-untyped-def]
    mini_county: MiniCounty,
    path: str,
    params: dict[str, str],
    field: str,
) -> None:
    r = client.get(path, params=params, headers=make_key("viewer"))
    assert r.status_code == 422, r.text
    assert any(field in detail["loc"] for detail in r.json()["detail"]), r.json()


def test_needs_a_key(client: TestClient, mini_county: MiniCounty) -> None:
    assert client.get("/analysis/hotspots").status_code == 401
