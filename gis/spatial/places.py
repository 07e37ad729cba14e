"""Places (points of interest) named in a typed address: "阳光小区3栋201", "西塘镇农贸市场".

Places are imported from a list (gis.spatial.placeimport) with their names and aliases stored
normalised in ``place_names``. A query is searched for the longest place name it contains
(``strpos`` over the names: a county has thousands of places, not millions, and a scan of them
costs about a millisecond, less than keeping an in-process copy fresh across API workers).
Text before the name (a town, a village) picks among places sharing the name; when that leaves
more than one place at different positions the name is ambiguous and ``pick_place`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from gis.spatial.areas import Conn

MIN_NAME_LENGTH = 2


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


def places_in(conn: Conn, normalized: str, limit: int = 20) -> list[PlaceHit]:
    """Places whose name or an alias occurs in ``normalized``, longest name first; only the hits
    with the longest name are kept (阳光小区 hides 阳光)."""
    rows = conn.execute(
        sa.text(
            "SELECT p.id, p.name, n.name AS matched, p.kind, p.address_id, p.address_normalized, "
            "p.context, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat, strpos(:q, n.name) - 1 AS start "
            "FROM place_names n JOIN places p ON p.id = n.place_id "
            "WHERE strpos(:q, n.name) > 0 ORDER BY length(n.name) DESC, p.id LIMIT :n"
        ),
        {"q": normalized, "n": limit},
    ).all()
    if not rows:
        return []
    longest = len(rows[0].matched)
    return [
        PlaceHit(
            int(r.id),
            r.name,
            r.matched,
            r.kind,
            None if r.address_id is None else int(r.address_id),
            r.address_normalized,
            r.context,
            float(r.lon),
            float(r.lat),
            int(r.start),
        )
        for r in rows
        if len(r.matched) == longest
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
