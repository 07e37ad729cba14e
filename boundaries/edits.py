"""Edit operations on a draft: split, merge, move a micro-grid, move a shared edge, rename/recode.

Each operation changes only the draft's polygons, is recorded in the audit log, and keeps the
layer a coverage: what one polygon loses another gains, so no gap or overlap is introduced.
Geometry work is in degrees (EPSG:4326) as stored; splitting lines are extended a little past
their ends so that a line drawn by hand "up to" a boundary still cuts through it.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import shapely
import sqlalchemy as sa
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import split as split_geometry

from boundaries.drafts import DraftError, delete_features, load_features, put_features, require_open
from gis.core import audit
from gis.core.predicates import in_generation
from gis.spatial.areas import Conn

# Degrees (~10 m) a cutting line is extended at both ends.
LINE_EXTENSION_DEG = 1e-4


class EditError(DraftError):
    """An edit that cannot be applied; the message names the polygon and the reason."""


def _features(conn: Conn, draft_id: int) -> dict[str, dict[str, Any]]:
    require_open(conn, draft_id, lock=True)
    return {r["code"]: r for r in load_features(conn, draft_id).to_dict("records")}


def _get(features: dict[str, dict[str, Any]], code: str, draft_id: int) -> dict[str, Any]:
    feature = features.get(code)
    if feature is None:
        raise EditError(f"draft {draft_id} has no polygon with code {code!r}")
    return feature


def _save(conn: Conn, draft_id: int, records: list[dict[str, Any]]) -> None:
    put_features(conn, draft_id, gpd.GeoDataFrame(records, geometry="geometry", crs=4326))


def _as_line(line: BaseGeometry | dict[str, Any] | list[list[float]]) -> LineString:
    if isinstance(line, dict):
        line = shapely.geometry.shape(line)
    elif isinstance(line, list):
        line = LineString(line)
    if not isinstance(line, LineString) or len(line.coords) < 2:
        raise EditError("the cutting line must be a LineString of at least two points (lon, lat)")
    return line


def _extend(line: LineString, by: float = LINE_EXTENSION_DEG) -> LineString:
    coords = list(line.coords)

    def push(p: tuple[float, ...], q: tuple[float, ...]) -> tuple[float, float]:
        dx, dy = p[0] - q[0], p[1] - q[1]
        norm = (dx * dx + dy * dy) ** 0.5 or 1.0
        return (p[0] + dx / norm * by, p[1] + dy / norm * by)

    return LineString([push(coords[0], coords[1]), *coords[1:-1], push(coords[-1], coords[-2])])


def _cut(geom: BaseGeometry, line: LineString, what: str) -> list[Polygon]:
    pieces = [p for p in split_geometry(geom, _extend(line)).geoms if isinstance(p, Polygon) and p.area > 0]
    if len(pieces) < 2:
        raise EditError(f"the line does not cut {what} in two (it must cross the polygon from edge to edge)")
    return pieces


def _cuts(geom: BaseGeometry, line: LineString) -> bool:
    return len(split_geometry(geom, _extend(line)).geoms) > 1


def split_polygon(
    conn: Conn,
    draft_id: int,
    line: BaseGeometry | dict[str, Any] | list[list[float]],
    *,
    actor: str,
    code: str | None = None,
    new_code: str,
    new_name: str | None = None,
) -> list[str]:
    """Cut polygon ``code`` (default: the one polygon the line crosses) in two along ``line``.

    The larger piece keeps the code; the other becomes ``new_code``. Households are left for
    validation to recount from the buildings.
    """
    features = _features(conn, draft_id)
    cutter = _as_line(line)
    if code is None:
        crossed = [c for c, f in features.items() if _cuts(f["geometry"], cutter)]
        if len(crossed) != 1:
            found = ", ".join(crossed) or "none"
            raise EditError(f"name the polygon to split: the line crosses {len(crossed)} polygons ({found})")
        code = crossed[0]
    if new_code in features:
        raise EditError(f"draft {draft_id} already has code {new_code!r}")
    feature = _get(features, code, draft_id)
    pieces = sorted(_cut(feature["geometry"], cutter, f"polygon {code}"), key=lambda p: -p.area)
    keep = MultiPolygon([pieces[0]])
    rest = shapely.union_all(pieces[1:])
    new_feature = {
        **feature,
        "code": new_code,
        "name": new_name or f"{feature['name']}({new_code})",
        "households": None,
        "attrs": {k: v for k, v in feature["attrs"].items() if k not in ("absorbs", "previous_code")},
        "geometry": rest,
    }
    _save(conn, draft_id, [{**feature, "households": None, "geometry": keep}, new_feature])
    audit.record(conn, actor, "draft.split", f"draft:{draft_id}", code=code, new_code=new_code)
    return [code, new_code]


def merge_polygons(conn: Conn, draft_id: int, codes: list[str], *, actor: str, into: str | None = None) -> str:
    """Merge ``codes`` into one polygon keeping the code ``into`` (default the first code).

    The other codes disappear; the result records them under ``attrs.absorbs`` so their open
    incidents have a declared destination.
    """
    if len(set(codes)) < 2:
        raise EditError("merging needs at least two different codes")
    into = into or codes[0]
    if into not in codes:
        raise EditError(f"the surviving code {into!r} must be one of the merged codes")
    features = _features(conn, draft_id)
    parts = [_get(features, c, draft_id) for c in codes]
    merged = shapely.union_all([p["geometry"] for p in parts])
    if not isinstance(merged, Polygon):
        raise EditError(f"polygons {', '.join(codes)} do not form one connected area; merge neighbours only")
    target = features[into]
    absorbs = sorted(set(target["attrs"].get("absorbs", [])) | {c for c in codes if c != into})
    households = [p["households"] for p in parts]
    total = None if any(h is None or h != h for h in households) else int(sum(households))
    _save(
        conn,
        draft_id,
        [{**target, "households": total, "attrs": {**target["attrs"], "absorbs": absorbs}, "geometry": merged}],
    )
    delete_features(conn, draft_id, [c for c in codes if c != into])
    audit.record(conn, actor, "draft.merge", f"draft:{draft_id}", codes=codes, into=into)
    return into


def move_shared_edge(
    conn: Conn,
    draft_id: int,
    code_a: str,
    code_b: str,
    line: BaseGeometry | dict[str, Any] | list[list[float]],
    *,
    actor: str,
) -> None:
    """Redraw the border between neighbours ``code_a`` and ``code_b`` as ``line``.

    The two polygons are joined and cut again along the new line; each keeps the piece that
    overlaps most with its old shape. Both change together, so no gap or overlap appears.
    """
    features = _features(conn, draft_id)
    a, b = _get(features, code_a, draft_id), _get(features, code_b, draft_id)
    if not a["geometry"].touches(b["geometry"]) and not a["geometry"].intersects(b["geometry"]):
        raise EditError(f"polygons {code_a} and {code_b} are not neighbours")
    joined = shapely.union_all([a["geometry"], b["geometry"]])
    pieces = _cut(joined, _as_line(line), f"polygons {code_a}+{code_b}")
    if len(pieces) != 2:
        raise EditError(f"the new edge cuts {code_a}+{code_b} into {len(pieces)} pieces; it must make exactly two")
    first, second = pieces
    if first.intersection(a["geometry"]).area + second.intersection(b["geometry"]).area < (
        second.intersection(a["geometry"]).area + first.intersection(b["geometry"]).area
    ):
        first, second = second, first
    _save(
        conn,
        draft_id,
        [{**a, "households": None, "geometry": first}, {**b, "households": None, "geometry": second}],
    )
    audit.record(conn, actor, "draft.move_edge", f"draft:{draft_id}", a=code_a, b=code_b)


def move_micro_grid(conn: Conn, draft_id: int, micro_grid: str, to_grid: str, *, actor: str) -> str:
    """Move micro-grid ``micro_grid`` to grid ``to_grid``.

    In a grid draft the micro-grid's area (from the base generation) leaves the grid that held it
    and joins ``to_grid``; publishing re-parents the micro-grid. In a micro-grid draft only its
    parent code changes (validation then checks it lies inside that grid).
    """
    info = require_open(conn, draft_id, lock=True)
    if info.layer == "micro_grid":
        features = _features(conn, draft_id)
        feature = _get(features, micro_grid, draft_id)
        _save(conn, draft_id, [{**feature, "parent_code": to_grid}])
        audit.record(conn, actor, "draft.move_micro_grid", f"draft:{draft_id}", micro_grid=micro_grid, to=to_grid)
        return str(feature["parent_code"] or "")
    if info.layer != "grid":
        raise EditError(f"moving a micro-grid needs a grid or micro_grid draft; draft {draft_id} is {info.layer}")
    row = conn.execute(
        sa.text(
            "SELECT ST_AsBinary(geom) FROM areas WHERE layer = 'micro_grid' AND code = :c "  # noqa: S608
            f"AND {in_generation()}"
        ),
        {"c": micro_grid, "g": info.base_generation},
    ).scalar()
    if row is None:
        raise EditError(f"no micro-grid {micro_grid!r} in generation {info.base_generation}")
    area = shapely.from_wkb(bytes(row))
    features = _features(conn, draft_id)
    target = _get(features, to_grid, draft_id)
    holders = [f for c, f in features.items() if c != to_grid and f["geometry"].intersection(area).area > 0]
    if not holders:
        raise EditError(f"micro-grid {micro_grid} is not in any other grid of draft {draft_id}")
    grown = shapely.union_all([target["geometry"], area])
    if not isinstance(grown, Polygon):
        raise EditError(f"micro-grid {micro_grid} does not border grid {to_grid}")
    records = [{**target, "households": None, "geometry": grown}]
    for holder in holders:
        shrunk = holder["geometry"].difference(area)
        if shrunk.is_empty:
            raise EditError(f"moving {micro_grid} would leave grid {holder['code']} empty; merge it instead")
        records.append({**holder, "households": None, "geometry": _polygonal(shrunk)})
    _save(conn, draft_id, records)
    audit.record(conn, actor, "draft.move_micro_grid", f"draft:{draft_id}", micro_grid=micro_grid, to=to_grid)
    return ",".join(h["code"] for h in holders)


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Drop lines and points that set operations can leave along shared edges."""
    if isinstance(geom, (Polygon, MultiPolygon)):
        return geom
    polys = [g for g in getattr(geom, "geoms", []) if isinstance(g, (Polygon, MultiPolygon))]
    return shapely.union_all(polys)


