"""Publishing a draft, and rolling back, as new boundary generations.

One transaction does everything, so a failure leaves the generation in force untouched: a new
generation is opened, the rows it replaces are closed (they stay queryable in their
generations), the new rows are inserted, polygons of the layer below that now lie in another
polygon get their parent code updated, the generation is marked published (NOTIFY for
in-memory indexes), the buildings, addresses, hazards and open incidents near the change
are reassigned, and the postings of deleted, split and merged units move to their successors
(boundaries/postingplan.py: old postings end the day before, new ones start on the publish day).
Publishes are serialised by an advisory lock; a draft whose base is no longer the generation in
force is refused (optimistic concurrency) and must be rebased. A draft whose validation report
has errors (geometry, open incidents, a grid left without its leader or full-time worker) is
refused with the report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry

from boundaries.drafts import DraftError, base_features, load_features, require_open
from boundaries.findings import Report, Rules
from boundaries.generations import close_rows, insert_rows, mark_published, new_generation
from boundaries.households import covering_index
from boundaries.impact import Changes, changed_extent, compare_layers
from boundaries.postingplan import apply_plan, posting_plan
from boundaries.validate import validate_draft
from gis.core import audit
from gis.core.vocab import CHILD_LAYER, LAYERS
from gis.spatial.areas import Conn, current_generation, list_generations, load_layer
from gis.spatial.reassign import ReassignResult, reassign_extent

# pg_advisory_xact_lock key shared by everything that opens a generation from a draft.
PUBLISH_LOCK = 0x6772_6964  # "grid"


class StaleDraftError(DraftError):
    """The draft's base generation has been superseded (HTTP 409)."""

    def __init__(self, draft_id: int, base: int, superseded_by: int, detail: str):
        self.draft_id, self.base, self.superseded_by = draft_id, base, superseded_by
        super().__init__(
            f"draft {draft_id} is based on generation {base}, but generation {superseded_by} ({detail}) is now "
            f"in force; rebase it (POST /boundaries/drafts/{draft_id}/rebase or "
            f"`gridmap boundaries rebase {draft_id}`), check the result, then publish again"
        )


class PublishBlockedError(DraftError):
    """Validation found errors; the report says which and where (HTTP 422)."""

    def __init__(self, report: Report):
        self.report = report
        shown = "; ".join(f.message for f in report.errors[:5])
        more = f" (and {len(report.errors) - 5} more)" if len(report.errors) > 5 else ""
        super().__init__(f"draft {report.draft_id} has {len(report.errors)} validation error(s): {shown}{more}")


@dataclass
class PublishResult:
    generation: int
    layers: dict[str, dict[str, list[str]]]
    reassigned: list[ReassignResult] = field(default_factory=list)
    seconds: float = 0.0
    postings: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "layers": self.layers,
            "reassigned": {r.table: {"examined": r.examined, "changed": r.changed} for r in self.reassigned},
            "postings": self.postings,
            "seconds": round(self.seconds, 3),
        }


def _lock(conn: Conn) -> None:
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PUBLISH_LOCK})


def _superseded(conn: Conn, draft_id: int, base: int, current: int) -> StaleDraftError:
    info = next(g for g in list_generations(conn) if g.id == current)
    when = f"{info.published_at:%Y-%m-%d %H:%M}" if info.published_at else "unpublished"
    return StaleDraftError(draft_id, base, current, f"published {when} by {info.author}: {info.note or 'no note'}")


def draft_county(scope_code: str | None) -> str | None:
    """The county a draft is confined to: its scope code's first six digits; None for a draft of
    the whole deployment."""
    if scope_code is None or len(scope_code) < 6 or not scope_code[:6].isdigit():
        return None
    return scope_code[:6]


def _superseding(conn: Conn, base: int, county: str | None) -> int | None:
    """The latest generation published after ``base`` that may have changed the draft's units:
    any when the draft is deployment-wide, else one of its county or deployment-wide. Another
    county's publication does not make a county's draft stale."""
    sql = "SELECT max(id) FROM generations WHERE published_at IS NOT NULL AND id > :b"
    if county is not None:
        sql += " AND (county_code IS NULL OR county_code = :c)"
    found = conn.execute(sa.text(sql), {"b": base, "c": county}).scalar()
    return int(found) if found is not None else None


def _subset(gdf: gpd.GeoDataFrame, codes: list[str]) -> gpd.GeoDataFrame:
    return gdf[gdf["code"].isin(set(codes))].reset_index(drop=True)


def _reparented_children(
    conn: Conn, layer: str, generation: int, new_layer: gpd.GeoDataFrame, extent: BaseGeometry | None
) -> gpd.GeoDataFrame:
    """Polygons of the layer below whose representative point now lies in another parent."""
    child_layer = CHILD_LAYER.get(layer)
    if child_layer is None or extent is None:
        return gpd.GeoDataFrame({"code": []}, geometry=[], crs=4326)
    children = load_layer(conn, child_layer, generation)
    if not len(children):
        return children
    points = shapely.point_on_surface(np.asarray(children.geometry.values, dtype=object))
    near = shapely.intersects(extent, points)
    children, points = children[near].reset_index(drop=True), points[near]
    codes = np.asarray(new_layer["code"], dtype=object)
    idx = covering_index(codes, np.asarray(new_layer.geometry.values, dtype=object), points)
    new_parent = np.asarray([codes[i] if i >= 0 else None for i in idx], dtype=object)
    moved = (idx >= 0) & (new_parent != children["parent_code"].to_numpy(dtype=object))
    out = children[moved].reset_index(drop=True)
    out["parent_code"] = new_parent[moved]
    return out


