"""Live push benchmark: intake -> every open SSE stream (``GET /events``), against the command
centre's 10-second polling of ``/maps/data/incidents/live.geojson`` measured in the same run.

    .venv/bin/python bench/bench_events.py [--demo | --mini [--scoped]] [--streams 500] [--rate 200]
        [--seconds 60] [--warmup 10] [--workers 2]

The issue's figure is ``--demo`` (the default when the dev database holds the demo's staff): a
copy of the demo database (dropped at the end), 490 grid workers' phones (keys of staff on duty,
each scoped to their grid) and 10 command-centre screens (``--centres``); reports at the demo
incidents' own positions, dispatched by the routing rules; the latency is read on the stream of
each person the report was offered to ("intake -> the assignee's stream"), and over every stream.
With ``--mini`` (or without the demo) the mini test county is used and every stream is a
whole-county viewer (with ``--scoped``: county, town and grid viewers in turn).

What it does:
1. The database (above) and its keys.
2. The API under uvicorn (``--workers``, rate limit off, escalation off).
3. Opens ``--streams`` SSE streams with the viewer key (spread over the workers by the kernel) and
   waits until each has sent ``ready``.
4. Posts reports open-loop at ``--rate`` a second for ``--warmup`` then ``--seconds`` (each on its
   own schedule: a slow answer does not slow the sending; only the second part is measured, since
   a fresh server's pool opens its connections and plans its statements in the first seconds),
   while ``--pollers`` clients poll live.geojson every 10 s, each
   at its own phase, as the command-centre page does without the push.
5. Reports, for the push: intake -> stream latency (the event's ``at``, stamped by the intake
   statement just before commit, to the moment the stream's bytes arrive), p50/p95/p99/max over
   every (event, stream) pair; whether every stream got every event; the API's resident memory
   (all workers) at the start and the end. For the polling peer: event-to-screen latency
   (``at`` -> the first poll answer that contains the incident) and how many incidents no poll
   ever showed (the live layer returns the newest LIVE_LIMIT only).

The client runs on the same machine and parses every stream (a regex over each chunk, no JSON
per event); on a small machine it competes with the server for the CPU, so a modest size measures
the server's share too.

``--scoped``: the streams take turns among three keys: the whole county, one town
(``TOWN_SCOPE``) and one grid of the other town (``GRID_SCOPE``), as a command centre, a town centre
and a grid worker would. Every stream must then get every event of its scope and none outside it
(checked against the incidents' assigned codes in the log), which the summary reports.

The hold test of the issue (2,000 streams for 5 minutes, memory flat) is this benchmark with
``--demo --streams 2000 --seconds 300 --rate 50`` (or ``--scoped`` on the mini county): the API's
memory is sampled every ``RSS_EVERY_S`` during the run and its growth over the second half is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_intake import _demo_copy, has_rows  # noqa: E402
from boundaries.generations import publish_layers  # noqa: E402
from boundaries.sample import build_mini_county  # noqa: E402
from gis.core import db  # noqa: E402
from gis.core.settings import get_settings  # noqa: E402
from gis.people.keys import create_key  # noqa: E402

THROWAWAY = "gridmap_bench_events"
POLL_S = 10.0
# What a stream sends per event starts: id, incident id, at (gis.work.events.Event.encoded).
EVENT = re.compile(rb'data: \{"id":(\d+),"incident_id":(\d+),"at":"([^"]+)"')
BOX = (120.902, 30.831, 120.935, 30.848)  # inside the mini county
TOWN_SCOPE = "330421001"  # the mini county's west town
GRID_SCOPE = "330421002001001"  # a grid of its east town
RSS_EVERY_S = 10.0


@dataclass
class Stream:
    received: list[tuple[int, float]] = field(default_factory=list)  # (event id, monotonic time)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    error: str | None = None
    scope: str | None = None  # None: the whole county
    person: int | None = None  # the grid worker whose key it is (--demo)
    key: str = ""


def _database() -> str:
    base = make_url(db.database_url(get_settings()))
    url = base.set(database=THROWAWAY).render_as_string(hide_password=False)
    admin = db.make_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{THROWAWAY}" WITH (FORCE)'))
    admin.dispose()
    db.ensure_database(url)
    db.migrate(url)
    return url


def _drop(url: str) -> None:
    admin = db.make_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{THROWAWAY}" WITH (FORCE)'))
    admin.dispose()


Spec = tuple[str | None, int | None, str]  # a stream's scope (None: the whole county), person, key


def _seed(url: str) -> tuple[str, list[Spec]]:
    """The mini county; the reporter's key, and a viewer key per stream scope (None: the whole county)."""
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with engine.begin() as conn:
        publish_layers(
            conn, build_mini_county(), note="bench", author="bench", published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        )
        reporter = create_key(conn, "reporter", "bench-reporter")
        viewers: dict[str | None, str] = {
            scope: create_key(conn, "viewer", f"bench-viewer-{scope}", scope) for scope in (TOWN_SCOPE, GRID_SCOPE)
        }
        viewers[None] = create_key(conn, "viewer", "bench-viewer")
    engine.dispose()
    return reporter, [(scope, None, key) for scope, key in viewers.items()]


