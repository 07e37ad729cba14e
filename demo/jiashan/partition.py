"""Split a polygon into N parts whose areas follow target weights.

The parts are the cells of a power diagram (a Voronoi diagram in which every
site carries an additive weight), clipped to the parent.  Sites and weights
are fitted on a cloud of sample points: each round assigns the samples to
their nearest site in power distance, moves every site to the centroid of its
samples (Lloyd relaxation keeps the cells compact) and raises or lowers each
weight by the cell's area error.  Only the final diagram is built with
shapely, by clipping the parent with one half-plane per pair of sites.

The cells produced here are *approximate* neighbours: two adjacent cells are
computed separately and agree only to floating-point precision.  Exactly
shared edges come later, from ``coverage.assemble_coverage``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

FloatArray = npt.NDArray[np.float64]
GeomArray = npt.NDArray[np.object_]


class PartitionError(ValueError):
    """A partition request that cannot be met (bad weights, empty parent...)."""


@dataclass(frozen=True)
class PowerPartition:
    """Fitted sites, their weights (m²) and the cells clipped to the parent."""

    sites: FloatArray  # (n, 2)
    weights: FloatArray  # (n,)
    cells: GeomArray  # (n,) shapely geometries


def sample_in_polygon(geom: BaseGeometry, count: int, rng: np.random.Generator) -> FloatArray:
    """``count`` points uniformly inside ``geom`` (rejection sampling from its bbox)."""
    if count <= 0:
        return np.empty((0, 2))
    if geom.is_empty or geom.area <= 0:
        raise PartitionError("cannot sample points inside an empty polygon")
    shapely.prepare(geom)
    minx, miny, maxx, maxy = geom.bounds
    fill = geom.area / max((maxx - minx) * (maxy - miny), 1e-12)
    chunks: list[FloatArray] = []
    have = 0
    for _ in range(200):
        draw = int((count - have) / fill * 1.3) + 16
        xs = rng.uniform(minx, maxx, draw)
        ys = rng.uniform(miny, maxy, draw)
        keep = shapely.contains_xy(geom, xs, ys)
        chunk = np.column_stack([xs[keep], ys[keep]])
        chunks.append(chunk)
        have += len(chunk)
        if have >= count:
            return np.concatenate(chunks)[:count]
    raise PartitionError(f"could not place {count} sample points inside the polygon")


def _halfplanes(sites_i: FloatArray, sites_j: FloatArray, w_i: FloatArray, w_j: FloatArray, reach: float) -> GeomArray:
    """For each pair, the side of the power bisector of (i, j) that belongs to i, as a large quad."""
    delta = sites_j - sites_i
    dist = np.hypot(delta[:, 0], delta[:, 1])[:, None]
    u = delta / dist
    # The bisector passes the midpoint, shifted by the weight difference;
    # written this way it never subtracts two squared coordinates of ~1e13.
    p0 = (sites_i + sites_j) / 2.0 + u * ((w_i - w_j)[:, None] / (2.0 * dist))
    perp = np.column_stack([-u[:, 1], u[:, 0]]) * reach
    back = u * reach
    corners = np.stack([p0 + perp, p0 - perp, p0 - perp - back, p0 + perp - back, p0 + perp], axis=1)
    return np.asarray(shapely.polygons(corners), dtype=object)


def power_cells(parent: BaseGeometry, sites: FloatArray, weights: FloatArray) -> GeomArray:
    """Cells of the power diagram of ``sites``/``weights`` clipped to ``parent``."""
    n = len(sites)
    cells = np.array([parent] * n, dtype=object)
    if n == 1:
        return cells
    minx, miny, maxx, maxy = parent.bounds
    reach = 4.0 * float(np.hypot(maxx - minx, maxy - miny)) + 1.0
    own = np.arange(n)
    for shift in range(1, n):
        others = (own + shift) % n
        planes = _halfplanes(sites, sites[others], weights, weights[others], reach)
        cells = shapely.intersection(cells, planes)
    return cells


def _spread_sites(samples: FloatArray, n: int, rng: np.random.Generator) -> FloatArray:
    """k-means++ style start: each new site far from those already chosen."""
    first = int(rng.integers(len(samples)))
    chosen = [first]
    dist2 = ((samples - samples[first]) ** 2).sum(axis=1)
    for _ in range(1, n):
        total = dist2.sum()
        pick = int(rng.integers(len(samples))) if total <= 0 else int(rng.choice(len(samples), p=dist2 / total))
        chosen.append(pick)
        dist2 = np.minimum(dist2, ((samples - samples[pick]) ** 2).sum(axis=1))
    return samples[chosen].copy()


def power_partition(
    parent: BaseGeometry,
    targets: npt.ArrayLike,
    rng: np.random.Generator,
    *,
    init_sites: FloatArray | None = None,
    samples_per_part: int = 250,
    iterations: int = 30,
) -> PowerPartition:
    """Split ``parent`` into ``len(targets)`` cells with areas proportional to ``targets``.

    ``init_sites`` (n, 2) fixes where each part starts; the relaxation moves
    them, but parts keep their rough arrangement (useful to keep urban
    communities around a town seat).
    """
    share = np.asarray(targets, dtype=np.float64)
    n = len(share)
    if n == 0:
        raise PartitionError("targets is empty: need at least one part")
    if not np.all(np.isfinite(share)) or np.any(share <= 0):
        raise PartitionError(f"targets must be positive finite numbers, got {share.tolist()}")
    if parent.is_empty or parent.area <= 0:
        raise PartitionError("parent polygon is empty")
    share = share / share.sum()
    if n == 1:
        centre = np.array(parent.centroid.coords[0])
        return PowerPartition(centre[None, :], np.zeros(1), np.array([parent], dtype=object))

    samples = sample_in_polygon(parent, max(samples_per_part * n, 1500), rng)
    if init_sites is None:
        sites = _spread_sites(samples, n, rng)
    else:
        sites = np.array(init_sites, dtype=np.float64)
        if sites.shape != (n, 2):
            raise PartitionError(f"init_sites must have shape ({n}, 2), got {sites.shape}")
    # Work relative to a local origin: squared distances of raw GK coordinates
    # (~3.4e6 m) would lose the metre-level detail in float64.
    origin = samples.mean(axis=0)
    local = samples - origin
    sites = sites - origin
    weights = np.zeros(n)
    area = parent.area
    count = len(local)
    for _ in range(iterations):
        power = (
            (local[:, 0, None] - sites[None, :, 0]) ** 2
            + (local[:, 1, None] - sites[None, :, 1]) ** 2
            - weights[None, :]
        )
        label = power.argmin(axis=1)
        got = np.bincount(label, minlength=n)
        empty = got == 0
        if empty.any():
            # A starved site restarts inside the most oversized cell.
            worst = int(np.argmax(got / count - share))
            members = np.flatnonzero(label == worst)
            for i in np.flatnonzero(empty):
                sites[i] = local[members[int(rng.integers(len(members)))]]
                weights[i] = weights[worst]
            continue
        sites = np.column_stack([np.bincount(label, local[:, 0], n) / got, np.bincount(label, local[:, 1], n) / got])
        # Raising a weight by dw moves the cell's edges out by about
        # dw / (2 * site spacing), i.e. grows its area by about 2 * dw.
        weights = weights + 0.35 * (share - got / count) * area
        weights -= weights.mean()
    cells = power_cells(parent, sites + origin, weights)
    return PowerPartition(sites + origin, weights, cells)
