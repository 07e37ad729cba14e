"""Drafts (草案): a planner's working copy of one layer within a scope, based on a generation.

A draft starts as a copy of the polygons in force (``draft_features``) whose representative point
lies in the scope (the whole county, or one town/village polygon). Edits change the copy only;
the boundaries in force are untouched until the draft is published (boundaries/publish.py).

Feature ``attrs`` carry two planning hints: ``previous_code`` (set by a recode) and ``absorbs``
(codes of deleted polygons whose open incidents this polygon takes over, set by a merge).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import shapely
import sqlalchemy as sa

from boundaries.generations import as_multipolygon
from gis.core import audit
from gis.core.predicates import in_generation
from gis.spatial.areas import IN_GENERATION, Conn, check_layer, current_generation


class DraftError(ValueError):
    """A draft operation that cannot be done; the message says why."""


class DraftNotFoundError(DraftError):
    pass


class DraftClosedError(DraftError):
    pass


@dataclass(frozen=True)
class DraftInfo:
    id: int
    layer: str
    scope_code: str | None
    base_generation: int
    status: str
    author: str
    note: str
    created_at: dt.datetime
    updated_at: dt.datetime
    published_generation: int | None
    features: int


def _scope_filter(scope_code: str | None) -> str:
    if scope_code is None:
        return "TRUE"
    # The scope polygon comes from the same generation as the rows. An uncorrelated subquery runs
    # once, so the bounding-box test can use the spatial index and the polygon is prepared once.
    scope = (
        "(SELECT s.geom FROM areas s WHERE s.code = :scope AND s.layer <> :layer "  # noqa: S608
        f"AND {in_generation('s')} LIMIT 1)"
    )
    return f"a.geom && {scope} AND ST_Intersects({scope}, ST_PointOnSurface(a.geom))"


def check_scope(conn: Conn, layer: str, scope_code: str | None, generation: int) -> None:
    if scope_code is None:
        return
    found = conn.execute(
        sa.text(f"SELECT layer FROM areas WHERE code = :c AND layer <> :layer AND {IN_GENERATION} LIMIT 1"),  # noqa: S608
        {"c": scope_code, "layer": layer, "g": generation},
    ).scalar()
    if found is None:
        raise DraftError(f"scope {scope_code!r} is not a polygon of another layer in generation {generation}")


def create_draft(conn: Conn, layer: str, scope_code: str | None = None, *, author: str, note: str = "") -> int:
    """Open a draft of ``layer`` in ``scope_code`` (None = whole county) from the generation in force."""
    check_layer(layer)
    base = current_generation(conn)
    if base is None:
        raise DraftError("no boundaries are published yet; load or publish a first generation")
    check_scope(conn, layer, scope_code, base)
    draft_id = int(
        conn.execute(
            sa.text(
                "INSERT INTO drafts (layer, scope_code, base_generation, author, note) "
                "VALUES (:layer, :scope, :g, :author, :note) RETURNING id"
            ),
            {"layer": layer, "scope": scope_code, "g": base, "author": author, "note": note},
        ).scalar_one()
    )
    conn.execute(
        sa.text(
            "INSERT INTO draft_features (draft_id, code, name, parent_code, households, attrs, geom) "  # noqa: S608
            "SELECT :d, a.code, a.name, a.parent_code, a.households, a.attrs, a.geom FROM areas a "
            f"WHERE a.layer = :layer AND {in_generation('a')} "
            f"AND {_scope_filter(scope_code)}"
        ),
        {"d": draft_id, "layer": layer, "g": base, "scope": scope_code},
    )
    audit.record(conn, author, "draft.create", f"draft:{draft_id}", layer=layer, scope=scope_code, base=base)
    return draft_id


def get_draft(conn: Conn, draft_id: int) -> DraftInfo:
    row = conn.execute(
        sa.text(
            "SELECT d.id, d.layer, d.scope_code, d.base_generation, d.status, d.author, d.note, d.created_at, "
            "d.updated_at, d.published_generation, (SELECT count(*) FROM draft_features f WHERE f.draft_id = d.id) "
            "FROM drafts d WHERE d.id = :id"
        ),
        {"id": draft_id},
    ).first()
    if row is None:
        raise DraftNotFoundError(f"no draft with id {draft_id}")
    return DraftInfo(*row)


def require_open(conn: Conn, draft_id: int, *, lock: bool = False) -> DraftInfo:
    if lock:
        conn.execute(sa.text("SELECT 1 FROM drafts WHERE id = :id FOR UPDATE"), {"id": draft_id})
    info = get_draft(conn, draft_id)
    if info.status != "open":
        raise DraftClosedError(f"draft {draft_id} is {info.status}; open a new draft to make changes")
    return info


def list_drafts(conn: Conn, status: str | None = None) -> list[DraftInfo]:
    ids = conn.execute(
        sa.text("SELECT id FROM drafts WHERE (CAST(:s AS text) IS NULL OR status = :s) ORDER BY id"), {"s": status}
    ).scalars()
    return [get_draft(conn, int(i)) for i in ids]


def _frame(rows: Sequence[Any]) -> gpd.GeoDataFrame:
    geoms = shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else []
    return gpd.GeoDataFrame(
        {
            "code": [r.code for r in rows],
            "name": [r.name for r in rows],
            "parent_code": [r.parent_code for r in rows],
            "households": [r.households for r in rows],
            "attrs": [dict(r.attrs or {}) for r in rows],
        },
        geometry=gpd.GeoSeries(geoms, crs=4326),
    )


def load_features(conn: Conn, draft_id: int) -> gpd.GeoDataFrame:
    """The draft's polygons, sorted by code."""
    rows = conn.execute(
        sa.text(
            "SELECT code, name, parent_code, households, attrs, ST_AsBinary(geom) AS wkb "
            "FROM draft_features WHERE draft_id = :d ORDER BY code"
        ),
        {"d": draft_id},
    ).all()
    return _frame(rows)


