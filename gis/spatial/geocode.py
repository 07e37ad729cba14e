"""Matching typed addresses against the standard address table (标准地址, 一标三实).

The query is normalised with ``gis.spatial.address_text.normalize_address`` (the same function that
filled ``addresses.normalized``; it also supplies the unit words operators leave out, reads Chinese
and full-width numerals, 栋/座 as 幢, spaces), then ONE statement (``address_rows.first_pass``) reads:

* exact: the query and its shorter forms (finest numbered parts cut off one at a time: 室, 单元, 幢,
  号, 组) on the btree index; the query itself found is the answer (score 1, method "exact");
* otherwise, prefixes on the pattern index (migration 0027): the rows starting with the finest of
  those forms that starts any, each town's name put in front when the query has none (a room
  typed without its town, a village group's houses, a compound's buildings, a road's houses);
* otherwise, the places (points of interest, gis.spatial.places) whose name or alias the query
  contains: a place stands for its address plus what the query adds (金色家园3栋201 ->
  魏塘街道中山路128号3幢...201室), or for its own position (precision "place"; method "place").

When neither exact rows nor prefixes exist (a mistyped name), a trigram search on the GIN index
gathers candidates: pg_trgm word similarity (``<%``) of the query down to its house number (see
``probe_text``), ordered by similarity to the whole query (and only when that finds nothing,
trigram similarity ``%`` of the whole query). Every candidate is scored in Python
(``score_candidate``).

Scores say how sure we are that the candidate is the place meant, at the precision reported:
the similarity of the names (town, village, road: typos cost a little, a part the query leaves
out costs nothing) times a factor for how many levels of the query's numbers were found (a
different or missing room drops to the building, and so on). House, building and room numbers
are compared exactly, never by text similarity, because 3幢 and 5幢 look alike but are different
buildings. An answer that is only a road or a village says so (``precision``, ``found``) and keeps
a score below the default threshold (``PRECISION_FACTOR``): its position may lie in another grid
than the place meant; a village group (组) is one micro-grid and may pass, below a house.
A best candidate with a runner-up at a different place scoring about the same is
ambiguous and loses ``AMBIGUITY_PENALTY``. Below the threshold (the setting
``geocode_min_score`` unless given) there is no match, only candidates: a guess is never
presented as a match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

from gis.core.settings import get_settings
from gis.spatial.address_rows import (  # noqa: F401 - WORD_THRESHOLD, trigram_rows: part of this module's interface
    WORD_THRESHOLD,
    _Row,
    exact_rows,
    first_pass,
    probe_text,
    trigram_rows,
)
from gis.spatial.address_text import AddressError, ParsedAddress, normalize_address, parse_normalized
from gis.spatial.areas import Conn
from gis.spatial.places import hits_from_rows

Method = Literal["exact", "fuzzy", "place", "none"]

_TRAILING_PART = re.compile("[0-9A-Z]+(?:室|单元|幢|号|组)$")

# Coarse to fine. "town" and "none" are not precisions a match can be returned at. A village group
# (组) and a road are one step below the village and above a house; "place" is a point of
# interest's own position (gis.spatial.places), as fine as a house.
LEVELS = ("village", "group", "road", "house", "place", "building", "room")
_RANKS = {"village": 0, "group": 1, "road": 1, "house": 2, "place": 2, "building": 3, "room": 4}
# The numbered parts in the order they refine an address, with the level each one sets.
NUMBERED_FIELDS = (
    ("group_no", "village"),
    ("house_no", "house"),
    ("building_no", "building"),
    ("unit_no", "building"),
    ("room_no", "room"),
)
# Score factor by how many levels below the query's own precision the candidate agrees to.
LEVEL_FACTOR = (1.0, 0.9, 0.8, 0.65, 0.5, 0.4)
# An answer that is only a road or a village says so with its confidence: its position (one house
# of the road or village) may lie in another grid than the place meant, so it stays below the
# default threshold, 0.75, even when every name agrees. A village group is one micro-grid in
# Jiashan's numbering, so its answer is usually in the right grid and may pass.
PRECISION_FACTOR = {"village": 0.6, "road": 0.7, "group": 0.9}
AMBIGUITY_MARGIN = 0.05
AMBIGUITY_PENALTY = 0.3


@dataclass(frozen=True)
class GeocodeMatch:
    address_id: int | None  # None for a place known by its position only
    full_text: str
    lon: float
    lat: float
    score: float
    precision: str
    found: str = ""  # what was found at ``precision`` (魏塘街道中山路 for a road), normalised
    place: str | None = None  # the point of interest the query named, if any


@dataclass(frozen=True)
class GeocodeResult:
    query: str
    normalized: str
    match: GeocodeMatch | None
    candidates: list[GeocodeMatch]
    method: Method


@dataclass(frozen=True)
class Scored:
    row: _Row
    parsed: ParsedAddress
    score: float
    precision: str
    place: tuple[str | None, ...]
    found: str


def level_of(parts: ParsedAddress, drop_from: str | None = None) -> str:
    """The precision of ``parts``, ignoring ``drop_from`` and every numbered field finer than it."""
    present: dict[str, str | None] = {}
    dropping = False
    for field, _ in NUMBERED_FIELDS:
        dropping = dropping or field == drop_from
        present[field] = None if dropping else getattr(parts, field)
    if present["room_no"]:
        return "room"
    if present["building_no"] or present["unit_no"]:
        return "building"
    if present["house_no"]:
        return "house"
    if present["group_no"]:
        return "group"
    if parts.road:
        return "road"
    if parts.village:
        return "village"
    return "town" if parts.town else "none"


def _rank(level: str) -> int:
    """Rank of a precision, coarse to fine; town/none rank below village."""
    return _RANKS.get(level, -1)


def truncations(normalized: str) -> list[str]:
    """The address with its finest numbered parts cut off one at a time, finest first, down to a
    road or village (never to a bare town)."""
    forms: list[str] = []
    text = normalized
    while True:
        cut = _TRAILING_PART.sub("", text)
        if cut == text or not cut:
            return forms
        if _rank(parse_normalized(cut).precision) < 0:
            return forms
        forms.append(cut)
        text = cut


def _names(query: ParsedAddress, cand: ParsedAddress) -> tuple[str, str]:
    """Name text of both sides; the candidate's town (and village, for a query by road) is left
    out when the query leaves it out, since omitting a prefix is not a mismatch."""
    q = "".join(p or "" for p in (query.town, query.village, query.road, query.extra))
    keep_town = query.town is not None
    keep_village = keep_town or query.village is not None or query.road is None
    c = "".join(
        p or ""
        for p in (
            cand.town if keep_town else None,
            cand.village if keep_village else None,
            cand.road,
            cand.extra,
        )
    )
    return q, c


def score_candidate(query: ParsedAddress, cand: ParsedAddress) -> tuple[float, str]:
    """Confidence (0..1) that ``cand`` is the place ``query`` names, and the precision reached."""
    reached = level_of(query)
    for field, _ in NUMBERED_FIELDS:
        wanted = getattr(query, field)
        if wanted is not None and getattr(cand, field) != wanted:
            reached = level_of(query, drop_from=field)
            break
    q_names, c_names = _names(query, cand)
    name_score = SequenceMatcher(None, q_names, c_names, autojunk=False).ratio() if q_names or c_names else 1.0
    dropped = max(0, _rank(level_of(query)) - _rank(reached))
    if _rank(reached) < 0:
        return 0.0, reached
    factor = LEVEL_FACTOR[min(dropped, len(LEVEL_FACTOR) - 1)] * PRECISION_FACTOR.get(reached, 1.0)
    return round(name_score * factor, 3), reached


_UNIT_OF = {"group_no": "组", "house_no": "号", "building_no": "幢", "unit_no": "单元", "room_no": "室"}


def found_text(query: ParsedAddress, cand: ParsedAddress, precision: str) -> str:
    """The candidate's names and the query's numbers down to ``precision``: what was found."""
    text = "".join(p or "" for p in (cand.town, cand.village, cand.road))
    for field, level in NUMBERED_FIELDS:
        number = getattr(query, field)
        if number is not None and _rank(level) <= _rank(precision) and getattr(cand, field) == number:
            text += number + _UNIT_OF[field]
    return text


def _place(query: ParsedAddress, cand: ParsedAddress, precision: str) -> tuple[str | None, ...]:
    """What identifies the answer at ``precision``: the candidate's names and the query's numbers
    down to that level (the candidate agrees with them). Candidates with equal keys are one
    place: a building and one of its rooms, reached at building precision, are the same answer."""
    key: list[str | None] = [cand.town, cand.village, cand.road, precision]
    for field, level in NUMBERED_FIELDS:
        key.append(getattr(query, field) if _rank(level) <= _rank(precision) else None)
    return tuple(key)


def _as_match(item: Scored, score: float | None = None, row: _Row | None = None) -> GeocodeMatch:
    r = row or item.row
    return GeocodeMatch(
        r.address_id, r.full_text, r.lon, r.lat, item.score if score is None else score, item.precision, item.found
    )


def rank_candidates(query: ParsedAddress, rows: list[_Row]) -> list[Scored]:
    """Score and sort candidates, best first; among equals the least detailed address (the
    building row rather than one of its rooms), then the lowest id."""
    seen: set[int] = set()
    scored = []
    for row in rows:
        if row.address_id in seen:
            continue
        seen.add(row.address_id)
        parsed = parse_normalized(row.normalized)
        score, precision = score_candidate(query, parsed)
        place = _place(query, parsed, precision)
        scored.append(Scored(row, parsed, score, precision, place, found_text(query, parsed, precision)))
    scored.sort(key=lambda s: (-s.score, _rank(s.parsed.precision), len(s.row.normalized), s.row.address_id))
    return scored


def _distinct_places(scored: list[Scored], limit: int) -> list[Scored]:
    out: list[Scored] = []
    places: set[tuple[str | None, ...]] = set()
    for item in scored:
        if item.place not in places:
            places.add(item.place)
            out.append(item)
        if len(out) >= limit:
            break
    return out


def _representative(conn: Conn, best: Scored, pool: list[_Row]) -> _Row:
    """The standard address of the place at the precision reached: the building row for a room
    that did not match, when the table has one (usually among the rows already read); else the
    candidate itself."""
    if _rank(best.parsed.precision) <= _rank(best.precision):
        return best.row
    forms = [
        f for f in truncations(best.row.normalized) if _rank(parse_normalized(f).precision) <= _rank(best.precision)
    ]
    if not forms:
        return best.row
    known = [row for row in pool if row.normalized == forms[0]]
    hits = known or exact_rows(conn, forms[:1])
    return min(hits, key=lambda r: r.address_id) if hits else best.row


def geocode(conn: Conn, text: str, *, threshold: float | None = None, limit: int = 5) -> GeocodeResult:
    """Match ``text`` to a standard address, or to a place it names; see the module docstring.
    Raises ``AddressError`` (a ValueError) for text that cannot be an address (empty, too long)."""
    if threshold is None:
        threshold = get_settings().geocode_min_score
    normalized = normalize_address(text)
    return _match(conn, text, normalized, threshold, limit, places=True)


def _match(conn: Conn, text: str, normalized: str, threshold: float, limit: int, *, places: bool) -> GeocodeResult:
    forms = truncations(normalized)
    parsed = parse_normalized(normalized)
    with_towns = parsed.town is None
    # The exact forms, the prefixes and the places named, in one round trip.
    first = first_pass(conn, normalized, forms, [normalized, *forms], with_towns=with_towns, places=places)
    exact = [row for row in first.exact if row.normalized == normalized]
    if exact:
        return _exact_result(text, normalized, exact[0])
    # A place's name inside the query's own road or village name (a place called 中山 and the
    # road 中山路) is that road, not the place; a whole one (梅园新村, parsed as a village) is the place.
    names = [part for part in (parsed.town, parsed.village, parsed.road) if part]
    hits = [
        h for h in hits_from_rows(first.places) if not any(h.matched in part and h.matched != part for part in names)
    ]
    via: list[GeocodeMatch] = []
    if hits:
        from gis.spatial.geocode_place import via_place  # imports this module: import on use

        through = via_place(conn, text, normalized, hits, threshold, limit)
        if through.match is not None:
            return through
        via = through.candidates
    result = _fuzzy(conn, text, normalized, first.exact + first.prefixed, forms, threshold, limit)
    if result.match is None and via:
        # No match either way: the places the name could be are candidates too.
        ranked = sorted(via + result.candidates, key=lambda c: -c.score)[:limit]
        return GeocodeResult(text, normalized, None, ranked, "none")
    return result


def _exact_result(text: str, normalized: str, row: _Row) -> GeocodeResult:
    match = GeocodeMatch(
        row.address_id, row.full_text, row.lon, row.lat, 1.0, _precision_of(row.normalized), row.normalized
    )
    return GeocodeResult(text, normalized, match, [match], "exact")


def address_only(conn: Conn, text: str, normalized: str, threshold: float, limit: int) -> GeocodeResult:
    """``geocode`` of an already normalised text, without looking for places in it."""
    return _match(conn, text, normalized, threshold, limit, places=False)


def _fuzzy(
    conn: Conn, text: str, normalized: str, pool: list[_Row], forms: list[str], threshold: float, limit: int
) -> GeocodeResult:
    """Rank ``pool`` (the exact shorter forms and the prefix rows of ``first_pass``: a compound's
    buildings, a village group's houses, the rooms of a building, in any town when the query has
    none). Only when it is empty (a mistyped name) does the similarity search run: nothing it
    finds could agree with more of the query."""
    query = parse_normalized(normalized)
    if not pool:
        pool = trigram_rows(conn, normalized)
    ranked = _distinct_places(rank_candidates(query, pool), limit)
    if not ranked:
        return GeocodeResult(text, normalized, None, [], "none")
    best = ranked[0]
    score = best.score
    if len(ranked) > 1 and ranked[1].score >= score - AMBIGUITY_MARGIN:
        score = round(max(0.0, score - AMBIGUITY_PENALTY), 3)
    candidates = [_as_match(item) for item in ranked]
    candidates[0] = _as_match(best, score)
    if score < threshold:
        return GeocodeResult(text, normalized, None, candidates, "none")
    row = _representative(conn, best, pool)
    match = _as_match(best, score, row)
    candidates[0] = match
    method: Method = "exact" if row.normalized in forms else "fuzzy"
    return GeocodeResult(text, normalized, match, candidates, method)


def geocode_many(
    conn: Conn, texts: list[str], *, threshold: float | None = None, limit: int = 5
) -> list[GeocodeResult | AddressError]:
    """``geocode`` for many texts, in order: all exact matches in one query, the rest one by one.
    A text that cannot be normalised gets its ``AddressError`` in its place."""
    normalized: list[str | AddressError] = []
    for text in texts:
        try:
            normalized.append(normalize_address(text))
        except AddressError as exc:
            normalized.append(exc)
    wanted = sorted({n for n in normalized if isinstance(n, str)})
    by_text: dict[str, _Row] = {}
    for row in exact_rows(conn, wanted):
        by_text.setdefault(row.normalized, row)
    out: list[GeocodeResult | AddressError] = []
    for text, norm in zip(texts, normalized, strict=True):
        if isinstance(norm, AddressError):
            out.append(norm)
            continue
        hit = by_text.get(norm)
        if hit is None:
            out.append(geocode(conn, text, threshold=threshold, limit=limit))
            continue
        out.append(_exact_result(text, norm, hit))
    return out


def _precision_of(normalized: str) -> str:
    level = parse_normalized(normalized).precision
    return level if _rank(level) >= 0 else "village"
