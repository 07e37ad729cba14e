"""Households counted from the buildings inside each polygon (shared edges go to the smaller code),
and the check of the counts against the configured ranges."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
import sqlalchemy as sa

from boundaries.findings import Finding, ObjArray, Rules, _finding
from gis.spatial.areas import Conn


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
