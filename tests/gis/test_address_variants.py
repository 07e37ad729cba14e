"""Addresses as operators and residents type them: each normalisation rule for an omitted or
varied part, generated combinations of the variants finding the right building and grid, and
road-only, village-only and group-only answers saying so with a lower confidence."""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.spatial.address_text import normalize_address, parse_address
from gis.spatial.addressvariants import PREFIX, SWITCHES, applicable, chinese_numeral, typed, typed_forms
from gis.spatial.geocode import PRECISION_FACTOR, geocode

THRESHOLD = 0.75

# --- normalisation: one rule at a time ------------------------------------------------------


@pytest.mark.parametrize(
    ("typed_text", "expected"),
    [
        # 室 left out: a number after 单元 (or after 幢) is a room
        ("魏塘街道中山路128号3幢2单元301", "魏塘街道中山路128号3幢2单元301室"),
        ("中山路128号3幢301", "中山路128号3幢301室"),
        # 号 left out after a road or lane, or after a village group
        ("中山路131", "中山路131号"),
        ("中山路128弄5", "中山路128弄5号"),
        ("丁栅村3组15", "丁栅村3组15号"),
        # 幢 left out after a house number; 组 left out after a village
        ("中山路128号3", "中山路128号3幢"),
        ("丁栅村3", "丁栅村3组"),
    ],
)
def test_missing_last_unit_word_is_supplied(typed_text: str, expected: str) -> None:
    assert normalize_address(typed_text) == expected


@pytest.mark.parametrize(
    ("typed_text", "expected"),
    [
        # a separated number takes the unit above the next one's, never runs into it (1283幢)
        ("中山路128 3幢", "中山路128号3幢"),
        ("中山路128-3幢-2单元-301室", "中山路128号3幢2单元301室"),
        ("丁栅村3 15号", "丁栅村3组15号"),
        ("中山路128号3幢 2 301", "中山路128号3幢2单元301室"),
        ("中山路 128 3 2 301", "中山路128号3幢2单元301室"),
        ("丁栅村 3 15", "丁栅村3组15号"),
    ],
)
def test_separated_numbers_without_unit_words(typed_text: str, expected: str) -> None:
    assert normalize_address(typed_text) == expected


@pytest.mark.parametrize(
    ("typed_text", "expected"),
    [
        ("中山路一百二十八", "中山路128号"),
        ("丁栅村三组十五", "丁栅村3组15号"),
        ("中山路128号三幢二单元三〇一", "中山路128号3幢2单元301室"),
        ("丁栅村二十三", "丁栅村23组"),
        ("中山路１２８号３", "中山路128号3幢"),
        ("中山路一二八 三栋", "中山路128号3幢"),
    ],
)
def test_numerals_without_unit_words(typed_text: str, expected: str) -> None:
    assert normalize_address(typed_text) == expected


@pytest.mark.parametrize(
    "text",
    ["阳光小区12", "三里村", "十里村十二组八号", "320国道旁", "魏塘街道", "嘉善大道"],
)
def test_numbers_without_a_place_word_before_them_are_left_alone(text: str) -> None:
    once = normalize_address(text)
    assert normalize_address(once) == once
    assert not once.endswith(("室", "幢")) or text.endswith(("室", "幢"))


def test_supplied_units_keep_normalisation_idempotent() -> None:
    rng = random.Random(3)
    for _ in range(300):
        parts = [rng.choice(["中山路", "丁栅村", "3组", "128", "号", "幢", "三", "十五", " ", "-", "单元", "301"])]
        parts += [rng.choice(["128", " ", "3", "幢", "二", "单元", "室", "组", "号", "〇", "路"]) for _ in range(8)]
        text = "".join(parts)
        try:
            once = normalize_address(text)
        except ValueError:
            continue
        assert normalize_address(once) == once, text


# --- the generator ------------------------------------------------------------------------


