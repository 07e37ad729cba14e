"""Redistricting proposals: grids built from micro-grids, per village, with PySAL ``spopt``.

Why max-p: the rule a planner must meet is a household FLOOR and CEILING per grid (300-500 by
default), not a given number of grids. ``spopt.region.MaxPHeuristic`` finds the largest number of
contiguous regions that each reach a threshold, which is exactly the floor; Skater and AZP need
the number of regions up front and treat the floor only as a soft bound. Its dissimilarity is
computed on the micro-grids' centroids (metres), so the regions it prefers are spatially tight:
compactness. Max-p knows no ceiling, so a repair pass follows: a unit above the ceiling gives
boundary micro-grids to neighbours that have room, or is cut again, alone or with a neighbour
(gis.analysis.redistrict_repair); then a balancing
pass moves boundary micro-grids between neighbouring units while that narrows the spread of the
balanced figure (households, or the last 90 days' incidents: one worker per grid, so the
workload), keeping every unit in the band and contiguous (queen contiguity, libpysal); how much
rougher an edge such a move may make is the planner's trade-off between evenness and compactness
(``Params.edge_slack``). Before balancing, a compacting pass moves boundary micro-grids to the
unit whose centre is nearer; and max-p's dissimilarity includes the centre of each micro-grid's
grid in force, so micro-grids of one grid tend to stay together (fewer addresses change grid).

Each village is solved on its own: grids nest in villages by construction. A village (or an
island of micro-grids in it) that cannot be cut into units inside the band is reported as
infeasible with the reason (``Infeasible``).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import numpy.typing as npt

from gis.analysis.redistrict_repair import bisect, resplit_with_neighbour

Progress = Callable[[float, str], None]


class Infeasible(ValueError):
    """No proposal inside the band exists (or was found); the message says where and why."""


@dataclass(frozen=True)
class Params:
    band: tuple[int, int] = (300, 500)
    balance: str = "households"  # or "workload": incidents of the last 90 days
    construction_iterations: int = 3  # max-p's construction restarts (spopt's default, 99, takes minutes)
    sa_iterations: int = 1  # max-p's simulated-annealing rounds
    balance_moves: int = 400  # per village, and as many compacting moves
    keep_current: float = 3.0  # weight of the current grid's centre in max-p's dissimilarity (0 = ignore)
    seed: int = 0
    compact: bool = True
    # A balancing move takes a micro-grid to a unit it borders at most this many neighbours less than
    # its own: 0 keeps edges smooth (most compact), 8 ignores edges (most even). Measured on 西塘镇:
    # 0 -> households spread in a village 68, Polsby-Popper 0.667; 1 -> 44, 0.631; 8 -> 41, 0.624.
    edge_slack: int = 1
    restarts: int = 1  # max-p starts (seed, seed + 1, ...) tried while the ceiling cannot be repaired
    # Roads as preferred borders (gis.analysis.redistrict_roads): links between areal units whose
    # shared border lies at least ``road_share`` inside ``road_buffer_m`` of a road line are cut.
    roads: bool = True
    road_buffer_m: float = 20.0
    road_share: float = 0.5
    layer: str = "grid"  # the units proposed: grids from micro-grids, or micro-grids from buildings
    # What the areal units and the areas solved one by one are called in the messages.
    part: str = "micro-grid"
    container: str = "village"


@dataclass
class VillageResult:
    village: str
    labels: npt.NDArray[np.int64]  # unit number per micro-grid (row order of the village's frame)
    moves: int = 0
    splits: int = 0
    notes: list[str] = field(default_factory=list)


def _components(neighbors: dict[int, list[int]], members: Iterable[int]) -> list[set[int]]:
    left, out = set(members), []
    while left:
        start = left.pop()
        seen, stack = {start}, [start]
        while stack:
            for nb in neighbors[stack.pop()]:
                if nb in left:
                    left.discard(nb)
                    seen.add(nb)
                    stack.append(nb)
        out.append(seen)
    return out


def _connected(neighbors: dict[int, list[int]], members: set[int]) -> bool:
    return len(members) <= 1 or len(_components(neighbors, members)) == 1


def queen_neighbors(frame: gpd.GeoDataFrame) -> dict[int, list[int]]:
    """Queen contiguity (shared edge or corner) between the rows of ``frame``, by row number."""
    from libpysal.weights import Queen

    w = Queen.from_dataframe(frame.reset_index(drop=True), use_index=False, silence_warnings=True)
    return {int(i): [int(j) for j in w.neighbors[i]] for i in range(len(frame))}


def _maxp(
    metric: gpd.GeoDataFrame,
    idx: list[int],
    households: npt.NDArray[np.int64],
    floor: int,
    params: Params,
    neighbors: dict[int, list[int]],
) -> list[set[int]]:
    """Max-p regions of the rows ``idx`` (one connected piece of ``neighbors``) with ``floor`` households each."""
    from libpysal.weights import W
    from spopt.region import MaxPHeuristic

    sub = metric.iloc[idx].reset_index(drop=True)
    sub = sub.assign(hh=households[idx].astype(float), cx=sub.geometry.centroid.x, cy=sub.geometry.centroid.y)
    attrs = ["cx", "cy"]
    if params.keep_current > 0 and "current" in sub:
        # Micro-grids of one grid in force share its centre: max-p then prefers to keep them together
        # (fewer addresses change grid) while the own centres keep the units compact.
        centre = sub.groupby("current")[["cx", "cy"]].transform("mean")
        sub = sub.assign(ax=centre["cx"] * params.keep_current, ay=centre["cy"] * params.keep_current)
        attrs += ["ax", "ay"]
    # The weights are the caller's contiguity restricted to the piece: queen, or queen with the links
    # along roads cut (gis.analysis.redistrict_roads).
    pos = {i: k for k, i in enumerate(idx)}
    w = W({k: [pos[j] for j in neighbors[i] if j in pos] for k, i in enumerate(idx)}, silence_warnings=True)
    # spopt draws from the global generators; seeded so a proposal can be reproduced.
    random.seed(params.seed)
    np.random.seed(params.seed)
    model = MaxPHeuristic(
        sub,
        w,
        attrs,
        "hh",
        float(floor),
        top_n=2,
        max_iterations_construction=params.construction_iterations,
        max_iterations_sa=params.sa_iterations,
        verbose=False,
    )
    model.solve()
    labels = np.asarray(model.labels_)
    regions = [{idx[k] for k in np.flatnonzero(labels == lab)} for lab in np.unique(labels)]
    if any(sum(int(households[i]) for i in r) < floor for r in regions):
        return [set(idx)]  # max-p found no split meeting the floor: keep the piece whole
    return regions


class _Units:
    """The units of one village under repair: members, totals, and the moves that keep them valid."""

    def __init__(self, regions: list[set[int]], neighbors: dict[int, list[int]], hh: npt.NDArray[np.int64]) -> None:
        self.members = [set(r) for r in regions]
        self.nb = neighbors
        self.hh = hh
        self.of = {i: u for u, r in enumerate(self.members) for i in r}

    def total(self, u: int, values: npt.NDArray[np.float64] | npt.NDArray[np.int64]) -> float:
        return float(sum(values[i] for i in self.members[u]))

    def candidates(self, u: int) -> Iterable[tuple[int, int, int, int]]:
        """(micro-grid, to unit, its neighbours in the target, in its own unit) for u's boundary."""
        for i in sorted(self.members[u]):
            counts: dict[int, int] = {}
            for nb in self.nb[i]:
                counts[self.of[nb]] = counts.get(self.of[nb], 0) + 1
            own = counts.pop(u, 0)
            for v, n in sorted(counts.items()):
                yield i, v, n, own

    def can_give(self, i: int, u: int) -> bool:
        return len(self.members[u]) > 1 and _connected(self.nb, self.members[u] - {i})

    def move(self, i: int, u: int, v: int) -> None:
        self.members[u].discard(i)
        self.members[v].add(i)
        self.of[i] = v


