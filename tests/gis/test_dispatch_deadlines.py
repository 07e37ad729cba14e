"""The deadlines of summonses and supervision orders: jobs queued with the order, whose bodies
remind the holders once (催办 by the system) when the deadline passes unanswered."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from gis.core.settings import Settings
from gis.dispatch.assignments import Holder
from gis.dispatch.deadlines import expire_offer, supervision_due
from gis.dispatch.orders import SUPERVISION_TASK, reply, summon, supervise
from gis.dispatch.routing import OFFER_TASK
from gis.incidents.intake import create_incident
from tests.dispatch_roster import IN_GRID1, Roster, make_roster

T0 = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def incident(connection, mini_county) -> tuple[int, Roster]:  # type: ignore[no-untyped-def]
    roster = make_roster(connection)
    data = {**IN_GRID1, "category": "illegal_construction", "source": "resident_app", "reported_at": T0}
    made, _ = create_incident(connection, data, "app", settings=Settings(), now=T0)
    return int(made["id"]), roster


def _reminders(conn, iid: int) -> list[str]:  # type: ignore[no-untyped-def]
    rows = conn.execute(
        sa.text("SELECT note FROM incident_events WHERE incident_id = :i AND action = 'remind' ORDER BY id"), {"i": iid}
    )
    return list(rows.scalars())


def _job_at(conn, task: str, key: str, value: int) -> dt.datetime:  # type: ignore[no-untyped-def]
    return conn.execute(
        sa.text("SELECT scheduled_at FROM procrastinate_jobs WHERE task_name = :t AND (args->>:k)::bigint = :v"),
        {"t": task, "k": key, "v": value},
    ).scalar_one()


def test_a_summons_not_reported_in_reminds_once_and_stays(connection, incident) -> None:  # type: ignore[no-untyped-def]
    iid, _ = incident
    report_by = T0 + dt.timedelta(hours=2)
    (made,) = summon(connection, iid, "desk", ["330421-SZZX"], report_by, now=T0)
    assert _job_at(connection, OFFER_TASK, "assignment_id", made["id"]) == report_by
    assert not expire_offer(connection, made["id"], now=report_by - dt.timedelta(seconds=1))
    assert expire_offer(connection, made["id"], now=report_by + dt.timedelta(seconds=1))
    assert not expire_offer(connection, made["id"], now=report_by + dt.timedelta(seconds=2))  # once
    assert _reminders(connection, iid) == [f"summons {made['id']}: not reported in"]
    state = connection.execute(sa.text("SELECT state FROM incident_assignments WHERE id = :a"), {"a": made["id"]})
    assert state.scalar_one() == "offered"  # still summoned: it may report in late


def test_a_supervision_without_reply_reminds_at_its_due_date(connection, incident) -> None:  # type: ignore[no-untyped-def]
    iid, roster = incident
    due = T0 + dt.timedelta(days=1)
    order = supervise(connection, iid, "desk", "三日内拆除", due, now=T0)
    assert _job_at(connection, SUPERVISION_TASK, "supervision_id", order["id"]) == due
    assert not supervision_due(connection, order["id"], now=due - dt.timedelta(minutes=1))
    assert supervision_due(connection, order["id"], now=due + dt.timedelta(seconds=1))
    assert not supervision_due(connection, order["id"], now=due + dt.timedelta(seconds=2))
    assert _reminders(connection, iid) == [f"supervision {order['id']}: reply overdue"]
    answered = supervise(connection, iid, "desk", "报送处置照片", due, now=T0)
    reply(connection, iid, answered["id"], Holder("worker", person_id=roster.grid_worker), "已拆除", now=T0)
    assert not supervision_due(connection, answered["id"], now=due + dt.timedelta(seconds=1))


def test_a_lower_levels_lapsed_offer_does_not_escalate_again(connection, incident) -> None:  # type: ignore[no-untyped-def]
    """The handling deadline took the incident to the village first; the grid-level offer lapsing
    afterwards is recorded as expired, not a second escalation (to the town)."""
    from gis.incidents.workflow import escalate_if_overdue

    iid, _ = incident
    offer = connection.execute(
        sa.text("SELECT id, accept_by FROM incident_assignments WHERE incident_id = :i AND role = 'lead'"), {"i": iid}
    ).one()
    deadline = connection.execute(sa.text("SELECT deadline_at FROM incidents WHERE id = :i"), {"i": iid}).scalar_one()
    late = max(deadline, offer.accept_by) + dt.timedelta(seconds=5)
    connection.execute(sa.text("UPDATE incident_assignments SET accept_by = :t WHERE id = :a"),
                       {"t": deadline + dt.timedelta(seconds=2), "a": offer.id})  # fmt: skip
    assert escalate_if_overdue(connection, iid, "grid", now=deadline + dt.timedelta(seconds=1))
    assert expire_offer(connection, offer.id, now=late)
    level = connection.execute(sa.text("SELECT escalation_level FROM incidents WHERE id = :i"), {"i": iid}).scalar()
    assert level == "village"
    actions = connection.execute(
        sa.text(
            "SELECT action FROM incident_events WHERE incident_id = :i AND action IN ('escalate', 'expire') "
            "ORDER BY id"
        ),
        {"i": iid},
    ).scalars().all()  # fmt: skip
    assert actions == ["escalate", "expire"]
