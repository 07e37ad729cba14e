"""Address matching: normalised variants match exactly, fuzzy matches are scored, low confidence
is never presented as a match, and a missing room falls back to its building."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.spatial.address_text import AddressError, normalize_address, parse_address
from gis.spatial.geocode import geocode, geocode_many, score_candidate, truncations

PREFIX = "浙江省嘉兴市嘉善县"


def add_address(conn: Connection, full_text: str, lon: float, lat: float) -> int:
    """A plain INSERT, as any system would do: the trigger assigns the point."""
    p = parse_address(full_text)
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO addresses (full_text, normalized, road, house_no, building_no, unit_no, room_no, "
                "group_no, precision, geom) VALUES (:t, :n, :road, :house, :bldg, :unit, :room, :grp, :prec, "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) RETURNING id"
            ),
            {
                "t": full_text,
                "n": p.normalized,
                "road": p.road,
                "house": p.house_no,
                "bldg": p.building_no,
                "unit": p.unit_no,
                "room": p.room_no,
                "grp": p.group_no,
                "prec": p.precision,
                "lon": lon,
                "lat": lat,
            },
        ).scalar_one()
    )


@pytest.fixture
def addresses(connection: Connection, mini_county) -> dict[str, int]:  # type: ignore[no-untyped-def]
    rows = {
        "building": (f"{PREFIX}魏塘街道中山路128号3幢", 120.905, 30.835),
        "room": (f"{PREFIX}魏塘街道中山路128号3幢2单元301室", 120.905, 30.835),
        "building5": (f"{PREFIX}魏塘街道中山路128号5幢", 120.906, 30.835),
        "house12": (f"{PREFIX}魏塘街道解放东路12号", 120.925, 30.845),
        "rural": (f"{PREFIX}姚庄镇丁栅村3组15号", 120.935, 30.846),
        "xitang": (f"{PREFIX}西塘镇南苑路8号2幢", 120.932, 30.832),
    }
    return {key: add_address(connection, text, lon, lat) for key, (text, lon, lat) in rows.items()}


@pytest.mark.parametrize(
    "query",
    [
        "浙江省嘉兴市嘉善县魏塘街道中山路128号3幢",
        "魏塘街道中山路128号3幢",
        "嘉善县魏塘街道中山路１２８号３幢",
        "魏塘街道中山路一百二十八号三栋",
        "嘉兴 魏塘街道 中山路 128号 3号楼",
        "嘉善魏塘街道中山路128号3座",
    ],
)
def test_variants_match_exactly(connection: Connection, addresses: dict[str, int], query: str) -> None:
    result = geocode(connection, query, threshold=0.75)
    assert result.method == "exact"
    assert result.match is not None
    assert result.match.address_id == addresses["building"]
    assert result.match.score == 1.0
    assert result.match.precision == "building"
    assert result.normalized == "魏塘街道中山路128号3幢"


def test_chinese_numeral_house_number(connection: Connection, addresses: dict[str, int]) -> None:
    result = geocode(connection, "魏塘街道解放东路十二号", threshold=0.75)
    assert result.method == "exact"
    assert result.match is not None and result.match.address_id == addresses["house12"]
    assert result.match.precision == "house"


def test_room_exact(connection: Connection, addresses: dict[str, int]) -> None:
    result = geocode(connection, "魏塘街道中山路128号3栋2单元三〇一室", threshold=0.75)
    assert result.match is not None and result.match.address_id == addresses["room"]
    assert result.match.precision == "room"


def test_missing_room_falls_back_to_building(connection: Connection, addresses: dict[str, int]) -> None:
    result = geocode(connection, "魏塘街道中山路128号3幢2单元999室", threshold=0.75)
    assert result.match is not None
    assert result.match.address_id == addresses["building"]
    assert result.match.precision == "building"
    assert result.method == "exact"
    assert 0.75 <= result.match.score < 1.0


def test_missing_town_matches_fuzzily(connection: Connection, addresses: dict[str, int]) -> None:
    result = geocode(connection, "中山路128号3幢", threshold=0.75)
    assert result.method == "fuzzy"
    assert result.match is not None and result.match.address_id == addresses["building"]
    assert result.match.precision == "building"


def test_typo_in_road_name_matches_fuzzily(connection: Connection, addresses: dict[str, int]) -> None:
    result = geocode(connection, "魏塘街道中三路128号3幢", threshold=0.75)
    assert result.method == "fuzzy"
    assert result.match is not None and result.match.address_id == addresses["building"]
    assert 0.75 <= result.match.score < 1.0


def test_other_road_is_not_a_match_but_a_candidate(connection: Connection, addresses: dict[str, int]) -> None:
    result = geocode(connection, "魏塘街道人民路128号3幢", threshold=0.75)
    assert result.match is None
    assert result.method == "none"
    assert addresses["building"] in [c.address_id for c in result.candidates]
    assert all(c.score < 0.75 for c in result.candidates)
    assert len(result.candidates) <= 5


def test_ambiguous_fragment_is_not_a_match(connection: Connection, addresses: dict[str, int]) -> None:
    # The same road, house and building in another town: without the town either is a guess.
    other = add_address(connection, f"{PREFIX}西塘镇中山路128号3幢", 120.931, 30.831)
    result = geocode(connection, "中山路128号3幢", threshold=0.75)
    assert result.match is None
    ids = {c.address_id for c in result.candidates}
    assert {addresses["building"], other} <= ids


def test_different_building_number_is_never_the_other_building(
    connection: Connection, addresses: dict[str, int]
) -> None:
    # 9幢 does not exist; 3幢 and 5幢 look alike as text but are other buildings: only the
    # house (128号) is found, and the answer says so.
    result = geocode(connection, "魏塘街道中山路128号9幢", threshold=0.75)
    assert result.match is not None
    assert result.match.precision == "house"
    assert result.match.score < 1.0


def test_unknown_address_has_no_match(connection: Connection, addresses: dict[str, int]) -> None:
    result = geocode(connection, "上海市黄浦区南京东路1号", threshold=0.75)
    assert result.match is None and result.method == "none"


def test_bad_text_raises(connection: Connection, addresses: dict[str, int]) -> None:
    with pytest.raises(AddressError, match="empty"):
        geocode(connection, "   ")
    with pytest.raises(AddressError, match="too long"):
        geocode(connection, "路" * 1500)


def test_geocode_many_keeps_order_and_errors_in_place(connection: Connection, addresses: dict[str, int]) -> None:
    out = geocode_many(
        connection, ["魏塘街道解放东路12号", "", "中山路128号3幢", "魏塘街道中山路128号3幢"], threshold=0.75
    )
    assert [getattr(r, "method", None) for r in out] == ["exact", None, "fuzzy", "exact"]
    assert isinstance(out[1], AddressError)
    first, last = out[0], out[3]
    assert not isinstance(first, AddressError) and first.match and first.match.address_id == addresses["house12"]
    assert not isinstance(last, AddressError) and last.match and last.match.address_id == addresses["building"]


def test_truncations_stop_at_road_or_village() -> None:
    assert truncations("魏塘街道中山路128号3幢2单元301室") == [
        "魏塘街道中山路128号3幢2单元",
        "魏塘街道中山路128号3幢",
        "魏塘街道中山路128号",
        "魏塘街道中山路",
    ]
    assert truncations("姚庄镇丁栅村3组15号") == ["姚庄镇丁栅村3组", "姚庄镇丁栅村"]


def test_score_compares_numbers_exactly() -> None:
    query = parse_address(normalize_address("魏塘街道中山路128号3幢"))
    same, level = score_candidate(query, parse_address("魏塘街道中山路128号3幢"))
    assert (same, level) == (1.0, "building")
    other, level = score_candidate(query, parse_address("魏塘街道中山路128号5幢"))
    assert level == "house" and other < same
    no_town, level = score_candidate(parse_address("中山路128号3幢"), parse_address("魏塘街道中山路128号3幢"))
    assert (no_town, level) == (1.0, "building")


def test_thresholds_hold_on_an_autocommit_connection(database_url: str) -> None:
    """Address lookups run on autocommit connections: the trigram search must run at gridmap's
    thresholds there too (a SET LOCAL ended with its own statement, and a mistyped road then fell
    back to the slow whole-text scan)."""
    from gis.core import db
    from gis.spatial.geocode import WORD_THRESHOLD, trigram_rows

    engine = db.make_engine(database_url, pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            trigram_rows(conn, normalize_address("魏塘街道中山路128号"))
            shown = conn.execute(sa.text("SHOW pg_trgm.word_similarity_threshold")).scalar_one()
        assert float(shown) == pytest.approx(WORD_THRESHOLD)
    finally:
        engine.dispose()
