"""Normalising and parsing Chinese standard addresses (标准地址) in Jiashan.

User-typed addresses are matched against the standard address table by
comparing normalised text, so ``normalize_address`` must map the many ways a
person writes one address onto a single string, and must be idempotent.

Standard addresses look like::

    浙江省嘉兴市嘉善县魏塘街道中山路128号3幢2单元301室   (urban)
    浙江省嘉兴市嘉善县魏塘街道中山路128弄5号             (lane)
    浙江省嘉兴市嘉善县姚庄镇丁栅村3组15号2室             (rural: village, group)

Normalisation, in order:

1. NFKC (full-width digits and letters become ASCII) and any other Unicode
   decimal digit becomes its ASCII digit.
2. Only ASCII letters/digits and CJK ideographs (plus 〇) are kept; spaces,
   punctuation and other scripts are dropped.  ASCII letters are upper-cased.
3. Leading 浙江省/浙江, 嘉兴市/嘉兴 and 嘉善县/嘉善 are stripped, repeatedly, so
   any subset in any order goes.  A bare short form (浙江, 嘉兴, 嘉善) is kept
   when it is the start of a name, i.e. followed by a road/place word such as
   路 or 大道 (嘉善大道 is a road, not a prefix).
4. Chinese numerals become Arabic digits, but only when immediately followed
   by an address unit word (号 幢 栋 座 单元 室 房 弄 组).  Numerals elsewhere
   are part of a name and stay (三店村, 十里村).  One more name rule: a
   numeral + 号 followed by 路/街/大道/巷/桥 is a name too (一号路, 八号桥).
   Runs without 十/百/千 are read digit by digit (三〇一 -> 301); runs with
   them positionally (一百零八 -> 108, 一百一 -> 110).  Malformed runs stay.
5. Unit words after a number or letter are unified: 栋/座/号楼 -> 幢,
   房间/房 -> 室.  (3号楼 means building 3.)
6. A number typed without its unit word gets the one its place implies, as
   operators drop them: at the end or before a separated number, a number
   after a road or 弄 is a house (中山路128 -> 中山路128号), after 组 a house,
   after 号 a building, after 幢 a room (or a unit when another number
   follows), after 单元 a room, after 村/社区 a group; a number followed by a
   separated number with a unit takes the unit above it (128 3幢 -> 128号3幢,
   3 15号 -> 3组15号).  Separators (spaces, dashes) between two numbers are
   kept until then so that "128 3幢" does not become 1283幢; elsewhere they
   are dropped as before.  A Chinese numeral run at such a place (the end, or
   before a separated number) is converted too (中山路一百二十八 -> 中山路128号).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

MAX_NORMALIZED_LENGTH = 200
# Guard against pathological input before doing any Unicode work on it.
MAX_RAW_LENGTH = 1000

Precision = Literal["room", "building", "house", "road", "village", "town", "none"]


class AddressError(ValueError):
    """Address text that cannot be normalised."""


# --- step 2: which characters survive -----------------------------------------

_DROPPED = re.compile("[^_0-9A-Za-z\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")

# --- step 3: administrative prefix ------------------------------------------------

_FULL_PREFIXES = ("浙江省", "嘉兴市", "嘉善县")
_SHORT_PREFIXES = ("浙江", "嘉兴", "嘉善")
_NAME_CONTINUATIONS = ("大道", "路", "街", "巷", "弄", "村", "社区", "大厦", "广场", "小区")

# --- step 4: numerals -------------------------------------------------------------

_DIGITS = {
    "〇": 0,
    "零": 0,
    "一": 1,
    "幺": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_ZEROS = frozenset("〇零")
_PLACES = {"十": 10, "百": 100, "千": 1000}
_ROAD_SUFFIX = "大道|路|街|巷"
_NUMBERED_NAME_SUFFIX = f"{_ROAD_SUFFIX}|桥"
_NUMERAL_CHARS = "〇零一幺二两三四五六七八九十百千"
_NUMERAL_RUN = re.compile(f"([{_NUMERAL_CHARS}]+)(?=号(?!{_NUMBERED_NAME_SUFFIX})|幢|栋|座|单元|室|房|弄|组)")
# A numeral run that lost its unit word: after a unit, road or village word (or a separator),
# at the end or before a separated number. Names ending in a numeral after such a word are not
# known in Jiashan's addresses.
_BARE_NUMERAL_RUN = re.compile(f"(?<=[号幢栋座元室房弄组路街道巷村区_])([{_NUMERAL_CHARS}]+)(?=_|$)")

# --- step 6: missing unit words ---------------------------------------------------------

# The separator kept between two numbers (step 2 drops every other one).
_SEP = "_"
_SEPARATED_NUMBERS = re.compile(
    f"(?<=[0-9{_NUMERAL_CHARS}])[^0-9A-Za-z\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+"
    f"(?=[0-9{_NUMERAL_CHARS}])"
)
# Finest last; the unit a number takes when the next (separated) number has unit U is the one before U.
_UNIT_ORDER = ("组", "号", "幢", "单元", "室")
_NUMBER_AND_UNIT = re.compile("([0-9]+)(单元|组|号|幢|室)?")
# What the text before a bare number ends with -> the unit the number takes.
_CONTEXT_UNIT = (
    ("单元", "室"),
    ("组", "号"),
    ("号", "幢"),
    ("幢", "室"),
    ("室", ""),
    ("弄", "号"),
    ("大道", "号"),
    ("路", "号"),
    ("街", "号"),
    ("巷", "号"),
    ("村", "组"),
    ("社区", "组"),
)

# --- step 5: unit words -----------------------------------------------------------

_UNIT_VARIANT = re.compile("(?<=[0-9A-Z])(号楼|房间|栋|座|房)")
_UNIT_CANONICAL = {"号楼": "幢", "栋": "幢", "座": "幢", "房间": "室", "房": "室"}


def _chinese_number(run: str) -> str | None:
    """Arabic digits for a Chinese numeral run, or None if it is malformed."""
    if not any(ch in _PLACES for ch in run):
        return "".join(str(_DIGITS[ch]) for ch in run)
    total = 0
    pending: int | None = None  # digit waiting for its place value
    last_place = 10_000
    prev = ""  # "digit", "place" or "zero"
    for i, ch in enumerate(run):
        if ch in _PLACES:
            place = _PLACES[ch]
            if place >= last_place:
                return None
            if pending is None:
                if i != 0:  # a bare 十 is only allowed first (十二 = 12)
                    return None
                pending = 1
            total += pending * place
            pending, last_place, prev = None, place, "place"
        elif ch in _ZEROS:
            if prev != "place":
                return None
            prev = "zero"
        else:
            if pending is not None:
                return None
            pending, prev = _DIGITS[ch], "digit"
    if prev == "zero":
        return None
    if pending is not None:
        # 一百一 is 110 and 三千五 is 3500; after 零 (一百零一) it is units.
        after_place = len(run) >= 2 and run[-2] in _PLACES
        total += pending * (last_place // 10) if after_place and last_place >= 100 else pending
    return str(total)


def _convert_numerals(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        converted = _chinese_number(match.group(1))
        return match.group(1) if converted is None else converted

    return _NUMERAL_RUN.sub(replace, text)


def _convert_bare_numerals(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        converted = _chinese_number(match.group(1))
        return match.group(1) if converted is None else converted

    return _BARE_NUMERAL_RUN.sub(replace, text)


def _context_unit(before: str) -> str:
    for word, unit in _CONTEXT_UNIT:
        if before.endswith(word):
            return unit
    return ""


def _supply_units(text: str) -> str:
    """Step 6: give a bare number (at the end, or before a separated number) its unit word."""
    if not any(ch.isdigit() for ch in text):
        return text.replace(_SEP, "")
    out: list[str] = []
    position = 0
    matches = list(_NUMBER_AND_UNIT.finditer(text))
    for i, match in enumerate(matches):
        number, unit = match.group(1), match.group(2)
        end = match.end()
        at_end = end == len(text)
        separated = text.startswith(_SEP, end)
        out.append(text[position:end])
        position = end
        if unit or not (at_end or separated):
            continue
        following = matches[i + 1] if i + 1 < len(matches) else None
        supplied = ""
        if separated and following is not None and following.start() == end + 1 and following.group(2):
            finer = _UNIT_ORDER.index(following.group(2))
            supplied = _UNIT_ORDER[finer - 1] if finer > 0 else ""
        if not supplied:
            before = "".join(out)[: -len(number)].rstrip(_SEP)
            supplied = _context_unit(before)
            if supplied == "室" and separated and before.endswith("幢"):
                supplied = "单元"  # 3幢 2 301: unit 2, room 301
        out.append(supplied)
    out.append(text[position:])
    return "".join(out).replace(_SEP, "")


def _strip_prefixes(text: str) -> str:
    changed = True
    while changed:
        changed = False
        for full, short in zip(_FULL_PREFIXES, _SHORT_PREFIXES, strict=True):
            if text.startswith(full):
                text, changed = text[len(full) :], True
            elif text.startswith(short) and not text[len(short) :].startswith(_NAME_CONTINUATIONS):
                text, changed = text[len(short) :], True
    return text


def normalize_address(text: str) -> str:
    """Canonical form of an address for matching; see the module docstring."""
    if not isinstance(text, str):
        raise AddressError(f"address must be a string, got {type(text).__name__}")
    if not text.strip():
        raise AddressError("address is empty")
    if len(text) > MAX_RAW_LENGTH:
        raise AddressError(f"address is too long: {len(text)} characters (at most {MAX_RAW_LENGTH})")
    s = unicodedata.normalize("NFKC", text)
    s = "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in s)
    s = _SEPARATED_NUMBERS.sub(_SEP, s.replace(_SEP, " "))
    s = _DROPPED.sub("", s)
    if not s:
        raise AddressError(f"address {text!r} has no letters, digits or Chinese characters")
    s = re.sub("[a-z]+", lambda m: m.group(0).upper(), s)
    s = _strip_prefixes(s)
    if not s:
        raise AddressError(f"address {text!r} has nothing below the province/city/county prefix")
    s = _convert_numerals(s)
    s = _convert_bare_numerals(s)
    s = _UNIT_VARIANT.sub(lambda m: _UNIT_CANONICAL[m.group(0)], s)
    s = _supply_units(s)
    if len(s) > MAX_NORMALIZED_LENGTH:
        raise AddressError(
            f"address is too long: {len(s)} characters after normalising (at most {MAX_NORMALIZED_LENGTH})"
        )
    return s


# --- parsing ------------------------------------------------------------------------

# A town/village/road word must not be the start of a longer name (新镇路).
_NOT_A_NAME_START = f"(?!{_ROAD_SUFFIX}|弄)"
_TOWN = re.compile(f"^(?P<town>[^0-9]+?(?:街道|镇)){_NOT_A_NAME_START}")
_VILLAGE = re.compile(f"^(?P<village>[^0-9]+?(?:村|社区)){_NOT_A_NAME_START}")
# Road name, optionally with a lane number (中山路128弄), then a number or the end.
_ROAD = re.compile(f"^(?P<road>.+?(?:{_ROAD_SUFFIX}|弄)(?:[0-9]+弄)?)(?=[0-9A-Z]|$)")
_NUMBERED = re.compile("(?P<num>[0-9A-Z]+)(?P<unit>组|号|幢|单元|室)")
_UNIT_FIELD = {"组": "group_no", "号": "house_no", "幢": "building_no", "单元": "unit_no", "室": "room_no"}


@dataclass(frozen=True)
class ParsedAddress:
    """Parts of a normalised address; absent parts are None.

    ``extra`` holds text that fits no part (e.g. a residential compound name)
    and is "" when everything was recognised.
    """

    normalized: str
    town: str | None = None
    village: str | None = None
    road: str | None = None
    house_no: str | None = None
    building_no: str | None = None
    unit_no: str | None = None
    room_no: str | None = None
    group_no: str | None = None
    extra: str = ""
    precision: Precision = "none"


def _precision(parts: dict[str, str | None]) -> Precision:
    if parts["room_no"]:
        return "room"
    if parts["building_no"] or parts["unit_no"]:
        return "building"
    if parts["house_no"]:
        return "house"
    if parts["road"]:
        return "road"
    if parts["village"] or parts["group_no"]:
        return "village"
    if parts["town"]:
        return "town"
    return "none"


def parse_address(text: str) -> ParsedAddress:
    """Normalise ``text`` and split it into town, village, road and numbers.

    Town, village and road are read from the front in that order; each
    numbered part (组 号 幢 单元 室) is taken at its first occurrence in what
    is left.  ``precision`` is the finest part present.
    """
    return parse_normalized(normalize_address(text))


@functools.lru_cache(maxsize=16384)
def parse_normalized(normalized: str) -> ParsedAddress:
    """``parse_address`` of text that is already normalised (a stored ``addresses.normalized``, a
    query after ``normalize_address``, a truncation of either): the geocoder parses tens of
    candidate rows per query, and normalising them again was most of its Python time. Cached:
    candidates recur across queries, and the result is immutable."""
    rest = normalized
    parts: dict[str, str | None] = {}
    for key, pattern in (("town", _TOWN), ("village", _VILLAGE), ("road", _ROAD)):
        match = pattern.match(rest)
        parts[key] = match.group(key) if match else None
        if match:
            rest = rest[match.end() :]
    leftover: list[str] = []
    position = 0
    for match in _NUMBERED.finditer(rest):
        field = _UNIT_FIELD[match.group("unit")]
        if parts.get(field) is None:
            parts[field] = match.group("num")
            leftover.append(rest[position : match.start()])
            position = match.end()
    leftover.append(rest[position:])
    for field in _UNIT_FIELD.values():
        parts.setdefault(field, None)
    return ParsedAddress(
        normalized=normalized,
        town=parts["town"],
        village=parts["village"],
        road=parts["road"],
        house_no=parts["house_no"],
        building_no=parts["building_no"],
        unit_no=parts["unit_no"],
        room_no=parts["room_no"],
        group_no=parts["group_no"],
        extra="".join(leftover),
        precision=_precision(parts),
    )
