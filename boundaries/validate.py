"""Validation of a draft before publishing: a report of findings, each with a location.

Errors block publishing; warnings do not. Checks:

* ``invalid_geometry`` (error): self-intersections and other invalid rings;
* ``overlap`` (error) between polygons of the layer, and ``edge_mismatch`` (warning) where
  neighbours' edges do not match vertex for vertex (shapely's coverage check);
* ``gap`` (error): parts of a parent not covered by its children;
* ``not_nested`` (error): a polygon reaching outside its parent, or a polygon of the layer
  below straddling two of the new polygons;
* ``sliver`` (warning): polygon parts under the configured area;
* ``duplicate_code``, ``malformed_code``, ``unknown_parent`` (errors);
* ``households_low`` / ``households_high`` (warnings): households counted from the buildings
  inside, against the configured ranges for grids and micro-grids;
* ``no_grid_leader`` / ``no_grid_worker`` (errors when a predecessor grid had one, else
  warnings), ``no_aux_police`` and ``no_staff`` (warnings), ``posting_plan`` (error: a posting
  decision that does not fit) and ``posting_ends`` (warning): the people after the redraw's
  posting moves (boundaries/postingplan.py);
* ``deleted_with_open_incidents`` (error): a polygon removed while open incidents are assigned to
  it and no remaining polygon declares it takes them over (``attrs.absorbs``/``previous_code``).

Areas are measured in EPSG:4549 (metres), once for the whole layer, so the county's ~6,000
micro-grids validate in about a second.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
import sqlalchemy as sa
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from boundaries.drafts import DraftInfo, base_features, get_draft, load_features
from gis.core.predicates import is_open
from gis.core.settings import Settings
from gis.core.vocab import CHILD_LAYER, PARENT_LAYER
from gis.spatial.areas import Conn, load_layer
from gis.spatial.crs import from_metric, to_metric

# The suffix each layer's code adds to its parent's code (mini county and the Jiashan demo alike).
CODE_SUFFIX = {
    "town": r"\d{3}",
    "village": r"\d{3}",
    "grid": r"\d{3}",
    "micro_grid": r"\d{2}",
    "station": r"P\d{2}",
    "beat": r"\d{2}",
}
OPEN_INCIDENT = is_open()
ASSIGN_COLUMN = {
    "town": "town_code",
    "village": "village_code",
    "grid": "grid_code",
    "micro_grid": "micro_grid_code",
    "station": "station_code",
    "beat": "beat_code",
}
ObjArray = npt.NDArray[np.object_]
# Square metres per square degree never exceed this (equator: 111.32 km x 110.57 km): areas in
# degrees times it bound true areas from above, so the cheap prefilters below never miss a finding.
M2_PER_DEG2_MAX = 1.2309e10


@dataclass(frozen=True)
class Rules:
    sliver_m2: float = 100.0
    tolerance_m2: float = 1.0  # overlaps, gaps and nesting below this are rounding, not findings
    households: dict[str, tuple[int, int]] = field(default_factory=lambda: {"grid": (300, 500), "micro_grid": (50, 80)})

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(
            sliver_m2=settings.boundary_sliver_m2,
            households={
                "grid": (settings.grid_households_min, settings.grid_households_max),
                "micro_grid": (settings.micro_grid_households_min, settings.micro_grid_households_max),
            },
        )


@dataclass
class Finding:
    kind: str
    severity: str  # "error" | "warning"
    message: str
    code: str | None
    lon: float
    lat: float
    geometry: dict[str, Any] | None = None


@dataclass
class Report:
    layer: str
    features: int
    findings: list[Finding]
    draft_id: int | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def kinds(self) -> set[str]:
        return {f.kind for f in self.findings}

    def to_dict(self) -> dict[str, Any]:
        return {
            "draft_id": self.draft_id,
            "layer": self.layer,
            "features": self.features,
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [asdict(f) for f in self.findings],
        }


def _metric(geoms: Any) -> ObjArray:
    def fn(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = to_metric(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return np.asarray(shapely.transform(np.asarray(geoms, dtype=object), fn), dtype=object)


def _to_lonlat(geom: BaseGeometry) -> BaseGeometry:
    def fn(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        lon, lat = from_metric(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geom, fn)


def _finding(
    kind: str, severity: str, message: str, code: str | None, where: BaseGeometry, *, metric: bool, draw: bool = True
) -> Finding:
    geom = _to_lonlat(where) if metric else where
    point = geom if geom.geom_type == "Point" else geom.representative_point()
    shape = None
    if draw and geom.geom_type != "Point":
        # Rounded to ~1 cm for the map; an invalid shape is shown as it is.
        shape = mapping(shapely.set_precision(geom, 1e-7) if geom.is_valid else geom)
    return Finding(kind, severity, message, code, round(point.x, 7), round(point.y, 7), shape)


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


def area_m2(geoms: Any) -> npt.NDArray[np.float64]:
    """Areas in square metres. Topology is computed on the stored degrees (shared vertices stay
    shared; projecting first would bend shared edges apart), and only results are projected."""
    return np.asarray(shapely.area(_metric(np.atleast_1d(np.asarray(geoms, dtype=object)))), dtype=np.float64)


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


def validate_draft(conn: Conn, draft_id: int, rules: Rules | None = None) -> Report:
    """The full report for a draft: geometry checks plus households, staff and incidents."""
    rules = rules or Rules()
    info = get_draft(conn, draft_id)
    features = load_features(conn, draft_id)
    base = base_features(conn, info)
    whole = load_layer(conn, info.layer, info.base_generation)
    others = whole[~whole["code"].isin(set(base["code"]))].reset_index(drop=True)
    parent_layer = PARENT_LAYER.get(info.layer)
    parents = load_layer(conn, parent_layer, info.base_generation) if parent_layer else None
    findings: list[Finding] = []
    if not len(features):
        where = base.geometry.union_all().representative_point() if len(base) else shapely.Point(0, 0)
        findings.append(
            _finding("empty_draft", "error", f"draft {draft_id} has no polygons", None, where, metric=False, draw=False)
        )
        return Report(info.layer, 0, findings, draft_id)
    findings += check_layer_geometry(features, info.layer, parents, others, rules)
    # The people: the posting plan's problems (any layer) and, for grids, leaders and workers.
    # Imported here: boundaries.postingplan builds on this module.
    from boundaries.postingplan import posting_plan, staffing_findings

    findings += staffing_findings(posting_plan(conn, draft_id, features=features, base=base), features)
    # Overlay checks need valid shapes; invalid ones are already reported.
    valid = features[shapely.is_valid(np.asarray(features.geometry.values, dtype=object))].reset_index(drop=True)
    findings += _check_children(conn, info, valid, rules)
    findings += _check_households(conn, info.layer, valid, others, rules)
    findings += _check_deleted(conn, info, features, base)
    return Report(info.layer, len(features), findings, draft_id)


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


def count_households(
    conn: Conn, layer_codes: ObjArray, geoms: ObjArray, focus: int | None = None
) -> npt.NDArray[np.int64]:
    """Households of the buildings inside each polygon (shared edges go to the smaller code).

    Only buildings within the bounds of the first ``focus`` polygons are read; the others take
    part in the edge rule only.
    """
    totals = np.zeros(len(geoms), dtype=np.int64)
    if not len(geoms):
        return totals
    x0, y0, x1, y1 = shapely.total_bounds(geoms[: focus or len(geoms)])
    # One row back: the points as a single WKB MultiPoint and their households as one array, far
    # cheaper to transfer and decode than 100,000s of rows.
    row = conn.execute(
        sa.text(
            "SELECT ST_AsBinary(ST_Collect(geom ORDER BY id)), array_agg(households ORDER BY id) FROM buildings "
            "WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)"
        ),
        {"x0": x0, "y0": y0, "x1": x1, "y1": y1},
    ).one()
    if row[0] is None:
        return totals
    points = shapely.get_parts(shapely.from_wkb(bytes(row[0])))
    households = np.asarray(row[1], dtype=np.int64)
    idx = covering_index(layer_codes, geoms, points)
    ok = idx >= 0
    np.add.at(totals, idx[ok], households[ok])
    return totals


def covering_index(codes: ObjArray, geoms: ObjArray, points: ObjArray) -> npt.NDArray[np.int64]:
    """Per point, the index of the smallest-code polygon covering it, -1 where none (gis.spatial.assign's rule)."""
    order = np.argsort(codes.astype(str), kind="stable")
    tree = shapely.STRtree(geoms[order])
    big = np.iinfo(np.int64).max
    rank = np.full(len(points), big, dtype=np.int64)
    pts, polys = tree.query(points, predicate="intersects")
    np.minimum.at(rank, pts, polys.astype(np.int64))
    out = np.full(len(points), -1, dtype=np.int64)
    found = rank != big
    out[found] = order[rank[found]]
    return out


def _check_households(
    conn: Conn, layer: str, features: gpd.GeoDataFrame, others: gpd.GeoDataFrame, rules: Rules
) -> list[Finding]:
    limits = rules.households.get(layer)
    if limits is None:
        return []
    has_buildings = conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM buildings)")).scalar()
    if not has_buildings:
        return []  # nothing to count from: the demo or real buildings are not loaded
    all_codes = np.asarray(list(features["code"]) + list(others["code"]), dtype=object)
    all_geoms = np.asarray(list(features.geometry.values) + list(others.geometry.values), dtype=object)
    counts = count_households(conn, all_codes, all_geoms, len(features))[: len(features)]
    low, high = limits
    findings = []
    for code, geom, n in zip(features["code"], features.geometry.values, counts, strict=True):
        if n < low or n > high:
            kind = "households_low" if n < low else "households_high"
            findings.append(
                _finding(
                    kind,
                    "warning",
                    f"{code}: {n} households in its buildings, outside {low}-{high} for a {layer}",
                    code,
                    geom.representative_point(),
                    metric=False,
                )
            )
    return findings


def _check_deleted(conn: Conn, info: DraftInfo, features: gpd.GeoDataFrame, base: gpd.GeoDataFrame) -> list[Finding]:
    gone = sorted(set(base["code"]) - set(features["code"]))
    column = ASSIGN_COLUMN.get(info.layer)
    if not gone or column is None:
        return []
    declared: set[str] = set()
    for attrs in features["attrs"]:
        declared |= set(attrs.get("absorbs", []) or [])
        if attrs.get("previous_code"):
            declared.add(attrs["previous_code"])
    rows = conn.execute(
        sa.text(
            f"SELECT {column}, count(*) FROM incidents WHERE {column} = ANY(:codes) AND {OPEN_INCIDENT} "  # noqa: S608
            f"GROUP BY {column}"
        ),
        {"codes": [c for c in gone if c not in declared]},
    ).all()
    old = dict(zip(base["code"], base.geometry.values, strict=True))
    return [
        _finding(
            "deleted_with_open_incidents",
            "error",
            f"{code} is deleted but holds {n} open incident(s); merge it into a neighbour or name a successor",
            code,
            old[code],
            metric=False,
        )
        for code, n in rows
    ]
