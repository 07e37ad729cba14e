"""When incidents are reported: a weekly and daily rhythm per source, and a slight summer peak.

Times are drawn by hour slot over any window ``(start, end]``, so a year that ends at an
arbitrary instant (the moment the demo is seeded) keeps the rhythm right up to its last hour,
instead of piling the rest of the last day onto the end instant.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
SLOT_S = 3600

# Relative volume by weekday (Mon..Sun) and by hour (0..23) for each source.
WEEKDAY: dict[str, tuple[float, ...]] = {
    "grid_patrol": (1.0, 1.0, 1.0, 1.0, 1.0, 0.45, 0.35),
    "resident_app": (1.0, 1.0, 1.0, 1.0, 1.0, 0.85, 0.85),
    "hotline_110": (0.95, 0.95, 0.95, 0.95, 1.05, 1.1, 1.1),
    "hotline_12345": (1.0, 1.0, 1.0, 1.0, 1.0, 0.6, 0.55),
}
HOURLY: dict[str, tuple[float, ...]] = {
    "grid_patrol": (
        0,
        0,
        0,
        0,
        0,
        0,
        0.1,
        0.5,
        1.6,
        2.0,
        2.0,
        1.6,
        0.6,
        1.2,
        1.9,
        1.9,
        1.6,
        0.9,
        0.3,
        0.2,
        0.1,
        0.05,
        0,
        0,
    ),
    "resident_app": (
        0.2,
        0.1,
        0.05,
        0.05,
        0.05,
        0.1,
        0.3,
        0.7,
        1.0,
        1.1,
        1.1,
        1.0,
        0.9,
        0.9,
        1.0,
        1.0,
        1.0,
        1.1,
        1.3,
        1.5,
        1.5,
        1.2,
        0.8,
        0.4,
    ),
    "hotline_110": (
        0.7,
        0.5,
        0.4,
        0.3,
        0.3,
        0.3,
        0.5,
        0.8,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.1,
        1.2,
        1.3,
        1.4,
        1.4,
        1.3,
        1.1,
        0.9,
    ),
    "hotline_12345": (
        0.1,
        0.05,
        0.05,
        0.05,
        0.05,
        0.1,
        0.3,
        0.8,
        1.6,
        1.8,
        1.8,
        1.4,
        0.9,
        1.3,
        1.7,
        1.7,
        1.5,
        1.2,
        0.8,
        0.6,
        0.5,
        0.4,
        0.3,
        0.2,
    ),
}


def slot_weights(source: str, start_s: int, end_s: int, tz: dt.tzinfo | str) -> tuple[IntArray, IntArray, FloatArray]:
    """The hour slots covering ``(start_s, end_s]`` (epoch seconds), clipped to it, and the weight of
    each: weekday x season x hour of day (local time in ``tz``) x the share of the hour covered."""
    if end_s <= start_s:
        raise ValueError(f"empty window: end {end_s} is not after start {start_s}")
    first = start_s - start_s % SLOT_S  # whole hours in UTC are whole hours in China time too
    slots = np.arange(first, end_s, SLOT_S, dtype=np.int64)
    local = pd.to_datetime(slots, unit="s", utc=True).tz_convert(tz)
    weekday = np.array(WEEKDAY[source])[local.day_of_week]
    hourly = np.array(HOURLY[source])[local.hour]
    # Slightly busier in summer (heat, night markets, fire risk).
    season = 1.0 + 0.12 * np.cos(2 * np.pi * (local.day_of_year.to_numpy() - 200) / 365.25)
    lo = np.maximum(slots, start_s)
    hi = np.minimum(slots + SLOT_S, end_s)
    return lo, hi, weekday * hourly * season * (hi - lo) / SLOT_S


def draw_times(
    source: str, count: int, start_s: int, end_s: int, tz: dt.tzinfo | str, rng: np.random.Generator
) -> IntArray:
    """``count`` report times (epoch seconds) in ``(start_s, end_s]`` following ``source``'s rhythm."""
    lo, hi, w = slot_weights(source, start_s, end_s, tz)
    total = w.sum()
    if count and total <= 0:
        raise ValueError(f"{source} reports nothing between {start_s} and {end_s}")
    slot = rng.choice(len(w), count, p=w / total)
    # Seconds counted back from the slot's end keep every time inside (start, end].
    back = np.floor(rng.random(count) * (hi[slot] - lo[slot])).astype(np.int64)
    return hi[slot] - back
