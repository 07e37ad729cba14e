"""The units a hot-spot analysis runs over: a layer's polygons in one generation, their households
and their queen-contiguity weights (``libpysal.weights.Queen``), and the report periods.

The weights depend only on the polygons, which a published generation never changes: they are
built once per (database, layer, generation) and kept (``WeightsCache``); a publish makes a new
generation and so a new entry. Building them takes ~0.2 s for the demo's 760 grids and ~0.5 s for
its 5,489 micro-grids.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from threading import Lock
from typing import TYPE_CHECKING, Literal

import numpy as np
from sqlalchemy.orm import Session

from gis.analysis.periods import period_of, period_start
from gis.core.vocab import ANALYSIS_LAYERS, COUNTY_TZ
from gis.spatial.areas import Conn, current_generation, load_layer

if TYPE_CHECKING:
    from libpysal.weights import W

Layer = Literal["grid", "micro_grid"]
Period = Literal["week", "month"]
LAYERS: tuple[str, ...] = ANALYSIS_LAYERS
PERIODS: tuple[str, ...] = ("week", "month")
MAX_CACHED = 8


class AnalysisError(ValueError):
    """An analysis cannot run as asked; ``field`` and ``value`` name the cause (the API answers 422)."""

    def __init__(self, field: str, value: object, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.message = message


@dataclass(frozen=True)
class Units:
    """A layer's units in one generation, sorted by code; ``w`` is in the same order."""

    layer: str
    generation: int
    codes: tuple[str, ...]
    names: tuple[str, ...]
    parents: tuple[str | None, ...]
    households: np.ndarray  # float, NaN where unknown
    w: W

    @property
    def index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.codes)}


class WeightsCache:
    """Units with their weights by (database, layer, generation); cleared when full."""

    def __init__(self, max_entries: int = MAX_CACHED) -> None:
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str, int], Units] = {}
        self._lock = Lock()

    def get(self, key: tuple[str, str, int]) -> Units | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: tuple[str, str, int], value: Units) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = value


WEIGHTS = WeightsCache()


def _db_key(conn: Conn) -> str:
    engine = conn.get_bind() if isinstance(conn, Session) else conn.engine
    return engine.engine.url.render_as_string(hide_password=True)


def check_layer(layer: str) -> str:
    if layer not in LAYERS:
        raise AnalysisError("layer", layer, f"layer: {layer!r} is not one of {', '.join(LAYERS)}")
    return layer


def load_units(conn: Conn, layer: str, generation: int | None = None, cache: WeightsCache | None = WEIGHTS) -> Units:
    """The units of ``layer`` in ``generation`` (default: the one in force) with queen weights."""
    from libpysal.weights import Queen

    check_layer(layer)
    gen = generation if generation is not None else current_generation(conn)
    if gen is None:
        raise AnalysisError("layer", layer, "no boundary generation is published yet")
    key = (_db_key(conn), layer, int(gen))
    hit = cache.get(key) if cache is not None else None
    if hit is not None:
        return hit
    frame = load_layer(conn, layer, gen)
    if frame.empty:
        raise AnalysisError("layer", layer, f"layer {layer!r} has no units in generation {gen}")
    frame = frame.set_index("code", drop=False)
    with warnings.catch_warnings():
        # libpysal warns about islands and disconnected components; both are legitimate here.
        warnings.simplefilter("ignore")
        w = Queen.from_dataframe(frame, use_index=True)
    households = np.array([np.nan if h is None else float(h) for h in frame["households"]], dtype=float)
    units = Units(
        layer=layer,
        generation=int(gen),
        codes=tuple(frame["code"]),
        names=tuple(frame["name"]),
        parents=tuple(frame["parent_code"]),
        households=households,
        w=w,
    )
    if cache is not None:
        cache.put(key, units)
    return units


# --- periods (county time) --------------------------------------------------------------------


def period_window(day: dt.date | None, period: str, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the period containing ``day``; without a day, the last complete period
    before ``now`` (a running week or month would look like a drop in every unit)."""
    if period not in PERIODS:
        raise AnalysisError("period", period, f"period: {period!r} is not one of {', '.join(PERIODS)}")
    if day is None:
        today = (now or dt.datetime.now(dt.UTC)).astimezone(COUNTY_TZ).date()
        day = period_start(today, period) - dt.timedelta(days=1)
    return period_of(day, period)
