"""Routing rule ``pick = nearest``: among the grid's on-duty workers of the rule's target, the lead
offer goes to the one whose recent patrol position is nearest the report; without a recent
position (stale, flagged, none) the rule picks as usual (the first on the roster)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from gis.core.settings import Settings
from gis.dispatch.assignments import list_assignments
from gis.dispatch.errors import DispatchInputError
from gis.dispatch.routing import preview
from gis.dispatch.rules import create_rule, list_rules
from gis.incidents.intake import create_incident
from tests.dispatch_roster import GRID1, IN_GRID1, Roster, make_roster

T0 = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
SETTINGS = Settings(accept_within_s=600, accept_within_110_s=60, position_recent_s=900)
NEAR = (120.9052, 30.8322)  # about 30 m from the report (IN_GRID1)
FAR = (120.9020, 30.8300)  # about 360 m away, still in grid 1


@pytest.fixture
def roster(connection, mini_county) -> Roster:  # type: ignore[no-untyped-def]
    return make_roster(connection)


@pytest.fixture
def second_worker(connection, roster: Roster) -> int:  # type: ignore[no-untyped-def]
    """A second grid worker on duty in grid 1, after the roster's (a larger person id)."""
    pid = connection.execute(sa.text("INSERT INTO people (name) VALUES ('网格员戊') RETURNING id")).scalar_one()
    connection.execute(
        sa.text(
            "INSERT INTO postings (person_id, role, layer, area_code, starts_on) "
            "VALUES (:p, 'grid_worker', 'grid', :g, DATE '2020-01-01')"
        ),
        {"p": pid, "g": GRID1},
    )
    assert pid > roster.grid_worker
    return int(pid)


@pytest.fixture
def nearest_rule(connection, roster: Roster) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return create_rule(connection, "admin", {"target": "grid_worker", "pick": "nearest", "priority": 90})


def position(conn, person: int, where: tuple[float, float], at: dt.datetime, flagged: bool = False) -> None:  # type: ignore[no-untyped-def]
    """A patrol of ``person`` started an hour before ``at`` with one GPS point at ``at``."""
    patrol = conn.execute(
        sa.text(
            "INSERT INTO patrols (person_id, grid_code, started_at, recorded_by) "
            "VALUES (:p, :g, :s, 'tests') RETURNING id"
        ),
        {"p": person, "g": GRID1, "s": at - dt.timedelta(hours=1)},
    ).scalar_one()
    conn.execute(
        sa.text(
            "INSERT INTO patrol_points (patrol_id, t, flagged, geom) "
            "VALUES (:id, :t, :f, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
        ),
        {"id": patrol, "t": at, "f": flagged, "x": where[0], "y": where[1]},
    )


def _lead(conn) -> int | None:  # type: ignore[no-untyped-def]
    data = {**IN_GRID1, "category": "dispute", "source": "grid_patrol", "reported_at": T0}
    incident, created = create_incident(conn, data, "reporter", settings=SETTINGS, now=T0)
    assert created
    leads = [a for a in list_assignments(conn, int(incident["id"])) if a["role"] == "lead"]
    assert len(leads) == 1
    return leads[0]["person_id"]


def test_the_nearer_of_two_workers_with_recent_positions_gets_the_offer(  # type: ignore[no-untyped-def]
    connection, roster, second_worker, nearest_rule
) -> None:
    position(connection, roster.grid_worker, FAR, T0 - dt.timedelta(minutes=2))
    position(connection, second_worker, NEAR, T0 - dt.timedelta(minutes=5))
    assert _lead(connection) == second_worker
    # The other way round: the roster's first worker is now the nearer one.
    position(connection, roster.grid_worker, NEAR, T0 - dt.timedelta(minutes=1))
    position(connection, second_worker, FAR, T0 - dt.timedelta(seconds=30))
    assert _lead(connection) == roster.grid_worker
    assert {"pick": "nearest", "target": "grid_worker"}.items() <= next(
        r for r in list_rules(connection) if r["id"] == nearest_rule["id"]
    ).items()


def test_stale_or_flagged_positions_fall_back_to_the_usual_worker(  # type: ignore[no-untyped-def]
    connection, roster, second_worker, nearest_rule
) -> None:
    position(connection, roster.grid_worker, FAR, T0 - dt.timedelta(minutes=40))  # older than 15 minutes
    position(connection, second_worker, NEAR, T0 - dt.timedelta(minutes=16))
    position(connection, second_worker, NEAR, T0 - dt.timedelta(minutes=1), flagged=True)  # an impossible jump
    position(connection, second_worker, NEAR, T0 + dt.timedelta(minutes=1))  # not yet: after the report
    assert _lead(connection) == roster.grid_worker


def test_a_worker_with_a_recent_position_comes_before_one_without(  # type: ignore[no-untyped-def]
    connection, roster, second_worker, nearest_rule
) -> None:
    position(connection, second_worker, FAR, T0 - dt.timedelta(minutes=3))
    assert _lead(connection) == second_worker


def test_a_first_rule_ignores_positions_and_preview_agrees(connection, roster, second_worker) -> None:  # type: ignore[no-untyped-def]
    position(connection, second_worker, NEAR, T0 - dt.timedelta(minutes=1))
    assert _lead(connection) == roster.grid_worker  # the default rule (pick first)
    rule = create_rule(connection, "admin", {"target": "grid_worker", "pick": "nearest", "priority": 90})
    data = {**IN_GRID1, "category": "dispute", "source": "grid_patrol", "reported_at": T0}
    incident, _ = create_incident(connection, data, "reporter", settings=SETTINGS, now=T0)
    iid = int(incident["id"])
    connection.execute(
        sa.text("UPDATE incident_assignments SET state = 'withdrawn' WHERE incident_id = :i"), {"i": iid}
    )
    chosen = [(r["role"], r["person_id"], r["rule_id"]) for r in preview(connection, iid, T0, SETTINGS)]
    assert chosen == [("lead", second_worker, rule["id"])]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"target": "grid_worker", "pick": "closest"}, "'closest' is not one of first, nearest"),
        ({"target": "village_centre", "pick": "nearest"}, "not village_centre"),
        ({"target": "aux_police", "pick": "nearest", "role": "co"}, "a co rule offers"),
        ({"target": "grid_worker", "pick": 1}, "1 is not one of first, nearest"),
    ],
)
def test_a_bad_pick_is_refused_naming_it(connection, roster, data, message) -> None:  # type: ignore[no-untyped-def]
    before = len(list_rules(connection))
    with pytest.raises(DispatchInputError) as err:
        create_rule(connection, "admin", data)
    assert err.value.field == "pick" and message in str(err.value)
    assert len(list_rules(connection)) == before
