"""Residents' channel benchmark (issue 19): ``POST /public/reports`` and the tracking page
``GET /public/reports/{ticket}``, sustained by wrk, with the staff intake as the peer in the same run.

    .venv/bin/python bench/bench_public.py [--seconds 30] [--peer-seconds 15] [--connections 8] [--merge]

What it does:
1. A throwaway database (``gridmap_bench_public``) with the mini test county, dropped at the end.
2. The API under uvicorn, 2 workers, no access log. The abuse limits of the public surface (reports
   per device and per IP address a minute, look-ups per IP a minute) are raised to a billion a
   minute rather than switched off, so every request still takes its tokens from the shared
   buckets but none is refused: wrk sends everything from 127.0.0.1, which the default 30 a minute
   would throttle at once. The staff key's limit is off (GRIDMAP_RATE_LIMIT_PER_MINUTE=0), as in
   bench_intake.py.
3. ``POST /public/reports`` without photos (JSON: a resident category, a description, a WGS-84 point
   drawn inside the county's grids, a device id out of a thousand) for ``--seconds``. The duplicate
   radius is 0 for the run, so that every report files a new incident and a ticket (the heavier
   path; at hundreds a second on a small county almost every report would otherwise be merged into
   an earlier one); ``--merge`` keeps the product's radius (150 m) instead.
4. Peer, same server, same run: the staff intake ``POST /incidents`` with a reporter key
   (bench_intake.py's request bodies) for ``--peer-seconds``.
5. ``GET /public/reports/{ticket}`` with the tracking token in ``X-Ticket-Token``, over 1,000
   tickets filed beforehand in-process (gis.channels.public.submit_report), for ``--seconds``.

Targets (issue 19): reports >= 300/s with p99 <= 100 ms; the tracking page p95 <= 50 ms; no errors.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_intake import Result, _drop, _extent, _script, _serve, _stop, _wrk  # noqa: E402
from gis.channels.categories import RESIDENT_CATEGORIES  # noqa: E402
from gis.core import db  # noqa: E402
from gis.core.settings import Settings  # noqa: E402
from gis.people.keys import create_key  # noqa: E402

THROWAWAY = "gridmap_bench_public"
TICKETS = 1000
UNTHROTTLED = str(10**9)  # a minute's tokens: consulted on every request, never exhausted

REPORT_LUA = r"""
local categories = {%(categories)s}
local minx, miny, maxx, maxy = %(minx).6f, %(miny).6f, %(maxx).6f, %(maxy).6f
local counter = 0
local tag = "%(tag)s"