def _repair_ceiling(
    units: _Units, metric: gpd.GeoDataFrame, village: str, codes: list[str], params: Params, res: VillageResult
) -> None:
    low, high = params.band
    hh = units.hh
    xy = np.column_stack([metric.geometry.centroid.x.to_numpy(), metric.geometry.centroid.y.to_numpy()])
    for _ in range(4 * len(codes) + 10):
        over = [u for u in range(len(units.members)) if units.total(u, hh) > high]
        if not over:
            return
        u = over[0]
        best = None
        for i, v, _n, _own in units.candidates(u):
            room = high - units.total(v, hh)
            if hh[i] <= room and units.total(u, hh) - hh[i] >= low and units.can_give(i, u):
                key = (-int(units.total(u, hh) - hh[i] <= high), room - hh[i])
                best = min(best, (key, i, v)) if best else (key, i, v)
        if best is not None:
            units.move(best[1], u, best[2])
            res.moves += 1
            continue
        total = int(units.total(u, hh))
        # Cut off a part in the band (two parts when the unit is at most twice the ceiling, else a
        # part and a rest that the next rounds cut again). Not max-p: spopt's annealing was seen to
        # run for minutes on such pieces (gis.analysis.redistrict_repair).
        halves = bisect(units, units.members[u], params.band, xy, rest_over=total > 2 * high)
        if halves is not None:
            units.members[u] = halves[0]
            units.members.append(halves[1])
            units.of.update({i: len(units.members) - 1 for i in halves[1]})
            res.splits += 1
            continue
        if resplit_with_neighbour(units, u, xy, params.band):
            res.splits += 1
            continue
        names = ", ".join(codes[i] for i in sorted(units.members[u])[:6])
        raise Infeasible(
            f"{params.container} {village}: a contiguous group of {params.part}s ({names}...) holds {total} "
            f"households, above the ceiling of {high}, and can neither give {params.part}s to a neighbour with "
            f"room nor be split into units of at least {low}"
        )
    raise Infeasible(f"{params.container} {village}: the ceiling of {high} households could not be met")


