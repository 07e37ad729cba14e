"""Integer bookkeeping: split totals into bounded parts, allocate by weights."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


class AllocationError(ValueError):
    """A split whose bounds cannot be met."""


def split_total(total: int, parts: int, low: int, high: int, rng: np.random.Generator) -> IntArray:
    """``parts`` random integers in [low, high] that add up to ``total`` exactly."""
    if parts <= 0:
        raise AllocationError(f"parts must be positive, got {parts}")
    if not parts * low <= total <= parts * high:
        raise AllocationError(f"cannot split {total} into {parts} parts within [{low}, {high}]")
    out = np.full(parts, low, dtype=np.int64)
    room = high - low
    left = total - parts * low
    while left > 0:
        free = np.flatnonzero(out < high)
        share = rng.dirichlet(np.full(len(free), 2.0))
        add = np.minimum(np.floor(share * left).astype(np.int64), room - (out[free] - low))
        if add.sum() == 0:
            add[int(rng.integers(len(free)))] = 1
        out[free] += add
        left -= int(add.sum())
    return out


def largest_remainder(total: int, weights: npt.ArrayLike, minimum: int = 0) -> IntArray:
    """Integers proportional to ``weights``, each >= ``minimum``, adding up to ``total``."""
    w = np.asarray(weights, dtype=np.float64)
    if len(w) == 0 or np.any(w < 0) or w.sum() <= 0:
        raise AllocationError(f"weights must be non-negative with a positive sum, got {w.tolist()}")
    spare = total - minimum * len(w)
    if spare < 0:
        raise AllocationError(f"total {total} is below {len(w)} x minimum {minimum}")
    exact = w / w.sum() * spare
    out = np.floor(exact).astype(np.int64)
    short = spare - int(out.sum())
    # Stable order so ties break by position, not by platform sort details.
    order = np.argsort(-(exact - out), kind="stable")
    out[order[:short]] += 1
    return out + minimum
