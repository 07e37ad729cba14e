"""Benchmark of the county KPIs (``GET /kpis``, gis.analysis.kpis) on the demo county, in process.

    .venv/bin/python bench/bench_kpis.py                      # the demo year, by grid, 5 rounds
    .venv/bin/python bench/bench_kpis.py --group town --period month --rounds 9
    .venv/bin/python bench/bench_kpis.py --topup 1000000      # a throwaway copy topped up to 1M

Reads the database of ``GRIDMAP_DATABASE_URL`` (the Jiashan demo: ~760 grids, ~280,000 incidents
in its current year) and writes nothing to it. Each round runs, interleaved so that a shared
machine's load falls on all alike:

- ``kpis``: ``compute_kpis`` as the API calls it (county scope, the period's three windows, the
  query and the Python that shapes the answer);
- ``old_query``: the query before issue 18's rework (percentile_cont in a GroupAggregate over
  GROUPING SETS), executed and fetched, kept here as the peer it replaced;
- ``plain_count``: ``SELECT grid_code, count(*) ... GROUP BY`` over the same period, the floor any
  per-group figure pays.

Each figure is the wall time (median and min over the rounds), the database backend's CPU time
(median, from /proc when the server runs on this machine) and this process's CPU time (median: the
fetching and shaping), with the load average.

``--topup N`` copies the database (CREATE DATABASE ... TEMPLATE, so nobody may be connected to
it), tops its incidents up to N with a bulk COPY of jittered copies of the existing ones, gives a
third of the closed incidents a callback and 2 % of them a reopening (the demo has none, a county
does), runs the same rounds there and drops the copy (``--keep`` keeps it for a second run).

Targets (issue 18): the year by grid <= 300 ms on the demo year, <= 1 s with 1M incidents.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from bench.kpis_peers import drop_copy, old_kpi_sql, topped_up_copy  # noqa: E402
from gis.analysis.kpis import comparison_windows, compute_kpis, period_window  # noqa: E402
from gis.core import db  # noqa: E402
from gis.core.vocab import COUNTY_TZ  # noqa: E402
from gis.incidents.filter import IncidentFilter  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@/gridmap?host=/work/main/var/pg/run&port=55432"
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _backend_cpu(pid: int) -> float | None:
    """User + system seconds of the server process ``pid``; None when it is not ours to read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def run(url: str, period: str, day: dt.date | None, group: str, rounds: int) -> dict[str, Any]:
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        try:
            pid = int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
            if day is None:
                latest = conn.execute(sa.text("SELECT max(reported_at) FROM incidents")).scalar_one()
                day = latest.astimezone(COUNTY_TZ).date()
            start, end = period_window(period, day)
            out["incidents_total"] = int(conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one())
            in_period = "SELECT count(*) FROM incidents WHERE reported_at >= :s AND reported_at < :e"
            out["incidents_in_period"] = int(conn.execute(sa.text(in_period), {"s": start, "e": end}).scalar_one())
            out["period"] = f"{period} {start.date()}..{end.date()} by {group}"
            params: dict[str, Any] = {}
            for name, (ws, we) in comparison_windows(start, end).items():
                params[f"s_{name}"], params[f"e_{name}"] = ws, we
            old_sql = sa.text(old_kpi_sql(group))
            plain_key = "NULL" if group == "county" else f"{group}_code"
            plain = sa.text(
                f"SELECT {plain_key}, count(*) FROM incidents WHERE reported_at >= :s AND reported_at < :e GROUP BY 1"  # noqa: S608
            )
            cases: dict[str, Callable[[], Any]] = {
                "kpis": lambda: compute_kpis(conn, IncidentFilter(), start, end, group_by=group),
                "old_query": lambda: conn.execute(old_sql, params).all(),
                "plain_count": lambda: conn.execute(plain, {"s": start, "e": end}).all(),
            }
            walls: dict[str, list[float]] = {name: [] for name in cases}
            cpus: dict[str, list[float]] = {name: [] for name in cases}
            owns: dict[str, list[float]] = {name: [] for name in cases}
            loads = []
            for _ in range(rounds):
                for name, case in cases.items():
                    cpu0, t0, own0 = _backend_cpu(pid), time.perf_counter(), time.process_time()
                    case()
                    walls[name].append(time.perf_counter() - t0)
                    owns[name].append(time.process_time() - own0)
                    cpu1 = _backend_cpu(pid)
                    if cpu0 is not None and cpu1 is not None:
                        cpus[name].append(cpu1 - cpu0)
                loads.append(os.getloadavg()[0])
            out["cases"] = {
                name: {
                    "median_ms": round(1000 * statistics.median(walls[name])),
                    "min_ms": round(1000 * min(walls[name])),
                    "backend_cpu_ms": round(1000 * statistics.median(cpus[name])) if cpus[name] else None,
                    "python_cpu_ms": round(1000 * statistics.median(owns[name])),
                }
                for name in cases
            }
            out["load_1min"] = (round(min(loads), 2), round(max(loads), 2))
        finally:
            conn.rollback()
    engine.dispose()
    return out


def _print(figures: dict[str, Any]) -> None:
    print(
        f"{figures['period']}: {figures['incidents_in_period']:,} incidents in the period, "
        f"{figures['incidents_total']:,} in the database; load average {figures['load_1min'][0]}-"
        f"{figures['load_1min'][1]}"
    )
    for name, f in figures["cases"].items():
        cpu = f"{f['backend_cpu_ms']} ms" if f["backend_cpu_ms"] is not None else "n/a"
        print(
            f"  {name:12} median {f['median_ms']:6} ms  min {f['min_ms']:6} ms  database CPU {cpu}  "
            f"Python CPU {f['python_cpu_ms']} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--period", default="year", choices=("day", "week", "month", "year"))
    parser.add_argument("--date", type=dt.date.fromisoformat, help="a day of the period (default: the latest report)")
    parser.add_argument("--group", default="grid", help="group_by of /kpis (default grid)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--topup", type=int, help="also run on a throwaway copy topped up to this many incidents")
    parser.add_argument("--keep", action="store_true", help="keep the topped-up copy (and reuse it next time)")
    args = parser.parse_args()
    url = os.environ.get("GRIDMAP_DATABASE_URL", DEFAULT_URL)
    _print(run(url, args.period, args.date, args.group, args.rounds))
    if args.topup:
        started = time.perf_counter()
        copy_url = topped_up_copy(url, args.topup)
        print(f"topped-up copy ready in {time.perf_counter() - started:.0f} s")
        try:
            _print(run(copy_url, args.period, args.date, args.group, args.rounds))
        finally:
            if not args.keep:
                drop_copy(url)


if __name__ == "__main__":
    main()
