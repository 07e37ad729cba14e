"""Webhooks and hotline callbacks delivered by real ``gridmap worker`` processes to a real HTTP
receiver on 127.0.0.1 (tests/receiver.py), on a committed database of their own.

The worker's back-off is shortened (base 2 s: retries after 2 s and 4 s) and a delivery gives up
after 3 attempts; a receiver gets 1 s to answer.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from boundaries.generations import publish_layers
from boundaries.sample import build_mini_county
from gis.core import db
from gis.core.settings import Settings
from gis.incidents.intake import create_incident
from gis.incidents.workflow import transition
from gis.outbound.deliver import DeliveryFailed, attempt
from gis.outbound.fanout import fan_out
from gis.outbound.webhooks import create_webhook, delete_webhook, ping
from gis.people.orgunits import create_org_unit
from tests.conftest import free_port, scratch_database
from tests.gis.test_jobs import workers
from tests.receiver import Receiver

SECRET = "test-secret-0123456789"
OUTBOUND_ENV = {
    "GRIDMAP_WEBHOOK_BACKOFF_BASE_S": "2",
    "GRIDMAP_WEBHOOK_MAX_ATTEMPTS": "3",
    "GRIDMAP_WEBHOOK_TIMEOUT_S": "1",
}
# Villages of the mini county: (lon, lat) inside each.
WEST_SOUTH, WEST_NORTH = (120.905, 30.835), (120.905, 30.845)  # 330421001001, 330421001002
EAST_SOUTH, EAST_NORTH = (120.935, 30.835), (120.935, 30.845)  # 330421002001, 330421002002


@pytest.fixture(scope="module")
def outbound_db(database_url: str) -> Iterator[str]:
    with scratch_database(database_url, "outbound") as url:
        eng = db.make_engine(url, pool_size=1, max_overflow=0)
        with eng.begin() as conn:
            publish_layers(
                conn, build_mini_county(), note="outbound test", author="tests",
                published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            )  # fmt: skip
            for code in ("330421001001", "330421001002", "330421002001", "330421002002"):
                create_org_unit(
                    conn, "tests", {"code": f"V{code}", "name": code, "kind": "village_station", "area_code": code}
                )
        eng.dispose()
        yield url


@pytest.fixture
def engine(outbound_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    for key, value in OUTBOUND_ENV.items():
        monkeypatch.setenv(key, value)  # the workers started by the test inherit them
    eng = db.make_engine(outbound_db, pool_size=4, max_overflow=4)
    yield eng
    eng.dispose()


@pytest.fixture
def hook(engine: Engine) -> Iterator[Callable[..., int]]:
    """Make a webhook of a village's station (committed); removed at the end of the test."""
    made: list[int] = []

    def _make(village: str, url: str, **data: Any) -> int:
        with db.transaction(engine) as session:
            made.append(create_webhook(session, "tests", f"V{village}", {"url": url, "secret": SECRET, **data})["id"])
        return made[-1]

    yield _make
    with db.transaction(engine) as session:
        for hook_id in made:
            delete_webhook(session, "tests", hook_id)


def report(engine: Engine, where: tuple[float, float], **extra: Any) -> int:
    data = {"lon": where[0], "lat": where[1], "category": "dispute", "source": "resident_app", **extra}
    with db.transaction(engine) as session:
        incident, created = create_incident(session, data, "tests")
    assert created
    return int(incident["id"])


def log_rows(engine: Engine, **where: Any) -> list[sa.Row[Any]]:
    column, value = next(iter(where.items()))
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(f"SELECT * FROM webhook_deliveries WHERE {column} = :v ORDER BY id"),
                {"v": value},
            )
        )


