"""``esda.G_Local(y, w, transform="B", star=True, permutations=k, seed=s)``, its z-scores and its
permutation pseudo p-values, computed with what depends on the weights alone derived once.

Why (issue 18, measured on the demo's 5,489 micro-grids with 9,999 permutations, no numba): of the
~2.3 s of CPU per weekly Gi*, ~1 s went to esda drawing the same 9,999 random neighbour sets again
(``vec_permutations``: one ``np.random.choice`` over all units per permutation, a pure function of
the seed, the unit count and the largest neighbour count), ~1.3 s to its per-unit Python loop
(``compute_chunk``: 5,489 iterations each copying the whole value vector), and the rest to
rebuilding the weights with their self-weights and sparse matrix on every call. numba, which
would compile that loop, takes over a minute to compile on first use and is not installed.

Here the same operations run in the same order on the same inputs, so the figures are esda's
(tests compare them with ``esda.G_Local``): the star weights and their CSR pieces are derived once
per weights object with esda's own ``_infer_star_and_structure_w``; the draws come from esda's own
``vec_permutations`` once per (draws, units, largest neighbour count, seed); and the simulated
statistics of the units with the same neighbour count are computed together: unit i's randomised
neighbour values are ``y`` without ``y[i]`` taken at the drawn positions, i.e. ``y[p]`` below i
and ``y[p + 1]`` from i on, each unit's (draws x neighbours) block then multiplied by its weights
with the same matrix-vector product esda calls, plus the self-weight times ``y[i]``, over
``y.sum()``; the p-value is esda's "directed" rule, stored as float32 as esda stores it.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from libpysal.weights import W
from scipy import sparse, stats

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# Simulated values held at once per batch of units (8 bytes each): ~16 MB.
_BATCH_VALUES = 2_000_000
_DRAWS_KEPT = 8


@dataclass(frozen=True)
class StarWeights:
    """What esda derives from binary weights for Gi*: the matrix with self-weight 1 (for the
    statistic and its moments), and for the randomisation the self-weights, each unit's count of
    other neighbours and their weights (CSR order, flat)."""

    matrix: sparse.csr_matrix
    row_sums: FloatArray
    self_weights: FloatArray
    cardinalities: IntArray
    other_weights: FloatArray
    offsets: IntArray  # start of each unit's run in other_weights


_STARS: weakref.WeakKeyDictionary[W, StarWeights] = weakref.WeakKeyDictionary()
_DRAWS: OrderedDict[tuple[int, int, int, int], IntArray] = OrderedDict()
_LOCK = threading.Lock()


def star_weights(w: W) -> StarWeights:
    """``w`` as esda.G_Local(transform="B", star=True) uses it; derived once per weights object."""
    with _LOCK:
        hit = _STARS.get(w)
    if hit is not None:
        return hit
    from esda.getisord import _infer_star_and_structure_w

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        star, _ = _infer_star_and_structure_w(w, True, "B")
        star.transform = "B"
        matrix = star.sparse.tocsr(copy=True)
        # esda's crand: the self-weights apart, the other weights with the diagonal dropped.
        adj = matrix.copy()
        self_weights = adj.diagonal()
        adj.setdiag(0)
        adj.eliminate_zeros()
    cardinalities = np.asarray((adj != 0).sum(1)).flatten().astype(np.int64)
    made = StarWeights(
        matrix=matrix,
        row_sums=np.asarray(matrix.sum(axis=1)).squeeze(),
        self_weights=np.asarray(self_weights, dtype=float),
        cardinalities=cardinalities,
        other_weights=adj.data.astype(float),
        offsets=np.concatenate(([0], np.cumsum(cardinalities)[:-1])).astype(np.int64),
    )
    with _LOCK:
        _STARS[w] = made
    return made


def draws(max_card: int, n: int, permutations: int, seed: int) -> IntArray:
    """esda's random neighbour sets (``esda.crand.vec_permutations``), kept for reuse: they depend
    only on these four numbers. Read-only."""
    key = (max_card, n, permutations, seed)
    with _LOCK:
        hit = _DRAWS.get(key)
        if hit is not None:
            _DRAWS.move_to_end(key)
            return hit
    from esda.crand import vec_permutations

    made = np.asarray(vec_permutations(max_card, n, permutations, seed), dtype=np.int64)
    made.setflags(write=False)
    with _LOCK:
        _DRAWS[key] = made
        while len(_DRAWS) > _DRAWS_KEPT:
            _DRAWS.popitem(last=False)
    return made


def z_scores(y: FloatArray, star: StarWeights) -> tuple[FloatArray, FloatArray, FloatArray]:
    """esda's Gs, Zs and p_norm (G_Local.calc with star=True, written as there)."""
    w_matrix = star.matrix
    remove_self = False  # Gi*: the unit itself counts
    n_units = len(y) - remove_self
    statistic = (w_matrix @ y) / (y.sum() - y * remove_self)
    empirical_mean = (y.sum() - y * remove_self) / n_units
    mean_of_squares = ((y**2).sum() - (y**2) * remove_self) / n_units
    empirical_variance = mean_of_squares - empirical_mean**2
    cardinality = star.row_sums
    expected_value = cardinality / n_units
    expected_variance = cardinality * (n_units - cardinality)
    expected_variance /= n_units - 1
    expected_variance *= 1 / n_units**2
    expected_variance *= empirical_variance / (empirical_mean**2)
    z = (statistic - expected_value) / np.sqrt(expected_variance)
    return statistic, z, stats.norm.sf(np.abs(z))