def _has_staff(url: str) -> bool:
    return has_rows(url, "SELECT EXISTS (SELECT 1 FROM postings WHERE role = 'grid_worker')")


def _seed_demo(url: str, streams: int, centres: int) -> tuple[str, list[Spec], list[tuple[float, float]]]:
    """The demo county's people: a key of each of ``streams - centres`` staff on duty today, full-time
    grid workers first, each scoped to the area of their posting (their phones), and ``centres``
    whole-county viewers (command centre screens); the reporter's key; and report positions drawn
    from the demo's own incidents, so the reports fall where the county's matters do."""
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with engine.begin() as conn:
        # Full-time grid workers first (those the routing offers a grid's reports to), then the
        # other staff on duty with an area: auxiliary police, micro-grid leaders, beat officers...
        workers = conn.execute(
            sa.text(
                "SELECT area_code, person_id FROM (SELECT DISTINCT ON (po.person_id, po.area_code) po.area_code, "
                "po.person_id, po.role = 'grid_worker' AND po.layer = 'grid' AS worker FROM postings po "
                "WHERE po.layer IN ('town', 'village', 'grid', 'micro_grid', 'beat') AND po.starts_on <= current_date "
                "AND (po.ends_on IS NULL OR po.ends_on >= current_date)) AS duty "
                "ORDER BY NOT worker, area_code, person_id LIMIT :n"
            ),
            {"n": streams - centres},
        ).all()
        if len(workers) < streams - centres:
            raise SystemExit(f"the demo has {len(workers)} staff with an area on duty, fewer than --streams asks")
        specs: list[Spec] = [
            (grid, person, create_key(conn, "reporter", f"bench-worker-{person}", grid, person_id=person))
            for grid, person in workers
        ]
        specs += [(None, None, create_key(conn, "viewer", f"bench-centre-{n}")) for n in range(centres)]
        reporter = create_key(conn, "reporter", "bench-reporter")
        conn.execute(sa.text("SELECT setseed(0.42)"))
        points = [
            (float(x), float(y))
            for x, y in conn.execute(
                sa.text("SELECT ST_X(geom), ST_Y(geom) FROM incidents ORDER BY random() LIMIT 20000")
            )
        ]
    engine.dispose()
    return reporter, specs, points


