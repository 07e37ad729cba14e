"""Does a scope cost the listing? ``GET /incidents`` with a town-scoped key against an unscoped key,
in the same run, on the same server.

    .venv/bin/python bench/bench_scope.py [--rounds 200] [--town CODE] [--workers 1]

The database is the configured one (``GRIDMAP_DATABASE_URL``), which must hold a published
boundary generation and incidents (the Jiashan demo) at the current migration. The script
starts uvicorn on a free port (rate limit off), creates three viewer keys (the whole county,
the town, and the town of the county key's choice: ``?town=``), and sends the same listing
queries for each, interleaved round by round so that load changes hit all three alike. It
prints p50/p95/mean per query and key and the ratio scoped / unscoped with the same town
filter. The keys and their accounts are deleted at the end; nothing else is written.

With ``--intake N`` it also posts N incidents with an unscoped and N with a town-scoped reporter
key (points inside the town, one request at a time, interleaved) and prints their latencies: a
scoped key's report is stored in a savepoint and checked against the scope (gis.incidents.scoped),
and this shows what that costs. Those incidents are deleted at the end.

The claim of issue 15: a town-scoped listing is no slower than the unscoped one (ratio <= 1.1
at p50 for every query; the scope is the ``town_code = ANY(..)`` predicate the ``?town=``
filter also makes).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gis.core import db  # noqa: E402
from gis.people.keys import create_key  # noqa: E402

KEY_PREFIX = "bench-scope"
# Listing queries as a command centre sends them (newest first, a page of 50).
QUERIES: dict[str, dict[str, str]] = {
    "newest": {},
    "open": {"open": "true"},
    "overdue": {"overdue": "true"},
    "category": {"category": "dispute"},
    "window_30d": {"window": "30d"},
    "page_20": {"offset": "1000"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GRIDMAP_RATE_LIMIT_PER_MINUTE": "0"}
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
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def busiest_town(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        code = conn.execute(
            sa.text(
                "SELECT town_code FROM incidents WHERE town_code IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar()
    if code is None:
        raise SystemExit("the database holds no assigned incidents: load the demo first")
    return str(code)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="requests per query and key")
    parser.add_argument("--town", help="the town of the scoped key (default: the one with most incidents)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--intake", type=int, default=0, help="also post N incidents with each reporter key")
    args = parser.parse_args()

    engine = db.engine_from_settings()
    town = args.town or busiest_town(engine)
    with engine.begin() as conn:
        keys = {
            "unscoped": create_key(conn, "viewer", f"{KEY_PREFIX}-county"),
            "unscoped+town": create_key(conn, "viewer", f"{KEY_PREFIX}-county-town"),
            "scoped": create_key(conn, "viewer", f"{KEY_PREFIX}-town", town),
        }
        reporters = {
            "unscoped": create_key(conn, "reporter", f"{KEY_PREFIX}-reporter"),
            "scoped": create_key(conn, "reporter", f"{KEY_PREFIX}-town-reporter", town),
        }
        points = conn.execute(
            sa.text(
                "SELECT ST_X(g) AS lon, ST_Y(g) AS lat FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, :n))).geom AS g "
                "FROM areas WHERE layer = 'town' AND code = :town AND gen_to IS NULL) s"
            ),
            {"n": max(args.intake, 1), "town": town},
        ).all()
    started = time.time()
    intake: dict[str, list[float]] = {}
    port = free_port()
    proc = serve(port, args.workers)
    times: dict[tuple[str, str], list[float]] = {}
    totals: dict[tuple[str, str], int] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for rnd in range(args.rounds + 5):  # the first 5 rounds warm caches and are not counted
                for name, query in QUERIES.items():
                    for kind, key in keys.items():
                        params = {**query, "limit": "50"}
                        if kind == "unscoped+town":
                            params["town"] = town
                        t0 = time.perf_counter()
                        response = client.get("/incidents", params=params, headers={"X-API-Key": key})
                        elapsed = (time.perf_counter() - t0) * 1000
                        if response.status_code != 200:
                            raise SystemExit(f"{kind} {name}: {response.status_code} {response.text[:200]}")
                        if rnd >= 5:
                            times.setdefault((name, kind), []).append(elapsed)
                            totals[(name, kind)] = response.json()["total"]
            for i in range(args.intake):
                for kind, key in reporters.items():
                    body = {"lon": points[i].lon, "lat": points[i].lat, "category": "dispute", "source": "other",
                            "external_id": f"{KEY_PREFIX}-{kind}-{started:.0f}-{i}"}  # fmt: skip
                    t0 = time.perf_counter()
                    response = client.post("/incidents", json=body, headers={"X-API-Key": key})
                    intake.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
                    if response.status_code != 201:
                        raise SystemExit(f"intake {kind}: {response.status_code} {response.text[:200]}")
    finally:
        stop(proc)
        with engine.begin() as conn:
            posted = "SELECT id FROM incidents WHERE external_id LIKE :p AND source = 'other'"
            mine = {"p": f"{KEY_PREFIX}-%"}
            conn.execute(sa.text(f"DELETE FROM incident_events WHERE incident_id IN ({posted})"), mine)  # noqa: S608
            conn.execute(sa.text(f"DELETE FROM incidents WHERE id IN ({posted})"), mine)  # noqa: S608
            conn.execute(
                sa.text(
                    "WITH k AS (DELETE FROM api_keys WHERE name LIKE :p RETURNING account_id) "
                    "DELETE FROM accounts WHERE id IN (SELECT account_id FROM k)"
                ),
                {"p": f"{KEY_PREFIX}-%"},
            )

    print(f"GET /incidents?limit=50, {args.rounds} rounds, town {town}, uvicorn {args.workers} worker(s), "
          f"{os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"{'query':<12}{'key':<15}{'total':>8}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}")
    worst = 0.0
    for name in QUERIES:
        for kind in keys:
            values = times[(name, kind)]
            p50 = percentile(values, 0.5)
            print(
                f"{name:<12}{kind:<15}{totals[(name, kind)]:>8}{p50:>9.2f}{percentile(values, 0.95):>9.2f}"
                f"{statistics.fmean(values):>9.2f}"
            )
        ratio = percentile(times[(name, "scoped")], 0.5) / percentile(times[(name, "unscoped+town")], 0.5)
        ratio_all = percentile(times[(name, "scoped")], 0.5) / percentile(times[(name, "unscoped")], 0.5)
        worst = max(worst, ratio)
        print(f"{'':<12}scoped/unscoped p50: {ratio:.2f} (same town filter), {ratio_all:.2f} (whole county)")
        if totals[(name, "scoped")] != totals[(name, "unscoped+town")]:
            print(f"{'':<12}MISMATCH: the scoped key's total differs from ?town={town}")
    print(f"worst scoped/unscoped p50 ratio (same filter): {worst:.2f} -> {'OK' if worst <= 1.1 else 'SLOWER'}")
    for kind, values in intake.items():
        print(
            f"POST /incidents, {kind} reporter: {len(values)} requests one at a time, "
            f"p50 {percentile(values, 0.5):.2f} p95 {percentile(values, 0.95):.2f} "
            f"p99 {percentile(values, 0.99):.2f} ms"
        )


if __name__ == "__main__":
    main()
