"""The statistics of the hot-spot analysis, on plain arrays: Getis-Ord Gi* by PySAL (``esda``),
Benjamini-Hochberg false-discovery-rate cut-offs (``esda.fdr``) and the class of each unit.

Nothing here is a new statistic: the Gi* value, its z-score and its permutation pseudo p-value
are those of ``esda.G_Local(y, w, transform="B", star=True)``, computed by ``gis.analysis.gicrand``
with esda's own operations and random draws but with what depends on the weights alone derived
once (the tests compare the two); this module only chooses the p-value, applies the FDR cut-offs
and names the classes.

Definitions (the README's):

* **Gi\\*** with binary queen-contiguity weights including the unit itself (``star=True``,
  ``transform="B"``): a unit's Gi* compares the sum of its own and its neighbours' values with
  what the county-wide mean would give. ``z`` is esda's analytic z-score ``Zs`` (its sign says hot
  or cold in both p-value modes).
* **p-value**, two-sided: ``permutation`` (default) is ``min(1, 2 * p_sim)``, esda's conditional
  permutation pseudo p-value (one-sided towards the observed side, (extreme + 1) / (permutations +
  1)) doubled; ``analytic`` is ``2 * p_norm`` (normal approximation). With 9,999 permutations the
  smallest p is 0.0002.
* **FDR**: for each confidence level c in 99, 95, 90 the Benjamini-Hochberg cut-off at
  alpha = 1 - c over all units of the run (``esda.fdr``); a unit is significant at c when its p is
  below that cut-off. When no unit passes, esda returns alpha/n (Bonferroni), which none passes
  either, so the rule is plain BH.
* **class**: ``hot_99`` / ``hot_95`` / ``hot_90`` for z > 0 significant at the highest of those
  levels, ``cold_*`` likewise for z < 0, else ``not_significant``. A run where every value is the
  same (e.g. no incidents) has no z and every unit is ``not_significant``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from libpysal.weights import W

from gis.analysis import gicrand
from gis.core.vocab import HOTSPOT_CLASSES

PValue = Literal["permutation", "analytic"]
P_VALUES: tuple[str, ...] = ("permutation", "analytic")
CONFIDENCE_LEVELS = (99, 95, 90)
CLASSES = HOTSPOT_CLASSES
DEFAULT_PERMUTATIONS = 9999
DEFAULT_SEED = 20240501  # fixed: the same counts give the same answer on every call


@dataclass(frozen=True)
class GiResult:
    """Per unit (in the weights' order): Gi* z-score, two-sided p, class; and the run's FDR cut-offs."""

    z: np.ndarray
    p: np.ndarray
    classes: list[str]
    cutoffs: dict[int, float]
    p_value: str
    permutations: int


def gi_star(
    values: np.ndarray,
    w: W,
    *,
    p_value: PValue = "permutation",
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = DEFAULT_SEED,
) -> GiResult:
    """Gi* of ``values`` (one per unit, in ``w.id_order``) over the binary weights ``w``."""
    import esda

    y = np.asarray(values, dtype=float)
    n = len(y)
    if n != w.n:
        raise ValueError(f"{n} values for {w.n} units")
    if n == 0 or np.ptp(y) == 0:
        # A constant field has no variance: Gi* is undefined, nothing is a hot or cold spot.
        nan = np.full(n, np.nan)
        return GiResult(nan, np.ones(n), ["not_significant"] * n, dict.fromkeys(CONFIDENCE_LEVELS, 0.0), p_value, 0)
    perms = permutations if p_value == "permutation" else 0
    star = gicrand.star_weights(w)
    if star.cardinalities.max() > 0:
        statistic, z, p_norm = gicrand.z_scores(y, star)
        one_sided = np.asarray(gicrand.p_sim(y, statistic, star, perms, seed) if perms else p_norm, dtype=float)
    else:  # every unit an island: nothing to randomise against, left to esda itself
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = esda.G_Local(
                y, w, transform="B", star=True, permutations=perms, seed=seed, n_jobs=1, keep_simulations=False
            )
        z = np.asarray(g.Zs, dtype=float)
        one_sided = np.asarray(g.p_sim if perms else g.p_norm, dtype=float)
    p = np.minimum(1.0, 2.0 * one_sided)
    return GiResult(z, p, classify(z, p), fdr_cutoffs(p), p_value, perms)


def fdr_cutoffs(p: np.ndarray) -> dict[int, float]:
    """The Benjamini-Hochberg cut-off per confidence level (esda.fdr at alpha = 1 - level/100)."""
    from esda import fdr

    return {level: float(fdr(p, round(1 - level / 100, 2))) for level in CONFIDENCE_LEVELS}


def classify(z: np.ndarray, p: np.ndarray) -> list[str]:
    """The class of each unit from its z-score and two-sided p (see the module docstring)."""
    cutoffs = fdr_cutoffs(p)
    out: list[str] = []
    for zi, pi in zip(z, p, strict=True):
        label = "not_significant"
        if np.isfinite(zi) and zi != 0:
            for level in CONFIDENCE_LEVELS:  # highest first
                if pi < cutoffs[level]:
                    label = f"{'hot' if zi > 0 else 'cold'}_{level}"
                    break
        out.append(label)
    return out


def is_hot(label: str) -> bool:
    return label.startswith("hot_")
