"""The issue's done-when, end to end on a real API (uvicorn) and a real ``gridmap worker``, on a
committed scratch database: a 110 report in a grid is, without any other call, on the beat
officer's and the grid's auxiliary police's ``/events`` streams and in their ``/me/tasks``; the
lead offer left unaccepted escalates to the village station at its deadline (the worker runs the
job); and the incident's history shows every step with its actor.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from boundaries.generations import publish_layers
from boundaries.sample import build_mini_county
from gis.core import db
from gis.people.keys import create_key
from tests.conftest import ROOT, api_server, scratch_database
from tests.dispatch_roster import BEAT1, GRID1, IN_GRID1, make_roster

ACCEPT_110_S = 4.0
FIRE_WITHIN_S = 5.0
STATION = "330421001001-GZZ"
WORKER_ENV = {"GRIDMAP_JOB_HEARTBEAT_S": "1", "GRIDMAP_JOB_STALLED_AFTER_S": "3", "GRIDMAP_WORKER_CONCURRENCY": "2"}


@dataclass
class Stream:
    """An SSE client in a thread; its messages (event, data) arrive in ``messages``."""

    url: str
    messages: queue.Queue[tuple[str, Any]] = field(default_factory=queue.Queue)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Stream:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(5, read=60)) as client, client.stream("GET", self.url) as resp:
            event, data = "message", []
            for line in resp.iter_lines():
                if self._stop.is_set():
                    return
                if line == "":
                    if data:
                        self.messages.put((event, json.loads("\n".join(data))))
                    event, data = "message", []
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])

    def wait(self, test: Any, timeout: float) -> list[tuple[str, Any]]:
        """Messages until one passes ``test`` (included); fails after ``timeout`` seconds."""
        seen: list[tuple[str, Any]] = []
        end = time.monotonic() + timeout
        while True:
            try:
                seen.append(self.messages.get(timeout=max(0.01, end - time.monotonic())))
            except queue.Empty:
                pytest.fail(f"{self.url}: not seen within {timeout} s; got {seen}")
            if test(*seen[-1]):
                return seen

    def close(self) -> None:
        self._stop.set()


@pytest.fixture(scope="module")
def flow_db(database_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    with scratch_database(database_url, "dispatch") as url:
        eng = db.make_engine(url, pool_size=1, max_overflow=0)
        with eng.begin() as conn:
            publish_layers(
                conn, build_mini_county(), note="dispatch test", author="tests",
                published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            )  # fmt: skip
            roster = make_roster(conn)
            keys = {
                "reporter": create_key(conn, "reporter", "hotline-110"),
                "dispatcher": create_key(conn, "dispatcher", "county-desk"),
                "beat": create_key(conn, "reporter", "officer-bing", BEAT1, person_id=roster.beat_officer),
                "aux": create_key(conn, "reporter", "aux-yi", GRID1, person_id=roster.aux_police),
                "station": create_key(conn, "reporter", "station-desk", org_unit_id=roster.units[STATION]),
            }
        eng.dispose()
        yield url, keys


@pytest.fixture(scope="module")
def server(flow_db: tuple[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {
        "GRIDMAP_DATABASE_URL": flow_db[0],
        "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0",
        "GRIDMAP_ACCEPT_WITHIN_110_S": str(ACCEPT_110_S),
        "GRIDMAP_VAR_DIR": str(tmp_path_factory.mktemp("var")),
    }
    with api_server(env, tmp_path_factory.mktemp("server") / "uvicorn.log") as base:
        yield base


@pytest.fixture(scope="module")
def worker(flow_db: tuple[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``gridmap worker`` in a process group of its own; yields its log."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {**os.environ, **WORKER_ENV, "GRIDMAP_DATABASE_URL": flow_db[0]}
    cmd = [sys.executable, "-c", "from api.cli import main; main()", "worker"]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "worker running" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the worker did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        yield log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _get(base: str, path: str, key: str) -> Any:
    resp = httpx.get(f"{base}{path}", headers={"X-API-Key": key}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_a_110_report_reaches_the_officer_and_the_aux_police_and_escalates_unaccepted(
    server: str, worker: Path, flow_db: tuple[str, dict[str, str]]
) -> None:
    _, keys = flow_db
    streams = {who: Stream(f"{server}/events?key={keys[who]}").start() for who in ("beat", "aux")}
    for s in streams.values():
        s.wait(lambda event, data: event == "ready", 10)

    # The report, and nothing else: intake routes it.
    body = {**IN_GRID1, "category": "noise", "source": "hotline_110", "description": "深夜噪音扰民"}
    resp = httpx.post(f"{server}/incidents", json=body, headers={"X-API-Key": keys["reporter"]}, timeout=10)
    assert resp.status_code == 201, resp.text
    iid = resp.json()["id"]
    for who, s in streams.items():
        seen = s.wait(lambda event, data: data.get("action") == "dispatch" and "lead" in data["note"], 10)
        mine = [(e, d["action"]) for e, d in seen if d.get("incident_id") == iid]
        assert mine[0] == ("incident.created", "report"), who
        assert ("incident.status", "dispatch") in mine, who

    # Their task lists hold it, with the acceptance deadline.
    for who, role in (("beat", "lead"), ("aux", "co")):
        tasks = _get(server, "/me/tasks", keys[who])
        assert [(t["incident_id"], t["role"], t["state"]) for t in tasks] == [(iid, role, "offered")], who
    accept_by = dt.datetime.fromisoformat(_get(server, "/me/tasks", keys["beat"])[0]["accept_by"])

    # The auxiliary police accepts the co offer; the officer does not accept the lead in time.
    ok = httpx.post(f"{server}/incidents/{iid}/accept", headers={"X-API-Key": keys["aux"]}, timeout=10)
    assert ok.status_code == 200, ok.text

    # At the deadline the worker escalates it to the village, whose station gets the lead offer.
    try:
        seen = streams["beat"].wait(lambda event, data: data.get("action") == "escalate", ACCEPT_110_S + 15)
    except pytest.fail.Exception:
        pytest.fail(f"no escalation; the worker's log:\n{worker.read_text(errors='replace')[-3000:]}")
    escalated = seen[-1][1]
    assert seen[-1][0] == "incident.escalated" and escalated["actor"] == "system"
    assert escalated["incident_id"] == iid and escalated["note"].startswith("grid → village")
    late = (dt.datetime.fromisoformat(escalated["at"]) - accept_by).total_seconds()
    assert 0 <= late <= FIRE_WITHIN_S, f"escalated {late:.1f} s after the deadline\n{worker.read_text()[-2000:]}"
    streams["aux"].wait(lambda event, data: data.get("note") == f"lead offered to org unit {STATION}", 10)

    station_tasks = _get(server, "/me/tasks", keys["station"])
    assert [(t["incident_id"], t["role"], t["state"]) for t in station_tasks] == [(iid, "lead", "offered")]
    assert [t["incident_id"] for t in _get(server, f"/org-units/{STATION}/queue", keys["dispatcher"])] == [iid]
    assert _get(server, "/me/tasks", keys["beat"]) == []

    incident = _get(server, f"/incidents/{iid}", keys["dispatcher"])
    assert incident["escalation_level"] == "village" and incident["dispatched_at"] is not None
    steps = [(e["action"], e["actor"]) for e in incident["history"]]
    assert steps == [
        ("report", "hotline-110"),
        ("dispatch", "system"),
        ("dispatch", "system"),
        ("accept", "aux-yi"),
        ("escalate", "system"),
        ("dispatch", "system"),
    ]
    notes = [e["note"] for e in incident["history"]]
    assert "not accepted by" in notes[4] and notes[5] == f"lead offered to org unit {STATION}"
    holders = _get(server, f"/incidents/{iid}/assignments", keys["dispatcher"])
    assert sorted((a["role"], a["state"], a["person_id"] is None) for a in holders) == [
        ("co", "accepted", False),  # the auxiliary police
        ("lead", "offered", True),  # the village station
        ("lead", "withdrawn", False),  # the beat officer's expired offer
    ]
    assert {a["offered_by"] for a in holders} == {"system"}
    for s in streams.values():
        s.close()
