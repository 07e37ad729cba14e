"""Live intake benchmark: ``POST /incidents`` sustained by wrk on this machine.

    .venv/bin/python bench/bench_intake.py [--seconds 60] [--peer-seconds 20] [--connections 8]

What it does:
1. Picks the database: a copy of the dev database (``gridmap db url``) when it holds grids (the
   demo: ``CREATE DATABASE ... TEMPLATE``, so the run writes nothing into the dev database; the copy
   is migrated to the code's schema), else
   a throwaway database with the mini test county. Either is dropped at the end.
2. Creates a reporter API key there and starts the API with uvicorn, 2 workers, no access log.
3. Drives ``POST /incidents`` with wrk (a Lua script builds a different body per request: random
   point inside the county's extent, random category and source, unique external id) for
   ``--seconds`` and prints throughput and p50/p95/p99 latency, and checks the stored row count.
4. Peers in the same run, each for ``--peer-seconds`` on the same uvicorn set-up:
   * naive: the insert a user would write first, a FastAPI endpoint that builds a one-row
     GeoDataFrame and calls ``to_postgis`` per request (no auth, no validation, no history, no
     duplicate check: it does less work than ours and is still the slower path);
   * ceiling: a bare FastAPI endpoint returning a constant, the most this server set-up can do.

With ``--scoped`` a second gridmap run follows on the same server with a key scoped to every
town of the county (issue 15): the points are then drawn inside the towns (a scoped key's report
outside its scope is refused), and the same targets apply.

Targets (issue 4): at least 500 incidents/s with p99 at most 50 ms. Rate limiting is switched
off for the run (GRIDMAP_RATE_LIMIT_PER_MINUTE=0): one key sends far more than a person would.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Engine, make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gis.core import db  # noqa: E402
from gis.incidents.rules import CATEGORIES, SOURCES  # noqa: E402
from gis.people.keys import create_key  # noqa: E402

THROWAWAY = "gridmap_bench_intake"
DEMO_COPY = "gridmap_bench_intake_demo"

LUA = r"""
local categories = {%(categories)s}
local sources = {%(sources)s}
local minx, miny, maxx, maxy = %(minx).6f, %(miny).6f, %(maxx).6f, %(maxy).6f
local counter = 0
local tag = "%(tag)s"
local points = {%(points)s}

function init(args)
  math.randomseed(%(seed)d)
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-API-Key"] = "%(key)s"
end