def wait_for(check: Callable[[], bool], timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > end:
            return False
        time.sleep(0.2)
    return True


def test_signed_delivery_is_retried_with_back_off_until_delivered(
    engine: Engine, hook: Callable[..., int], tmp_path: Path
) -> None:
    with Receiver(script=[500, 500]) as receiver, workers(engine.url.render_as_string(hide_password=False), tmp_path):
        hook_id = hook("330421001001", receiver.url)
        inside = report(engine, WEST_SOUTH)
        outside = report(engine, WEST_NORTH)  # the next village: not this unit's area
        # Two events of the incident: its report, and intake's offer to this village's station.
        delivered = ["delivered", "delivered"]
        assert wait_for(lambda: [r.status for r in log_rows(engine, webhook_id=hook_id)] == delivered, 40), (
            log_rows(engine, webhook_id=hook_id),
            receiver.hits,
        )
        time.sleep(2.5)  # a fan-out or two more: still nothing for the other village
    row, offer = log_rows(engine, webhook_id=hook_id)
    assert row.incident_id == offer.incident_id == inside and inside != outside
    assert row.attempts == 3 and row.last_status_code == 200 and row.delivered_at is not None
    assert offer.attempts == 1 and offer.event_id > row.event_id
    # The offer waited for the report's delivery: one incident's events arrive in their order.
    assert [h.answered for h in receiver.hits] == [500, 500, 200, 200]
    assert [h.delivery for h in receiver.hits] == [str(row.id)] * 3 + [str(offer.id)]
    assert all(h.verified(SECRET) for h in receiver.hits)
    assert not receiver.hits[0].verified("another-secret-000000")
    body = receiver.hits[2].json
    assert body["incident"]["id"] == inside and body["type"] == "incident.created"
    offered = receiver.hits[3].json
    assert (offered["type"], offered["action"], offered["to_status"]) == ("incident.status", "dispatch", "reported")
    assert offered["holder"]["org_unit"] == "V330421001001" and offered["holder"]["state"] == "offered"
    # Exponential back-off: 2 s, then 4 s (procrastinate polls every second: a little more).
    gaps = [b.at - a.at for a, b in zip(receiver.hits[:3], receiver.hits[1:3], strict=False)]
    assert 1.9 <= gaps[0] < 4.5 and 3.9 <= gaps[1] < 7, gaps


def test_a_down_or_slow_receiver_gives_up_and_never_blocks_intake(
    engine: Engine, hook: Callable[..., int], tmp_path: Path
) -> None:
    down_url = f"http://127.0.0.1:{free_port()}/nobody-listens"
    with Receiver(delay_s=3) as slow, workers(engine.url.render_as_string(hide_password=False), tmp_path):
        down = hook("330421002001", down_url)
        sluggish = hook("330421002001", slow.url)
        first = report(engine, EAST_SOUTH)
        # Intake goes on at its pace while the deliveries fail and time out.
        took = []
        for k in range(10):
            started = time.monotonic()
            report(engine, (EAST_SOUTH[0] + 0.0002 * k, EAST_SOUTH[1] - 0.001), category="noise")
            took.append(time.monotonic() - started)
        assert max(took) < 1.5, took

        def finished() -> bool:
            # 11 reports, each with intake's offer to the station: 22 events, to two webhooks.
            rows = log_rows(engine, webhook_id=down) + log_rows(engine, webhook_id=sluggish)
            return len(rows) == 44 and all(r.status == "gave_up" for r in rows if r.incident_id == first)

        assert wait_for(finished, 60), log_rows(engine, webhook_id=down)[:2]
    gone = [r for r in log_rows(engine, webhook_id=down) if r.incident_id == first]
    assert [r.event_type for r in gone] == ["incident.created", "incident.status"]
    for row in gone:
        assert row.status == "gave_up" and row.attempts == 3 and row.last_status_code is None
        assert "Connect" in (row.last_error or "")
    slow_rows = [r for r in log_rows(engine, webhook_id=sluggish) if r.incident_id == first]
    assert len(slow_rows) == 2
    assert all(r.status == "gave_up" and "Timeout" in (r.last_error or "") for r in slow_rows)


def test_concurrent_fan_outs_deliver_each_event_once(engine: Engine, hook: Callable[..., int], tmp_path: Path) -> None:
    with Receiver() as receiver, workers(engine.url.render_as_string(hide_password=False), tmp_path):
        with engine.connect() as conn:
            start = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM incident_events")).scalar_one()
        hook_id = hook("330421002002", receiver.url)
        ids = [report(engine, (EAST_NORTH[0] + 0.0003 * k, EAST_NORTH[1])) for k in range(8)]
        errors: list[BaseException] = []

        def rerun() -> None:
            # Move the cursor back and fan out again, while the worker's own fan-out runs too.
            try:
                for _ in range(5):
                    with db.transaction(engine) as session:
                        session.execute(sa.text("UPDATE outbound_cursor SET last_event_id = :s"), {"s": start})
                    with db.transaction(engine) as session:
                        fan_out(session)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=rerun) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        # Each report and intake's offer of it to the village station: two events an incident.
        assert wait_for(lambda: len(receiver.ok_hits()) >= 2 * len(ids), 20)
        time.sleep(3)  # time for a duplicate to show
    rows = log_rows(engine, webhook_id=hook_id)
    assert sorted(r.incident_id for r in rows) == sorted(ids * 2)
    assert sorted((r.incident_id, r.event_type) for r in rows) == sorted(
        (i, kind) for i in ids for kind in ("incident.created", "incident.status")
    )
    assert all(r.status == "delivered" and r.attempts == 1 for r in rows)
    got = [h.json["event_id"] for h in receiver.hits]
    assert sorted(got) == sorted(r.event_id for r in rows), got  # each event once at the receiver


