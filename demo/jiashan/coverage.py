"""Turn approximate cells into an exact polygonal coverage.

Cells clipped one by one agree with their neighbours only to floating-point
precision, which ``shapely.coverage_is_valid`` rejects.  So all cell rings are
noded together once with snap-rounding on a 1 mm grid (near-coincident edges
become one edge), polygonized into atomic faces, and every face is given to
the leaf cell that contains it.  Every unit at every level is then the
coverage union of its leaves' faces, so neighbours share identical vertices
and each parent is exactly the union of its children.  Several hierarchies
(administrative and police) can share one arrangement: their outlines then
agree exactly too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry

from demo.jiashan.outline import as_multipolygon

GeomArray = npt.NDArray[np.object_]
IntArray = npt.NDArray[np.int64]

SNAP_GRID_M = 0.001


class CoverageError(ValueError):
    """The cells could not be turned into a valid coverage."""


def node_faces(outline: BaseGeometry, cells: Sequence[GeomArray]) -> GeomArray:
    """Atomic faces of the arrangement of ``outline`` and all ``cells`` rings, inside ``outline``."""
    rings = [shapely.boundary(outline)]
    for level in cells:
        rings.extend(shapely.boundary(np.asarray(level, dtype=object)).tolist())
    noded = shapely.union_all(np.array(rings, dtype=object), grid_size=SNAP_GRID_M)
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))), dtype=object)
    # Holes of the outline polygonize too; keep only faces inside it.
    probe = shapely.point_on_surface(faces)
    inside = shapely.contains(outline, probe)
    return faces[inside]


def label_faces(faces: GeomArray, leaves: GeomArray) -> IntArray:
    """Index of the leaf cell holding each face (nearest leaf if none contains it)."""
    probe = shapely.point_on_surface(faces)
    tree = shapely.STRtree(leaves)
    face_idx, leaf_idx = tree.query(probe, predicate="intersects")
    label = np.full(len(faces), -1, dtype=np.int64)
    # Reverse so that, where a probe touches two leaves, the first listed wins.
    label[face_idx[::-1]] = leaf_idx[::-1]
    missing = np.flatnonzero(label < 0)
    if len(missing):
        near_face, near_leaf = tree.query_nearest(probe[missing], all_matches=False)
        label[missing[near_face]] = near_leaf
    return label


def union_by_label(faces: GeomArray, label: IntArray, count: int) -> list[MultiPolygon]:
    """Coverage union of the faces of each label 0..count-1."""
    order = np.argsort(label, kind="stable")
    bounds = np.searchsorted(label[order], np.arange(count + 1))
    out: list[MultiPolygon] = []
    for k in range(count):
        members = faces[order[bounds[k] : bounds[k + 1]]]
        if len(members) == 0:
            raise CoverageError(f"cell {k} received no area after noding")
        merged = members[0] if len(members) == 1 else shapely.coverage_union_all(members)
        out.append(as_multipolygon(merged))
    return out
