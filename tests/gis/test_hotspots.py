"""Gi* classes, FDR and the emerging-hot-spot rule on synthetic lattices and constructed series
(no database)."""

from __future__ import annotations

import datetime as dt

import esda
import numpy as np
import pytest
from libpysal.weights import lat2W

from gis.analysis.emerging import emerging_class, mann_kendall
from gis.analysis.gistar import classify, fdr_cutoffs, gi_star
from gis.analysis.units import AnalysisError, period_window
from gis.core.vocab import COUNTY_TZ

SIDE = 15


def _lattice() -> tuple[object, list[int]]:
    """A 15 x 15 queen lattice and the 9 cells of a planted 3 x 3 block at rows/cols 3..5."""
    w = lat2W(SIDE, SIDE, rook=False)
    block = [r * SIDE + c for r in range(3, 6) for c in range(3, 6)]
    return w, block


def test_planted_cluster_is_hot_and_far_cells_are_not() -> None:
    w, block = _lattice()
    rng = np.random.default_rng(7)
    y = rng.poisson(2, SIDE * SIDE).astype(float)
    y[block] = rng.poisson(14, len(block))
    gi = gi_star(y, w)
    hot = {i for i, c in enumerate(gi.classes) if c.startswith("hot_")}
    # The block's centre and the four cells in the middle of its sides (6 or 9 of the 9 cells of
    # their neighbourhood in the block) come out hot after FDR...
    assert {block[i] for i in (1, 3, 4, 5, 7)} <= hot
    # ...and nothing two cells or more away from the block is hot.
    far = [r * SIDE + c for r in range(SIDE) for c in range(SIDE) if r > 7 or c > 7]
    assert not hot & set(far)
    assert gi.classes[block[4]] == "hot_99"


def test_random_field_is_mostly_not_significant_after_fdr() -> None:
    w, _ = _lattice()
    flagged = []
    for seed in range(5):
        y = np.random.default_rng(seed).poisson(5, SIDE * SIDE).astype(float)
        gi = gi_star(y, w, permutations=999)
        flagged.append(sum(c != "not_significant" for c in gi.classes))
    # Without correction about 10% would be flagged at 90%; BH keeps the false discoveries rare.
    assert sum(flagged) / (5 * SIDE * SIDE) < 0.02


def test_gi_star_equals_esda_on_the_same_values_and_weights() -> None:
    w, block = _lattice()
    y = np.random.default_rng(3).poisson(3, SIDE * SIDE).astype(float)
    y[block] += 6
    ours = gi_star(y, w, permutations=999, seed=11)
    ref = esda.G_Local(y, w, transform="B", star=True, permutations=999, seed=11, keep_simulations=False)
    np.testing.assert_allclose(ours.z, ref.Zs)
    np.testing.assert_allclose(ours.p, np.minimum(1, 2 * ref.p_sim))
    analytic = gi_star(y, w, p_value="analytic")
    np.testing.assert_allclose(analytic.p, np.minimum(1, 2 * ref.p_norm))
    assert analytic.permutations == 0


def test_constant_field_has_no_hot_spots() -> None:
    w, _ = _lattice()
    gi = gi_star(np.zeros(SIDE * SIDE), w)
    assert set(gi.classes) == {"not_significant"}
    assert np.isnan(gi.z).all()


def test_classes_follow_benjamini_hochberg_per_level() -> None:
    n = 100
    p = np.full(n, 0.5)
    p[:5] = [0.00005, 0.00015, 0.00025, 0.004, 0.0009]
    z = np.ones(n)
    z[1] = -1.0

    # BH at alpha: the largest k with p_(k) <= k * alpha / n; every p up to p_(k) is significant.
    def bh(alpha: float) -> set[int]:
        order = np.argsort(p)
        passing = [k for k in range(1, n + 1) if p[order[k - 1]] <= k * alpha / n]
        return set(order[: max(passing)]) if passing else set()

    cut = fdr_cutoffs(p)
    assert {i for i in range(n) if p[i] < cut[99]} == bh(0.01)
    assert {i for i in range(n) if p[i] < cut[90]} == bh(0.10)
    classes = classify(z, p)
    assert classes[0] == "hot_99" and classes[1] == "cold_99"
    assert bh(0.01) == {0, 1, 2} and bh(0.05) == {0, 1, 2, 4} and bh(0.10) == {0, 1, 2, 3, 4}
    assert (classes[4], classes[3]) == ("hot_95", "hot_90")
    assert classes[10] == "not_significant"


@pytest.mark.parametrize(
    ("hot", "z", "expected"),
    [
        ([False] * 8, [0.1, -0.2, 0.3, 0.0, 0.2, -0.1, 0.1, 0.0], "none"),
        ([False] * 7 + [True], [0.1, 0.0, 0.2, -0.1, 0.3, 0.1, 0.2, 3.5], "new"),
        ([True] * 8, [2.0, 2.3, 2.6, 2.9, 3.2, 3.6, 4.0, 4.5], "intensifying"),
        ([True] * 8, [4.5, 4.0, 3.6, 3.2, 2.9, 2.6, 2.3, 2.0], "diminishing"),
        ([True] * 8, [3.0, 3.4, 2.9, 3.3, 3.0, 3.4, 2.9, 3.2], "persistent"),
        ([True, False, True, False, True, False, False, True], [3, 0, 3, 0, 3, 0, 0, 3], "sporadic"),
        ([True] * 7 + [False], [3.0, 3.1, 3.2, 3.3, 3.4, 3.5, 3.6, 1.0], "sporadic"),
    ],
)
def test_emerging_rule(hot: list[bool], z: list[float], expected: str) -> None:
    assert emerging_class(hot, z)[0] == expected


def test_mann_kendall_on_monotone_and_flat_series() -> None:
    assert mann_kendall([1, 2, 3, 4, 5, 6, 7, 8])[0] == "increasing"
    assert mann_kendall([8, 7, 6, 5, 4, 3, 2, 1])[0] == "decreasing"
    assert mann_kendall([float("nan")] * 8) == ("no trend", 1.0)


def test_periods_are_county_weeks_and_months() -> None:
    start, end = period_window(dt.date(2026, 12, 3), "week")  # a Thursday
    assert start == dt.datetime(2026, 11, 30, tzinfo=COUNTY_TZ) and end - start == dt.timedelta(days=7)
    start, end = period_window(dt.date(2026, 12, 31), "month")
    assert (start.date(), end.date()) == (dt.date(2026, 12, 1), dt.date(2027, 1, 1))
    # Without a day: the last complete period before now.
    now = dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC)
    assert period_window(None, "week", now)[0].date() == dt.date(2026, 11, 23)
    assert period_window(None, "month", now)[0].date() == dt.date(2026, 11, 1)
    with pytest.raises(AnalysisError) as err:
        period_window(dt.date(2026, 1, 1), "year")
    assert err.value.field == "period"