def _serve(url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "GRIDMAP_DATABASE_URL": url,
        "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0",
        "GRIDMAP_ESCALATION_INTERVAL_S": "0",
    }
    cmd = [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port), "--workers", str(workers)]
    cmd += ["--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("the API did not come up")


def _rss_mb(pgid: int) -> float:
    """Resident memory of every process in the server's process group (the workers too)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[2]) != pgid:
                continue
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _follow(base: str, path: str, stream: Stream) -> None:
    """One SSE stream over a bare asyncio connection: an HTTP client library's per-chunk cost would
    make this process, not the server, the bottleneck. Each of the server's writes is whole
    messages (one HTTP chunk), so the regex finds every event whatever the chunk framing."""
    host, port = base.removeprefix("http://").split(":")
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            stream.error = head.split(b"\r\n", 1)[0].decode()
            stream.ready.set()
            return
        rest = b""
        while True:
            chunk = await reader.read(1 << 16)
            if not chunk:
                return
            now = time.monotonic()
            if not stream.ready.is_set() and b"event: ready" in chunk:
                stream.ready.set()
            data = rest + chunk
            cut = data.rfind(b"\n\n")
            if cut < 0:
                rest = data
                continue
            rest = data[cut + 2 :]
            stream.received.extend((int(m.group(1)), now) for m in EVENT.finditer(data, 0, cut))
    except (OSError, asyncio.IncompleteReadError) as exc:
        stream.error = repr(exc)
        stream.ready.set()


class _Posts:
    """Keep-alive HTTP/1.1 connections for the reports, over bare asyncio: httpx's per-request
    cost kept this process (not the server) from offering ``--rate`` on a small machine. Only the
    sending changes; the latency measured runs from the server's ``at`` to the stream's bytes."""

    def __init__(self, base: str, key: str, size: int = 64) -> None:
        self.host, port = base.removeprefix("http://").split(":")
        self.port = int(port)
        self.key = key
        self.free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self.opened = 0
        self.size = size

    async def _conn(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.free.empty() and self.opened < self.size:
            self.opened += 1
            return await asyncio.open_connection(self.host, self.port)
        return await self.free.get()

    async def post(self, body: dict[str, object]) -> tuple[int, bytes]:
        payload = json.dumps(body).encode()
        head = (
            f"POST /incidents HTTP/1.1\r\nHost: {self.host}\r\nX-API-Key: {self.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        reader, writer = await self._conn()
        try:
            writer.write(head + payload)
            lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
            status = int(lines[0].split()[1])
            length = next(int(h.split(b":")[1]) for h in lines if h.lower().startswith(b"content-length:"))
            answer = await reader.readexactly(length)
        except BaseException:
            writer.close()
            self.opened -= 1
            raise
        self.free.put_nowait((reader, writer))
        return status, answer


async def _intake(
    base: str, key: str, rate: float, seconds: float, points: list[tuple[float, float]] | None = None
) -> list[int]:
    """Open-loop reports: each is sent at its scheduled time whatever the answers before it do."""
    ids: list[int] = []
    failures = 0
    start = time.monotonic()
    tasks = []
    posts = _Posts(base, key)

    async def one(n: int) -> None:
        nonlocal failures
        lon, lat = random.choice(points) if points else (random.uniform(BOX[0], BOX[2]), random.uniform(BOX[1], BOX[3]))
        body = {
            "lon": lon,
            "lat": lat,
            "category": random.choice(["dispute", "fire", "traffic"]),
            "source": "grid_patrol",
            "external_id": f"bench-{n}",
        }
        try:
            status, answer = await asyncio.wait_for(posts.post(body), 30)
            if status == 201:
                ids.append(int(json.loads(answer)["id"]))
            else:
                failures += 1
        except (TimeoutError, OSError, ValueError, StopIteration, asyncio.IncompleteReadError):
            failures += 1

    for n in range(int(rate * seconds)):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    if failures:
        print(f"  intake: {failures} reports failed")
    late = time.monotonic() - start - seconds
    if late > 1:
        print(f"  intake finished {late:.1f} s behind its schedule: the client could not keep the rate")
    return ids


async def _poll(client: httpx.AsyncClient, url: str, until: float, seen: dict[int, float]) -> None:
    """One command-centre page without the push: live.geojson every POLL_S at a random phase."""
    await asyncio.sleep(random.uniform(0, POLL_S))
    while time.monotonic() < until:
        tick = time.monotonic()
        try:
            resp = await client.get(url)
            now = time.monotonic()
            for f in resp.json().get("features", []):
                seen.setdefault(int(f["properties"]["id"]), now)
        except (httpx.HTTPError, ValueError):
            pass
        await asyncio.sleep(max(0.0, tick + POLL_S - time.monotonic()))


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def _summary(name: str, ms: list[float]) -> str:
    if not ms:
        return f"  {name}: no samples"
    return (
        f"  {name}: n={len(ms):,} p50={_pct(ms, 50):.0f} ms p95={_pct(ms, 95):.0f} ms "
        f"p99={_pct(ms, 99):.0f} ms max={max(ms):.0f} ms mean={statistics.fmean(ms):.0f} ms"
    )


def _event_times(
    url: str, posted: list[int]
) -> tuple[dict[int, float], dict[int, int], dict[int, set[str]], dict[int, set[int]]]:
    """Each event of the posted incidents: its ``at`` (epoch seconds), incident, and the codes its
    incident is assigned to; and each incident's assignees (the people it was offered to)."""
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT e.id, e.incident_id, extract(epoch FROM e.at), "
                "ARRAY[i.town_code, i.village_code, i.grid_code, i.micro_grid_code, i.beat_code] "
                "FROM incident_events e JOIN incidents i ON i.id = e.incident_id WHERE i.id = ANY(:ids)"
            ),
            {"ids": posted},
        ).all()
        offers = conn.execute(
            sa.text(
                "SELECT incident_id, person_id FROM incident_assignments "
                "WHERE incident_id = ANY(:ids) AND person_id IS NOT NULL"
            ),
            {"ids": posted},
        ).all()
    engine.dispose()
    codes = {r[0]: {c for c in r[3] if c} for r in rows}
    assignees: dict[int, set[int]] = {}
    for incident, person in offers:
        assignees.setdefault(incident, set()).add(person)
    return {r[0]: float(r[2]) for r in rows}, {r[0]: r[1] for r in rows}, codes, assignees