def _compact(units: _Units, metric: gpd.GeoDataFrame, params: Params, res: VillageResult) -> None:
    """Move boundary micro-grids to the neighbouring unit whose centre is nearer (a k-means step
    under the band and contiguity): less spread-out units, so higher Polsby-Popper."""
    low, high = params.band
    hh = units.hh
    area = metric.geometry.area.to_numpy()
    xy = np.column_stack([metric.geometry.centroid.x.to_numpy(), metric.geometry.centroid.y.to_numpy()])

    def centre(u: int) -> npt.NDArray[np.float64]:
        m = sorted(units.members[u])
        return np.asarray(np.average(xy[m], axis=0, weights=area[m]), dtype=np.float64)

    for _ in range(params.balance_moves):
        centres = [centre(u) for u in range(len(units.members))]
        best = None
        for u in range(len(units.members)):
            for i, v, _n, _own in units.candidates(u):
                gain = area[i] * (np.sum((xy[i] - centres[u]) ** 2) - np.sum((xy[i] - centres[v]) ** 2))
                if gain <= 0 or (best is not None and gain <= best[0]):
                    continue
                if units.total(u, hh) - hh[i] >= low and units.total(v, hh) + hh[i] <= high and units.can_give(i, u):
                    best = (gain, i, u, v)
        if best is None:
            return
        units.move(best[1], best[2], best[3])
        res.moves += 1


def _balance(units: _Units, load: npt.NDArray[np.float64], params: Params, res: VillageResult) -> None:
    """Move boundary micro-grids while the spread of ``load`` narrows, staying in the band and contiguous;
    a micro-grid moves only to a unit it borders nearly as much as its own (``edge_slack``)."""
    low, high = params.band
    hh = units.hh
    for _ in range(params.balance_moves):
        totals = [units.total(u, load) for u in range(len(units.members))]
        best = None
        for u in sorted(range(len(totals)), key=lambda k: -totals[k]):
            for i, v, n, own in units.candidates(u):
                if n + params.edge_slack < own or totals[u] <= totals[v]:
                    continue
                gain = (totals[u] - totals[v]) ** 2 - (totals[u] - totals[v] - 2 * load[i]) ** 2
                if gain <= 1e-9:
                    continue
                if units.total(u, hh) - hh[i] < low or units.total(v, hh) + hh[i] > high:
                    continue
                if (best is None or gain > best[0]) and units.can_give(i, u):
                    best = (gain, i, u, v)
            if best is not None:
                break
        if best is None:
            return
        units.move(best[1], best[2], best[3])
        res.moves += 1


