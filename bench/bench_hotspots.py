"""Benchmark of the hot-spot analysis (gis.analysis) on the demo county, in process.

    .venv/bin/python bench/bench_hotspots.py                # the last 8 complete weeks
    .venv/bin/python bench/bench_hotspots.py --weeks 4 --json

Reads the database of ``GRIDMAP_DATABASE_URL`` (the Jiashan demo: ~760 grids, ~5,500
micro-grids, a year of incidents) and writes nothing (one transaction, rolled back). Reports, per
layer, the wall time of one county Gi* for a week as ``/analysis/hotspots`` computes it (the
incident count query, Gi* with 9,999 permutations, FDR and classes; the queen weights cached
after the first call, whose build is reported apart), the same with the analytic p-value, the
8-week emerging analysis of grids and the 30-day repeat locations.

Peers in the same run, on the same weeks: the command centre's heat-map data for the week
(``gis.outputs.heat.heat_data``, what the heat layer costs) and a naive per-grid count
(``GROUP BY grid_code``, the floor any per-grid figure pays).

Targets (issue 18): weekly Gi* for 760 grids <= 2 s, for ~5,500 micro-grids <= 5 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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

from gis.analysis.emerging import emerging  # noqa: E402
from gis.analysis.gistar import gi_star  # noqa: E402
from gis.analysis.hotspots import hotspots, unit_counts  # noqa: E402
from gis.analysis.repeats import repeat_locations  # noqa: E402
from gis.analysis.units import WeightsCache, load_units, period_window  # noqa: E402
from gis.core import db  # noqa: E402
from gis.incidents.filter import IncidentFilter  # noqa: E402
from gis.outputs.heat import heat_data  # noqa: E402

TARGETS = {"grid": 2.0, "micro_grid": 5.0}
DEFAULT_URL = "postgresql+psycopg://postgres@/gridmap?host=/work/main/var/pg/run&port=55432"


CPU: list[float] = []  # process CPU seconds of each timed call: the machine may be shared


def _timed(func: Callable[[], Any]) -> tuple[float, Any]:
    start, cpu = time.perf_counter(), time.process_time()
    value = func()
    CPU.append(time.process_time() - cpu)
    return time.perf_counter() - start, value


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {"median_s": round(statistics.median(ordered), 3), "p90_s": round(p90, 3), "max_s": round(ordered[-1], 3)}


def run(url: str, weeks: int) -> dict[str, Any]:
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    now = dt.datetime.now(dt.UTC)
    last_monday = period_window(None, "week", now)[0].date()
    days = [last_monday - dt.timedelta(days=7 * k) for k in range(weeks)]
    out: dict[str, Any] = {"weeks": [d.isoformat() for d in days], "layers": {}, "peers": {}}
    with engine.connect() as conn:
        try:
            out["incidents_total"] = int(conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one())
            for layer in ("grid", "micro_grid"):
                build_s, units = _timed(lambda layer=layer: load_units(conn, layer, cache=WeightsCache()))
                load_units(conn, layer)  # warm the shared cache, as a running API has it
                perm, perm_cpu, analytic, counted, hot, fetch, gi = [], [], [], [], [], [], []
                for day in days:
                    # The parts of one call: the count query, and Gi* with 9,999 permutations alone.
                    week_start, week_end = period_window(day, "week")
                    flt = IncidentFilter(start=week_start, end=week_end)
                    t, values = _timed(lambda flt=flt, units=units: unit_counts(conn, units, flt))
                    fetch.append(t)
                    gi.append(_timed(lambda values=values, units=units: gi_star(values, units.w))[0])
                    t, result = _timed(lambda day=day, layer=layer: hotspots(conn, layer, IncidentFilter(), day=day))
                    perm.append(t)
                    perm_cpu.append(CPU[-1])
                    counted.append(result["incidents"])
                    hot.append(sum(v for k, v in result["classes"].items() if k.startswith("hot")))
                    t, _ = _timed(
                        lambda day=day, layer=layer: hotspots(
                            conn, layer, IncidentFilter(), day=day, p_value="analytic"
                        )
                    )
                    analytic.append(t)
                out["layers"][layer] = {
                    "units": len(units.codes),
                    "weights_build_s": round(build_s, 3),
                    "gi_permutation_9999": _summary(perm),
                    "gi_permutation_9999_cpu": _summary(perm_cpu),
                    "gi_analytic": _summary(analytic),
                    "count_query": _summary(fetch),
                    "gi_star_alone": _summary(gi),
                    "incidents_per_week": int(statistics.median(counted)),
                    "hot_units_per_week": int(statistics.median(hot)),
                    "target_s": TARGETS[layer],
                    "meets_target": statistics.median(perm) <= TARGETS[layer],
                }
            t, _ = _timed(lambda: emerging(conn, "grid", IncidentFilter(), day=days[0], weeks=8))
            out["emerging_grid_8_weeks_s"] = round(t, 3)
            out["emerging_grid_8_weeks_cpu_s"] = round(CPU[-1], 3)
            t, rep = _timed(lambda: repeat_locations(conn, IncidentFilter(end=now)))
            out["repeats_30_days"] = {"s": round(t, 3), "locations": len(rep["locations"])}
            heat, naive = [], []
            for day in days:
                start, end = period_window(day, "week")
                flt = IncidentFilter(start=start, end=end)
                heat.append(_timed(lambda flt=flt: heat_data(conn, flt, 50_000))[0])
                where, params = flt.where("i")
                sql = sa.text(f"SELECT grid_code, count(*) FROM incidents i WHERE {where} GROUP BY 1")  # noqa: S608
                naive.append(_timed(lambda sql=sql, params=params: conn.execute(sql, params).all())[0])
            out["peers"] = {"heat_map_data_week": _summary(heat), "naive_grid_count_week": _summary(naive)}
        finally:
            conn.rollback()
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weeks", type=int, default=8, help="complete weeks to analyse, newest first")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    url = os.environ.get("GRIDMAP_DATABASE_URL", DEFAULT_URL)
    figures = run(url, args.weeks)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"incidents in the database: {figures['incidents_total']:,}; weeks: {', '.join(figures['weeks'])}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    for layer, f in figures["layers"].items():
        perm, ana, cpu = f["gi_permutation_9999"], f["gi_analytic"], f["gi_permutation_9999_cpu"]
        print(
            f"{layer:10} {f['units']:5} units  weights {f['weights_build_s']:.2f} s (once per generation)  "
            f"Gi* 9999 perms median {perm['median_s']:.2f} s p90 {perm['p90_s']:.2f} s (CPU {cpu['median_s']:.2f} s)  "
            f"analytic median {ana['median_s']:.2f} s  target {f['target_s']:.0f} s: "
            f"{'met' if f['meets_target'] else 'MISSED'}  ({f['incidents_per_week']:,} incidents/week, "
            f"{f['hot_units_per_week']} hot units)"
        )
        print(
            f"{'':10} parts: count query median {f['count_query']['median_s']:.3f} s, "
            f"Gi* 9999 alone median {f['gi_star_alone']['median_s']:.2f} s"
        )
    print(
        f"emerging, grids, 8 weeks: {figures['emerging_grid_8_weeks_s']:.2f} s "
        f"(CPU {figures['emerging_grid_8_weeks_cpu_s']:.2f} s)"
    )
    rep = figures["repeats_30_days"]
    print(f"repeat locations, 30 days: {rep['s']:.2f} s ({rep['locations']} locations listed, at most 500)")
    for name, s in figures["peers"].items():
        print(f"peer {name}: median {s['median_s']:.3f} s, p90 {s['p90_s']:.3f} s")


if __name__ == "__main__":
    main()