def p_sim(y: FloatArray, observed: FloatArray, star: StarWeights, permutations: int, seed: int) -> FloatArray:
    """esda's conditional-permutation pseudo p-values (one-sided towards the observed side)."""
    permuted = draws(int(star.cardinalities.max()), len(y), permutations, seed)
    whole = bool(np.all(y == np.round(y))) and np.abs(y).sum() < 2**50 and y.sum() > 0
    binary = bool(np.all(star.other_weights == 1.0)) and bool(np.all(star.self_weights == 1.0))
    larger = _larger_counts(y, star, permuted) if whole and binary else _larger(y, observed, star, permuted)
    low_extreme = (permutations - larger) < larger
    larger[low_extreme] = permutations - larger[low_extreme]
    return ((larger + 1.0) / (permutations + 1.0)).astype(np.float32)


def _larger(y: FloatArray, observed: FloatArray, star: StarWeights, permuted: IntArray) -> IntArray:
    """Per unit, how many simulated statistics are >= the observed one: the general case, each
    unit's (draws x neighbours) block multiplied by its weights as esda does."""
    permutations = len(permuted)
    scaling = y.sum()
    cards = star.cardinalities
    # An island (no other neighbour) is randomised by esda against one "neighbour" of weight 0
    # and a self-weight of 0.
    effective = np.where(cards == 0, 1, cards)
    larger = np.zeros(len(y), dtype=np.int64)
    for card in np.unique(effective):
        units = np.flatnonzero(effective == card)
        ids = permuted[:, :card]
        below, from_i = y[ids], y[ids + 1]  # y without y[i] at a drawn position p, for p < i and p >= i
        step = max(1, _BATCH_VALUES // (permutations * int(card)))
        for start in range(0, len(units), step):
            batch = units[start : start + step]
            weights = np.stack([_weights_of(star, int(i)) for i in batch])
            self_w = np.array([0.0 if cards[i] == 0 else star.self_weights[i] for i in batch])
            values = np.where(ids[None, :, :] >= batch[:, None, None], from_i[None], below[None])
            if (weights == weights[0]).all():
                lagged = values @ weights[0]  # one matrix-vector product per unit, as esda's
            else:
                lagged = np.stack([values[k] @ weights[k] for k in range(len(batch))])
            simulated = (lagged + (self_w * y[batch])[:, None]) / scaling
            larger[batch] = (simulated >= observed[batch][:, None]).sum(axis=1)
    return larger


def _larger_counts(y: FloatArray, star: StarWeights, permuted: IntArray) -> IntArray:
    """``_larger`` for whole-number values (counts) and binary weights, where every sum is exact
    whatever its order. Two shortcuts follow, each giving the same counts as esda:

    - a simulated statistic is (neighbour sum + self-weight * y[i]) / y.sum() and the observed one
      (W @ y)[i] / y.sum(): whole numbers below 2**50 over the same positive divisor, so one is >=
      the other exactly when the numerators are (distinct numerators stay more than an ulp apart);
    - for the units with c neighbours, taken in ascending order, a draw's neighbour sum changes
      from one unit to the next only at the drawn positions between them (y[p + 1] becomes y[p]),
      so the sums are carried along by those changes, each applied once, instead of being formed
      unit by unit."""
    permutations = len(permuted)
    cards = star.cardinalities
    larger = np.zeros(len(y), dtype=np.int64)
    islands = np.flatnonzero(cards == 0)
    # esda's island: (0 * its drawn value + self-weight 0 * y[i]) / y.sum(), whatever the draw.
    larger[islands] = np.where(star.matrix @ y <= 0.0, permutations, 0)[islands]
    # A unit's simulated numerator is >= the observed one when its neighbour sum reaches this.
    needed = star.matrix @ y - star.self_weights * y
    for card in np.unique(cards[cards > 0]):
        units = np.flatnonzero(cards == card)
        ids = permuted[:, :card]
        change = y[ids + 1] - y[ids]  # what a drawn position loses when it falls below the unit
        sums = y[ids + 1].sum(axis=1)  # before the first unit: every drawn position is at or above it
        flat = ids.ravel()
        order = np.argsort(flat, kind="stable")
        draw, change_sorted = order // card, change.ravel()[order]
        # The unit (its rank among these units) from which each drawn position is below it.
        leaves = np.searchsorted(units, flat[order], side="right")
        step = max(1, _BATCH_VALUES // permutations)
        for b0 in range(0, len(units), step):
            b1 = min(len(units), b0 + step)
            lo, hi = np.searchsorted(leaves, [b0, b1], side="left")
            # (draw, unit) layout: the running sums run along contiguous memory.
            drops = np.bincount(
                draw[lo:hi] * (b1 - b0) + (leaves[lo:hi] - b0),
                weights=change_sorted[lo:hi],
                minlength=permutations * (b1 - b0),
            ).reshape(permutations, b1 - b0)
            running = sums[:, None] - np.cumsum(drops, axis=1)
            sums = running[:, -1]
            larger[units[b0:b1]] = (running >= needed[units[b0:b1]][None, :]).sum(axis=0)
    return larger


def _weights_of(star: StarWeights, i: int) -> FloatArray:
    card = int(star.cardinalities[i])
    if card == 0:
        return np.zeros(1)  # esda's island_weight
    start = int(star.offsets[i])
    return star.other_weights[start : start + card]
