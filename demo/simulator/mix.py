"""What the simulator reports and when: the demo generator's category x source mix
(demo.jiashan.incidents: location classes boost categories, each category has its sources' mix)
and its daily and weekly rhythm per source (demo.jiashan.rhythm).

The rate of a source at a simulated instant is ``per_day x share(source) x weight(t) / mean daily
weight``, so a simulated week carries ``7 x per_day`` reports and each hour gets its share.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt

from demo.jiashan.incidents import DEFAULT_INCIDENTS, INCIDENT_CATEGORIES, INCIDENT_SOURCES, LOCATION_CLASSES
from demo.jiashan.rhythm import HOURLY, WEEKDAY, slot_weights
from gis.core.vocab import COUNTY_TZ

FloatArray = npt.NDArray[np.float64]

DEMO_PER_DAY = DEFAULT_INCIDENTS / 365.0  # the demo's year, as a day
SOURCES = tuple(INCIDENT_SOURCES)
CATEGORIES = tuple(c.code for c in INCIDENT_CATEGORIES)


def joint_mix() -> FloatArray:
    """P(category, source) of the generator: rows CATEGORIES, columns SOURCES, summing to 1."""
    share = np.array([LOCATION_CLASSES[k][0] for k in LOCATION_CLASSES])
    share = share / share.sum()
    p_cat = np.zeros(len(CATEGORIES))
    for w, (_, boost) in zip(share, LOCATION_CLASSES.values(), strict=True):
        odds = np.array([c.weight * boost.get(c.code, 1.0) for c in INCIDENT_CATEGORIES])
        p_cat += w * odds / odds.sum()
    mix = np.array([c.sources for c in INCIDENT_CATEGORIES], dtype=np.float64)
    mix = mix / mix.sum(axis=1, keepdims=True)
    return p_cat[:, None] * mix


JOINT = joint_mix()
SOURCE_SHARE = JOINT.sum(axis=0)
# The mean weight of a day (weekday x hour; the season averages out to 1) of each source.
_DAY_WEIGHT = np.array([np.mean(WEEKDAY[s]) * np.sum(HOURLY[s]) for s in SOURCES])


def expected_reports(per_day: float, start: dt.datetime, end: dt.datetime) -> FloatArray:
    """The expected number of reports of each source (SOURCES order) in the simulated window
    ``(start, end]``, at ``per_day`` reports a day on average."""
    start_s, end_s = int(start.timestamp()), int(end.timestamp())
    if end_s <= start_s:
        return np.zeros(len(SOURCES))
    weights = np.array([slot_weights(s, start_s, end_s, COUNTY_TZ)[2].sum() for s in SOURCES])
    return per_day * SOURCE_SHARE * weights / _DAY_WEIGHT


def draw_reports(
    per_day: float, start: dt.datetime, end: dt.datetime, rng: np.random.Generator
) -> list[tuple[str, str]]:
    """(source, category) of each report arriving in the simulated window: Poisson counts per
    source at the rhythm's rate, each report's category drawn from the source's column of the mix."""
    counts = rng.poisson(expected_reports(per_day, start, end))
    out: list[tuple[str, str]] = []
    for s, n in enumerate(counts):
        if n:
            column = JOINT[:, s] / JOINT[:, s].sum()
            out += [(SOURCES[s], CATEGORIES[c]) for c in rng.choice(len(CATEGORIES), int(n), p=column)]
    return out
