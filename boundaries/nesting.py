"""Nesting: a layer's polygons inside their parents with no gap, and the polygons of the layer
below each inside one of the new polygons."""

from __future__ import annotations

from collections import defaultdict

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely

from boundaries.drafts import DraftInfo
from boundaries.findings import M2_PER_DEG2_MAX, Finding, ObjArray, Rules, _finding, area_m2
from gis.core.vocab import CHILD_LAYER
from gis.spatial.areas import Conn, load_layer


def _check_parents(
    features: gpd.GeoDataFrame,
    others: gpd.GeoDataFrame,
    all_geoms: ObjArray,
    all_valid: npt.NDArray[np.bool_],
    parents: gpd.GeoDataFrame,
    rules: Rules,
) -> list[Finding]:
    findings = []
    parent_geom = dict(zip(parents["code"], parents.geometry.values, strict=True))
    shapely.prepare(parents.geometry.values)
    codes = list(features["code"])
    mine = np.asarray([parent_geom.get(p) for p in features["parent_code"]], dtype=object)
    has = np.asarray([g is not None for g in mine], dtype=bool) & all_valid[: len(codes)]
    inside = np.zeros(len(codes), dtype=bool)
    inside[has] = shapely.covers(mine[has], all_geoms[: len(codes)][has])
    for i in np.flatnonzero(has & ~inside):
        code, parent = codes[i], features["parent_code"].iloc[i]
        outside = all_geoms[i].difference(mine[i])
        if outside.is_empty:
            continue
        size = float(area_m2(outside)[0])
        if size > rules.tolerance_m2:
            findings.append(
                _finding(
                    "not_nested",
                    "error",
                    f"{code}: {size:.1f} m² lies outside its parent {parent}",
                    code,
                    outside,
                    metric=False,
                )
            )
    members: dict[str, list[int]] = defaultdict(list)
    all_parents = list(features["parent_code"]) + list(others["parent_code"])
    for k, parent in enumerate(all_parents):
        members[parent].append(k)
    touched = set(features["parent_code"])
    areas = shapely.area(all_geoms)
    for parent in sorted(p for p in touched if p in parent_geom):
        kids = [i for i in members[parent] if all_valid[i]]
        # Children that neither overlap nor stick out leave a gap of exactly the missing area.
        missing = shapely.area(parent_geom[parent]) - float(areas[kids].sum())
        if missing * M2_PER_DEG2_MAX <= rules.tolerance_m2 and all(inside[i] for i in kids if i < len(codes)):
            continue
        covered = shapely.union_all(all_geoms[kids]) if kids else shapely.Polygon()
        pieces = shapely.get_parts(parent_geom[parent].difference(covered))
        if not len(pieces):
            continue
        for piece, size in zip(pieces, area_m2(pieces), strict=True):
            if size > rules.tolerance_m2:
                findings.append(
                    _finding(
                        "gap",
                        "error",
                        f"{size:.1f} m² of {parent} is covered by none of its children",
                        parent,
                        piece,
                        metric=False,
                    )
                )
    return findings


def _check_children(conn: Conn, info: DraftInfo, features: gpd.GeoDataFrame, rules: Rules) -> list[Finding]:
    """Polygons of the layer below must each fall inside one of the new polygons."""
    child_layer = CHILD_LAYER.get(info.layer)
    if child_layer is None:
        return []
    children = load_layer(conn, child_layer, info.base_generation)
    if not len(children):
        return []
    geoms = np.asarray(features.geometry.values, dtype=object)
    tree = shapely.STRtree(geoms)
    kids = np.asarray(children.geometry.values, dtype=object)
    hit_kid, hit_feat = tree.query(kids, predicate="intersects")
    if not len(hit_kid):
        return []
    inter = area_m2(shapely.intersection(kids[hit_kid], geoms[hit_feat]))
    findings = []
    codes = np.asarray(features["code"], dtype=object)
    for k in np.unique(hit_kid):
        rows = np.flatnonzero((hit_kid == k) & (inter > rules.tolerance_m2))
        if len(rows) > 1:
            holders = ", ".join(sorted(str(codes[hit_feat[r]]) for r in rows))
            code = str(children["code"].iloc[k])
            findings.append(
                _finding(
                    "not_nested",
                    "error",
                    f"{child_layer} {code} straddles {info.layer}s {holders}; redraw it too",
                    code,
                    kids[k],
                    metric=False,
                )
            )
    return findings
