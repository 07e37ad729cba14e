"""The fan-out of incident events to webhooks and hotline callbacks, inside a test's transaction:
who gets which event, exactly once however often the fan-out runs, and what the payload holds.
Delivery over HTTP by real workers is in test_webhook_delivery.py."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boundaries.sample import MiniCounty
from gis.dispatch.assignments import Holder, decline
from gis.dispatch.assignments import accept as accept_offer
from gis.dispatch.manual import dispatch
from gis.incidents.intake import create_incident
from gis.incidents.workflow import transition
from gis.outbound import signing
from gis.outbound.deliver import prune_log
from gis.outbound.fanout import fan_out
from gis.outbound.webhooks import WebhookInputError, create_webhook, list_deliveries, ping, update_webhook
from gis.people.orgunits import create_org_unit

TOWN1, TOWN2 = "330421001", "330421002"  # west (lon 120.90-120.92) and east halves of the mini county
VILLAGE1 = "330421001001"  # the south-west village (lon 120.905, lat 30.835)


def _unit(session: Session, code: str, kind: str, area: str, layer: str | None = None) -> str:
    create_org_unit(session, "tests", {"code": code, "name": code, "kind": kind, "area_code": area, "layer": layer})
    return code


def _report(session: Session, lon: float, **extra: Any) -> int:
    data = {"lon": lon, "lat": 30.835, "category": "dispute", "source": "resident_app", **extra}
    data.setdefault("reporter_name", "张三")
    data.setdefault("reporter_phone", "13800000000")
    incident, created = create_incident(session, data, "tests")
    assert created
    return int(incident["id"])


def _deliveries(session: Session) -> list[sa.Row[Any]]:
    return list(
        session.execute(
            sa.text(
                "SELECT d.id, d.webhook_id, d.hotline_code, d.event_id, d.incident_id, d.event_type, d.payload, "
                "d.status, j.args->>'delivery_id' AS job_delivery, j.lock FROM webhook_deliveries d "
                "LEFT JOIN procrastinate_jobs j ON j.task_name = 'gridmap:deliver' "
                "AND CAST(j.args->>'delivery_id' AS bigint) = d.id ORDER BY d.id"
            )
        )
    )


@pytest.fixture
def cursor_at_end(session: Session) -> None:
    """Events of earlier committed tests (none, usually) are not this test's business."""
    session.execute(
        sa.text(
            "UPDATE outbound_cursor SET last_event_id = (SELECT coalesce(max(id), 0) FROM incident_events), gaps = '{}'"
        )
    )


def test_events_go_to_webhooks_of_units_whose_area_holds_the_incident(
    session: Session, mini_county: MiniCounty, cursor_at_end: None
) -> None:
    town1 = _unit(session, "T1", "town_centre", TOWN1)
    town2 = _unit(session, "T2", "town_centre", TOWN2)
    county = _unit(session, "C", "county_centre", "330421")
    station = _unit(session, "P1", "police_station", "330421P01")
    hooks = {
        u: create_webhook(session, "tests", u, {"url": f"http://127.0.0.1:9/{u}"})["id"]
        for u in (town1, town2, county, station)
    }
    west = _report(session, 120.905)
    east = _report(session, 120.935)
    result = fan_out(session)
    assert result.ran and result.events == 2
    rows = _deliveries(session)
    got = {(r.webhook_id, r.incident_id) for r in rows}
    # The police overlay: station P01 covers the west part of the county (beats 01-02).
    assert got == {
        (hooks["T1"], west),
        (hooks["T2"], east),
        (hooks["C"], west),
        (hooks["C"], east),
        (hooks["P1"], west),
    }
    assert result.queued == len(rows)
    # One delivery job per row, locked per receiver and incident.
    assert all(r.job_delivery == str(r.id) for r in rows)
    assert {r.lock for r in rows if r.webhook_id == hooks["C"]} == {
        f"outbound:webhook:{hooks['C']}:{west}",
        f"outbound:webhook:{hooks['C']}:{east}",
    }
    payload = next(r.payload for r in rows if r.webhook_id == hooks["T1"])
    assert payload["type"] == "incident.created" and payload["incident"]["id"] == west
    assert payload["incident"]["town_code"] == TOWN1 and payload["org_unit"] == "T1"
    text = json.dumps(payload, ensure_ascii=False)
    assert "张三" not in text and "13800000000" not in text  # no personal data leaves gridmap


