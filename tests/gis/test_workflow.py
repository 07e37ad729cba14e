"""The closed loop: legal and illegal transitions, history and audit, manual and timed escalation,
and the deadline jobs each of them schedules (the worker that runs them: tests/work/test_jobs.py)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from gis.core.settings import Settings
from gis.incidents import rules
from gis.incidents.intake import create_incident
from gis.incidents.query import get_incident
from gis.incidents.workflow import (
    IllegalTransition,
    IncidentNotFound,
    UnknownActionError,
    escalate,
    escalate_if_overdue,
    escalate_overdue,
    transition,
)
from tests.dispatch_roster import give_holder

T0 = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)


def _new(conn, category: str = "dispute", lon: float = 120.905) -> int:  # type: ignore[no-untyped-def]
    data = {"lon": lon, "lat": 30.832, "category": category, "source": "resident_app", "reported_at": T0}
    incident, _ = create_incident(conn, data, "reporter", settings=Settings(), now=T0)
    return int(incident["id"])


def test_the_whole_loop_writes_history_and_audit_and_closes(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    iid = _new(connection)
    steps = ["accept", "dispatch", "start", "handle", "verify", "close"]
    give_holder(connection, iid)  # ``dispatched`` requires a holder
    for n, action in enumerate(steps, start=1):
        transition(connection, iid, action, "disp", note=f"step {n}", now=T0 + dt.timedelta(hours=n))
    incident = get_incident(connection, iid)
    assert incident is not None
    assert incident["status"] == "closed" and incident["closed_at"] == T0 + dt.timedelta(hours=6)
    history = [(e["action"], e["from_status"], e["to_status"], e["actor"], e["note"]) for e in incident["history"]]
    assert history == [
        ("report", None, "reported", "reporter", "source=resident_app"),
        ("accept", "reported", "accepted", "disp", "step 1"),
        ("dispatch", "accepted", "dispatched", "disp", "step 2"),
        ("start", "dispatched", "in_progress", "disp", "step 3"),
        ("handle", "in_progress", "handled", "disp", "step 4"),
        ("verify", "handled", "verified", "disp", "step 5"),
        ("close", "verified", "closed", "disp", "step 6"),
    ]
    assert incident["history"][3]["at"] == T0 + dt.timedelta(hours=3)
    audit = connection.execute(
        sa.text(
            "SELECT detail->>'from', detail->>'to' FROM audit_log "
            "WHERE action = 'incident.transition' AND target = :t ORDER BY id"
        ),
        {"t": f"incident/{iid}"},
    ).all()
    assert audit[0] == ("reported", "accepted") and audit[-1] == ("verified", "closed") and len(audit) == 6


def test_statuses_are_accepted_as_actions_and_a_failed_check_sends_back(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    iid = _new(connection)
    give_holder(connection, iid)
    for status in ("accepted", "dispatched", "in_progress", "handled"):
        transition(connection, iid, status, "disp")
    assert transition(connection, iid, "send_back", "disp", "photos missing")["status"] == "in_progress"


def test_an_illegal_transition_names_the_allowed_next_states(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    iid = _new(connection)
    with pytest.raises(IllegalTransition) as err:
        transition(connection, iid, "close", "disp")
    assert err.value.current == "reported" and err.value.allowed == ("accepted", "rejected")
    assert "allowed next: accepted, rejected" in str(err.value)
    events = connection.execute(sa.text("SELECT count(*) FROM incident_events WHERE incident_id = :i"), {"i": iid})
    assert events.scalar_one() == 1  # only the report


def test_rejecting_ends_the_incident(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    iid = _new(connection)
    rejected = transition(connection, iid, "reject", "disp", "not our matter", now=T0 + dt.timedelta(hours=1))
    assert rejected["status"] == "rejected" and rejected["closed_at"] == T0 + dt.timedelta(hours=1)
    with pytest.raises(IllegalTransition) as err:
        transition(connection, iid, "accept", "disp")
    assert err.value.allowed == () and "final" in str(err.value)


def test_unknown_actions_and_incidents(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    iid = _new(connection)
    with pytest.raises(UnknownActionError, match="unknown action 'approve'"):
        transition(connection, iid, "approve", "disp")
    with pytest.raises(IncidentNotFound):
        transition(connection, 10**12, "accept", "disp")


def _level(conn, iid: int) -> tuple[str, dt.datetime]:  # type: ignore[no-untyped-def]
    row = conn.execute(sa.text("SELECT escalation_level, deadline_at FROM incidents WHERE id = :i"), {"i": iid}).one()
    return row[0], row[1]


def test_overdue_incidents_escalate_one_level_per_deadline(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    iid = _new(connection, "fire")  # default deadline: 4 h
    done = _new(connection, "fire", lon=120.935)
    give_holder(connection, done)
    for action in ("accept", "dispatch", "start", "handle"):
        transition(connection, done, action, "disp")
    deadline = T0 + dt.timedelta(hours=rules.CATEGORIES["fire"].deadline_hours)

    assert escalate_overdue(connection, deadline - dt.timedelta(minutes=1)) == 0
    t1 = deadline + dt.timedelta(minutes=1)
    assert escalate_overdue(connection, t1) == 1  # the handled one no longer runs against a deadline
    assert _level(connection, iid) == ("village", t1 + dt.timedelta(hours=rules.ESCALATION_HOURS["village"]))
    assert escalate_overdue(connection, t1) == 0  # the new deadline is in the future

    t2 = t1 + dt.timedelta(hours=25)
    assert escalate_overdue(connection, t2) == 1
    assert _level(connection, iid) == ("town", t2 + dt.timedelta(hours=12))
    t3 = t2 + dt.timedelta(hours=13)
    assert escalate_overdue(connection, t3) == 1
    assert _level(connection, iid)[0] == "county"
    assert escalate_overdue(connection, t3 + dt.timedelta(days=10)) == 0  # the top: it stays there

    incident = get_incident(connection, iid)
    assert incident is not None
    notes = [e["note"] for e in incident["history"] if e["action"] == "escalate"]
    assert notes == ["overdue: grid → village", "overdue: village → town", "overdue: town → county"]
    assert _level(connection, done)[0] == "grid"
    audit = connection.execute(
        sa.text("SELECT count(*) FROM audit_log WHERE action = 'incident.escalate' AND target = :t"),
        {"t": f"incident/{iid}"},
    )
    assert audit.scalar_one() == 3


def test_manual_escalation_moves_up_and_stops_at_the_county(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    iid = _new(connection)
    now = T0 + dt.timedelta(hours=1)
    up = escalate(connection, iid, "disp", "involves two villages", now=now)
    assert up["escalation_level"] == "village" and up["escalated_at"] == now
    assert up["deadline_at"] == now + dt.timedelta(hours=24)
    assert up["history"][-1]["note"] == "grid → village: involves two villages"
    escalate(connection, iid, "disp")
    escalate(connection, iid, "disp")
    with pytest.raises(IllegalTransition, match="already at the county"):
        escalate(connection, iid, "disp")
    closed = _new(connection, lon=120.935)
    transition(connection, closed, "reject", "disp")
    with pytest.raises(IllegalTransition, match="not escalated"):
        escalate(connection, closed, "disp")


def _jobs(conn, iid: int) -> list[tuple[str, str, dt.datetime]]:  # type: ignore[no-untyped-def]
    rows = conn.execute(
        sa.text(
            "SELECT task_name, args->>'level', scheduled_at FROM procrastinate_jobs "
            "WHERE args->>'incident_id' = CAST(:i AS text) ORDER BY id"
        ),
        {"i": iid},
    )
    return [tuple(r) for r in rows]


def test_intake_and_each_escalation_schedule_the_next_deadline_job(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    iid = _new(connection)
    grid_deadline = _level(connection, iid)[1]
    assert _jobs(connection, iid) == [("gridmap:incident_deadline", "grid", grid_deadline)]
    t1 = grid_deadline + dt.timedelta(minutes=1)
    assert escalate_overdue(connection, t1) == 1
    village = (_level(connection, iid)[1], "village")
    assert _jobs(connection, iid)[1][1:] == ("village", village[0]) and village[0] == t1 + dt.timedelta(hours=24)
    escalate(connection, iid, "disp", now=t1 + dt.timedelta(hours=1))  # manual: village → town
    assert [j[1] for j in _jobs(connection, iid)] == ["grid", "village", "town"]
    escalate(connection, iid, "disp")  # town → county: the top has no next deadline, so no job
    assert len(_jobs(connection, iid)) == 3
    # Every path writes the same job: one lock per incident, waiting in the deadlines queue.
    same = connection.execute(
        sa.text(
            "SELECT DISTINCT lock, queue_name, status FROM procrastinate_jobs "
            "WHERE args->>'incident_id' = CAST(:i AS text)"
        ),
        {"i": iid},
    ).all()
    assert same == [(f"incident:{iid}", "deadlines", "todo")]


def test_a_deadline_job_escalates_once_and_only_at_its_level(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    iid = _new(connection)
    deadline = _level(connection, iid)[1]
    assert not escalate_if_overdue(connection, iid, "grid", now=deadline - dt.timedelta(seconds=1))  # not yet
    assert escalate_if_overdue(connection, iid, "grid", now=deadline + dt.timedelta(seconds=1))
    assert not escalate_if_overdue(connection, iid, "grid", now=deadline + dt.timedelta(days=30))  # a re-run
    assert _level(connection, iid)[0] == "village"
    events = connection.execute(
        sa.text("SELECT count(*) FROM incident_events WHERE incident_id = :i AND action = 'escalate'"), {"i": iid}
    )
    assert events.scalar_one() == 1
    transition(connection, iid, "reject", "disp")
    assert not escalate_if_overdue(connection, iid, "village", now=deadline + dt.timedelta(days=30))  # not pending


def test_a_replayed_report_schedules_no_second_job(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    data = {"lon": 120.905, "lat": 30.832, "category": "dispute", "source": "resident_app", "external_id": "r-1"}
    first, created = create_incident(connection, data, "reporter", settings=Settings(), now=T0)
    again, created_again = create_incident(connection, data, "reporter", settings=Settings(), now=T0)
    assert (created, created_again, again["id"]) == (True, False, first["id"])
    assert len(_jobs(connection, int(first["id"]))) == 1


def test_pending_incidents_without_a_deadline_job_get_one(connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    from gis.work.jobs import schedule_missing_deadlines

    iid, done = _new(connection), _new(connection, lon=120.935)
    transition(connection, done, "reject", "disp")
    connection.execute(sa.text("DELETE FROM procrastinate_jobs"))  # as after a bulk import
    assert schedule_missing_deadlines(connection) == 1  # the rejected incident needs none
    assert _jobs(connection, iid) == [("gridmap:incident_deadline", "grid", _level(connection, iid)[1])]
    assert _jobs(connection, done) == []
    assert schedule_missing_deadlines(connection) == 0  # it has one now
