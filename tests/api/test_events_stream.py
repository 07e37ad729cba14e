"""GET /events against a real API (uvicorn, 2 workers) on a committed scratch database.

What only separate processes show: every worker LISTENs and reads the log itself, so a stream held
by one worker receives a report taken by the other; and a client that comes back with
Last-Event-ID gets exactly the events it missed, from the log.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from boundaries.generations import publish_layers
from boundaries.sample import build_mini_county
from gis.core import db
from gis.people.keys import create_key
from tests.conftest import api_server, scratch_database

BODY = {"lon": 120.905, "lat": 30.832, "category": "dispute", "source": "grid_patrol"}  # in town A
TOWN_A = "330421001"
IN_TOWN_B = {"lon": 120.935, "lat": 30.845}


@dataclass
class Message:
    event: str
    id: str | None
    data: Any


@dataclass
class Stream:
    """An SSE client in a thread: its messages arrive in ``messages``."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    messages: queue.Queue[Message] = field(default_factory=queue.Queue)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Stream:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(5, read=60)) as client,
            client.stream("GET", self.url, headers=self.headers) as resp,
        ):
            if resp.status_code != 200:
                self.messages.put(Message("http-error", None, resp.status_code))
                return
            event, ident, data = "message", None, []
            for line in resp.iter_lines():
                if self._stop.is_set():
                    return
                if line == "":
                    if data:
                        self.messages.put(Message(event, ident, json.loads("\n".join(data))))
                    event, ident, data = "message", None, []
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("id: "):
                    ident = line[4:]
                elif line.startswith("data: "):
                    data.append(line[6:])

    def next(self, timeout: float = 10) -> Message:
        return self.messages.get(timeout=timeout)

    def until(self, event: str, timeout: float = 10) -> list[Message]:
        """Messages up to and including the first ``event``."""
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while True:
            out.append(self.next(max(0.01, deadline - time.monotonic())))
            if out[-1].event == event:
                return out

    def close(self) -> None:
        self._stop.set()


@pytest.fixture(scope="module")
def scratch_db(database_url: str) -> Iterator[str]:
    with scratch_database(database_url, "events") as url:
        eng = db.make_engine(url, pool_size=1, max_overflow=0)
        with eng.begin() as conn:
            publish_layers(
                conn, build_mini_county(), note="events test", author="tests",
                published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            )  # fmt: skip
        eng.dispose()
        yield url


@pytest.fixture(scope="module")
def keys(scratch_db: str) -> dict[str, str]:
    eng = db.make_engine(scratch_db, pool_size=1, max_overflow=0)
    with eng.begin() as conn:
        made = {role: create_key(conn, role, f"events-{role}") for role in ("viewer", "dispatcher")}
        made["town_a"] = create_key(conn, "viewer", "events-town-a", TOWN_A)
        made["lookup"] = create_key(conn, "viewer", "events-lookup-only", "lookup")
    eng.dispose()
    return made