def solve_village(
    village: str,
    frame: gpd.GeoDataFrame,
    households: npt.NDArray[np.int64],
    load: npt.NDArray[np.float64],
    params: Params,
    neighbors: dict[int, list[int]] | None = None,
) -> VillageResult:
    """Units (labels per row of ``frame``, the village's micro-grids, EPSG:4326) inside the band;
    ``neighbors``: the contiguity between rows (default queen; see gis.analysis.redistrict_roads)."""
    low, high = params.band
    codes = [str(c) for c in frame["code"]]
    if not len(frame):
        raise Infeasible(f"{params.container} {village} has no {params.part}s")
    metric = frame.to_crs(4549)  # CGCS2000 / GK CM 120E (gis.spatial.crs.METRIC_EPSG): metres for centroids
    neighbors = queen_neighbors(frame) if neighbors is None else neighbors
    total = int(households.sum())
    if total < low:
        raise Infeasible(
            f"{params.container} {village} has {total} households in all, below the floor of {low} for one unit"
        )
    big = [codes[i] for i in np.flatnonzero(households > high)]
    if big:
        raise Infeasible(
            f"{params.container} {village}: {params.part}(s) {', '.join(big)} alone hold more than {high} households"
        )
    res = VillageResult(village, np.zeros(len(frame), dtype=np.int64))
    regions: list[set[int]] = []
    split: list[list[int]] = []  # pieces above the ceiling, cut by max-p
    for piece in sorted(_components(neighbors, range(len(frame))), key=min):
        hh_piece = int(sum(households[i] for i in piece))
        if hh_piece < low:
            names = ", ".join(codes[i] for i in sorted(piece))
            raise Infeasible(
                f"{params.container} {village}: {params.part}(s) {names} touch no other {params.part} of the "
                f"{params.container} and hold "
                f"{hh_piece} households, below the floor of {low}"
            )
        if hh_piece <= high:
            regions.append(set(piece))
            continue
        if hh_piece < 2 * low:
            raise Infeasible(
                f"{params.container} {village}: {hh_piece} households in one contiguous piece: more than {high} "
                f"for one unit and fewer than {2 * low} for two"
            )
        split.append(sorted(piece))
    for attempt in range(max(params.restarts, 1)):
        # Max-p and the repair are heuristics: a failed repair is retried from another random start.
        tried = dataclasses.replace(params, seed=params.seed + attempt)
        found = regions + [r for piece in split for r in _maxp(metric, piece, households, low, tried, neighbors)]
        units = _Units(found, neighbors, households)
        try:
            _repair_ceiling(units, metric, village, codes, tried, res)
            break
        except Infeasible:
            if attempt + 1 >= params.restarts:
                raise
    if params.compact:
        _compact(units, metric, params, res)
    _balance(units, load if params.balance == "workload" else households.astype(np.float64), params, res)
    # Units numbered by their smallest micro-grid code: stable, west/south first as the codes grow.
    order = sorted(range(len(units.members)), key=lambda u: min(codes[i] for i in units.members[u]))
    for number, u in enumerate(order):
        for i in units.members[u]:
            res.labels[i] = number
    return res


def polsby_popper(metric_geoms: gpd.GeoSeries) -> npt.NDArray[np.float64]:
    """4πA/P² per polygon (1 = a circle), on metric geometries."""
    area = metric_geoms.area.to_numpy()
    perim = metric_geoms.length.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(perim > 0, 4 * np.pi * area / perim**2, 0.0)


def spread_figures(values: Iterable[float]) -> dict[str, float]:
    arr = np.asarray(list(values), dtype=float)
    if not len(arr):
        return {"min": 0.0, "max": 0.0, "spread": 0.0, "mean": 0.0}
    return {
        "min": float(arr.min()),
        "max": float(arr.max()),
        "spread": float(arr.max() - arr.min()),
        "mean": round(float(arr.mean()), 3),
    }
