"""Successors and predecessors of a draft's units, by area overlap.

A unit in force that a draft deletes, splits or reshapes is followed by the draft's units that
take at least ``MIN_SHARE`` of its old area (measured in EPSG:4549 metres), largest first: the
first is its main successor. A merge leaves the absorbed unit one successor (the merged unit); a
split leaves the old unit two or more. A unit deleted without giving its area to anyone falls
back on the successor the planner declared (``attrs.absorbs`` or ``previous_code`` of a draft
unit, boundaries/edits.py). Predecessors are the reverse: the units in force whose area a draft
unit takes over, and the unit of the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely

from boundaries.findings import area_m2
from boundaries.impact import compare_layers

# A draft unit taking less than this share of an old unit's area is a border adjustment, not a successor.
MIN_SHARE = 0.05


@dataclass(frozen=True)
class Successor:
    code: str
    share: float  # of the old unit's area, 0..1

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "share": round(self.share, 4)}


@dataclass
class Lineage:
    """Who follows whom between the units in force (``base``) and the draft's units."""

    successors: dict[str, list[Successor]] = field(default_factory=dict)  # old code -> largest first
    predecessors: dict[str, set[str]] = field(default_factory=dict)  # draft code -> old codes
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    draft_codes: set[str] = field(default_factory=set)

    def main(self, code: str) -> str | None:
        found = self.successors.get(code)
        return found[0].code if found else None

    def split(self, code: str) -> bool:
        return len(self.successors.get(code, [])) > 1


def lineage(base: gpd.GeoDataFrame, features: gpd.GeoDataFrame, min_share: float = MIN_SHARE) -> Lineage:
    changes = compare_layers(base, features)
    out = Lineage(removed=changes.removed, added=changes.added, draft_codes=set(features["code"]))
    old_codes = changes.removed + changes.reshaped
    new_codes = changes.added + changes.reshaped
    in_force = set(base["code"])
    for code in out.draft_codes:
        out.predecessors[code] = {code} if code in in_force else set()
    if old_codes and new_codes:
        old = base[base["code"].isin(set(old_codes))].reset_index(drop=True)
        new = features[features["code"].isin(set(new_codes))].reset_index(drop=True)
        old_geoms = shapely.make_valid(np.asarray(old.geometry.values, dtype=object))
        new_geoms = shapely.make_valid(np.asarray(new.geometry.values, dtype=object))
        i_old, i_new = shapely.STRtree(new_geoms).query(old_geoms, predicate="intersects")
        if len(i_old):
            inter = area_m2(shapely.intersection(old_geoms[i_old], new_geoms[i_new]))
            whole = area_m2(old_geoms)
            for a, b, m2 in zip(i_old, i_new, inter, strict=True):
                share = float(m2 / whole[a]) if whole[a] > 0 else 0.0
                if share >= min_share:
                    o, n = str(old["code"].iloc[a]), str(new["code"].iloc[b])
                    out.successors.setdefault(o, []).append(Successor(n, share))
                    out.predecessors[n].add(o)
    for code in out.successors:
        out.successors[code].sort(key=lambda s: (-s.share, s.code))
    declared = _declared(features)
    for code in changes.removed:
        if code not in out.successors and code in declared:
            out.successors[code] = [Successor(declared[code], 0.0)]
            out.predecessors[declared[code]].add(code)
    return out


def _declared(features: gpd.GeoDataFrame) -> dict[str, str]:
    """Deleted code -> the draft unit that declares it takes over (absorbs, previous_code)."""
    out: dict[str, str] = {}
    for code, attrs in zip(features["code"], features["attrs"], strict=True):
        attrs = attrs or {}
        for old in [*(attrs.get("absorbs") or []), attrs.get("previous_code")]:
            if old and old not in out:
                out[str(old)] = str(code)
    return out
