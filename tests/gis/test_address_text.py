from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gis.spatial.address_text import (
    MAX_NORMALIZED_LENGTH,
    AddressError,
    ParsedAddress,
    normalize_address,
    parse_address,
)

URBAN = "魏塘街道中山路128号3幢2单元301室"
RURAL = "姚庄镇丁栅村3组15号2室"


@pytest.mark.parametrize(
    "variant",
    [
        "浙江省嘉兴市嘉善县魏塘街道中山路128号3幢2单元301室",
        "嘉兴市嘉善县魏塘街道中山路128号3幢2单元301室",
        "嘉善县魏塘街道中山路128号3幢2单元301室",
        "魏塘街道中山路128号3幢2单元301室",
        "浙江嘉兴嘉善魏塘街道中山路128号3幢2单元301室",
        "浙江省嘉善县魏塘街道中山路128号3幢2单元301室",
        "嘉兴嘉善县 魏塘街道 中山路 128号 3幢 2单元 301室",
        "浙江省，嘉兴市，嘉善县，魏塘街道、中山路128号-3幢-2单元-301室。",
        "魏塘街道中山路１２８号３幢２单元３０１室",
        "魏塘街道中山路128号3栋2单元301室",
        "魏塘街道中山路128号3座2单元301房",
        "魏塘街道中山路128号3号楼2单元301房间",
        "魏塘街道中山路一百二十八号三幢二单元三〇一室",
        "魏塘街道中山路一二八号三栋两单元三零一室",
        "\u3000魏塘街道中山路128号3幢2单元301室\n",
    ],
)
def test_urban_variants_normalize_identically(variant: str) -> None:
    assert normalize_address(variant) == URBAN


@pytest.mark.parametrize(
    "variant",
    [
        "浙江省嘉兴市嘉善县姚庄镇丁栅村3组15号2室",
        "嘉善姚庄镇丁栅村三组十五号二室",
        "嘉善县 姚庄镇 丁栅村 3组 15号 2房",
        "姚庄镇丁栅村３组１５号２室",
    ],
)
def test_rural_variants_normalize_identically(variant: str) -> None:
    assert normalize_address(variant) == RURAL


@pytest.mark.parametrize(
    ("numeral", "digits"),
    [
        ("十", "10"),
        ("十二", "12"),
        ("二十", "20"),
        ("二十一", "21"),
        ("两", "2"),
        ("一百零八", "108"),
        ("一百一十", "110"),
        ("一百一", "110"),
        ("两百", "200"),
        ("一千零五", "1005"),
        ("三千五", "3500"),
        ("三〇一", "301"),
        ("三零一", "301"),
        ("一二八", "128"),
        ("〇五", "05"),
    ],
)
def test_chinese_numerals_before_unit_words_become_digits(numeral: str, digits: str) -> None:
    assert normalize_address(f"中山路{numeral}号") == f"中山路{digits}号"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("三店村五组", "三店村5组"),
        ("十里村十二组八号", "十里村12组8号"),
        ("一号路十二号", "一号路12号"),
        ("八号桥三号", "八号桥3号"),
        ("二十一世纪大道五号", "二十一世纪大道5号"),
        ("中山路十十号", "中山路十十号"),  # malformed numeral: left alone
    ],
)
def test_numerals_in_names_are_kept(text: str, expected: str) -> None:
    assert normalize_address(text) == expected


def test_letters_are_upper_cased_and_full_width_folded() -> None:
    assert normalize_address("阳光小区ａ座2单元") == "阳光小区A幢2单元"
    assert normalize_address("阳光小区b栋") == "阳光小区B幢"


def test_bare_prefix_that_starts_a_name_is_kept() -> None:
    assert normalize_address("嘉善大道88号") == "嘉善大道88号"
    assert normalize_address("浙江省嘉兴市嘉善大道88号") == "嘉善大道88号"
    assert normalize_address("嘉兴路5号") == "嘉兴路5号"


def test_unit_words_are_unified_only_after_a_number() -> None:
    assert normalize_address("厂房路6号") == "厂房路6号"
    assert normalize_address("栋梁新村2幢") == "栋梁新村2幢"


SAMPLES = [
    "浙江省嘉兴市嘉善县魏塘街道中山路一百二十八号三栋二单元三〇一房间",
    "嘉善 姚庄镇 丁栅村 三组 十五号",
    "嘉兴嘉善 西塘镇 十里村 二十一组 七号",
    "罗星街道 一号路 十二号楼 3单元 502 房",
    "惠民街道阳光小区Ａ座１２０１室",
    "中山路128弄5号",
    "嘉善浙江嘉兴中山路5号",
]
ADDRESS_ALPHABET = st.sampled_from(
    list("浙江省嘉兴市善县魏塘街道镇中山路大巷弄村社区组号幢栋座楼单元室房间一二两三〇零十百千幺")
    + list("0123456789０１２AaＢ -，、#.·\u3000")
)


