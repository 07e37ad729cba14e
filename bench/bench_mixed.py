"""Mixed traffic for minutes: lookups, intake, map polls and listing at once, with memory watched.

    .venv/bin/python bench/bench_mixed.py [--seconds 300] [--workers 2] [--rates lookup_coord=2000,intake=500]

What it does:
1. Picks the database: the dev database (``gridmap db url``) when a boundary generation is
   published there (the Jiashan demo), else a throwaway database with the sample county of
   ``boundaries.sample`` plus synthetic standard addresses and incidents (dropped at the end).
   The database is reached over the local cluster's Unix socket: no traffic leaves the machine.
2. Starts the API with uvicorn (2 workers, no access log, rate limit off: one key per kind of
   client sends far more than a person would) and creates one key per kind of client.
3. Runs five wrk load generators at the same time, one per kind of request, each with its own
   Lua script and connections: coordinate lookups, address lookups (standard addresses of the
   database), incident intake (a unique ``Idempotency-Key`` per request), polls of the live map
   layer (``/maps/data/incidents/live.geojson``) and incident listing (``GET /incidents``,
   with and without a grid filter). Every wrk reports its own throughput and latency.
   By default every wrk sends back to back (closed loop: the server is saturated, and latency
   is mostly queueing). With ``--rates KIND=R,...`` those kinds are paced instead: each of their
   connections waits ``connections * 1000 / R`` ms before each request (wrk's ``delay()``),
   so they offer at most R requests/s (the delay runs after each answer: a connection sends
   once per delay + latency, and the table shows the rate delivered). Their latency is what a
   client at that rate sees while the other kinds keep the server busy.
4. Samples the resident memory (RSS) of every uvicorn process every 5 s, and prints per kind:
   requests/s, p50, p95 and p99 latency, errors (non-2xx and socket errors; must be 0), whether
   the latency targets of the lookup and intake issues held (TARGETS), then the
   RSS series and whether it stayed flat over the last 3 minutes (growth at most 10%).
Incidents the benchmark posted into the dev database are deleted again at the end.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from boundaries.generations import publish_layers  # noqa: E402
from boundaries.sample import X0, X1, Y0, Y1, build_mini_county  # noqa: E402
from gis.core import db  # noqa: E402
from gis.people.keys import create_key  # noqa: E402
from gis.spatial.address_text import parse_address  # noqa: E402

THROWAWAY = "gridmap_bench_mixed"
KEY_PREFIX = "bench-mixed"
SAMPLE_EVERY_S = 5.0
FLAT_WINDOW_S = 180.0
FLAT_LIMIT = 0.10

# (kind, wrk connections): lookups dominate, as at a command centre; one poller stands for many
# browsers polling every 10 s (it polls back to back, far more often than they would).
KINDS = [("lookup_coord", 4), ("lookup_address", 2), ("intake", 2), ("live_poll", 1), ("listing", 1)]


# The latency targets of the lookup and intake issues: (percentile, ms). They are meant for
# paced traffic (--rates); back to back, latency is mostly time spent queueing.
TARGETS = {"lookup_coord": (99, 20.0), "lookup_address": (95, 30.0), "intake": (99, 50.0)}


@dataclass
class Target:
    url: str
    throwaway: bool
    extent: tuple[float, float, float, float]
    addresses: list[str]
    grids: list[str]


# --- database ------------------------------------------------------------------------------------


def _published(url: str) -> bool:
    eng = db.make_engine(url, pool_size=1, max_overflow=0)
    try:
        with eng.connect() as conn:
            return bool(conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM areas WHERE layer = 'grid')")).scalar())
    except sa.exc.DBAPIError:
        return False
    finally:
        eng.dispose()


def _drop(any_url: str, name: str) -> None:
    admin = db.make_engine(make_url(any_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _fill_sample(engine: Engine, addresses: int, incidents: int) -> None:
    """The sample county, synthetic standard addresses on a street grid, and a year of incidents."""
    rng = random.Random(7)
    with engine.begin() as conn:
        publish_layers(conn, build_mini_county(), note="bench: sample county", author="bench")
        rows = []
        for n in range(addresses):
            road = f"测试{'东西南北中'[n % 5]}路"
            text = f"嘉善县测试镇{n % 2 + 1}{road}{n // 5 + 1}号{n % 7 + 1}幢"
            p = parse_address(text)
            rows.append(
                {"t": text, "n": p.normalized, "r": p.road, "h": p.house_no, "b": p.building_no, "p": p.precision,
                 "x": rng.uniform(X0, X1), "y": rng.uniform(Y0, Y1)}
            )  # fmt: skip
        conn.execute(
            sa.text(
                "INSERT INTO addresses (full_text, normalized, road, house_no, building_no, precision, geom) "
                "VALUES (:t, :n, :r, :h, :b, :p, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
            ),
            rows,
        )
        conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, status, deadline_at, geom) "
                "SELECT (ARRAY['dispute','fire','traffic','public_order'])[1 + (g % 4)], 'grid_patrol', "
                "now() - (g % 365) * interval '1 day' - (g % 24) * interval '1 hour', 'reported', "
                "now() + interval '1 day', "
                "ST_SetSRID(ST_MakePoint(:x0 + random() * (:x1 - :x0), :y0 + random() * (:y1 - :y0)), 4326) "
                "FROM generate_series(1, :n) AS g"
            ),
            {"x0": X0, "x1": X1, "y0": Y0, "y1": Y1, "n": incidents},
        )


def target_database(dev_url: str) -> Target:
    if _published(dev_url):
        url, throwaway = dev_url, False
    else:
        _drop(dev_url, THROWAWAY)
        url = make_url(dev_url).set(database=THROWAWAY).render_as_string(hide_password=False)
        db.ensure_database(url)
        db.migrate(url)
        eng = db.make_engine(url, pool_size=1, max_overflow=0)
        _fill_sample(eng, addresses=2000, incidents=20_000)
        eng.dispose()
        throwaway = True
    eng = db.make_engine(url, pool_size=1, max_overflow=0)
    with eng.connect() as conn:
        box = conn.execute(
            sa.text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e "
                    "FROM areas WHERE layer = 'grid' AND gen_to IS NULL) s")
        ).one()  # fmt: skip
        addresses = conn.execute(sa.text("SELECT full_text FROM addresses ORDER BY random() LIMIT 300")).scalars().all()
        grids = conn.execute(
            sa.text("SELECT code FROM areas WHERE layer = 'grid' AND gen_to IS NULL ORDER BY random() LIMIT 100")
        ).scalars().all()  # fmt: skip
    eng.dispose()
    if not addresses:
        raise SystemExit(f"the database {make_url(url).database} has no standard addresses to look up")
    return Target(url, throwaway, tuple(float(v) for v in box), list(addresses), list(grids))  # type: ignore[arg-type]


def keys_for(url: str) -> dict[str, str]:
    eng = db.make_engine(url, pool_size=1, max_overflow=0)
    roles = {"lookup_coord": "viewer", "lookup_address": "viewer", "intake": "reporter", "live_poll": "viewer",
             "listing": "viewer"}  # fmt: skip
    with eng.begin() as conn:
        keys = {kind: create_key(conn, role, f"{KEY_PREFIX}-{kind}") for kind, role in roles.items()}
    eng.dispose()
    return keys


def cleanup(url: str, tag: str) -> int:
    """Delete what the run posted into a database that is not a throwaway one."""
    eng = db.make_engine(url, pool_size=1, max_overflow=0)
    with eng.begin() as conn:
        ids = "SELECT id FROM incidents WHERE idempotency_key LIKE :k"
        like = {"k": f"{tag}-%"}
        conn.execute(sa.text(f"DELETE FROM incident_events WHERE incident_id IN ({ids})"), like)  # noqa: S608
        removed = conn.execute(sa.text("DELETE FROM incidents WHERE idempotency_key LIKE :k"), like).rowcount
        conn.execute(sa.text("DELETE FROM audit_log WHERE actor LIKE :a"), {"a": f"{KEY_PREFIX}-%"})
        conn.execute(sa.text("DELETE FROM api_keys WHERE name LIKE :a"), {"a": f"{KEY_PREFIX}-%"})
    eng.dispose()
    return int(removed or 0)


# --- wrk scripts -------------------------------------------------------------------------------------


def _lua_list(values: list[str]) -> str:
    return ", ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)


def lua_script(kind: str, key: str, target: Target, tag: str, pace_ms: float = 0.0) -> str:
    minx, miny, maxx, maxy = target.extent
    pacing = f"function delay() return {pace_ms:.3f} end\n" if pace_ms > 0 else ""
    head = (
        pacing
        + f"""
