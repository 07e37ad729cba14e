"""Hot spots (热点): where incidents are more (or fewer) than the county's level would give, per
grid or micro-grid and week or month, by Getis-Ord Gi* (``gis.analysis.gistar``) over queen
contiguity (``gis.analysis.units``).

Counts select incidents with the one ``IncidentFilter`` (category, source, status, risk group,
areas, ...) and the period's report window; ``rate`` is incidents per 100 households of the unit
(``areas.households``; a unit without households has rate 0 and ``households`` null).

Scope: the statistic is computed county-wide, over every unit of the layer and every incident the
filter selects whatever the caller's scope: a Gi* over a town alone would change its neighbours and
its mean, so the same unit would be hot for one reader and not for another. A scoped caller then
gets only the units inside its scope (``Scope.contains``); it sees its own units' counts and
classes, never the counts of units outside. Police scopes (station, beat) contain no grid.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import sqlalchemy as sa

from gis.analysis.gistar import CLASSES, DEFAULT_PERMUTATIONS, P_VALUES, GiResult, PValue, gi_star
from gis.analysis.units import AnalysisError, Units, check_layer, load_units, period_window
from gis.core.vocab import COUNTY_TZ
from gis.incidents.filter import IncidentFilter
from gis.people.scope import WHOLE_COUNTY, Scope
from gis.spatial.areas import Conn

MEASURES: tuple[str, ...] = ("count", "rate")
MAX_PERMUTATIONS = 9999
MIN_PERMUTATIONS = 99


def check_options(measure: str, p_value: str, permutations: int) -> None:
    if measure not in MEASURES:
        raise AnalysisError("measure", measure, f"measure: {measure!r} is not one of {', '.join(MEASURES)}")
    if p_value not in P_VALUES:
        raise AnalysisError("p_value", p_value, f"p_value: {p_value!r} is not one of {', '.join(P_VALUES)}")
    if not MIN_PERMUTATIONS <= permutations <= MAX_PERMUTATIONS:
        raise AnalysisError(
            "permutations",
            permutations,
            f"permutations: {permutations} is not in {MIN_PERMUTATIONS}..{MAX_PERMUTATIONS}",
        )


def check_filter(flt: IncidentFilter) -> None:
    """The analysis sets the report window itself (``date`` and ``period``)."""
    if flt.start is not None or flt.end is not None or flt.window:
        field = "window" if flt.window else "start" if flt.start is not None else "end"
        value = flt.window or flt.start or flt.end
        raise AnalysisError(
            field, str(value), f"{field}: the analysis window is chosen by `date` and `period`, not `{field}`"
        )


def unit_counts(conn: Conn, units: Units, flt: IncidentFilter) -> np.ndarray:
    """Incidents per unit (in ``units`` order) selected by ``flt`` (its scope included)."""
    column = f"{check_layer(units.layer)}_code"
    where, params = flt.where("i")
    rows = conn.execute(
        sa.text(
            f"SELECT {column} AS code, count(*) AS n FROM incidents i "  # noqa: S608
            f"WHERE {where} AND {column} IS NOT NULL GROUP BY 1"
        ),
        params,
    ).all()
    out = np.zeros(len(units.codes), dtype=float)
    index = units.index
    for code, n in rows:
        i = index.get(code)
        if i is not None:  # assigned under an older generation to a unit that no longer exists
            out[i] = n
    return out


def weekly_counts(conn: Conn, units: Units, flt: IncidentFilter, start: dt.datetime, weeks: int) -> np.ndarray:
    """Incidents per week (rows, from ``start``, county-time Mondays) and unit (columns)."""
    column = f"{check_layer(units.layer)}_code"
    end = start + dt.timedelta(days=7 * weeks)
    where, params = flt.replace(start=start, end=end, window=None).where("i")
    rows = conn.execute(
        sa.text(
            f"SELECT {column} AS code, "  # noqa: S608
            f"floor(extract(epoch FROM (i.reported_at - :t0)) / 604800)::int AS k, count(*) AS n "
            f"FROM incidents i WHERE {where} AND {column} IS NOT NULL GROUP BY 1, 2"
        ),
        {**params, "t0": start},
    ).all()
    out = np.zeros((weeks, len(units.codes)), dtype=float)
    index = units.index
    for code, k, n in rows:
        i = index.get(code)
        if i is not None and 0 <= k < weeks:
            out[k, i] = n
    return out


def measured(counts: np.ndarray, households: np.ndarray, measure: str) -> np.ndarray:
    """The analysed value: the count, or incidents per 100 households (0 where households are unknown or 0)."""
    if measure == "count":
        return counts
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(np.nan_to_num(households) > 0, counts * 100.0 / households, 0.0)
    return rate


def _rows(units: Units, counts: np.ndarray, values: np.ndarray, gi: GiResult, scope: Scope) -> list[dict[str, Any]]:
    rows = []
    for i, code in enumerate(units.codes):
        if not scope.contains(code):
            continue
        hh = units.households[i]
        z = gi.z[i]
        rows.append(
            {
                "code": code,
                "name": units.names[i],
                "parent_code": units.parents[i],
                "households": None if np.isnan(hh) else int(hh),
                "count": int(counts[i]),
                "rate": None if np.isnan(hh) or hh <= 0 else round(float(counts[i] * 100.0 / hh), 4),
                "value": round(float(values[i]), 6),
                "gi_z": None if not np.isfinite(z) else round(float(z), 4),
                "p": round(float(gi.p[i]), 6),
                "class": gi.classes[i],
            }
        )
    return rows


def hotspots(
    conn: Conn,
    layer: str,
    flt: IncidentFilter,
    *,
    period: str = "week",
    day: dt.date | None = None,
    measure: str = "count",
    p_value: PValue = "permutation",
    permutations: int = DEFAULT_PERMUTATIONS,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Gi* hot spots of the incidents ``flt`` selects in the period containing ``day`` (default:
    the last complete one), computed county-wide and returned for the units in ``flt.scope``."""
    check_layer(layer)
    check_options(measure, p_value, permutations)
    check_filter(flt)
    start, end = period_window(day, period, now)
    units = load_units(conn, layer)
    county = flt.replace(scope=WHOLE_COUNTY, start=start, end=end, window=None)
    counts = unit_counts(conn, units, county)
    values = measured(counts, units.households, measure)
    gi = gi_star(values, units.w, p_value=p_value, permutations=permutations)
    rows = _rows(units, counts, values, gi, flt.scope)
    summary = dict.fromkeys(CLASSES, 0)
    for r in rows:
        summary[r["class"]] += 1
    return {
        "layer": layer,
        "period": period,
        "start": start.astimezone(COUNTY_TZ).isoformat(),
        "end": end.astimezone(COUNTY_TZ).isoformat(),
        "generation": units.generation,
        "measure": measure,
        "p_value": p_value,
        "permutations": gi.permutations,
        "units": len(units.codes),
        "incidents": int(counts.sum()),
        "fdr_cutoffs": {str(level): cut for level, cut in gi.cutoffs.items()},
        "classes": summary,
        "rows": rows,
    }