@pytest.mark.parametrize("sample", SAMPLES)
def test_normalize_is_idempotent_on_samples(sample: str) -> None:
    once = normalize_address(sample)
    assert normalize_address(once) == once


def _idempotent(text: str) -> None:
    try:
        once = normalize_address(text)
    except AddressError:
        return
    assert normalize_address(once) == once


@settings(max_examples=400, deadline=None, database=None)
@given(st.lists(ADDRESS_ALPHABET, min_size=1, max_size=40).map("".join))
def test_normalize_is_idempotent_on_address_like_text(text: str) -> None:
    _idempotent(text)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=60))
def test_normalize_is_idempotent_on_arbitrary_text(text: str) -> None:
    _idempotent(text)


def test_parse_urban_address_to_room() -> None:
    parsed = parse_address("浙江省嘉兴市嘉善县魏塘街道中山路128号3幢2单元301室")
    assert parsed == ParsedAddress(
        normalized=URBAN,
        town="魏塘街道",
        road="中山路",
        house_no="128",
        building_no="3",
        unit_no="2",
        room_no="301",
        precision="room",
    )


def test_parse_lane_address() -> None:
    parsed = parse_address("嘉善县魏塘街道中山路128弄5号")
    assert parsed.road == "中山路128弄"
    assert parsed.house_no == "5"
    assert parsed.precision == "house"


def test_parse_rural_address() -> None:
    parsed = parse_address("嘉善县姚庄镇丁栅村三组十五号")
    assert (parsed.town, parsed.village, parsed.group_no, parsed.house_no) == (
        "姚庄镇",
        "丁栅村",
        "3",
        "15",
    )
    assert parsed.road is None and parsed.room_no is None
    assert parsed.precision == "house"
    assert parse_address(RURAL).precision == "room"


@pytest.mark.parametrize(
    ("text", "precision"),
    [
        (URBAN, "room"),
        ("魏塘街道中山路128号3幢", "building"),
        ("魏塘街道中山路128号3幢2单元", "building"),
        ("魏塘街道中山路128号", "house"),
        ("魏塘街道中山路", "road"),
        ("姚庄镇丁栅村", "village"),
        ("姚庄镇丁栅村3组", "village"),
        ("姚庄镇", "town"),
        ("魏塘街道", "town"),
        ("阳光小区", "none"),
    ],
)
def test_precision_is_the_finest_part_present(text: str, precision: str) -> None:
    assert parse_address(text).precision == precision


def test_parse_keeps_unrecognised_text_in_extra() -> None:
    parsed = parse_address("惠民街道阳光小区A座2单元1201室")
    assert parsed.town == "惠民街道"
    assert parsed.road is None
    assert (parsed.building_no, parsed.unit_no, parsed.room_no) == ("A", "2", "1201")
    assert parsed.extra == "阳光小区"
    assert parse_address(URBAN).extra == ""


def test_road_names_containing_numbers_and_place_words() -> None:
    assert parse_address("一号路12号").road == "一号路"
    parsed = parse_address("新镇路5号")
    assert (parsed.town, parsed.road, parsed.house_no) == (None, "新镇路", "5")
    assert parse_address("嘉善大道88号").road == "嘉善大道"


def test_parsed_address_is_frozen() -> None:
    parsed = parse_address(URBAN)
    with pytest.raises(AttributeError):
        parsed.road = "解放路"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   \u3000\n\t", "empty"),
        ("，。、--##", "no letters, digits or Chinese characters"),
        ("浙江省嘉兴市嘉善县", "nothing below the province/city/county prefix"),
        ("中" * (MAX_NORMALIZED_LENGTH + 1), "too long: 201 characters after normalising"),
        ("中 " * 600, "too long: 1200 characters"),
    ],
)
def test_bad_input_raises_address_error(text: str, fragment: str) -> None:
    with pytest.raises(AddressError) as info:
        normalize_address(text)
    assert fragment in str(info.value)
    with pytest.raises(ValueError):
        parse_address(text)


def test_exactly_the_length_limit_is_accepted() -> None:
    assert len(normalize_address("中" * MAX_NORMALIZED_LENGTH)) == MAX_NORMALIZED_LENGTH


def test_non_string_input_raises_address_error() -> None:
    with pytest.raises(AddressError, match="must be a string, got int"):
        normalize_address(128)  # type: ignore[arg-type]