function request()
  counter = counter + 1
  local lon = minx + math.random() * (maxx - minx)
  local lat = miny + math.random() * (maxy - miny)
  if #points > 0 then
    local p = points[math.random(#points)]
    lon, lat = p[1], p[2]
  end
  local body = string.format(
    '{"lon": %%.6f, "lat": %%.6f, "crs": "wgs84", "category": "%%s", "source": "%%s", ' ..
    '"external_id": "bench-%%s-%%d", "description": "bench", "reporter_phone": "13800000000"}',
    lon, lat, categories[math.random(#categories)], sources[math.random(#sources)], tag, counter)
  return wrk.format("POST", "%(path)s", nil, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    'RESULT {"requests": %%d, "duration_us": %%d, "non2xx": %%d, "socket_errors": %%d, ' ..
    '"p50_us": %%d, "p95_us": %%d, "p99_us": %%d, "max_us": %%d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_ms: float  # CPU of the uvicorn processes per answered request
    load_before: float  # 1-minute load average when the run started: other work on the machine
    # CPU of the PostgreSQL sessions of the run's database per answered request (NaN when not
    # measured): with the server's, what a request costs the machine, which a busy machine
    # changes far less than the throughput
    db_cpu_ms: float = float("nan")

    @property
    def rate(self) -> float:
        return (self.requests - self.non2xx) / self.seconds

    def line(self) -> str:
        return (
            f"{self.name:<34} {self.rate:9.0f} req/s  p50 {self.p50_ms:6.2f} ms  p95 {self.p95_ms:6.2f} ms  "
            f"p99 {self.p99_ms:6.2f} ms  max {self.max_ms:7.1f} ms  errors {self.non2xx + self.socket_errors}  "
            f"server CPU {self.server_cpu_ms:.2f} ms/req{self._db_cpu()}  (load avg before: {self.load_before:.1f})"
        )

    def _db_cpu(self) -> str:
        return "" if math.isnan(self.db_cpu_ms) else f"  database CPU {self.db_cpu_ms:.2f} ms/req"


# --- the naive peer (served by uvicorn from this module) -------------------------------------


class NaiveBody(BaseModel):
    lon: float
    lat: float
    crs: str = "wgs84"
    category: str
    source: str
    external_id: str | None = None
    description: str | None = None
    reporter_phone: str | None = None


def naive_app() -> Any:
    """FastAPI app with the plain path: one-row GeoDataFrame -> to_postgis, and a hello-world."""
    import geopandas as gpd
    import pandas as pd
    from fastapi import FastAPI
    from shapely.geometry import Point

    engine = db.make_engine(os.environ["GRIDMAP_DATABASE_URL"], pool_size=10, max_overflow=10)
    app = FastAPI()

    @app.post("/naive/incidents", status_code=201)
    def naive(body: NaiveBody) -> dict[str, int]:
        row = body.model_dump(exclude={"crs", "lon", "lat"})
        row["reported_at"] = pd.Timestamp.now(tz="UTC")
        gdf = gpd.GeoDataFrame([row], geometry=[Point(body.lon, body.lat)], crs="EPSG:4326").rename_geometry("geom")
        gdf.to_postgis("incidents", engine, if_exists="append", index=False)
        return {"stored": 1}

    @app.get("/hello")
    def hello() -> dict[str, bool]:
        return {"ok": True}

    return app


# --- orchestration ---------------------------------------------------------------------------


def _has_grids(url: str) -> bool:
    return has_rows(url, "SELECT EXISTS (SELECT 1 FROM areas WHERE layer = 'grid')")


def has_rows(url: str, exists_sql: str) -> bool:
    """Whether the database at ``url`` answers true to ``exists_sql`` (false when it is unreachable)."""
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            return bool(conn.scalar(sa.text(exists_sql)))
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def _throwaway(dev_url: str) -> str:
    from boundaries.generations import publish_layers
    from tests.conftest import build_mini_county  # the same small county the tests use

    url = make_url(dev_url)
    _drop(dev_url, THROWAWAY)
    scratch = url.set(database=THROWAWAY).render_as_string(hide_password=False)
    db.ensure_database(scratch)
    db.migrate(scratch)
    engine = db.make_engine(scratch, pool_size=1, max_overflow=0)
    with db.transaction(engine) as session:
        publish_layers(session.connection(), build_mini_county(), note="bench: mini county", author="bench")
    engine.dispose()
    return scratch


def _demo_copy(dev_url: str, wait_s: float = 120.0, name: str = DEMO_COPY) -> str:
    """A copy of the dev database under ``name``: the run posts tens of thousands of
    reports, offers and jobs, which must not land in the shared dev database (nor weigh on the next
    run). PostgreSQL copies a template only while nobody else is connected to it, so a session of
    another user makes it wait and retry, up to ``wait_s``."""
    url = make_url(dev_url)
    source = url.database
    _drop(dev_url, name)
    admin = db.make_engine(url.set(database="postgres"), pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT")
    deadline = time.monotonic() + wait_s
    try:
        with admin.connect() as conn:
            while True:
                try:
                    conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{source}"'))
                    break
                except sa.exc.OperationalError as exc:
                    if "being accessed by other users" not in str(exc):
                        raise
                    if time.monotonic() > deadline:
                        raise SystemExit(
                            f"cannot copy {source!r}: other sessions stayed connected to it for {wait_s:.0f} s "
                            "(a server or worker on the dev database?); stop them and run again"
                        ) from None
                    time.sleep(2.0)
    finally:
        admin.dispose()
    copy = url.set(database=name).render_as_string(hide_password=False)
    db.migrate(copy)  # the schema of the code under test (the dev database may be behind it)
    return copy


def _drop(any_url: str, name: str) -> None:
    url = make_url(any_url)
    admin = db.make_engine(url.set(database="postgres"), pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _extent(engine: Engine) -> tuple[float, float, float, float]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                "(SELECT ST_Extent(geom) AS e FROM areas WHERE layer = 'grid' AND gen_to IS NULL) s"
            )
        ).one()
    return float(row[0]), float(row[1]), float(row[2]), float(row[3])


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.text("SELECT count(*) FROM incidents")) or 0)


def _serve(
    app: str, port: int, workers: int, env: dict[str, str], factory: bool = False, wait_s: float = 60.0
) -> subprocess.Popen[bytes]:
    """The app under uvicorn, once every worker answers; ``wait_s`` bounds the start (two workers
    importing the app took over a minute on a busy machine)."""
    cmd = [
        str(Path(sys.executable).parent / "uvicorn"),
        app,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
        "--app-dir",
        str(ROOT),
    ]
    if factory:
        cmd.append("--factory")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + wait_s
    probe = "/hello" if factory else "/health"
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=1).status_code == 200:
                time.sleep(1.0)  # let every worker finish starting
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"uvicorn exited with {proc.returncode} while starting {app}")
        time.sleep(0.3)
    _stop(proc)
    raise SystemExit(f"uvicorn did not answer {probe} on port {port} within {wait_s:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)  # uvicorn's Ctrl-C: stop now, workers included
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of every live process in the process group ``pgid``."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _pids_cpu_s(pids: set[int]) -> dict[int, float]:
    """User + system CPU seconds of each live process of ``pids``."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _sessions(engine: Engine) -> set[int]:
    """The server processes of the other sessions of ``engine``'s database (the app's pool)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        ).scalars()
        return set(rows)


def _wrk(
    name: str,
    url: str,
    seconds: int,
    connections: int,
    script: str,
    server: subprocess.Popen[bytes],
    database: Engine | None = None,
) -> Result:
    """One wrk run; with ``database``, the CPU its sessions spent is measured too (processes on
    this machine only: a local cluster)."""
    load = os.getloadavg()[0]
    db0 = _pids_cpu_s(_sessions(database)) if database is not None else {}
    cpu0 = _group_cpu_s(server.pid)
    cmd = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "5s"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.lua"
        path.write_text(script)
        cmd += ["-s", str(path), url]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(row for row in out.splitlines() if row.startswith("RESULT "))
    data = json.loads(line[len("RESULT ") :])
    answered = max(1, data["requests"] - data["non2xx"])
    db_cpu = float("nan")
    if database is not None:  # sessions opened during the run count from zero
        db1 = _pids_cpu_s(_sessions(database) | set(db0))
        db_cpu = sum(t - db0.get(pid, 0.0) for pid, t in db1.items()) * 1000 / answered
    return Result(
        name,
        data["requests"],
        data["duration_us"] / 1e6,
        data["non2xx"],
        data["socket_errors"],
        data["p50_us"] / 1000,
        data["p95_us"] / 1000,
        data["p99_us"] / 1000,
        data["max_us"] / 1000,
        (_group_cpu_s(server.pid) - cpu0) * 1000 / answered,
        load,
        db_cpu,
    )


def _town_points(engine: Engine, n: int = 2000) -> tuple[list[str], str]:
    """The towns in force, and ``n`` random points inside them as a Lua table body."""
    with engine.connect() as conn:
        towns = list(
            conn.execute(
                sa.text("SELECT code FROM areas WHERE layer = 'town' AND gen_to IS NULL ORDER BY code")
            ).scalars()
        )
        rows = conn.execute(
            sa.text(
                "SELECT ST_X(g), ST_Y(g) FROM (SELECT (ST_Dump(ST_GeneratePoints(ST_Union(geom), :n))).geom AS g "
                "FROM areas WHERE layer = 'town' AND gen_to IS NULL) s"
            ),
            {"n": n},
        ).all()
    return towns, ", ".join(f"{{{x:.6f}, {y:.6f}}}" for x, y in rows)


def _script(key: str, extent: tuple[float, float, float, float], path: str, points: str = "") -> str:
    return LUA % {
        "points": points,
        "categories": ", ".join(f'"{c}"' for c in CATEGORIES),
        "sources": ", ".join(f'"{s}"' for s in SOURCES),
        "minx": extent[0],
        "miny": extent[1],
        "maxx": extent[2],
        "maxy": extent[3],
        "key": key,
        "path": path,
        "tag": uuid.uuid4().hex[:12],
        "seed": random.randrange(1, 2**31),
    }


def _get_script() -> str:
    done = "function done" + LUA.split("function done")[1]
    return done.replace("%%", "%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="duration of the gridmap run")
    parser.add_argument("--peer-seconds", type=int, default=20, help="duration of each peer run; 0 = skip peers")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (closed loop)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--port", type=int, default=8731)
    parser.add_argument("--scoped", action="store_true", help="a second run with a key scoped to every town")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    dev_url = db.database_url()
    demo = _has_grids(dev_url)
    url = _demo_copy(dev_url) if demo else _throwaway(dev_url)
    copy_name = DEMO_COPY if demo else THROWAWAY
    where = (
        f"{DEMO_COPY}, a copy of the dev database (the demo)"
        if demo
        else f"throwaway database {THROWAWAY} with the mini test county"
    )
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with db.transaction(engine) as session:
        key = create_key(session, "reporter", "bench_intake")
    extent = _extent(engine)
    scoped_key, points = "", ""
    if args.scoped:
        towns, points = _town_points(engine)
        with db.transaction(engine) as session:
            scoped_key = create_key(session, "reporter", "bench_intake", ",".join(towns))
    env = {
        **os.environ,
        "GRIDMAP_DATABASE_URL": url,
        "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0",
        "PYTHONPATH": str(ROOT),
    }
    results: list[Result] = []
    stored = 0
    try:
        before = _count(engine)
        proc = _serve("api.main:app", args.port, args.workers, env)
        try:
            base = f"http://127.0.0.1:{args.port}"
            _wrk("warm-up", f"{base}/incidents", 3, args.connections, _script(key, extent, "/incidents"), proc)
            after_warmup = _count(engine)
            ours = _wrk(
                "gridmap POST /incidents",
                f"{base}/incidents",
                args.seconds,
                args.connections,
                _script(key, extent, "/incidents"),
                proc,
                engine,
            )
            results.append(ours)
            stored = _count(engine) - after_warmup
            if args.scoped:
                results.append(
                    _wrk(
                        "gridmap POST /incidents (scoped key)",
                        f"{base}/incidents",
                        args.seconds,
                        args.connections,
                        _script(scoped_key, extent, "/incidents", points),
                        proc,
                        engine,
                    )
                )
        finally:
            _stop(proc)
        if args.peer_seconds > 0:
            proc = _serve("bench.bench_intake:naive_app", args.port, args.workers, env, factory=True)
            try:
                base = f"http://127.0.0.1:{args.port}"
                results.append(
                    _wrk(
                        "peer: naive to_postgis insert",
                        f"{base}/naive/incidents",
                        args.peer_seconds,
                        args.connections,
                        _script(key, extent, "/naive/incidents"),
                        proc,
                        engine,
                    )
                )
                results.append(
                    _wrk(
                        "ceiling: FastAPI hello-world",
                        f"{base}/hello",
                        args.peer_seconds,
                        args.connections,
                        _get_script(),
                        proc,
                    )
                )
            finally:
                _stop(proc)
        total_rows = _count(engine) - before
    finally:
        engine.dispose()
        _drop(dev_url, copy_name)

    print()
    print(
        f"live intake on {os.cpu_count()} cores, {where}; uvicorn {args.workers} workers; "
        f"wrk 1 thread, {args.connections} connections (closed loop), same machine"
    )
    for r in results:
        print("  " + r.line())
    ours = results[0]
    print(
        f"  rows stored during the gridmap run: {stored} (2xx answers: {ours.requests - ours.non2xx}; "
        f"requests in flight at the stop may add a few); rows stored in all: {total_rows}"
    )
    naive = [r for r in results if r.name.startswith("peer: naive")]
    if naive:
        print(f"  gridmap / naive peer throughput: {ours.rate / naive[0].rate:.1f}x")
    for run in [r for r in results if r.name.startswith("gridmap")]:
        ok = run.rate >= 500 and run.p99_ms <= 50 and run.non2xx + run.socket_errors == 0
        print(f"  {run.name}: target >= 500 incidents/s with p99 <= 50 ms and no errors: {'MET' if ok else 'NOT MET'}")


if __name__ == "__main__":
    main()
