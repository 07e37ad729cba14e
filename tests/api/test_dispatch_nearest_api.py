"""The routing rules' ``pick`` through the API: an admin adds a ``nearest`` rule, live intake offers
the report to the nearer on-duty worker, and a bad value answers 422 naming ``pick``."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from gis.people.keys import create_key
from tests.dispatch_roster import GRID1, IN_GRID1, Roster, make_roster
from tests.gis.test_dispatch_nearest import FAR, NEAR, position


@pytest.fixture
def roster(connection, mini_county) -> Roster:  # type: ignore[no-untyped-def]
    return make_roster(connection)


def test_an_admin_adds_a_nearest_rule_and_intake_offers_to_the_nearer_worker(client, connection, roster) -> None:  # type: ignore[no-untyped-def]
    admin = {"X-API-Key": create_key(connection, "admin", "admin")}
    reporter = {"X-API-Key": create_key(connection, "reporter", "app")}
    second = connection.execute(sa.text("INSERT INTO people (name) VALUES ('网格员戊') RETURNING id")).scalar_one()
    connection.execute(
        sa.text(
            "INSERT INTO postings (person_id, role, layer, area_code, starts_on) "
            "VALUES (:p, 'grid_worker', 'grid', :g, DATE '2020-01-01')"
        ),
        {"p": second, "g": GRID1},
    )
    now = dt.datetime.now(dt.UTC)
    position(connection, roster.grid_worker, FAR, now - dt.timedelta(minutes=2))
    position(connection, second, NEAR, now - dt.timedelta(minutes=3))
    made = client.post(
        "/routing-rules", json={"target": "grid_worker", "pick": "nearest", "priority": 90}, headers=admin
    )
    assert made.status_code == 201, made.text
    assert made.json()["pick"] == "nearest"
    listed = client.get("/routing-rules", headers=admin).json()
    assert {r["pick"] for r in listed} == {"first", "nearest"}
    resp = client.post(
        "/incidents", json={**IN_GRID1, "category": "dispute", "source": "resident_app"}, headers=reporter
    )
    assert resp.status_code == 201, resp.text
    holders = client.get(f"/incidents/{resp.json()['id']}/assignments", headers=admin).json()
    assert [(a["role"], a["person_id"]) for a in holders] == [("lead", second)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"target": "grid_worker", "pick": "closest"}, "'closest' is not one of first, nearest"),
        ({"target": "town_centre", "pick": "nearest"}, "not town_centre"),
        ({"target": "beat_officer", "pick": "nearest", "role": "co"}, "a co rule"),
        ({"target": "grid_worker", "pick": "nearest-of-all"}, "at most 8 characters"),
    ],
)
def test_a_bad_pick_answers_422_naming_it(client, connection, roster, body, message) -> None:  # type: ignore[no-untyped-def]
    admin = {"X-API-Key": create_key(connection, "admin", "admin")}
    before = connection.execute(sa.text("SELECT count(*) FROM routing_rules")).scalar_one()
    resp = client.post("/routing-rules", json=body, headers=admin)
    assert resp.status_code == 422
    assert "pick" in resp.text and message in resp.text, resp.text
    assert connection.execute(sa.text("SELECT count(*) FROM routing_rules")).scalar_one() == before
