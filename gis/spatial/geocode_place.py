"""Matching a query that names a place (point of interest) rather than spelling out its address.

The place's name is read as the place (gis.spatial.places): its standard address followed by
whatever the query adds after the name (阳光小区3栋201 -> 魏塘街道中山路128号3幢201室), matched
like any address; a place known by its position only is answered at that position, with
precision "place". Scores are the address's times ``PLACE_FACTOR``.
"""

from __future__ import annotations

from dataclasses import replace

from gis.spatial.address_text import AddressError, normalize_address
from gis.spatial.areas import Conn
from gis.spatial.geocode import LEVEL_FACTOR, GeocodeMatch, GeocodeResult, address_only
from gis.spatial.places import PlaceHit, pick_place

# A place named exactly (name or alias) stands for its address a little less surely than the
# address typed out; a name shared by places the query cannot tell apart is only a candidate.
PLACE_FACTOR = 0.95
AMBIGUOUS_PLACE_SCORE = 0.5


def _place_match(hit: PlaceHit, score: float) -> GeocodeMatch:
    return GeocodeMatch(hit.address_id, hit.name, hit.lon, hit.lat, score, "place", hit.matched, hit.name)


def via_place(
    conn: Conn, text: str, normalized: str, hits: list[PlaceHit], threshold: float, limit: int
) -> GeocodeResult:
    """The query with the place's name read as the place: its standard address followed by what
    the query adds (阳光小区3栋201 -> 魏塘街道中山路128号3幢201室), else its own position."""
    place, options = pick_place(hits, normalized)
    if place is None:
        # One name, several places, nothing in the query to choose: candidates, never a guess.
        return GeocodeResult(
            text, normalized, None, [_place_match(h, AMBIGUOUS_PLACE_SCORE) for h in options][:limit], "none"
        )
    rest = place.after(normalized)
    if place.address_normalized:
        try:
            inner_text = normalize_address(place.address_normalized + rest)
        except AddressError:
            inner_text = place.address_normalized
        inner = address_only(conn, text, inner_text, threshold, limit)
        candidates = [replace(c, score=round(c.score * PLACE_FACTOR, 3), place=place.name) for c in inner.candidates]
        match = candidates[0] if inner.match is not None and candidates else None
        if match is not None and match.score < threshold:
            match = None
        if match is not None and inner.match is not None:
            match = replace(inner.match, score=match.score, place=place.name)
        return GeocodeResult(text, normalized, match, candidates, "place" if match else "none")
    # Known by its position only: numbers after the name cannot be placed, the place itself can.
    score = PLACE_FACTOR if not any(ch.isdigit() for ch in rest) else round(PLACE_FACTOR * LEVEL_FACTOR[1], 3)
    match = _place_match(place, score)
    return GeocodeResult(
        text, normalized, match if score >= threshold else None, [match], "place" if score >= threshold else "none"
    )