def test_chinese_numerals_of_the_generator_are_read_back() -> None:
    for n in (1, 10, 15, 23, 99, 128, 301, 1102):
        for positional in (True, False):
            assert normalize_address(f"中山路{chinese_numeral(n, positional)}号") == f"中山路{n}号"


def test_generated_forms_are_deterministic_and_record_what_changed() -> None:
    full = f"{PREFIX}魏塘街道中山路128号3幢2单元301室"
    first = typed_forms(7, full, 10, "金色家园")
    assert first == typed_forms(7, full, 10, "金色家园")
    assert len({f.text for f in first}) == len(first)
    room = typed(full, ("no_town", "no_suffix", "dong", "spaces"), random.Random(1))
    assert "魏塘街道" not in room.text and room.text.endswith("301") and "幢" not in room.text
    assert room.effective == ("no_town", "dong", "no_suffix", "spaces")
    rural = typed(f"{PREFIX}西塘镇丁栅村3组15号", ("dong", "group"), random.Random(1))
    assert rural.text == f"{PREFIX}西塘镇丁栅村3组" and rural.effective == ("group",)
    assert "group" not in applicable(full) and "place" in applicable(full, "金色家园")
    assert set(applicable(full, "金色家园")) <= set(SWITCHES)


# --- matching: a small county with the demo's kinds of address ------------------------------

ROOMS = [(b, u, f"{f}0{d}") for b in (1, 2) for u in (1, 2) for f in (1, 2, 3) for d in (1, 2)]


def _insert(conn: Connection, full_text: str, lon: float, lat: float) -> int:
    p = parse_address(full_text)
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO addresses (full_text, normalized, road, house_no, building_no, unit_no, room_no, "
                "group_no, precision, geom) VALUES (:t, :n, :road, :h, :b, :u, :r, :g, :p, "
                "ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"
            ),
            {
                "t": full_text,
                "n": p.normalized,
                "road": p.road,
                "h": p.house_no,
                "b": p.building_no,
                "u": p.unit_no,
                "r": p.room_no,
                "g": p.group_no,
                "p": p.precision,
                "x": lon,
                "y": lat,
            },
        ).scalar_one()
    )


