"""Places (points of interest) named in a typed address: "阳光小区3栋201", "西塘镇农贸市场".

Places are imported from a list (gis.spatial.placeimport) with their names and aliases stored
normalised in ``place_names``. A query is searched for the longest place name it contains
(``strpos`` over the names, in the geocoder's first statement, gis.spatial.address_rows: a county
has thousands of places, not millions, and a scan of them costs about a millisecond, less than
keeping an in-process copy fresh across API workers).
Text before the name (a town, a village) picks among places sharing the name; when that leaves
more than one place at different positions the name is ambiguous and ``pick_place`` says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MIN_NAME_LENGTH = 2
# Normalised; the geocoder looks up every substring of a query up to this length.
MAX_NAME_LENGTH = 40


@dataclass(frozen=True)
class PlaceHit:
    place_id: int
    name: str  # as imported
    matched: str  # the normalised name or alias found in the query
    kind: str
    address_id: int | None
    address_normalized: str | None
    context: str
    lon: float
    lat: float
    start: int  # where the matched name starts in the query (0-based)

    def before(self, normalized: str) -> str:
        return normalized[: self.start]

    def after(self, normalized: str) -> str:
        return normalized[self.start + len(self.matched) :]


def hits_from_rows(rows: Sequence[Any]) -> list[PlaceHit]:
    """Places from the place part of ``gis.spatial.address_rows.first_pass``, longest name first;
    only the hits with the longest name are kept (阳光小区 hides 阳光)."""
    if not rows:
        return []
    ordered = sorted(rows, key=lambda r: (-len(r.normalized), r.id))
    longest = len(ordered[0].normalized)
    return [
        PlaceHit(
            int(r.id),
            r.full_text,
            r.normalized,
            r.p_kind,
            None if r.p_address_id is None else int(r.p_address_id),
            r.p_norm,
            r.p_context,
            float(r.lon),
            float(r.lat),
            int(r.p_start),
        )
        for r in ordered
        if len(r.normalized) == longest
    ]


def pick_place(hits: list[PlaceHit], normalized: str) -> tuple[PlaceHit | None, list[PlaceHit]]:
    """The place meant, or None with the places it could be. Text before the name that occurs in a
    place's context (its address, or its town and village names) selects that place."""
    if not hits:
        return None, []
    before = hits[0].before(normalized)
    chosen = hits
    if before:
        fitting = [h for h in hits if before in h.context or h.context.startswith(before)]
        chosen = fitting or hits
    positions = {(round(h.lon, 6), round(h.lat, 6)) for h in chosen}
    if len(positions) == 1:
        return chosen[0], chosen
    return None, chosen