def base_features(conn: Conn, info: DraftInfo, generation: int | None = None) -> gpd.GeoDataFrame:
    """The polygons of the draft's layer and scope in ``generation`` (default: the draft's base)."""
    g = info.base_generation if generation is None else generation
    rows = conn.execute(
        sa.text(
            "SELECT a.code, a.name, a.parent_code, a.households, a.attrs, ST_AsBinary(a.geom) AS wkb FROM areas a "  # noqa: S608
            f"WHERE a.layer = :layer AND {in_generation('a')} "
            f"AND {_scope_filter(info.scope_code)} ORDER BY a.code"
        ),
        {"layer": info.layer, "g": g, "scope": info.scope_code},
    ).all()
    return _frame(rows)


def _touch(conn: Conn, draft_id: int) -> None:
    conn.execute(sa.text("UPDATE drafts SET updated_at = now() WHERE id = :id"), {"id": draft_id})


def _row(draft_id: int, rec: Mapping[str, Any], geom: object) -> dict[str, Any]:
    code = str(rec.get("code") or "").strip()
    if not code:
        raise DraftError(f"draft {draft_id}: a feature has no code")
    if len(code) > 32:
        raise DraftError(f"draft {draft_id}: code {code!r} is longer than 32 characters")
    mp = as_multipolygon(geom, f"draft {draft_id} feature {code}")
    households = rec.get("households")
    attrs = rec.get("attrs")
    return {
        "d": draft_id,
        "code": code,
        "name": str(rec.get("name") or code),
        "parent": rec.get("parent_code") or None,
        "hh": None if households is None or households != households else int(households),
        "attrs": json.dumps(dict(attrs) if isinstance(attrs, Mapping) else {}, ensure_ascii=False),
        "wkb": shapely.to_wkb(mp),
    }


_UPSERT = sa.text(
    "INSERT INTO draft_features (draft_id, code, name, parent_code, households, attrs, geom) "
    "VALUES (:d, :code, :name, :parent, :hh, CAST(:attrs AS jsonb), ST_GeomFromWKB(:wkb, 4326)) "
    "ON CONFLICT (draft_id, code) DO UPDATE SET name = EXCLUDED.name, parent_code = EXCLUDED.parent_code, "
    "households = EXCLUDED.households, attrs = EXCLUDED.attrs, geom = EXCLUDED.geom"
)


def put_features(conn: Conn, draft_id: int, gdf: gpd.GeoDataFrame) -> int:
    """Insert or overwrite features by code."""
    rows = [_row(draft_id, rec, rec["geometry"]) for rec in gdf.to_dict("records")]
    codes = [r["code"] for r in rows]
    if len(set(codes)) != len(codes):
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        raise DraftError(f"draft {draft_id}: code(s) given twice: {', '.join(dupes)}")
    if rows:
        conn.execute(_UPSERT, rows)
    _touch(conn, draft_id)
    return len(rows)


