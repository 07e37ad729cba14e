"""Boundary history: the list of generations and the difference between any two of them.

A row unchanged by a publish keeps its id across generations, so the rows that differ between
generations a and b are exactly those valid in one and not the other; pairing them by layer and
code tells added, removed and changed polygons apart without comparing whole layers.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from gis.core.predicates import in_generation
from gis.spatial.areas import Conn, list_generations


class GenerationNotFoundError(ValueError):
    pass


def generations(conn: Conn) -> list[dict[str, Any]]:
    """Every generation with its layers, note, author and times, oldest first; ``in_force`` marks the current one."""
    rows = list_generations(conn)
    current = max((g.id for g in rows if g.published_at is not None), default=None)
    return [
        {
            "id": g.id,
            "layers": [x for x in g.layers.split(",") if x],
            "note": g.note,
            "author": g.author,
            "based_on": g.based_on,
            "created_at": g.created_at,
            "published_at": g.published_at,
            "in_force": g.id == current,
        }
        for g in rows
    ]


def diff_generations(conn: Conn, a: int, b: int) -> dict[str, Any]:
    """Per layer: polygons added, removed and changed from generation ``a`` to ``b``, with area change."""
    known = {g.id for g in list_generations(conn)}
    for g in (a, b):
        if g not in known:
            raise GenerationNotFoundError(f"no generation {g}; see GET /boundaries/generations")
    rows = conn.execute(
        sa.text(
            f"""
            SELECT layer, code, name, parent_code,
                   {in_generation(param="a")} AS in_a,
                   households, attrs, md5(ST_AsBinary(ST_Normalize(geom))) AS shape,
                   ST_Area(geom::geography) AS area_m2
            FROM areas
            WHERE {in_generation(param="a")} <> {in_generation(param="b")}
            ORDER BY layer, code
            """  # noqa: S608 - only the constant predicate is formatted in
        ),
        {"a": a, "b": b},
    ).all()
    pairs: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    for r in rows:
        pairs[(r.layer, r.code)]["a" if r.in_a else "b"] = r
    layers: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for (layer, code), side in sorted(pairs.items()):
        entry = layers.setdefault(layer, {"added": [], "removed": [], "changed": []})  # emptied ones dropped below
        old, new = side.get("a"), side.get("b")
        if old is None and new is not None:
            entry["added"].append({"code": code, "name": new.name, "area_m2": round(new.area_m2, 1)})
        elif new is None and old is not None:
            entry["removed"].append({"code": code, "name": old.name, "area_m2": round(old.area_m2, 1)})
        elif old is not None and new is not None:
            what = [k for k in ("name", "parent_code", "households", "attrs") if getattr(old, k) != getattr(new, k)]
            if old.shape != new.shape:
                what.append("geometry")
            if not what:
                continue  # the same polygon published again (a roll back)
            entry["changed"].append(
                {
                    "code": code,
                    "name": new.name,
                    "area_before_m2": round(old.area_m2, 1),
                    "area_after_m2": round(new.area_m2, 1),
                    "area_change_m2": round(new.area_m2 - old.area_m2, 1),
                    "what": what,
                }
            )
    layers = {layer: entry for layer, entry in layers.items() if any(entry.values())}
    totals = {layer: {k: len(v) for k, v in entry.items()} for layer, entry in layers.items()}
    return {"from": a, "to": b, "layers": layers, "totals": totals}
