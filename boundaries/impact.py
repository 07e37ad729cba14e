"""Impact preview: which buildings, addresses, open hazards, open incidents and households a draft moves.

Only points near changed polygons can move, so only those are read. Each point's unit after the
change is found with the same edge rule as assignment (smallest code wins on a shared edge)
among the draft's polygons plus the layer's polygons outside the draft's scope; its unit
before is what is stored on the row now. The postings the redraw moves (person, role, from, to)
come with it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry

from boundaries.drafts import base_features, get_draft, load_features, same_feature
from boundaries.households import covering_index
from boundaries.validate import ASSIGN_COLUMN
from gis.spatial.areas import Conn, load_layer
from gis.spatial.genrule import open_rows_sql

KINDS = ("buildings", "addresses", "hazards", "open_incidents")
# The rows publishing moves: the open work of each table (gis/spatial/genrule.py).
_TABLES = {
    "buildings": ("buildings", open_rows_sql("buildings", None)),
    "addresses": ("addresses", open_rows_sql("addresses", None)),
    "hazards": ("hazards", open_rows_sql("hazards", None)),
    "open_incidents": ("incidents", open_rows_sql("incidents", None)),
}


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # geometry or attributes differ
    reshaped: list[str] = field(default_factory=list)  # geometry differs (a subset of changed)

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def compare_layers(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame) -> Changes:
    """Codes added, removed and changed between two versions of a set of polygons."""
    before = {r["code"]: r for r in old.to_dict("records")}
    after = {r["code"]: r for r in new.to_dict("records")}
    out = Changes(added=sorted(set(after) - set(before)), removed=sorted(set(before) - set(after)))
    for code in sorted(set(before) & set(after)):
        if not same_feature(before[code], after[code]):
            out.changed.append(code)
            a, b = before[code]["geometry"], after[code]["geometry"]
            if not shapely.equals_exact(shapely.normalize(a), shapely.normalize(b), 1e-9):
                out.reshaped.append(code)
    return out


def changed_extent(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame, changes: Changes) -> BaseGeometry | None:
    """Union of the old and new shapes of every added, removed or reshaped polygon."""
    moved_old = set(changes.removed) | set(changes.reshaped)
    moved_new = set(changes.added) | set(changes.reshaped)
    geoms = list(old.geometry[old["code"].isin(moved_old)]) + list(new.geometry[new["code"].isin(moved_new)])
    if not geoms:
        return None
    return shapely.union_all(shapely.make_valid(np.asarray(geoms, dtype=object)))


def _points(conn: Conn, kind: str, column: str, extent: BaseGeometry) -> Sequence[Any]:
    table, extra = _TABLES[kind]
    households = "t.households" if table == "buildings" else "0"
    return conn.execute(
        sa.text(
            f"SELECT ST_X(t.geom), ST_Y(t.geom), t.{column}, {households} FROM {table} t "  # noqa: S608
            f"WHERE t.geom && ST_GeomFromWKB(:e, 4326) AND ST_Intersects(t.geom, ST_GeomFromWKB(:e, 4326)) "
            f"AND {extra.replace('status', 't.status')}"
        ),
        {"e": shapely.to_wkb(extent)},
    ).all()


def preview_impact(conn: Conn, draft_id: int, *, sees_personal_data: bool = False) -> dict[str, Any]:
    """Moves from unit to unit with counts per kind and households, per changed polygon, and totals;
    ``postings``: the people who move (boundaries/postingplan.py), names and phones masked unless
    ``sees_personal_data``."""
    # Imported here: boundaries.postingplan builds on this module (successors by overlap).
    from boundaries.postingplan import posting_plan

    info = get_draft(conn, draft_id)
    features = load_features(conn, draft_id)
    base = base_features(conn, info)
    changes = compare_layers(base, features)
    report: dict[str, Any] = {
        "draft_id": draft_id,
        "layer": info.layer,
        "added": changes.added,
        "removed": changes.removed,
        "changed": changes.changed,
        "moves": [],
        "polygons": {},
        "totals": dict.fromkeys((*KINDS, "households"), 0),
    }
    plan = posting_plan(conn, draft_id, features=features, base=base).to_dict(sees_personal_data)
    report["postings"] = {k: plan[k] for k in ("effective_day", "successors", "moves", "problems")}
    column = ASSIGN_COLUMN.get(info.layer)
    extent = changed_extent(base, features, changes)
    if extent is None or column is None:
        return report
    whole = load_layer(conn, info.layer, info.base_generation)
    others = whole[~whole["code"].isin(set(base["code"]))]
    codes = np.asarray(list(features["code"]) + list(others["code"]), dtype=object)
    geoms = np.asarray(list(features.geometry.values) + list(others.geometry.values), dtype=object)
    moves: dict[tuple[str | None, str | None], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys((*KINDS, "households"), 0)
    )
    for kind in KINDS:
        rows = _points(conn, kind, column, extent)
        if not rows:
            continue
        lon = np.array([r[0] for r in rows])
        lat = np.array([r[1] for r in rows])
        idx = covering_index(codes, geoms, shapely.points(lon, lat))
        for row, i in zip(rows, idx, strict=True):
            new_code = codes[i] if i >= 0 else None
            if new_code != row[2]:
                entry = moves[(row[2], new_code)]
                entry[kind] += 1
                if kind == "buildings":
                    entry["households"] += int(row[3] or 0)
    polygons: dict[str, dict[str, dict[str, int]]] = {}
    for (src, dst), counts in sorted(moves.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
        report["moves"].append({"from": src, "to": dst, **counts})
        for key in counts:
            report["totals"][key] += counts[key]
        for code, direction in ((src, "out"), (dst, "in")):
            if code is None:
                continue
            slot = polygons.setdefault(code, {"in": dict.fromkeys(counts, 0), "out": dict.fromkeys(counts, 0)})
            for key, n in counts.items():
                slot[direction][key] += n
    report["polygons"] = polygons
    return report