def rename(
    conn: Conn,
    draft_id: int,
    code: str,
    *,
    actor: str,
    new_code: str | None = None,
    name: str | None = None,
    parent_code: str | None = None,
    households: int | None = None,
) -> str:
    """Rename, recode or re-parent a polygon. A recode remembers ``previous_code``."""
    features = _features(conn, draft_id)
    feature = dict(_get(features, code, draft_id))
    if name is not None:
        feature["name"] = name
    if parent_code is not None:
        feature["parent_code"] = parent_code
    if households is not None:
        feature["households"] = households
    if new_code is not None and new_code != code:
        if new_code in features:
            raise EditError(f"draft {draft_id} already has code {new_code!r}")
        feature["code"] = new_code
        feature["attrs"] = {**feature["attrs"], "previous_code": feature["attrs"].get("previous_code", code)}
        delete_features(conn, draft_id, [code])
    _save(conn, draft_id, [feature])
    audit.record(conn, actor, "draft.rename", f"draft:{draft_id}", code=code, new_code=new_code, name=name)
    return str(feature["code"])


def delete_polygon(conn: Conn, draft_id: int, code: str, *, actor: str, successor: str | None = None) -> None:
    """Delete a polygon; ``successor`` (a polygon of the draft) takes over its open incidents."""
    features = _features(conn, draft_id)
    _get(features, code, draft_id)
    if successor is not None:
        heir = _get(features, successor, draft_id)
        absorbs = sorted(set(heir["attrs"].get("absorbs", [])) | {code})
        _save(conn, draft_id, [{**heir, "attrs": {**heir["attrs"], "absorbs": absorbs}}])
    delete_features(conn, draft_id, [code])
    audit.record(conn, actor, "draft.delete", f"draft:{draft_id}", code=code, successor=successor)
