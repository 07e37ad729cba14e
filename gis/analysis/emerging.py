"""Emerging hot spots (新增/加剧/持续/减弱热点): how each unit's Gi* changed over the last K weeks.

For each of the K weeks (county-time Monday to Monday, ending with the week containing ``date``,
default the last complete week) Gi* runs as in ``gis.analysis.hotspots`` (same filter, measure,
weights, FDR). A unit is *hot in a week* when its class there is hot at 90% or more
(``hot_90``/``hot_95``/``hot_99``, after FDR). The trend is the Mann-Kendall test (``pymannkendall
.original_test``, with its ties correction, two-sided, alpha 0.05) on the unit's K weekly Gi*
z-scores; a week where Gi* is undefined (every unit equal, e.g. none selected) counts as z = 0.

The rule, with H = the number of hot weeks and "final" = hot in the last week:

* ``none``: H = 0.
* ``new``: final, and hot in no earlier week (H = 1).
* ``intensifying``: final, H >= ceil(0.9 K), and the trend is increasing.
* ``diminishing``: final, H >= ceil(0.9 K), and the trend is decreasing.
* ``persistent``: final, H >= ceil(0.9 K), and no significant trend.
* ``sporadic``: every other unit that was hot in some week (on and off, or hot earlier but not now).

This follows the names of ArcGIS's Emerging Hot Spot Analysis for the hot side, reduced to these
classes; cold spots are not classified here (``/analysis/hotspots`` shows them per period).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gis.analysis.gistar import DEFAULT_PERMUTATIONS, PValue, gi_star, is_hot
from gis.analysis.hotspots import check_filter, check_options, measured, weekly_counts
from gis.analysis.units import AnalysisError, check_layer, load_units, period_window
from gis.core.vocab import COUNTY_TZ, EMERGING_CLASSES
from gis.incidents.filter import IncidentFilter
from gis.people.scope import WHOLE_COUNTY
from gis.spatial.areas import Conn

MIN_WEEKS, MAX_WEEKS, DEFAULT_WEEKS = 4, 52, 8
TREND_ALPHA = 0.05
PERSISTENT_SHARE = 0.9
# Permutation draws one request may ask for (weeks x permutations x units): 8 weeks of the demo's
# 5,489 micro-grids at 9,999 permutations, ~20 s of CPU. More answers 422 (use fewer weeks or
# permutations, or p_value=analytic): one request must not hold a worker for minutes.
MAX_DRAWS = 8 * 9999 * 5500


def mann_kendall(z: Sequence[float]) -> tuple[str, float]:
    """(``increasing`` | ``decreasing`` | ``no trend``, p) of the Mann-Kendall test on ``z``."""
    import pymannkendall as mk

    series = np.nan_to_num(np.asarray(z, dtype=float), nan=0.0)
    if np.ptp(series) == 0:
        return "no trend", 1.0  # a flat series has no trend (and pymannkendall would divide by zero)
    result = mk.original_test(series, alpha=TREND_ALPHA)
    return str(result.trend), float(result.p)


def emerging_class(hot: Sequence[bool], z: Sequence[float]) -> tuple[str, str, float]:
    """(class, trend, trend p) of one unit from its weekly hot flags and z-scores (oldest first)."""
    if len(hot) != len(z) or not hot:
        raise ValueError("hot and z must be non-empty and of the same length")
    trend, p = mann_kendall(z)
    count = sum(bool(h) for h in hot)
    if count == 0:
        return "none", trend, p
    final = bool(hot[-1])
    if final and count == 1:
        return "new", trend, p
    if final and count >= math.ceil(PERSISTENT_SHARE * len(hot)):
        if trend == "increasing":
            return "intensifying", trend, p
        if trend == "decreasing":
            return "diminishing", trend, p
        return "persistent", trend, p
    return "sporadic", trend, p


def emerging(
    conn: Conn,
    layer: str,
    flt: IncidentFilter,
    *,
    day: dt.date | None = None,
    weeks: int = DEFAULT_WEEKS,
    measure: str = "count",
    p_value: PValue = "permutation",
    permutations: int = DEFAULT_PERMUTATIONS,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Each unit's emerging class over the ``weeks`` weeks ending with the week containing ``day``."""
    check_layer(layer)
    check_options(measure, p_value, permutations)
    check_filter(flt)
    if not MIN_WEEKS <= weeks <= MAX_WEEKS:
        raise AnalysisError("weeks", weeks, f"weeks: {weeks} is not in {MIN_WEEKS}..{MAX_WEEKS}")
    last_start, end = period_window(day, "week", now)
    start = last_start - dt.timedelta(days=7 * (weeks - 1))
    units = load_units(conn, layer)
    draws = weeks * permutations * len(units.codes) if p_value == "permutation" else 0
    if draws > MAX_DRAWS:
        raise AnalysisError(
            "permutations",
            permutations,
            f"permutations: {weeks} weeks x {permutations} permutations x {len(units.codes)} units is more than "
            f"{MAX_DRAWS:,} draws; ask for fewer weeks or permutations, or p_value=analytic",
        )
    county = flt.replace(scope=WHOLE_COUNTY)
    counts = weekly_counts(conn, units, county, start, weeks)
    z = np.zeros_like(counts)
    hot = np.zeros(counts.shape, dtype=bool)
    for k in range(weeks):
        values = measured(counts[k], units.households, measure)
        gi = gi_star(values, units.w, p_value=p_value, permutations=permutations)
        z[k] = gi.z
        hot[k] = [is_hot(c) for c in gi.classes]
    rows = []
    summary = dict.fromkeys(EMERGING_CLASSES, 0)
    for i, code in enumerate(units.codes):
        if not flt.scope.contains(code):
            continue
        label, trend, trend_p = emerging_class(list(hot[:, i]), list(z[:, i]))
        summary[label] += 1
        rows.append(
            {
                "code": code,
                "name": units.names[i],
                "parent_code": units.parents[i],
                "class": label,
                "trend": trend,
                "trend_p": round(trend_p, 6),
                "hot_weeks": int(hot[:, i].sum()),
                "counts": [int(c) for c in counts[:, i]],
                "gi_z": [None if not np.isfinite(v) else round(float(v), 4) for v in z[:, i]],
            }
        )
    return {
        "layer": layer,
        "weeks": weeks,
        "start": start.astimezone(COUNTY_TZ).isoformat(),
        "end": end.astimezone(COUNTY_TZ).isoformat(),
        "generation": units.generation,
        "measure": measure,
        "p_value": p_value,
        "classes": summary,
        "rows": rows,
    }
