"""Reading candidate standard addresses for the geocoder (gis.spatial.geocode): exact forms on
the btree, prefixes on the pattern index (migration 0027), and the trigram searches on the GIN
index. All of them run on the caller's connection, which for address lookups is an autocommit
one: nothing here may rely on a transaction (no SET LOCAL)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.spatial.areas import Conn

# 0.5 rather than pg_trgm's 0.6 default, to survive a mistyped road name; not lower: a probe
# shares about half its trigrams with every address of its town (魏塘街道...), and at 0.45 a
# one-character road typo matched ~7,000 rows of the town to rescore (p95 45 ms against 20 ms at
# 0.5, with the same matches on 600 sampled queries; at 0.55 typos start to miss the index).
WORD_THRESHOLD = 0.5
SIMILARITY_THRESHOLD = 0.3
POOL_SIZE = 40
_FINE_PART = re.compile("[0-9A-Z]+(?:室|单元|幢)$")


@dataclass(frozen=True)
class _Row:
    address_id: int
    full_text: str
    normalized: str
    lon: float
    lat: float


_COLUMNS = "id, full_text, normalized, ST_X(geom) AS lon, ST_Y(geom) AS lat"


def _rows(result: sa.Result[Any]) -> list[_Row]:
    return [_Row(int(r.id), r.full_text, r.normalized, float(r.lon), float(r.lat)) for r in result]


def exact_rows(conn: Conn, forms: list[str]) -> list[_Row]:
    """Rows whose normalized text is one of ``forms`` (btree), lowest id first."""
    if not forms:
        return []
    return _rows(
        conn.execute(
            sa.text(f"SELECT {_COLUMNS} FROM addresses WHERE normalized = ANY(:forms) ORDER BY id"),  # noqa: S608
            {"forms": forms},
        )
    )


def probe_text(normalized: str) -> str:
    """What to search the trigram index with: the address down to its house number (or group).

    Trigrams of building/unit/room numbers (号3幢, 1单元, 01室) occur in most rows, so searching
    with them makes the index return, and the database recheck, a large part of the table.
    Names and the house number are selective; finer numbers are compared in Python anyway."""
    text = normalized
    while True:
        cut = _FINE_PART.sub("", text)
        if cut == text or not cut:
            return text
        text = cut


def trigram_rows(conn: Conn, normalized: str, pool: int = POOL_SIZE) -> list[_Row]:
    """Rows containing something like the query's probe (word similarity, ``<%``), most similar
    to the whole query first; when there are none, rows similar to the whole query (``%``: slower,
    but it still finds candidates for a query whose road name is wrong)."""
    # Session-wide (set_config(..., false)), not SET LOCAL: address lookups run on autocommit
    # connections, where a SET LOCAL ends with its own statement and the search then ran at
    # pg_trgm's default 0.6, found nothing for a mistyped road and fell back to the slow ``%``
    # scan (road-typo p95 211 ms over HTTP against 13 ms in a transaction, measured). Every
    # trigram search sets both values first, so what stays on the pooled connection is harmless.
    conn.execute(
        sa.text(
            "SELECT set_config('pg_trgm.word_similarity_threshold', :w, false), "
            "set_config('pg_trgm.similarity_threshold', :s, false)"
        ),
        {"w": str(WORD_THRESHOLD), "s": str(SIMILARITY_THRESHOLD)},
    )
    params = {"probe": probe_text(normalized), "q": normalized, "n": pool}
    order = "ORDER BY similarity(normalized, :q) DESC, length(normalized), id LIMIT :n"
    rows = _rows(
        conn.execute(sa.text(f"SELECT {_COLUMNS} FROM addresses WHERE :probe <% normalized {order}"), params)  # noqa: S608
    )
    if rows:
        return rows
    return _rows(conn.execute(sa.text(f"SELECT {_COLUMNS} FROM addresses WHERE normalized % :q {order}"), params))  # noqa: S608


# Rows per prefix (first_pass), read in the pattern index's order (no sort: a road's range can
# hold thousands of rooms): any row under a compound, a village group, a road names the same
# place at that precision, and a prefix that is itself an address comes first. Only the finest
# prefix that finds anything (in any town) is kept: coarser ones add rows that agree with less
# of the query, and every row costs a parse and a score in Python.
PREFIX_POOL = 20


@dataclass(frozen=True)
class FirstPass:
    exact: list[_Row]  # rows whose text is the query or one of its shorter forms
    prefixed: list[_Row]  # prefix_rows of the numbered forms (empty when the query itself was found)
    places: list[Any]  # place_names rows naming a place in the query (gis.spatial.places.hits_from_rows)


def first_pass(
    conn: Conn, normalized: str, forms: list[str], deep: list[str], *, with_towns: bool, places: bool = True
) -> FirstPass:
    """``exact_rows`` of the query and its shorter forms, and, only when the query itself is not
    among them, the rows starting with one of the ``deep`` forms (each an address cut down to a
    numbered part: 丁栅村3组 finds that group's houses, 中山路128号 a compound's buildings; with
    ``with_towns``, each town's name, read from the boundaries, in front of each) and the places
    named in the query: ONE round trip. ~>=~ / ~<~ are the pattern index's byte-wise operators;
    U+10FFFF sorts after every character, so each range is exactly the strings with the prefix.
    Address lookups are round-trip bound on a busy machine (a statement's wait is several times
    its work), so the three searches share a statement and the later two are skipped by the
    planner's one-time filter when the exact row exists."""
    towns = "(SELECT DISTINCT name FROM areas WHERE layer = 'town')" if with_towns else "(SELECT '' AS name)"
    place_sql = (
        "SELECT 'l' AS k, 0::bigint AS ord, p.id, p.name AS full_text, n.name AS normalized, ST_X(p.geom) AS lon, "
        "ST_Y(p.geom) AS lat, p.kind AS p_kind, p.address_id AS p_address_id, p.address_normalized AS p_norm, "
        "p.context AS p_context, strpos(:q, n.name) - 1 AS p_start "
        "FROM place_names n JOIN places p ON p.id = n.place_id "
        "WHERE NOT EXISTS (SELECT 1 FROM hit) AND strpos(:q, n.name) > 0 ORDER BY length(n.name) DESC, p.id LIMIT 20"
        if places
        else "SELECT 'l', 0::bigint, 0::bigint, '', '', 0::float8, 0::float8, '', 0::bigint, '', '', 0 WHERE false"
    )
    sql = (
        f"WITH e AS (SELECT {_COLUMNS} FROM addresses WHERE normalized = ANY(:forms)), "  # noqa: S608
        "hit AS (SELECT 1 FROM e WHERE normalized = :q LIMIT 1), "
        "c AS (SELECT f.ord, x.* FROM unnest(CAST(:deep AS text[])) WITH ORDINALITY AS f(form, ord) "
        f"CROSS JOIN {towns} AS t CROSS JOIN LATERAL ("
        f"SELECT {_COLUMNS} FROM addresses WHERE NOT EXISTS (SELECT 1 FROM hit) "
        "AND normalized ~>=~ (t.name || f.form) AND normalized ~<~ (t.name || f.form || chr(1114111)) "
        "ORDER BY normalized USING ~<~ LIMIT :n) x) "
        "SELECT 'e' AS k, 0::bigint AS ord, id, full_text, normalized, lon, lat, NULL AS p_kind, "
        "NULL::bigint AS p_address_id, NULL AS p_norm, NULL AS p_context, NULL::int AS p_start FROM e "
        "UNION ALL SELECT 'p', ord, id, full_text, normalized, lon, lat, NULL, NULL, NULL, NULL, NULL FROM c "
        "WHERE ord = (SELECT min(ord) FROM c) "
        f"UNION ALL ({place_sql})"
    )
    params = {"forms": [normalized, *forms], "q": normalized, "deep": deep, "n": PREFIX_POOL}
    rows = _prepared(conn, sa.text(sql), params)
    exact = [_Row(int(r.id), r.full_text, r.normalized, float(r.lon), float(r.lat)) for r in rows if r.k == "e"]
    exact.sort(key=lambda r: r.address_id)
    prefixed = [_Row(int(r.id), r.full_text, r.normalized, float(r.lon), float(r.lat)) for r in rows if r.k == "p"]
    return FirstPass(exact, prefixed, [r for r in rows if r.k == "l"])


def _prepared(conn: Conn, statement: sa.TextClause, params: dict[str, Any]) -> list[Any]:
    """Run ``statement`` prepared on the server (as gis.incidents.intake._insert does): engines
    turn psycopg's automatic preparing off, but first_pass plans the same whatever its values
    (its ranges are computed per row, the exact forms use the btree), and planning it cost about
    as much as running it (0.45 ms each, measured). Four texts at most (towns or not, places or
    not), so at most four statements per connection."""
    connection = conn.connection() if isinstance(conn, Session) else conn
    driver = connection.connection.driver_connection
    assert driver is not None  # a live, checked-out connection
    threshold = driver.prepare_threshold
    driver.prepare_threshold = 0
    try:
        return list(connection.execute(statement, params).all())
    finally:
        driver.prepare_threshold = threshold