def _apply(conn: Conn, layer: str, new: gpd.GeoDataFrame, changes: Changes, generation: int) -> None:
    close_rows(conn, layer, changes.removed + changes.changed, generation)
    insert_rows(conn, layer, _subset(new, changes.added + changes.changed), generation)


def _summary(changes: Changes) -> dict[str, list[str]]:
    return {"added": changes.added, "removed": changes.removed, "changed": changes.changed}


def publish_draft(
    conn: Conn,
    draft_id: int,
    *,
    actor: str,
    note: str = "",
    rules: Rules | None = None,
    snap_tolerance_m: float = 50.0,
) -> PublishResult:
    """Publish a draft as a new generation in force from now (the caller's transaction commits)."""
    started = time.perf_counter()
    _lock(conn)
    info = require_open(conn, draft_id, lock=True)
    current = current_generation(conn)
    county = draft_county(info.scope_code)
    later = _superseding(conn, info.base_generation, county)
    if later is not None:
        raise _superseded(conn, draft_id, info.base_generation, later)
    report = validate_draft(conn, draft_id, rules)
    if not report.ok:
        raise PublishBlockedError(report)
    features, base = load_features(conn, draft_id), base_features(conn, info)
    changes = compare_layers(base, features)
    if not changes.any:
        raise DraftError(f"draft {draft_id} changes nothing; there is nothing to publish")
    plan = posting_plan(conn, draft_id, features=features, base=base)
    extent = changed_extent(base, features, changes)
    # The layer in force: other counties may have published since the draft's base (their units
    # are not the draft's; its own county's are unchanged since the base, checked above).
    in_force = current if current is not None else info.base_generation
    whole = load_layer(conn, info.layer, in_force)
    assembled = gpd.GeoDataFrame(
        [*whole[~whole["code"].isin(set(base["code"]))].to_dict("records"), *features.to_dict("records")],
        geometry="geometry",
        crs=4326,
    )
    children = _reparented_children(conn, info.layer, in_force, assembled, extent)
    layers = [info.layer] + ([CHILD_LAYER[info.layer]] if len(children) else [])
    generation = new_generation(
        conn,
        layers,
        note=note or info.note or f"draft {draft_id}",
        author=actor,
        based_on=info.base_generation,
        county=county,
    )
    _apply(conn, info.layer, features, changes, generation)
    summary = {info.layer: _summary(changes)}
    if len(children):
        child_layer = CHILD_LAYER[info.layer]
        moved = list(children["code"])
        _apply(conn, child_layer, children, Changes(changed=moved), generation)
        summary[child_layer] = {"added": [], "removed": [], "changed": moved}
    mark_published(conn, generation)
    reassigned = reassign_extent(conn, generation, shapely.to_wkb(extent), snap_tolerance_m=snap_tolerance_m)
    # The people follow their units; the new units are in force now, so postings can name them.
    postings = apply_plan(conn, plan, actor=actor, generation=generation)
    conn.execute(
        sa.text("UPDATE drafts SET status = 'published', published_generation = :g, updated_at = now() WHERE id = :id"),
        {"g": generation, "id": draft_id},
    )
    result = PublishResult(generation, summary, reassigned, time.perf_counter() - started, postings)
    audit.record(
        conn,
        actor,
        "boundaries.publish",
        f"generation:{generation}",
        draft=draft_id,
        why=note or info.note,
        based_on=info.base_generation,
        **{"changes": summary, "reassigned": result.to_dict()["reassigned"], "postings": postings},
    )
    return result


def restore_generation(
    conn: Conn,
    generation: int,
    *,
    actor: str,
    note: str = "",
    snap_tolerance_m: float = 50.0,
    county: str | None = None,
) -> PublishResult:
    """Roll back: publish the polygons of an earlier ``generation`` again, as a new generation;
    with ``county``, only that county's units (other counties keep what they have now)."""
    started = time.perf_counter()
    _lock(conn)
    current = current_generation(conn)
    known = {g.id: g for g in list_generations(conn)}
    if generation not in known or known[generation].published_at is None:
        raise DraftError(f"generation {generation} was never published; see GET /boundaries/generations")
    if current == generation:
        raise DraftError(f"generation {generation} is already in force")
    assert current is not None
    plan: dict[str, tuple[gpd.GeoDataFrame, Changes, BaseGeometry | None]] = {}
    for layer in LAYERS:
        now, then = load_layer(conn, layer, current), load_layer(conn, layer, generation)
        if county is not None:
            now, then = (f[f["code"].str.startswith(county)].reset_index(drop=True) for f in (now, then))
        changes = compare_layers(now, then)
        if changes.any:
            plan[layer] = (then, changes, changed_extent(now, then, changes))
    if not plan:
        raise DraftError(f"generation {generation} has the same boundaries as generation {current}; nothing to restore")
    why = note or f"restore of generation {generation}"
    new = new_generation(conn, plan.keys(), note=why, author=actor, based_on=current, county=county)
    for layer, (then, changes, _) in plan.items():
        _apply(conn, layer, then, changes, new)
    mark_published(conn, new)
    extents = [e for _, _, e in plan.values() if e is not None]
    reassigned = (
        reassign_extent(conn, new, shapely.to_wkb(shapely.union_all(extents)), snap_tolerance_m=snap_tolerance_m)
        if extents
        else []
    )
    summary = {layer: _summary(changes) for layer, (_, changes, _) in plan.items()}
    result = PublishResult(new, summary, reassigned, time.perf_counter() - started)
    audit.record(
        conn,
        actor,
        "boundaries.restore",
        f"generation:{new}",
        restored=generation,
        why=why,
        based_on=current,
        changes=summary,
    )
    return result
