"""gis.analysis.gicrand gives esda.G_Local's Gi* figures exactly (not approximately): z-scores,
analytic and permutation p-values, for counts (the shortcut path) and for rates (the general one),
on a lattice and on irregular weights with islands; the cached draws are reused."""

from __future__ import annotations

import warnings

import esda
import numpy as np
import pytest
from libpysal.weights import W, lat2W

from gis.analysis import gicrand
from gis.analysis.gistar import gi_star


def _esda(y: np.ndarray, w: W, permutations: int, seed: int) -> esda.G_Local:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return esda.G_Local(
            y, w, transform="B", star=True, permutations=permutations, seed=seed, n_jobs=1, keep_simulations=False
        )


def _irregular() -> W:
    """60 units: a ring where unit k neighbours k+1..k+(k % 5) (so 0..8 neighbours), two islands
    and a pair joined only to each other."""
    rng = np.random.default_rng(5)
    neighbours: dict[int, set[int]] = {k: set() for k in range(60)}
    for k in range(56):
        for j in range(1, k % 5 + 1):
            other = (k + j) % 56
            if other != k:
                neighbours[k].add(other)
                neighbours[other].add(k)
    neighbours[58].add(59)
    neighbours[59].add(58)
    order = list(rng.permutation(60))  # ids not in index order
    return W({int(k): sorted(int(v) for v in neighbours[k]) for k in order}, silence_warnings=True)


def _assert_same(y: np.ndarray, w: W, permutations: int, seed: int) -> None:
    ref = _esda(y, w, permutations, seed)
    star = gicrand.star_weights(w)
    statistic, z, p_norm = gicrand.z_scores(y, star)
    np.testing.assert_array_equal(statistic, ref.Gs)
    np.testing.assert_array_equal(z, ref.Zs)
    np.testing.assert_array_equal(p_norm, ref.p_norm)
    p = gicrand.p_sim(y, statistic, star, permutations, seed)
    assert p.dtype == ref.p_sim.dtype
    np.testing.assert_array_equal(p, ref.p_sim)


@pytest.mark.parametrize("seed", [1, 20240501])
def test_counts_on_a_lattice_equal_esda(seed: int) -> None:
    w = lat2W(12, 12, rook=False)
    y = np.random.default_rng(seed).poisson(2, 144).astype(float)
    y[30:34] += 9
    _assert_same(y, w, 999, seed)


def test_rates_on_a_lattice_equal_esda() -> None:
    w = lat2W(10, 10, rook=False)
    rng = np.random.default_rng(4)
    y = rng.poisson(3, 100) * 100.0 / rng.integers(7, 300, 100)
    y[rng.random(100) < 0.3] = 0.0  # many zero rates: exact ties with the observed statistic
    _assert_same(y, w, 499, 8)


@pytest.mark.parametrize("kind", ["counts", "rates"])
def test_irregular_weights_with_islands_equal_esda(kind: str) -> None:
    w = _irregular()
    rng = np.random.default_rng(9)
    y = rng.poisson(1.5, 60).astype(float)
    y[[56, 57]] = [0.0, 4.0]  # one island without incidents, one with
    if kind == "rates":
        y = y * 100.0 / rng.integers(20, 90, 60)
    _assert_same(y, w, 999, 3)


def test_gi_star_reuses_the_draws_and_answers_the_same() -> None:
    w = lat2W(9, 9, rook=False)
    y = np.random.default_rng(2).poisson(3, 81).astype(float)
    first = gi_star(y, w, permutations=199, seed=17)
    star = gicrand.star_weights(w)
    assert gicrand.star_weights(w) is star
    permuted = gicrand.draws(int(star.cardinalities.max()), 81, 199, 17)
    assert not permuted.flags.writeable
    again = gi_star(y, w, permutations=199, seed=17)
    assert gicrand.draws(int(star.cardinalities.max()), 81, 199, 17) is permuted
    np.testing.assert_array_equal(first.p, again.p)
    assert first.classes == again.classes


def test_the_counts_shortcut_and_the_general_path_agree() -> None:
    w = _irregular()
    y = np.random.default_rng(12).poisson(2, 60).astype(float)
    star = gicrand.star_weights(w)
    statistic, _, _ = gicrand.z_scores(y, star)
    permuted = gicrand.draws(int(star.cardinalities.max()), 60, 299, 5)
    shortcut = gicrand._larger_counts(y, star, permuted)
    np.testing.assert_array_equal(shortcut, gicrand._larger(y, statistic, star, permuted))
    assert shortcut.min() >= 0 and shortcut.max() <= 299 and len(set(shortcut.tolist())) > 5
