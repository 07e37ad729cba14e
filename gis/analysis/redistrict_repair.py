"""Ceiling repair of redistricting units (gis.analysis.redistrict): a unit above the ceiling (and at
most twice it) is cut in two units in the band; one that cannot be cut on its own is cut again
together with a neighbour (``xy``: the areal units' centres in metres).

Why not max-p here: on such small pieces spopt's simulated annealing was seen to run for minutes
(micro-grids from buildings, 50-80 households); breadth-first prefixes are exhaustive enough for
two parts of a few dozen areal units and end in milliseconds.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt


class UnitsLike(Protocol):
    members: list[set[int]]
    nb: dict[int, list[int]]
    hh: npt.NDArray[np.int64]
    of: dict[int, int]

    def total(self, u: int, values: npt.NDArray[np.float64] | npt.NDArray[np.int64]) -> float: ...


def _connected(neighbors: dict[int, list[int]], members: set[int]) -> bool:
    if len(members) <= 1:
        return True
    start = min(members)
    seen, stack = {start}, [start]
    while stack:
        for j in neighbors[stack.pop()]:
            if j in members and j not in seen:
                seen.add(j)
                stack.append(j)
    return len(seen) == len(members)


def bisect(
    units: UnitsLike, members: set[int], band: tuple[int, int], xy: npt.NDArray[np.float64], rest_over: bool = False
) -> list[set[int]] | None:
    """Two contiguous parts of ``members``, both in the band (``rest_over``: the second may lie above
    the ceiling, to be cut again), or None: the first part is a breadth-first
    prefix from one of the members (so connected) whose rest is connected too; the tightest pair
    (least squared distance to the parts' centres) wins. Cheap and bounded, unlike max-p's annealing
    on a small union, which can run for minutes."""
    low, high = band
    best: tuple[float, set[int]] | None = None
    for start in sorted(members):
        order, seen, k = [start], {start}, 0
        while k < len(order):
            for j in units.nb[order[k]]:
                if j in members and j not in seen:
                    seen.add(j)
                    order.append(j)
            k += 1
        total = 0
        for n, i in enumerate(order[:-1]):
            total += int(units.hh[i])
            rest_total = sum(int(units.hh[j]) for j in members) - total
            if total > high:
                break
            if total < low or rest_total < low or (rest_total > high and not rest_over):
                continue
            part = set(order[: n + 1])
            if not _connected(units.nb, members - part):
                continue
            spread = sum(
                float(np.sum((xy[sorted(p)] - xy[sorted(p)].mean(axis=0)) ** 2)) for p in (part, members - part)
            )
            if best is None or spread < best[0]:
                best = (spread, part)
    return None if best is None else [best[1], members - best[1]]


def resplit_with_neighbour(units: UnitsLike, u: int, xy: npt.NDArray[np.float64], band: tuple[int, int]) -> bool:
    """Unit ``u`` above the ceiling that can neither give nor split alone: cut its union with a
    neighbour (the emptiest first) in two units in the band (``bisect``), if one does."""
    hh = units.hh
    around = {units.of[j] for i in units.members[u] for j in units.nb[i]} - {u}
    for v in sorted(around, key=lambda v: units.total(v, hh)):
        union = units.members[u] | units.members[v]
        pieces = bisect(units, union, band, xy, rest_over=sum(int(hh[i]) for i in union) > 2 * band[1])
        if pieces is not None:
            units.members[u], units.members[v] = pieces
            units.of.update({i: k for k, r in enumerate(units.members) for i in r})
            return True
    return False