def test_a_repeated_fan_out_delivers_nothing_twice(
    session: Session, mini_county: MiniCounty, cursor_at_end: None
) -> None:
    _unit(session, "T1", "town_centre", TOWN1)
    create_webhook(session, "tests", "T1", {"url": "http://127.0.0.1:9/a"})
    first_event = session.execute(sa.text("SELECT coalesce(max(id), 0) FROM incident_events")).scalar_one()
    _report(session, 120.905)
    _report(session, 120.906, category="noise")
    assert fan_out(session).queued == 2
    assert fan_out(session).queued == 0  # nothing new
    # A run over the same events again (the cursor moved back, as after a crash): nothing twice.
    session.execute(sa.text("UPDATE outbound_cursor SET last_event_id = :e"), {"e": first_event})
    again = fan_out(session)
    assert again.events == 2 and again.queued == 0
    rows = _deliveries(session)
    assert len(rows) == 2 and len({r.event_id for r in rows}) == 2
    jobs = session.execute(sa.text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'gridmap:deliver'"))
    assert jobs.scalar_one() == 2


def test_event_filters_and_inactive_webhooks(session: Session, mini_county: MiniCounty, cursor_at_end: None) -> None:
    _unit(session, "T1", "town_centre", TOWN1)
    created_only = create_webhook(
        session, "tests", "T1", {"url": "http://127.0.0.1:9/c", "events": ["incident.created"]}
    )
    closes = create_webhook(session, "tests", "T1", {"url": "http://127.0.0.1:9/x", "events": ["accept"]})
    off = create_webhook(session, "tests", "T1", {"url": "http://127.0.0.1:9/off"})
    update_webhook(session, "tests", off["id"], {"active": False})
    iid = _report(session, 120.905)
    transition(session, iid, "accept", "tests")
    fan_out(session)
    got = {(r.webhook_id, r.payload["action"]) for r in _deliveries(session)}
    assert got == {(created_only["id"], "report"), (closes["id"], "accept")}


def test_hotline_tickets_get_status_callbacks(session: Session, mini_county: MiniCounty, cursor_at_end: None) -> None:
    session.execute(
        sa.text("UPDATE hotline_systems SET callback_url = 'http://127.0.0.1:9/cb', secret = 'k' || repeat('x', 20)")
    )
    # The village station that routing offers the village's reports to, and a town centre.
    station = create_org_unit(
        session, "tests", {"code": "V1", "name": "村1工作站", "kind": "village_station", "area_code": VILLAGE1}
    )
    _unit(session, "T1", "town_centre", TOWN1)
    ticket = _report(session, 120.905, source="hotline_12345", external_id="GD2026-001")
    plain = _report(session, 120.906, source="hotline_12345")  # no ticket id: nothing to answer to
    other = _report(session, 120.907, source="resident_app", external_id="APP-1")
    for iid in (ticket, plain, other):
        transition(session, iid, "accept", "dispatcher-1")
    # Intake offered the ticket to the station; the station takes it, the dispatcher dispatches it.
    accept_offer(session, ticket, Holder("station-1", org_unit_id=station["id"]))
    transition(session, ticket, "dispatch", "dispatcher-1")
    # A re-dispatch to the town centre: the status stays, the hotline hears who handles it now.
    dispatch(session, ticket, "dispatcher-1", org_unit="T1")
    fan_out(session)
    actions = session.execute(
        sa.text("SELECT action, from_status, to_status FROM incident_events WHERE incident_id = :i ORDER BY id"),
        {"i": ticket},
    ).all()
    assert [tuple(a) for a in actions] == [
        ("report", None, "reported"),
        ("dispatch", "reported", "reported"),  # the offer at intake: not yet a dispatch
        ("accept", "reported", "accepted"),
        ("accept", "accepted", "accepted"),  # the station accepts its offer: no status change
        ("dispatch", "accepted", "dispatched"),
        ("dispatch", "dispatched", "dispatched"),
    ]
    rows = [r for r in _deliveries(session) if r.hotline_code]
    assert [(r.hotline_code, r.incident_id, r.payload["status"], r.payload["action"]) for r in rows] == [
        ("12345", ticket, "accepted", "accept"),
        ("12345", ticket, "dispatched", "dispatch"),
        ("12345", ticket, "dispatched", "dispatch"),
    ]
    first = rows[0].payload
    assert first["external_id"] == "GD2026-001" and first["gridmap_id"] == ticket and first["system"] == "12345"
    # Dispatched to whom: the lead holder when the event happened.
    holders = [r.payload["holder"] for r in rows]
    assert holders == [
        {"org_unit": "V1", "name": "村1工作站", "person": None, "state": "offered"},
        {"org_unit": "V1", "name": "村1工作站", "person": None, "state": "accepted"},
        {"org_unit": "T1", "name": "T1", "person": None, "state": "offered"},
    ]
    assert len({r.lock for r in rows}) == 1 and rows[0].lock == f"outbound:hotline:12345:{ticket}"  # in order
    assert [r.event_id for r in rows] == sorted(r.event_id for r in rows)


def test_a_person_holder_is_named_by_unit_and_masked(
    session: Session, mini_county: MiniCounty, cursor_at_end: None
) -> None:
    session.execute(
        sa.text("UPDATE hotline_systems SET callback_url = 'http://127.0.0.1:9/cb', secret = 'k' || repeat('x', 20)")
    )
    station = create_org_unit(
        session, "tests", {"code": "V1", "name": "村1工作站", "kind": "village_station", "area_code": VILLAGE1}
    )
    person = session.execute(sa.text("INSERT INTO people (name) VALUES ('李四光') RETURNING id")).scalar_one()
    session.execute(
        sa.text(
            "INSERT INTO postings (person_id, role, layer, area_code, org_unit_id, starts_on) "
            "VALUES (:p, 'grid_worker', 'village', :a, :u, DATE '2020-01-01')"
        ),
        {"p": person, "a": VILLAGE1, "u": station["id"]},
    )
    ticket = _report(session, 120.905, source="hotline_12345", external_id="GD2026-002")
    transition(session, ticket, "accept", "dispatcher-1")
    dispatch(session, ticket, "dispatcher-1", person_id=person)  # accepted -> dispatched, to the person
    fan_out(session)
    rows = [r for r in _deliveries(session) if r.hotline_code]
    assert [r.payload["status"] for r in rows] == ["accepted", "dispatched"]
    assert rows[-1].payload["holder"] == {"org_unit": "V1", "name": "村1工作站", "person": "李**", "state": "offered"}
    assert "李四光" not in json.dumps([r.payload for r in _deliveries(session)], ensure_ascii=False)


def test_webhooks_subscribe_to_dispatch_steps_and_to_real_status_changes(
    session: Session, mini_county: MiniCounty, cursor_at_end: None
) -> None:
    station = create_org_unit(
        session, "tests", {"code": "V1", "name": "村1工作站", "kind": "village_station", "area_code": VILLAGE1}
    )
    offers = create_webhook(session, "tests", "V1", {"url": "http://127.0.0.1:9/o", "events": ["dispatch", "decline"]})
    accepted = create_webhook(session, "tests", "V1", {"url": "http://127.0.0.1:9/a", "events": ["accepted"]})
    iid = _report(session, 120.905)
    transition(session, iid, "accept", "dispatcher-1")
    decline(session, iid, Holder("station-1", org_unit_id=station["id"]), "not ours")  # leaves the status
    fan_out(session)
    got = [(r.webhook_id, r.payload["action"], r.payload["to_status"]) for r in _deliveries(session)]
    assert got == [
        (offers["id"], "dispatch", "reported"),  # intake's offer to the station
        (accepted["id"], "accept", "accepted"),  # the change to accepted, once
        (offers["id"], "decline", "accepted"),
    ]
    offer = next(r.payload for r in _deliveries(session) if r.payload["action"] == "dispatch")
    assert offer["holder"] == {"org_unit": "V1", "name": "村1工作站", "person": None, "state": "offered"}


def test_webhook_input_is_checked(session: Session, mini_county: MiniCounty) -> None:
    _unit(session, "T1", "town_centre", TOWN1)
    with pytest.raises(WebhookInputError) as bad_url:
        create_webhook(session, "tests", "T1", {"url": "ftp://example.org/x"})
    assert bad_url.value.field == "url"
    with pytest.raises(WebhookInputError) as bad_event:
        create_webhook(session, "tests", "T1", {"url": "http://example.org/x", "events": ["incident.exploded"]})
    assert bad_event.value.field == "events" and bad_event.value.value == "incident.exploded"
    with pytest.raises(WebhookInputError) as short:
        create_webhook(session, "tests", "T1", {"url": "http://example.org/x", "secret": "short"})
    assert short.value.field == "secret"


def test_ping_is_a_logged_delivery_with_its_job(session: Session, mini_county: MiniCounty) -> None:
    _unit(session, "T1", "town_centre", TOWN1)
    hook = create_webhook(session, "tests", "T1", {"url": "http://127.0.0.1:9/p"})
    queued = ping(session, "tests", hook["id"])
    total, log = list_deliveries(session, hook["id"])
    assert total == 1 and log[0]["id"] == queued["delivery_id"] and log[0]["event_type"] == "webhook.ping"
    assert log[0]["status"] == "pending" and log[0]["event_id"] is None
    job = session.execute(
        sa.text("SELECT args, lock FROM procrastinate_jobs WHERE id = :j"), {"j": queued["job_id"]}
    ).one()
    assert job.args == {"delivery_id": queued["delivery_id"]} and job.lock == f"outbound:webhook:{hook['id']}:ping"


def test_signatures_verify_and_refuse_tampering_and_replays() -> None:
    body = signing.body_bytes({"a": 1, "b": "事件"})
    headers = signing.signed_headers("s3cret-s3cret-s3cret", body, 7, "incident.created", now=1_000_000)
    assert signing.verify("s3cret-s3cret-s3cret", headers, body, now=1_000_010)
    assert not signing.verify("another-secret-xxxx", headers, body, now=1_000_010)
    assert not signing.verify("s3cret-s3cret-s3cret", headers, body + b" ", now=1_000_010)
    assert not signing.verify("s3cret-s3cret-s3cret", headers, body, now=1_000_000 + signing.TOLERANCE_S + 1)


def test_an_event_committed_late_below_the_cursor_is_still_delivered(
    session: Session, mini_county: MiniCounty, cursor_at_end: None
) -> None:
    _unit(session, "T1", "town_centre", TOWN1)
    hook = create_webhook(session, "tests", "T1", {"url": "http://127.0.0.1:9/g"})
    iid = _report(session, 120.905)
    top = session.execute(sa.text("SELECT max(id) FROM incident_events")).scalar_one()
    # Ids below the report's were taken by rolled-back tests: gaps of their own, not this test's.
    session.execute(sa.text("UPDATE outbound_cursor SET last_event_id = :t"), {"t": top - 1})
    insert = sa.text(
        "INSERT INTO incident_events (id, incident_id, at, actor, action, from_status, to_status) "
        "VALUES (:id, :i, now(), 'tests', 'accept', 'reported', 'accepted')"
    )
    # Event top+2 is visible first; top+1 (handed out earlier, committed later) is still missing.
    session.execute(insert, {"id": top + 2, "i": iid})
    assert fan_out(session, now=1000.0).queued == 2  # the report and top+2
    gaps = session.execute(sa.text("SELECT gaps FROM outbound_cursor")).scalar_one()
    assert set(gaps) == {str(top + 1)}
    session.execute(insert, {"id": top + 1, "i": iid})
    assert fan_out(session, now=1005.0).queued == 1  # the late one, found as a gap
    events = {r.event_id for r in _deliveries(session) if r.webhook_id == hook["id"]}
    assert {top + 1, top + 2} <= events
    # A gap that never fills is forgotten after GAP_WAIT_S.
    session.execute(insert, {"id": top + 5, "i": iid})
    fan_out(session, now=1010.0)
    assert set(session.execute(sa.text("SELECT gaps FROM outbound_cursor")).scalar_one()) == {
        str(top + 3),
        str(top + 4),
    }
    fan_out(session, now=1100.0)
    assert session.execute(sa.text("SELECT gaps FROM outbound_cursor")).scalar_one() == {}


def test_without_receivers_the_fan_out_skips_to_the_end(session: Session, mini_county: MiniCounty) -> None:
    _report(session, 120.905)
    assert fan_out(session).queued == 0
    last = session.execute(sa.text("SELECT last_event_id FROM outbound_cursor")).scalar_one()
    assert last == session.execute(sa.text("SELECT max(id) FROM incident_events")).scalar_one()


def test_the_log_keeps_finished_deliveries_for_its_days(session: Session, mini_county: MiniCounty) -> None:
    _unit(session, "T1", "town_centre", TOWN1)
    hook = create_webhook(session, "tests", "T1", {"url": "http://127.0.0.1:9/p"})
    ids = [ping(session, "tests", hook["id"])["delivery_id"] for _ in range(4)]
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    for delivery, status in zip(ids, ("delivered", "gave_up", "failed", "delivered"), strict=True):
        when = old if delivery != ids[-1] else dt.datetime.now(dt.UTC)
        session.execute(
            sa.text("UPDATE webhook_deliveries SET status = :s, last_attempt_at = :t, created_at = :t WHERE id = :i"),
            {"s": status, "t": when, "i": delivery},
        )
    assert prune_log(session, 30) == 2
    left = session.execute(sa.text("SELECT id FROM webhook_deliveries ORDER BY id")).scalars().all()
    assert left == ids[2:]  # the one still retrying, and the recent one