def delete_features(conn: Conn, draft_id: int, codes: list[str]) -> int:
    result = conn.execute(
        sa.text("DELETE FROM draft_features WHERE draft_id = :d AND code = ANY(:codes)"),
        {"d": draft_id, "codes": codes},
    )
    _touch(conn, draft_id)
    return int(getattr(result, "rowcount", 0) or 0)


def replace_features(
    conn: Conn, draft_id: int, gdf: gpd.GeoDataFrame, *, actor: str, mode: str = "replace", source: str = "upload"
) -> dict[str, int]:
    """Put uploaded or editor-saved features into a draft.

    ``replace``: the features become the whole draft (absent codes are deleted); ``upsert``: only
    the given codes change.
    """
    if mode not in ("replace", "upsert"):
        raise DraftError(f"mode {mode!r} is not one of replace, upsert")
    require_open(conn, draft_id, lock=True)
    if not len(gdf):
        raise DraftError(f"draft {draft_id}: no features given")
    before = set(load_features(conn, draft_id)["code"])
    new_codes = [str(c).strip() for c in gdf["code"]]
    deleted = 0
    if mode == "replace":
        gone = sorted(before - set(new_codes))
        deleted = delete_features(conn, draft_id, gone) if gone else 0
    written = put_features(conn, draft_id, gdf)
    audit.record(conn, actor, f"draft.{source}", f"draft:{draft_id}", mode=mode, written=written, deleted=deleted)
    return {"written": written, "deleted": deleted, "added": len(set(new_codes) - before)}


def rebase_draft(conn: Conn, draft_id: int, *, actor: str) -> dict[str, Any]:
    """Move an open draft onto the generation in force, keeping the planner's edits.

    A three-way merge by code: a feature the planner did not touch takes the current version (or
    goes, if the current generation removed it); a feature the planner changed keeps the
    planner's version and is reported as a conflict when the current generation changed it too.
    """
    info = require_open(conn, draft_id, lock=True)
    current = current_generation(conn)
    if current is None or current == info.base_generation:
        return {"draft": draft_id, "base_generation": info.base_generation, "conflicts": [], "refreshed": []}
    old = {r["code"]: r for r in base_features(conn, info).to_dict("records")}
    new = {r["code"]: r for r in base_features(conn, info, current).to_dict("records")}
    mine = {r["code"]: r for r in load_features(conn, draft_id).to_dict("records")}
    conflicts, refreshed, removed = [], [], []
    for code in sorted(set(old) | set(new) | set(mine)):
        o, n, m = old.get(code), new.get(code), mine.get(code)
        planner_changed = not same_feature(o, m)
        upstream_changed = not same_feature(o, n)
        if not upstream_changed:
            continue
        if planner_changed:
            conflicts.append(code)
        elif n is None:
            removed.append(code)
        else:
            refreshed.append(code)
    if removed:
        delete_features(conn, draft_id, removed)
    if refreshed:
        put_features(conn, draft_id, gpd.GeoDataFrame([new[c] for c in refreshed], geometry="geometry", crs=4326))
    conn.execute(
        sa.text("UPDATE drafts SET base_generation = :g, updated_at = now() WHERE id = :id"),
        {"g": current, "id": draft_id},
    )
    audit.record(
        conn,
        actor,
        "draft.rebase",
        f"draft:{draft_id}",
        old_base=info.base_generation,
        new_base=current,
        conflicts=conflicts,
        refreshed=refreshed,
        removed=removed,
    )
    return {"draft": draft_id, "base_generation": current, "conflicts": conflicts, "refreshed": refreshed + removed}


def same_feature(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Equal code, name, parent, households, attrs and (normalised) geometry."""
    if a is None or b is None:
        return a is None and b is None
    for key in ("name", "parent_code", "attrs"):
        if (a.get(key) or None) != (b.get(key) or None):
            return False
    ha, hb = a.get("households"), b.get("households")
    ha = None if ha is None or ha != ha else int(ha)
    hb = None if hb is None or hb != hb else int(hb)
    if ha != hb:
        return False
    return bool(shapely.equals_exact(shapely.normalize(a["geometry"]), shapely.normalize(b["geometry"]), 1e-9))


def discard_draft(conn: Conn, draft_id: int, *, actor: str) -> None:
    require_open(conn, draft_id, lock=True)
    conn.execute(sa.text("UPDATE drafts SET status = 'discarded', updated_at = now() WHERE id = :id"), {"id": draft_id})
    audit.record(conn, actor, "draft.discard", f"draft:{draft_id}")