@pytest.fixture
def typed_county(connection: Connection, mini_county) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Standard addresses in the mini county, its towns renamed as real ones so that addresses
    name them: a compound (buildings and rooms), a street house, two village groups."""
    connection.execute(sa.text("UPDATE areas SET name = '魏塘街道' WHERE layer = 'town' AND code = '330421001'"))
    connection.execute(sa.text("UPDATE areas SET name = '西塘镇' WHERE layer = 'town' AND code = '330421002'"))
    ids: dict[str, int] = {}
    for b in (1, 2, 3):
        ids[f"b{b}"] = _insert(connection, f"{PREFIX}魏塘街道中山路128号{b}幢", 120.905, 30.835)
    for b, u, r in ROOMS:
        ids[f"r{b}-{u}-{r}"] = _insert(connection, f"{PREFIX}魏塘街道中山路128号{b}幢{u}单元{r}室", 120.905, 30.835)
    ids["street"] = _insert(connection, f"{PREFIX}魏塘街道中山路131号", 120.915, 30.845)
    ids["lane"] = _insert(connection, f"{PREFIX}魏塘街道解放路12弄5号", 120.915, 30.836)
    for h in range(1, 6):
        ids[f"g3-{h}"] = _insert(connection, f"{PREFIX}西塘镇丁栅村3组{h}号", 120.925 + 0.0005 * h, 30.845)
        ids[f"g4-{h}"] = _insert(connection, f"{PREFIX}西塘镇丁栅村4组{h}号", 120.935 + 0.0005 * h, 30.835)
    return ids


def grid_at(conn: Connection, lon: float, lat: float) -> str:
    return str(
        conn.execute(
            sa.text("SELECT (gridmap_assign(ST_SetSRID(ST_MakePoint(:x, :y), 4326), now())).grid_code"),
            {"x": lon, "y": lat},
        ).scalar_one()
    )


def _grid_of(conn: Connection, address_id: int) -> str:
    return str(conn.execute(sa.text("SELECT grid_code FROM addresses WHERE id = :i"), {"i": address_id}).scalar_one())


SAMPLED = ["r1-1-101", "r2-2-302", "b3", "street", "lane", "g3-2", "g4-5"]


@pytest.mark.parametrize("key", SAMPLED)
def test_generated_combinations_find_the_right_building_and_grid(
    connection: Connection, typed_county: dict[str, int], key: str
) -> None:
    address_id = typed_county[key]
    full = connection.execute(sa.text("SELECT full_text FROM addresses WHERE id = :i"), {"i": address_id}).scalar_one()
    expected_grid = _grid_of(connection, address_id)
    forms = typed_forms(address_id, full, 24)
    assert len(forms) >= 16
    for form in forms:
        result = geocode(connection, form.text, threshold=THRESHOLD)
        assert result.match is not None, (form, result.candidates[:2])
        assert grid_at(connection, result.match.lon, result.match.lat) == expected_grid, form
        if "group" in form.effective:
            # Only the group was typed: the answer says so, and is a house of that group.
            assert result.match.precision == "group"
            assert result.match.score < 1.0
            assert result.match.found.endswith("3组" if key.startswith("g3") else "4组")
        else:
            assert result.match.address_id == address_id, (form, result.match)


def test_road_only_answer_says_so_below_the_threshold(connection: Connection, typed_county: dict[str, int]) -> None:
    for text in ("魏塘街道中山路", "中山路999号", "嘉善县 中山路 九百九十九"):
        result = geocode(connection, text, threshold=THRESHOLD)
        assert result.match is None, text
        best = result.candidates[0]
        assert best.precision == "road"
        assert best.found == "魏塘街道中山路"
        assert best.score <= PRECISION_FACTOR["road"] < THRESHOLD


def test_village_only_answer_says_so_with_a_lower_confidence(
    connection: Connection, typed_county: dict[str, int]
) -> None:
    result = geocode(connection, "西塘镇丁栅村99组", threshold=THRESHOLD)
    assert result.match is None
    best = result.candidates[0]
    assert best.precision == "village" and best.found == "西塘镇丁栅村"
    assert best.score <= PRECISION_FACTOR["village"]
    # A house that does not exist in an existing group: the group, with less confidence than a house.
    group = geocode(connection, "丁栅村3组99号", threshold=THRESHOLD)
    assert group.match is not None and group.match.precision == "group"
    house = geocode(connection, "丁栅村3组2号", threshold=THRESHOLD)
    assert house.match is not None and house.match.precision == "house"
    assert group.match.score < house.match.score
    assert grid_at(connection, group.match.lon, group.match.lat) == _grid_of(connection, typed_county["g3-1"])


def test_combination_without_town_and_without_room_word(connection: Connection, typed_county: dict[str, int]) -> None:
    """The combination the issue names: a room address typed without the town and without 室."""
    result = geocode(connection, "中山路128号2栋2单元三零二", threshold=THRESHOLD)
    assert result.match is not None and result.match.address_id == typed_county["r2-2-302"]
    assert result.match.precision == "room"


def test_same_address_in_two_towns_without_town_is_not_a_match(
    connection: Connection, typed_county: dict[str, int]
) -> None:
    other = _insert(connection, f"{PREFIX}西塘镇中山路131号", 120.935, 30.845)
    result = geocode(connection, "中山路131", threshold=THRESHOLD)
    assert result.match is None
    assert {typed_county["street"], other} <= {c.address_id for c in result.candidates}
    named = geocode(connection, "西塘镇 中山路 131", threshold=THRESHOLD)
    assert named.match is not None and named.match.address_id == other