def _driver(base: str, reporter: str, viewer: str, args: argparse.Namespace, out: Connection) -> None:
    """The intake and the polling pages, in a process of their own (the streams' reader is busy)."""

    async def drive() -> tuple[list[int], list[dict[int, float]], float]:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            started = time.time()
            seconds = args.warmup + args.seconds
            until = time.monotonic() + seconds + POLL_S + 1
            seen: list[dict[int, float]] = [{} for _ in range(args.pollers)]  # per page: incident -> shown
            live_url = f"{base}/maps/data/incidents/live.geojson?key={viewer}"
            pollers = [asyncio.create_task(_poll(client, live_url, until, page)) for page in seen]
            ids = await _intake(base, reporter, args.rate, seconds, args.points)
            await asyncio.gather(*pollers)
        offset = time.time() - time.monotonic()
        return ids, [{k: v + offset for k, v in page.items()} for page in seen], started

    out.send(asyncio.run(drive()))


async def _sample_rss(pgid: int, samples: list[float]) -> None:
    while True:
        samples.append(_rss_mb(pgid))
        await asyncio.sleep(RSS_EVERY_S)


async def run(
    args: argparse.Namespace, base: str, reporter: str, specs: list[Spec], pgid: int
) -> tuple[list[Stream], list[int], list[dict[int, float]], list[float], float]:
    if args.demo:
        streams = [Stream(scope=scope, person=person, key=key) for scope, person, key in specs]
    else:
        used = specs if args.scoped else [spec for spec in specs if spec[0] is None]
        streams = [Stream(scope=used[n % len(used)][0], key=used[n % len(used)][2]) for n in range(args.streams)]
    viewer = next(key for scope, _, key in specs if scope is None)
    tasks = []
    for s in streams:
        tasks.append(asyncio.create_task(_follow(base, f"/events?key={s.key}", s)))
        await asyncio.sleep(0.002)  # a connection storm is another benchmark
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in streams)), 120)
    errors = [s.error for s in streams if s.error]
    if errors:
        print(f"  {len(errors)} streams failed to open, e.g. {errors[0]}")
    await asyncio.sleep(1)
    rss0 = _rss_mb(pgid)
    print(f"  {args.streams} streams open; API memory {rss0:.0f} MB")
    receiving, sending = multiprocessing.Pipe(duplex=False)
    driver = multiprocessing.Process(target=_driver, args=(base, reporter, viewer, args, sending))
    started = time.monotonic()
    rss: list[float] = []
    sampler = asyncio.create_task(_sample_rss(pgid, rss))
    driver.start()
    while not receiving.poll():
        await asyncio.sleep(0.2)
    ids, seen, started_at = receiving.recv()
    driver.join()
    print(f"  intake and polling done: {len(ids):,} reports stored, {time.monotonic() - started:.1f} s")
    await asyncio.sleep(3)  # the last events in flight
    sampler.cancel()
    rss1 = _rss_mb(pgid)
    rss.append(rss1)
    print(f"  API memory at the end {rss1:.0f} MB ({rss1 - rss0:+.0f} MB)")
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    offset = time.time() - time.monotonic()  # monotonic receive times onto the log's wall clock
    for s in streams:
        s.received = [(i, t + offset) for i, t in s.received]
    return streams, ids, seen, rss, started_at


def _scope_check(streams: list[Stream], created: set[int], codes: dict[int, set[str]]) -> str:
    """Every stream got every event of its scope and none outside it (``codes``: event -> the
    codes its incident is assigned to)."""
    short = extra = 0
    for s in streams:
        mine = {e for e in created if s.scope is None or s.scope in codes[e]}
        got = {e for e, _ in s.received if e in created}
        short += not mine <= got
        extra += bool(got - mine)
        if os.environ.get("BENCH_DEBUG") and not mine <= got:
            print("  missed", s.scope, sorted(mine - got)[:5], "got", len(got), "of", len(mine), file=sys.stderr)
    return (
        f"  scope: {len(streams) - short}/{len(streams)} streams got every event in scope; {extra} got any outside it"
    )


