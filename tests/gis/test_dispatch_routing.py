"""Routing at intake: the default rules (migration 0016) offer a report to the people on duty and
the units responsible for its place, in the intake's one statement, with the lead offer's
acceptance-deadline job; and an offer left unaccepted goes to the village station."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from gis.core.settings import Settings
from gis.dispatch.assignments import list_assignments
from gis.dispatch.deadlines import expire_offer
from gis.dispatch.routing import OFFER_TASK, preview, route
from gis.incidents.intake import create_incident
from gis.incidents.query import get_incident
from tests.dispatch_roster import IN_GRID1, IN_GRID2, Roster, make_roster

T0 = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
SETTINGS = Settings(accept_within_s=600, accept_within_110_s=60)


@pytest.fixture
def roster(connection, mini_county) -> Roster:  # type: ignore[no-untyped-def]
    return make_roster(connection)


def _report(conn, category: str = "dispute", source: str = "grid_patrol", where=IN_GRID1) -> int:  # type: ignore[no-untyped-def]
    data = {**where, "category": category, "source": source, "reported_at": T0}
    incident, created = create_incident(conn, data, "reporter", settings=SETTINGS, now=T0)
    assert created
    return int(incident["id"])


def _holders(conn, iid: int) -> list[tuple[str, int | None, str | None, str]]:  # type: ignore[no-untyped-def]
    return [(a["role"], a["person_id"], a["org_unit"], a["state"]) for a in list_assignments(conn, iid)]


def test_a_110_report_goes_to_the_beat_officer_and_the_grids_auxiliary_police(connection, roster) -> None:  # type: ignore[no-untyped-def]
    iid = _report(connection, "noise", "hotline_110")
    assert sorted(_holders(connection, iid)) == [
        ("co", roster.aux_police, None, "offered"),
        ("lead", roster.beat_officer, None, "offered"),
    ]
    offers = list_assignments(connection, iid)
    assert {a["accept_by"] for a in offers} == {T0 + dt.timedelta(seconds=60)}
    assert {a["offered_by"] for a in offers} == {"system"}
    incident = get_incident(connection, iid)
    assert incident is not None
    history = [(e["action"], e["actor"], e["to_status"]) for e in incident["history"]]
    assert history == [("report", "reporter", "reported"), ("dispatch", "system", "reported"),
                       ("dispatch", "system", "reported")]  # fmt: skip
    assert {e["note"] for e in incident["history"][1:]} == {
        f"lead offered to person {roster.beat_officer}",
        f"co offered to person {roster.aux_police}",
    }
    stamped = connection.execute(sa.text("SELECT dispatched_at FROM incidents WHERE id = :i"), {"i": iid}).scalar()
    assert stamped == T0
    # One acceptance-deadline job, for the lead offer, at its deadline.
    jobs = connection.execute(
        sa.text("SELECT args->>'assignment_id', scheduled_at FROM procrastinate_jobs WHERE task_name = :t "
                "AND lock = :l"),
        {"t": OFFER_TASK, "l": f"incident:{iid}"},
    ).all()  # fmt: skip
    lead = next(a for a in offers if a["role"] == "lead")
    assert jobs == [(str(lead["id"]), T0 + dt.timedelta(seconds=60))]


def test_public_order_categories_route_like_110_and_the_rest_to_the_grid_worker(connection, roster) -> None:  # type: ignore[no-untyped-def]
    theft = _report(connection, "theft", "resident_app")
    assert sorted(_holders(connection, theft)) == [
        ("co", roster.aux_police, None, "offered"),
        ("lead", roster.beat_officer, None, "offered"),
    ]
    dispute = _report(connection, "dispute", "resident_app", where={"lon": 120.906, "lat": 30.833})
    assert _holders(connection, dispute) == [("lead", roster.grid_worker, None, "offered")]
    assert list_assignments(connection, dispute)[0]["accept_by"] == T0 + dt.timedelta(seconds=600)


def test_a_grid_without_a_worker_on_duty_goes_to_its_village_station(connection, roster) -> None:  # type: ignore[no-untyped-def]
    iid = _report(connection, "dispute", where=IN_GRID2)
    assert _holders(connection, iid) == [("lead", None, "330421001001-GZZ", "offered")]


def test_illegal_construction_adds_the_law_enforcement_department(connection, roster) -> None:  # type: ignore[no-untyped-def]
    iid = _report(connection, "illegal_construction")
    assert sorted(_holders(connection, iid), key=str) == [
        ("co", None, "330421-ZHZF", "offered"),
        ("lead", roster.grid_worker, None, "offered"),
    ]


def test_a_posting_ended_yesterday_is_not_on_duty(connection, roster) -> None:  # type: ignore[no-untyped-def]
    connection.execute(
        sa.text("UPDATE postings SET ends_on = DATE '2024-04-30' WHERE person_id = :p"), {"p": roster.grid_worker}
    )
    iid = _report(connection, "dispute")
    assert _holders(connection, iid) == [("lead", None, "330421001001-GZZ", "offered")]


def test_routing_again_offers_no_one_twice(connection, roster) -> None:  # type: ignore[no-untyped-def]
    iid = _report(connection, "noise", "hotline_110")
    assert preview(connection, iid, T0) == []
    assert route(connection, iid, "disp", T0, SETTINGS) == []
    assert len(list_assignments(connection, iid)) == 2


def test_an_incident_without_any_rule_holder_is_stored_undispatched(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    iid = _report(connection, "dispute")  # no roster: nobody on duty, no units
    assert list_assignments(connection, iid) == []
    assert connection.execute(sa.text("SELECT dispatched_at FROM incidents WHERE id = :i"), {"i": iid}).scalar() is None


def test_an_unaccepted_offer_escalates_to_the_village_station_once(connection, roster) -> None:  # type: ignore[no-untyped-def]
    iid = _report(connection, "noise", "hotline_110")
    lead = next(a for a in list_assignments(connection, iid) if a["role"] == "lead")
    assert not expire_offer(connection, lead["id"], now=T0 + dt.timedelta(seconds=59))  # not yet
    later = T0 + dt.timedelta(seconds=61)
    assert expire_offer(connection, lead["id"], now=later)
    assert not expire_offer(connection, lead["id"], now=later)  # a second run changes nothing
    holders = _holders(connection, iid)
    assert ("lead", roster.beat_officer, None, "withdrawn") in holders
    assert ("lead", None, "330421001001-GZZ", "offered") in holders
    assert ("co", roster.aux_police, None, "offered") in holders
    incident = get_incident(connection, iid)
    assert incident is not None and incident["escalation_level"] == "village"
    steps = [(e["action"], e["actor"]) for e in incident["history"]]
    assert steps[-2:] == [("escalate", "system"), ("dispatch", "system")]
    assert "not accepted by" in incident["history"][-2]["note"]
    assert incident["history"][-1]["note"] == "lead offered to org unit 330421001001-GZZ"