local key = "{key}"
local minx, miny, maxx, maxy = {minx:.6f}, {miny:.6f}, {maxx:.6f}, {maxy:.6f}
local counter = 0
-- thread_tag is a global: setup() sets it in each thread's own Lua state
function setup(thread) thread:set("thread_tag", tostring(math.random(1, 1000000000))) end
function init(args)
  math.randomseed(os.time() + tonumber(thread_tag or "0"))
  wrk.headers["X-API-Key"] = key
end
-- wrk prints p50/p75/p90/p99; the address lookups' target is a p95
function done(summary, latency, requests)
  io.write(string.format("p95 %.3fms\\n", latency:percentile(95) / 1000))
end
local function point() return minx + math.random() * (maxx - minx), miny + math.random() * (maxy - miny) end
"""
    )
    if kind == "lookup_coord":
        body = """
function request()
  local x, y = point()
  return wrk.format("GET", string.format("/lookup?lon=%.6f&lat=%.6f", x, y))
end
"""
    elif kind == "lookup_address":
        quoted = [urllib.parse.quote(a) for a in target.addresses]
        body = f"""
local addresses = {{{_lua_list(quoted)}}}
function request()
  return wrk.format("GET", "/lookup?address=" .. addresses[math.random(1, #addresses)])
end
"""
    elif kind == "intake":
        body = f"""
local categories = {{"dispute", "fire", "traffic", "public_order", "ebike_charging", "environment"}}
function request()
  counter = counter + 1
  local x, y = point()
  local json = string.format(
    '{{"lon": %.6f, "lat": %.6f, "category": "%s", "source": "grid_patrol", "description": "mixed bench %d"}}',
    x, y, categories[math.random(1, #categories)], counter)
  -- headers given to wrk.format replace wrk.headers, so the key goes in again
  local headers = {{["Content-Type"] = "application/json", ["X-API-Key"] = key,
                   ["Idempotency-Key"] = "{tag}-" .. thread_tag .. "-" .. counter}}
  return wrk.format("POST", "/incidents", headers, json)
end
"""
    elif kind == "live_poll":
        body = """
function request() return wrk.format("GET", "/maps/data/incidents/live.geojson") end
"""
    else:
        body = f"""
local grids = {{{_lua_list(target.grids)}}}
function request()
  if math.random() < 0.5 then
    return wrk.format("GET", "/incidents?limit=50")
  end
  return wrk.format("GET", "/incidents?limit=50&grid=" .. grids[math.random(1, #grids)])
end
"""
    return head + body


def parse_rates(text: str) -> dict[str, float]:
    known = {kind for kind, _ in KINDS}
    rates: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, value = item.partition("=")
        if kind not in known:
            raise SystemExit(f"--rates: unknown kind {kind!r}; kinds are {', '.join(sorted(known))}")
        try:
            rates[kind] = float(value)
        except ValueError:
            raise SystemExit(f"--rates: {item!r} needs a number of requests/s after '='") from None
        if rates[kind] <= 0:
            raise SystemExit(f"--rates: the rate of {kind} must be positive")
    return rates


def pacing(kind: str, connections: int, rates: dict[str, float]) -> tuple[int, float]:
    """(connections, delay ms before each request) for a kind: back to back unless paced; a paced
    kind gets enough connections that each waits at least 20 ms, so latency hardly slows it."""
    rate = rates.get(kind)
    if rate is None:
        return connections, 0.0
    connections = max(connections, math.ceil(rate * 0.02))
    return connections, connections * 1000.0 / rate


# --- server and measurement ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0"}
    cmd = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--no-access-log", "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"uvicorn exited with {proc.returncode} while starting")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit("uvicorn did not answer /health within 90 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _children(pid: int) -> list[int]:
    """uvicorn's worker processes (multiprocessing's resource tracker is not one)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return [c for c in out if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def warm_up(port: int, keys: dict[str, str], target: Target) -> None:
    """One request of each kind, so that caches are built before the measurement starts."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        x = (target.extent[0] + target.extent[2]) / 2
        y = (target.extent[1] + target.extent[3]) / 2
        for _ in range(4):  # each worker builds its own lookup index
            client.get("/lookup", params={"lon": x, "lat": y}, headers={"X-API-Key": keys["lookup_coord"]})
            client.get(
                "/lookup", params={"address": target.addresses[0]}, headers={"X-API-Key": keys["lookup_address"]}
            )
            client.get("/maps/data/incidents/live.geojson", headers={"X-API-Key": keys["live_poll"]})
            client.get("/incidents", headers={"X-API-Key": keys["listing"]})
        probe = {"lon": x, "lat": y, "category": "dispute", "source": "grid_patrol", "description": "mixed bench probe"}
        posted = client.post("/incidents", json=probe, headers={"X-API-Key": keys["intake"]})
        if posted.status_code != 201:
            raise SystemExit(f"intake does not work: {posted.status_code} {posted.text[:300]}")


@dataclass
class WrkResult:
    kind: str
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    output: str

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(kind: str, output: str) -> WrkResult:
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", output)
    if done is None:
        raise SystemExit(f"wrk ({kind}) printed no summary:\n{output}")
    seconds = float(done.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[done.group(3)]
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p95 = re.search(r"^p95 ([\d.]+)ms$", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkResult(kind, int(done.group(1)), seconds, _ms(p50.group(1)) if p50 else float("nan"),
                     float(p95.group(1)) if p95 else float("nan"), _ms(p99.group(1)) if p99 else float("nan"),
                     errors, output)  # fmt: skip


def flat(series: list[tuple[float, float]], duration: float) -> tuple[bool, float]:
    """(flat?, growth) of one process's RSS over the last FLAT_WINDOW_S (or last 60% of a short run)."""
    window = FLAT_WINDOW_S if duration >= FLAT_WINDOW_S / 0.6 else duration * 0.6
    start = duration - window
    inside = [mb for t, mb in series if t >= start]
    if len(inside) < 2:
        return True, 0.0
    growth = (max(inside) - inside[0]) / inside[0]
    return growth <= FLAT_LIMIT, growth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=300, help="how long the mixed traffic runs")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--rates", default="", help="pace these kinds: KIND=requests/s,... (default: back to back)")
    args = parser.parse_args()
    rates = parse_rates(args.rates)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    dev_url = db.prepare()
    target = target_database(dev_url)
    tag = f"{KEY_PREFIX}-{uuid.uuid4().hex[:8]}"
    keys = keys_for(target.url)
    port = free_port()
    server = serve(target.url, port, args.workers)
    folder = Path(tempfile.mkdtemp(prefix="gridmap-bench-mixed-"))
    procs: list[tuple[str, subprocess.Popen[str]]] = []
    plan: list[tuple[str, int]] = []
    try:
        workers = _children(server.pid)
        warm_up(port, keys, target)
        for kind, default_connections in KINDS:
            connections, pace_ms = pacing(kind, default_connections, rates)
            plan.append((kind, connections))
            script = folder / f"{kind}.lua"
            script.write_text(lua_script(kind, keys[kind], target, tag, pace_ms))
            cmd = ["wrk", "-t1", f"-c{connections}", f"-d{args.seconds}s", "--timeout", "10s", "--latency",
                   "-s", str(script), f"http://127.0.0.1:{port}"]  # fmt: skip
            procs.append((kind, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
        started = time.monotonic()
        samples: dict[int, list[tuple[float, float]]] = {pid: [] for pid in workers}
        next_sample = started
        while any(p.poll() is None for _, p in procs):
            now = time.monotonic()
            if now >= next_sample:
                for pid in workers:
                    samples[pid].append((now - started, rss_mb(pid)))
                next_sample += SAMPLE_EVERY_S
            time.sleep(0.2)
        duration = time.monotonic() - started
        results = [parse_wrk(kind, p.communicate()[0]) for kind, p in procs]
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
        stop(server)
        shutil.rmtree(folder, ignore_errors=True)

    stored = 0
    eng = db.make_engine(target.url, pool_size=1, max_overflow=0)
    with eng.connect() as conn:
        stored = int(conn.execute(sa.text("SELECT count(*) FROM incidents WHERE idempotency_key LIKE :k"),
                                  {"k": f"{tag}-%"}).scalar_one())  # fmt: skip
    eng.dispose()

    where = "the dev database" if not target.throwaway else f"a throwaway database ({THROWAWAY}: sample county)"
    print(f"\nmixed traffic for {duration:.0f} s on {os.cpu_count()} cores, {where}; uvicorn {args.workers} "
          f"workers; wrk on the same machine, one per kind")  # fmt: skip
    columns = [("conns", 6), ("paced at", 10), ("requests", 10), ("req/s", 9)]
    columns += [("p50 ms", 9), ("p95 ms", 9), ("p99 ms", 9), ("errors", 8), ("target", 22)]
    print(f"{'kind':<16}" + "".join(f"{name:>{width}}" for name, width in columns))
    total = errors = 0
    for (kind, connections), r in zip(plan, results, strict=True):
        total += r.requests
        errors += r.errors
        paced = f"{rates[kind]:.0f}/s" if kind in rates else "-"
        verdict = ""
        if kind in TARGETS:
            pct, limit = TARGETS[kind]
            held = (r.p95_ms if pct == 95 else r.p99_ms) <= limit
            verdict = f"p{pct} <= {limit:.0f} ms: {'held' if held else 'MISSED'}"
        print(f"{kind:<16}{connections:>6}{paced:>10}{r.requests:>10}{r.rate:>9.0f}{r.p50_ms:>9.2f}{r.p95_ms:>9.2f}"
              f"{r.p99_ms:>9.2f}{r.errors:>8}  {verdict}")  # fmt: skip
    print(f"{'all':<16}{'':>16}{total:>10}{total / duration:>9.0f}{'':>27}{errors:>8}  error rate {errors / total:.4%}")
    intake = next(r for r in results if r.kind == "intake")
    # wrk counts the answers received in time; requests still in flight at the end are stored too.
    print(f"intake: {intake.requests} answered within the run, {stored} stored with the run's idempotency keys")

    print(f"\nRSS of the uvicorn workers (MB), sampled every {SAMPLE_EVERY_S:.0f} s:")
    verdicts = []
    for pid, series in samples.items():
        values = [mb for _, mb in series]
        ok, growth = flat(series, duration)
        verdicts.append(ok)
        shown = " ".join(f"{v:.0f}" for v in values)
        print(f"  worker {pid}: start {values[0]:.0f}, end {values[-1]:.0f}, max {max(values):.0f}; "
              f"growth over the last window {growth:+.1%} ({'flat' if ok else 'GROWING'})\n    {shown}")  # fmt: skip
    if target.throwaway:
        _drop(dev_url, THROWAWAY)
    else:
        print(f"removed {cleanup(target.url, tag)} benchmark incidents from the dev database")
    failed = []
    if errors:
        failed.append(f"{errors} errors")
    if not all(verdicts):
        failed.append("memory grew")
    if failed:
        for r in results:
            if r.errors:
                print(f"--- wrk output for {r.kind}:\n{r.output}")
        raise SystemExit("FAILED: " + ", ".join(failed))
    print("OK: no errors, memory flat")


if __name__ == "__main__":
    main()