def _memory(rss: list[float]) -> str:
    if len(rss) < 4:
        return "  memory: too short a run to sample"
    half = rss[len(rss) // 2 :]
    growth = (half[-1] - half[0]) / half[0] * 100
    return (
        f"  API memory sampled every {RSS_EVERY_S:g} s: min {min(rss):.0f} MB, max {max(rss):.0f} MB; "
        f"over the second half {half[0]:.0f} -> {half[-1]:.0f} MB ({growth:+.1f}%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--rate", type=float, default=200.0, help="reports a second")
    parser.add_argument("--seconds", type=float, default=60.0, help="the measured part of the run")
    parser.add_argument(
        "--warmup",
        type=float,
        default=10.0,
        help="seconds of reports at --rate before the measured part: a fresh server's new pool connections "
        "plan the intake statement and the assignment functions on first use",
    )
    parser.add_argument("--pollers", type=int, default=5, help="simulated 10-s polling pages (the peer)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scoped", action="store_true", help="streams of county, town and grid keys, checked")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="a copy of the demo: staff's streams and --centres county screens (the default when the dev "
        "database holds the demo's staff)",
    )
    parser.add_argument("--mini", action="store_true", help="the mini county even when the demo is there")
    parser.add_argument("--centres", type=int, default=10, help="whole-county streams among --streams (--demo)")
    args = parser.parse_args()

    print(f"load before: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs")
    args.points = None
    args.demo = args.demo or (not args.mini and not args.scoped and _has_staff(db.database_url(get_settings())))
    if args.demo:
        url = _demo_copy(db.database_url(get_settings()), name=THROWAWAY)
        reporter, specs, args.points = _seed_demo(url, args.streams, args.centres)
    else:
        url = _database()
        reporter, specs = _seed(url)
    proc, base = _serve(url, args.workers)
    try:
        streams, ids, seen, rss, started_at = asyncio.run(run(args, base, reporter, specs, proc.pid))
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    at, incident_of, codes, assignees = _event_times(url, ids)
    if not os.environ.get("BENCH_KEEP"):
        _drop(url)
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")

    created = set(incident_of)  # every event of the run: the scope check covers the warm-up too
    measured = {e for e in created if at[e] >= started_at + args.warmup}
    reports: dict[int, int] = {}  # incident -> its first event (the report) in the measured window
    for e in sorted(measured):
        reports.setdefault(incident_of[e], e)
    push_ms: list[float] = []
    for s in streams:
        push_ms.extend((t - at[e]) * 1000 for e, t in s.received if e in measured)
    print(
        f"push (SSE), {len(streams)} streams, {args.rate:g} reports/s for {args.seconds:g} s "
        f"after {args.warmup:g} s of warm-up at that rate:"
    )
    if args.demo:
        # The figure: each incident's events on the streams of the people it was offered to.
        mine = [
            (t - at[e]) * 1000
            for s in streams
            if s.person is not None
            for e, t in s.received
            if e in measured and s.person in assignees.get(incident_of[e], ())
        ]
        reached = {incident_of[e] for s in streams for e, _ in s.received if e in measured and s.person is not None}
        print(_summary("intake -> the assignee's stream", mine))
        print(f"  incidents offered to a streamed worker: {len(reached):,} of {len(reports):,} measured")
    print(_summary("intake -> stream (every stream)", push_ms))
    if os.environ.get("BENCH_DEBUG"):  # the latency over the run, by 5-s window of the events' times
        start = min(at[e] for e in created)
        windows: dict[int, list[float]] = {}
        for s in streams:
            for e, t in s.received:
                if e in created:
                    windows.setdefault(int((at[e] - start) // 5), []).append((t - at[e]) * 1000)
        for w in sorted(windows):
            p50, p99 = _pct(windows[w], 50), _pct(windows[w], 99)
            print(f"    {w * 5:4d} s: p50 {p50:5.0f}  p99 {p99:5.0f}", file=sys.stderr)
    print(_scope_check(streams, created, codes))
    print(_memory(rss))
    poll_ms = [(page[i] - at[e]) * 1000 for page in seen for i, e in reports.items() if i in page]
    missed = sum(1 for page in seen for i in reports if i not in page)
    print(f"peer: 10-s polling of live.geojson, {args.pollers} pages:")
    print(_summary("event -> screen", poll_ms))
    print(f"  (incident, page) pairs never shown: {missed:,} of {len(reports) * len(seen):,}")


if __name__ == "__main__":
    main()