def test_hotline_callbacks_arrive_in_order_after_the_receiver_was_down(engine: Engine, tmp_path: Path) -> None:
    with Receiver(script=[503, 503]) as receiver:
        with db.transaction(engine) as session:
            session.execute(
                sa.text("UPDATE hotline_systems SET callback_url = :u, secret = :s WHERE code = '12345'"),
                {"u": receiver.url, "s": SECRET},
            )
        try:
            with workers(engine.url.render_as_string(hide_password=False), tmp_path):
                ticket = report(engine, WEST_NORTH, source="hotline_12345", external_id="GD-20261203-0001")
                # Intake offered the ticket to its village's station (the holder the dispatch needs);
                # staff, not the reporting account ("tests"), take the steps: a reporter may not
                # verify or close its own report.
                for action in ("accept", "dispatch", "start", "handle", "verify", "close"):
                    with db.transaction(engine) as session:
                        note = "已处理完毕" if action == "close" else None
                        transition(session, ticket, action, "dispatcher-1", note=note)
                assert wait_for(lambda: len(receiver.ok_hits()) >= 4, 40), receiver.hits
                time.sleep(1)
        finally:
            with db.transaction(engine) as session:
                session.execute(sa.text("UPDATE hotline_systems SET callback_url = NULL"))
    ok = [h.json for h in receiver.ok_hits()]
    assert [b["status"] for b in ok] == ["accepted", "dispatched", "handled", "closed"]
    assert all(b["external_id"] == "GD-20261203-0001" and b["gridmap_id"] == ticket for b in ok)
    assert ok[-1]["result"] == "已处理完毕"
    # Dispatched to whom: the station intake offered it to.
    assert ok[1]["holder"] == {"org_unit": "V330421001002", "name": "330421001002", "person": None, "state": "offered"}
    assert [h.answered for h in receiver.hits[:2]] == [503, 503]  # the first callback waited out the outage
    assert all(h.verified(SECRET) for h in receiver.hits)
    rows = log_rows(engine, hotline_code="12345")
    assert [r.status for r in rows] == ["delivered"] * 4 and rows[0].attempts == 3


def test_an_attempt_is_recorded_and_a_finished_delivery_is_never_sent_again(
    engine: Engine, hook: Callable[..., int]
) -> None:
    settings = Settings(webhook_max_attempts=3, webhook_backoff_base_s=2, webhook_timeout_s=1)
    with Receiver(script=[502]) as receiver:
        hook_id = hook("330421001002", receiver.url)
        with db.transaction(engine) as session:
            delivery = ping(session, "tests", hook_id)["delivery_id"]
        before = dt.datetime.now(dt.UTC)
        with pytest.raises(DeliveryFailed):
            attempt(engine, delivery, settings)  # 502: failed, to be retried
        (row,) = log_rows(engine, id=delivery)
        assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, 502)
        assert "HTTP 502" in row.last_error
        waited = (row.next_attempt_at - before).total_seconds()
        assert 1.5 <= waited <= 3.5  # base 2: the first retry after 2 s
        assert attempt(engine, delivery, settings).status == "delivered"
        # Run again (a worker killed after the POST and before the job was marked done): nothing sent.
        assert attempt(engine, delivery, settings).status == "delivered"
    assert [h.answered for h in receiver.hits] == [502, 200]
    assert receiver.hits[0].json["type"] == "webhook.ping" and receiver.hits[1].delivery == str(delivery)
    (row,) = log_rows(engine, id=delivery)
    assert (row.status, row.attempts, row.next_attempt_at) == ("delivered", 2, None)