@pytest.fixture(scope="module")
def server(scratch_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {
        "GRIDMAP_DATABASE_URL": scratch_db,
        "GRIDMAP_ESCALATION_INTERVAL_S": "0",
        "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0",
        "GRIDMAP_VAR_DIR": str(tmp_path_factory.mktemp("var")),
    }
    with api_server(env, tmp_path_factory.mktemp("server") / "uvicorn.log", workers=2) as base:
        yield base


def _report(base: str, key: str, n: int, **where: float) -> int:
    body = {**BODY, **where, "external_id": f"ev-{n}"}
    resp = httpx.post(f"{base}/incidents", json=body, headers={"X-API-Key": key})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def _live(stream: Stream, count: int, timeout: float = 10) -> list[Message]:
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        msg = stream.next(max(0.01, deadline - time.monotonic()))
        if msg.event.startswith("incident."):
            out.append(msg)
    return out


def _resumed(stream: Stream, count: int) -> list[Message]:
    """The incident events of a resumed stream: its replay, then live ones up to ``count`` in all.
    The replay ends where the API process's hub has read the log to (it reads every 100 ms while
    any stream is open), so an event committed just before the reconnect may come live right after
    ``ready`` instead: still once and in order, which is what is checked."""
    events = [m for m in stream.until("ready") if m.event.startswith("incident.")]
    if len(events) < count:
        events += _live(stream, count - len(events))
    return events


def test_a_stream_on_either_worker_receives_reports_taken_by_the_other(server: str, keys: dict[str, str]) -> None:
    # Streams until both workers hold one (the ready event names the worker process).
    streams: dict[int, Stream] = {}
    for _ in range(30):
        s = Stream(f"{server}/events?key={keys['viewer']}").start()
        ready = s.until("ready")[-1]
        if ready.data["worker"] in streams:
            s.close()
        else:
            streams[ready.data["worker"]] = s
        if len(streams) == 2:
            break
    assert len(streams) == 2, "the two workers never both served a stream"
    # Reports go to both workers too (connections are spread by the kernel); every stream gets all.
    ids = [_report(server, keys["dispatcher"], n) for n in range(6)]
    for s in streams.values():
        got = _live(s, len(ids))
        assert [m.data["incident_id"] for m in got] == ids
        assert {m.event for m in got} == {"incident.created"}
        assert all(m.id == str(m.data["id"]) for m in got)
        assert got[0].data["feature"]["geometry"]["type"] == "Point"
        # A viewer does not see the reporter's personal data (none was given here: the field is absent).
        assert "reporter_phone" not in got[0].data["feature"]["properties"]
        s.close()


def test_resume_with_last_event_id_delivers_exactly_the_missed_events(server: str, keys: dict[str, str]) -> None:
    first = Stream(f"{server}/events?key={keys['viewer']}").start()
    first.until("ready")
    before = _report(server, keys["dispatcher"], 100)
    seen = _live(first, 1)
    assert seen[0].data["incident_id"] == before
    last_id = seen[0].id
    first.close()

    # While away: two reports and a step of the workflow.
    missed = [_report(server, keys["dispatcher"], 101), _report(server, keys["dispatcher"], 102)]
    resp = httpx.post(
        f"{server}/incidents/{missed[0]}/transitions",
        json={"action": "accept"},
        headers={"X-API-Key": keys["dispatcher"]},
    )
    assert resp.status_code == 200, resp.text

    back = Stream(f"{server}/events?key={keys['viewer']}", headers={"Last-Event-ID": str(last_id)}).start()
    events = _resumed(back, 3)
    assert [(m.event, m.data["incident_id"]) for m in events] == [
        ("incident.created", missed[0]),
        ("incident.created", missed[1]),
        ("incident.status", missed[0]),
    ]
    assert events[2].data["to_status"] == "accepted"
    assert [int(m.id or 0) for m in events] == sorted(int(m.id or 0) for m in events)
    assert int(events[0].id or 0) > int(last_id or 0)
    # Then it follows live, without repeating any of the replay.
    after = _report(server, keys["dispatcher"], 103)
    live = _live(back, 1)
    assert live[0].data["incident_id"] == after
    back.close()

    # The same through ?last_event_id= (what a client without the header sends).
    again = Stream(f"{server}/events?key={keys['viewer']}&last_event_id={last_id}").start()
    replayed = _resumed(again, 4)
    assert [m.data["incident_id"] for m in replayed] == [*missed, missed[0], after]
    again.close()


def test_bad_resume_ids_and_missing_keys_are_refused(server: str, keys: dict[str, str]) -> None:
    resp = httpx.get(f"{server}/events", params={"key": keys["viewer"], "last_event_id": "abc"})
    assert resp.status_code == 422
    assert "last_event_id" in resp.text and "abc" in resp.text
    assert httpx.get(f"{server}/events").status_code == 401


def test_streams_carry_only_the_events_in_the_callers_scope(server: str, keys: dict[str, str]) -> None:
    county = Stream(f"{server}/events?key={keys['viewer']}").start()
    town_a = Stream(f"{server}/events?key={keys['town_a']}").start()
    lookup_only = Stream(f"{server}/events?key={keys['lookup']}").start()
    for s in (county, town_a, lookup_only):
        s.until("ready")
    in_b = _report(server, keys["dispatcher"], 200, **IN_TOWN_B)
    in_a = _report(server, keys["dispatcher"], 201)
    assert [m.data["incident_id"] for m in _live(county, 2)] == [in_b, in_a]
    got = _live(town_a, 1)
    assert got[0].data["incident_id"] == in_a and got[0].data["town_code"] == TOWN_A
    # Nothing of town B came before it (events arrive in id order) and nothing comes after.
    time.sleep(0.5)
    assert all(not m.event.startswith("incident.") for m in _drain(town_a))
    assert all(not m.event.startswith("incident.") for m in _drain(lookup_only))
    for s in (county, town_a, lookup_only):
        s.close()


def _drain(stream: Stream) -> list[Message]:
    out: list[Message] = []
    while True:
        try:
            out.append(stream.messages.get_nowait())
        except queue.Empty:
            return out