function init(args)
  math.randomseed(%(seed)d)
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"category": "%%s", "description": "bench %%s-%%d", "lon": %%.6f, "lat": %%.6f, "crs": "wgs84", ' ..
    '"device_id": "bench-%%s-%%d"}',
    categories[math.random(#categories)], tag, counter, minx + math.random() * (maxx - minx),
    miny + math.random() * (maxy - miny), tag, counter %% 1000)
  return wrk.format("POST", "/public/reports", nil, body)
end
"""

TRACK_LUA = r"""
local tickets = {%(tickets)s}

function init(args)
  math.randomseed(%(seed)d)
end

function request()
  local t = tickets[math.random(#tickets)]
  return wrk.format("GET", "/public/reports/" .. t[1], {["X-Ticket-Token"] = t[2]})
end
"""


def _done() -> str:
    from bench.bench_intake import LUA

    return ("function done" + LUA.split("function done")[1]).replace("%%", "%")


def _throwaway(any_url: str) -> str:
    from boundaries.generations import publish_layers
    from tests.conftest import build_mini_county  # the same small county the tests use

    _drop(any_url, THROWAWAY)
    scratch = make_url(any_url).set(database=THROWAWAY).render_as_string(hide_password=False)
    db.ensure_database(scratch)
    db.migrate(scratch)
    engine = db.make_engine(scratch, pool_size=1, max_overflow=0)
    with db.transaction(engine) as session:
        publish_layers(session.connection(), build_mini_county(), note="bench: mini county", author="bench")
    engine.dispose()
    return scratch


def _file_tickets(engine: Engine, extent: tuple[float, float, float, float], n: int) -> list[tuple[str, str]]:
    """``n`` residents' reports filed in-process: (ticket, token) pairs for the tracking run."""
    from gis.channels.public import submit_report

    rng = random.Random(19)
    codes = sorted(RESIDENT_CATEGORIES)
    settings = Settings(freeze_heap=False, duplicate_radius_m=0)
    out = []
    with engine.begin() as conn:
        for k in range(n):
            body = {
                "category": rng.choice(codes),
                "description": f"bench tracking {k}",
                "lon": rng.uniform(extent[0], extent[2]),
                "lat": rng.uniform(extent[1], extent[3]),
                "crs": "wgs84",
            }
            answer = submit_report(conn, body, ip="127.0.0.1", settings=settings)
            out.append((str(answer["ticket"]), str(answer["token"])))
    return out


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608 - a constant name


def _report_script(extent: tuple[float, float, float, float]) -> str:
    return (
        REPORT_LUA
        % {
            "categories": ", ".join(f'"{c}"' for c in sorted(RESIDENT_CATEGORIES)),
            "minx": extent[0],
            "miny": extent[1],
            "maxx": extent[2],
            "maxy": extent[3],
            "tag": uuid.uuid4().hex[:12],
            "seed": random.randrange(1, 2**31),
        }
        + _done()
    )


def _track_script(tickets: list[tuple[str, str]]) -> str:
    body = ", ".join(f'{{"{t}", "{k}"}}' for t, k in tickets)
    return TRACK_LUA % {"tickets": body, "seed": random.randrange(1, 2**31)} + _done()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=30, help="duration of each gridmap run")
    parser.add_argument("--peer-seconds", type=int, default=15, help="duration of the peer run; 0 = skip it")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (closed loop)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--port", type=int, default=8737)
    parser.add_argument("--start-timeout", type=float, default=180.0, help="seconds to wait for the API to start")
    parser.add_argument("--merge", action="store_true", help="keep the duplicate radius (reports merge)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    dev_url = db.database_url()
    url = _throwaway(dev_url)
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    env = {
        **os.environ,
        "GRIDMAP_DATABASE_URL": url,
        "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0",
        "GRIDMAP_PUBLIC_REPORTS_PER_DEVICE_MINUTE": UNTHROTTLED,
        "GRIDMAP_PUBLIC_REPORTS_PER_IP_MINUTE": UNTHROTTLED,
        "GRIDMAP_PUBLIC_READS_PER_IP_MINUTE": UNTHROTTLED,
        "PYTHONPATH": str(ROOT),
    }
    if not args.merge:
        env["GRIDMAP_DUPLICATE_RADIUS_M"] = "0"
    results: list[Result] = []
    try:
        with db.transaction(engine) as session:
            key = create_key(session, "reporter", "bench_public")
        extent = _extent(engine)
        tickets = _file_tickets(engine, extent, TICKETS)
        proc = _serve("api.main:app", args.port, args.workers, env, wait_s=args.start_timeout)
        try:
            base = f"http://127.0.0.1:{args.port}"
            _wrk("warm-up", f"{base}/public/reports", 2, args.connections, _report_script(extent), proc)
            before = _count(engine, "public_tickets")
            posted = _wrk(
                "gridmap POST /public/reports",
                f"{base}/public/reports",
                args.seconds,
                args.connections,
                _report_script(extent),
                proc,
            )
            results.append(posted)
            stored = _count(engine, "public_tickets") - before
            if args.peer_seconds > 0:
                staff = _script(key, extent, "/incidents")
                results.append(
                    _wrk("peer: staff POST /incidents", f"{base}/incidents", args.peer_seconds, args.connections,
                         staff, proc)
                )  # fmt: skip
            track = _wrk(
                "gridmap GET /public/reports/{ticket}",
                f"{base}/public/reports/{tickets[0][0]}",
                args.seconds,
                args.connections,
                _track_script(tickets),
                proc,
            )
            results.append(track)
        finally:
            _stop(proc)
    finally:
        engine.dispose()
        _drop(dev_url, THROWAWAY)

    merging = "the product's duplicate radius (reports may merge)" if args.merge else "duplicate radius 0 (no merging)"
    print()
    print(
        f"residents' channel on {os.cpu_count()} cores, throwaway database {THROWAWAY} with the mini test county; "
        f"uvicorn {args.workers} workers; wrk 1 thread, {args.connections} connections (closed loop), same machine; "
        f"public abuse limits raised to {UNTHROTTLED}/min (consulted, never refusing); {merging}"
    )
    for r in results:
        print("  " + r.line())
    print(f"  tickets stored during the report run: {stored} (2xx answers: {posted.requests - posted.non2xx})")
    peer = [r for r in results if r.name.startswith("peer")]
    if peer:
        print(f"  public report / staff intake throughput: {posted.rate / peer[0].rate:.2f}x")
    ok = posted.rate >= 300 and posted.p99_ms <= 100 and posted.non2xx + posted.socket_errors == 0
    print(f"  POST /public/reports: target >= 300/s with p99 <= 100 ms and no errors: {'MET' if ok else 'NOT MET'}")
    ok = track.p95_ms <= 50 and track.non2xx + track.socket_errors == 0
    print(f"  GET /public/reports/{{ticket}}: target p95 <= 50 ms and no errors: {'MET' if ok else 'NOT MET'}")


if __name__ == "__main__":
    main()
