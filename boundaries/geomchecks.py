"""The geometry and code checks of a layer, needing no database: invalid geometry, codes (duplicate,
malformed, unknown parent), slivers, overlaps and edge mismatches, and nesting in the parents
(boundaries/nesting.py)."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from boundaries.findings import M2_PER_DEG2_MAX, Finding, ObjArray, Rules, _finding, area_m2
from boundaries.nesting import _check_parents
from gis.core.vocab import PARENT_LAYER

# The suffix each layer's code adds to its parent's code (mini county and the Jiashan demo alike).
CODE_SUFFIX = {
    "town": r"\d{3}",
    "village": r"\d{3}",
    "grid": r"\d{3}",
    "micro_grid": r"\d{2}",
    "station": r"P\d{2}",
    "beat": r"\d{2}",
}


def check_layer_geometry(
    features: gpd.GeoDataFrame,
    layer: str,
    parents: gpd.GeoDataFrame | None,
    others: gpd.GeoDataFrame | None = None,
    rules: Rules | None = None,
) -> list[Finding]:
    """Geometry and code checks needing no database: ``features`` are the draft's polygons,
    ``others`` the layer's polygons outside the draft's scope, ``parents`` the parent layer."""
    rules = rules or Rules()
    findings: list[Finding] = []
    others = others if others is not None else features.iloc[0:0]
    codes: ObjArray = np.asarray(features["code"], dtype=object)
    geoms = np.asarray(features.geometry.values, dtype=object)

    reasons = shapely.is_valid_reason(geoms)
    for i in np.flatnonzero(reasons != "Valid Geometry"):
        where = _reason_point(str(reasons[i])) or geoms[i].representative_point()
        findings.append(
            _finding("invalid_geometry", "error", f"{codes[i]}: {reasons[i]}", codes[i], where, metric=False)
        )
    valid = reasons == "Valid Geometry"

    findings += _check_codes(features, others, layer, parents)
    findings += _check_slivers(codes, geoms, rules)

    other_geoms = np.asarray(others.geometry.values, dtype=object)
    all_geoms = np.concatenate([geoms, other_geoms]) if len(others) else geoms
    all_codes = np.concatenate([codes, np.asarray(others["code"], dtype=object)]) if len(others) else codes
    all_valid = np.concatenate([valid, np.ones(len(others), dtype=bool)])
    findings += _check_overlaps(all_codes, all_geoms, all_valid, len(codes), rules)

    if parents is not None and len(parents):
        findings += _check_parents(features, others, all_geoms, all_valid, parents, rules)
    return findings


_POINT_IN_REASON = re.compile(r"\[([-\d.eE]+) ([-\d.eE]+)\]")


def _reason_point(reason: str) -> BaseGeometry | None:
    match = _POINT_IN_REASON.search(reason)
    return shapely.Point(float(match.group(1)), float(match.group(2))) if match else None


def _check_codes(
    features: gpd.GeoDataFrame, others: gpd.GeoDataFrame, layer: str, parents: gpd.GeoDataFrame | None
) -> list[Finding]:
    findings = []
    outside = set(others["code"])
    parent_codes = set(parents["code"]) if parents is not None else set()
    suffix = CODE_SUFFIX.get(layer)
    pattern = re.compile(suffix) if suffix else None
    seen: set[str] = set()
    for rec in features[["code", "parent_code", "geometry"]].itertuples(index=False):
        code, parent, geom = rec.code, rec.parent_code, rec.geometry
        where = geom.representative_point()
        if code in seen or code in outside:
            findings.append(
                _finding(
                    "duplicate_code",
                    "error",
                    f"code {code} is used twice in layer {layer}",
                    code,
                    where,
                    metric=False,
                    draw=False,
                )
            )
        seen.add(code)
        if PARENT_LAYER.get(layer) is None:
            continue
        if not parent:
            findings.append(
                _finding("unknown_parent", "error", f"{code}: no parent code", code, where, metric=False, draw=False)
            )
            continue
        if parents is not None and parent not in parent_codes:
            findings.append(
                _finding(
                    "unknown_parent",
                    "error",
                    f"{code}: parent {parent} is not a {PARENT_LAYER[layer]} in force",
                    code,
                    where,
                    metric=False,
                    draw=False,
                )
            )
        if pattern and not (str(code).startswith(str(parent)) and pattern.fullmatch(str(code)[len(str(parent)) :])):
            findings.append(
                _finding(
                    "malformed_code",
                    "error",
                    f"{code}: a {layer} code is its parent's code {parent} followed by {suffix}",
                    code,
                    where,
                    metric=False,
                    draw=False,
                )
            )
    return findings


def _check_slivers(codes: ObjArray, geoms: ObjArray, rules: Rules) -> list[Finding]:
    if rules.sliver_m2 <= 0:
        return []
    parts, index = shapely.get_parts(geoms, return_index=True)
    small = np.flatnonzero(shapely.area(parts) * M2_PER_DEG2_MAX < rules.sliver_m2)
    parts, index = parts[small], index[small]
    areas = area_m2(parts) if len(parts) else np.zeros(0)
    return [
        _finding(
            "sliver",
            "warning",
            f"{codes[index[k]]}: a part of {areas[k]:.1f} m² (under {rules.sliver_m2:g} m²)",
            codes[index[k]],
            parts[k],
            metric=False,
        )
        for k in np.flatnonzero(areas < rules.sliver_m2)
    ]


def _check_overlaps(
    codes: ObjArray, geoms: ObjArray, valid: npt.NDArray[np.bool_], n_draft: int, rules: Rules
) -> list[Finding]:
    """Overlaps with area (errors) and unmatched shared edges (warnings), draft polygons only."""
    findings = []
    # The coverage check flags every polygon that overlaps another or whose shared edges only
    # nearly coincide; only those need the costlier pairwise overlap test.
    check = np.flatnonzero(valid)
    edges = shapely.coverage_invalid_edges(geoms[check])
    flagged = check[~shapely.is_empty(edges)]
    hit, other = shapely.STRtree(geoms).query(geoms[flagged], predicate="overlaps")
    pairs = np.column_stack([np.minimum(flagged[hit], other), np.maximum(flagged[hit], other)])
    pairs = np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)
    left, right = pairs[:, 0], pairs[:, 1]
    keep = (left < n_draft) & valid[left] & valid[right]
    left, right = left[keep], right[keep]
    inter = shapely.intersection(geoms[left], geoms[right])
    areas = area_m2(inter) if len(inter) else np.zeros(0)
    for k in np.flatnonzero(areas > rules.tolerance_m2):
        a, b = codes[left[k]], codes[right[k]]
        findings.append(
            _finding("overlap", "error", f"{a} and {b} overlap by {areas[k]:.1f} m²", a, inter[k], metric=False)
        )
    overlapping = {
        codes[i] for i in np.concatenate([left[areas > rules.tolerance_m2], right[areas > rules.tolerance_m2]])
    }
    for j in np.flatnonzero(~shapely.is_empty(edges)):
        i = check[j]
        if i < n_draft and codes[i] not in overlapping:
            findings.append(
                _finding(
                    "edge_mismatch",
                    "warning",
                    f"{codes[i]}: edges do not match its neighbours' exactly",
                    codes[i],
                    edges[j],
                    metric=False,
                )
            )
    return findings
