"""Standard addresses rewritten the way hotline operators and residents type them, for evaluation.

Each variant is a switch; a typed form is the standard address with a set of switches on, so the
forms of one address are the product of its applicable switches (2**k). ``typed_forms`` samples
that product deterministically per address (the random generator is seeded with the address's
id), so the same sample comes back in every run and on every machine.

Switches (``SWITCHES``):

* ``no_prefix``: 浙江省嘉兴市嘉善县 left out;
* ``no_town``: the town (魏塘街道, 姚庄镇) left out;
* ``dong``: 栋 or 座 for 幢;
* ``no_suffix``: the last unit word left out (301室 -> 301, 15号 -> 15, 3幢 -> 3, 3组 -> 3);
* ``cn_numerals``: Chinese numerals (二十三, 一二八, 三〇一);
* ``fullwidth``: full-width digits (１２８); with ``cn_numerals`` the numbers alternate;
* ``spaces``: a space between the parts;
* ``group``: a rural house given by its village group only (丁栅村3组 for 丁栅村3组15号);
* ``place``: the road and house number (or the rural house) replaced by the name of a place there
  (金色家园3幢2单元301室), when the address has one.

A typed form records the switches that changed its text (``effective``): 栋 for 幢 does nothing
to a rural house, so such a form counts as one without it.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from gis.spatial.address_text import parse_address

PREFIX = "浙江省嘉兴市嘉善县"
SWITCHES = ("no_prefix", "no_town", "dong", "no_suffix", "cn_numerals", "fullwidth", "spaces", "group", "place")
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_CN = "〇一二三四五六七八九"
_NUMBERED = (("group_no", "组"), ("house_no", "号"), ("building_no", "幢"), ("unit_no", "单元"), ("room_no", "室"))


@dataclass(frozen=True)
class TypedForm:
    text: str
    switches: tuple[str, ...]  # those asked for
    effective: tuple[str, ...]  # those that changed the text


def chinese_numeral(number: int, positional: bool) -> str:
    """二十三 (positional, below 100) or 一二八 / 三〇一 (digit by digit)."""
    if positional and 0 < number < 100:
        tens, units = divmod(number, 10)
        head = "" if tens == 0 else ("十" if tens == 1 else _CN[tens] + "十")
        return head + (_CN[units] if units else "") if tens else _CN[units]
    return "".join(_CN[int(d)] for d in str(number))


def applicable(full_text: str, place_name: str | None = None) -> tuple[str, ...]:
    """The switches that can change this address."""
    p = parse_address(full_text)
    out = ["no_prefix"] if full_text.startswith(PREFIX) else []
    if p.town:
        out.append("no_town")
    if p.building_no:
        out.append("dong")
    out += ["no_suffix", "cn_numerals", "fullwidth", "spaces"]
    if p.group_no and p.house_no and not p.room_no:
        out.append("group")
    if place_name:
        out.append("place")
    return tuple(out)


def typed(
    full_text: str,
    switches: tuple[str, ...],
    rng: random.Random,
    place_name: str | None = None,
    *,
    effective: bool = True,
) -> TypedForm:
    """``full_text`` with ``switches`` on; ``place_name`` names the place at its road and house
    number (urban) or at the house (rural)."""
    on = set(switches)
    if "group" in on and "place" in on:
        raise ValueError("group and place are exclusive: a place stands for the house the group form leaves out")
    p = parse_address(full_text)
    names: list[str] = []
    if full_text.startswith(PREFIX) and "no_prefix" not in on:
        names.append(PREFIX)
    if p.town and "no_town" not in on:
        names.append(p.town)
    numbers = [(getattr(p, field), unit, field) for field, unit in _NUMBERED if getattr(p, field)]
    if "place" in on and place_name:
        names.append(place_name)
        # The place stands for everything down to the house number.
        numbers = [n for n in numbers if n[2] not in ("group_no", "house_no")]
    else:
        # The names as written between the town and the first number (a village named 翁村村
        # parses as 翁村 plus text; the form keeps what the address says).
        body = full_text.removeprefix(PREFIX).removeprefix(p.town or "")
        first = next((i for i, ch in enumerate(body) if ch.isdigit()), len(body))
        if p.road and p.road in body:  # a lane's number is part of its road (解放路12弄)
            first = body.index(p.road) + len(p.road)
        names += [body[:first]] if body[:first] else []
        if "group" in on:
            numbers = [n for n in numbers if n[2] == "group_no"]
    parts = list(names)
    for i, (number, unit, _field) in enumerate(numbers):
        text = number
        if number.isdigit():
            chinese = "cn_numerals" in on and not ("fullwidth" in on and i % 2)
            if chinese:
                text = chinese_numeral(int(number), positional=rng.random() < 0.5)
            elif "fullwidth" in on:
                text = number.translate(FULL_WIDTH)
        if unit == "幢" and "dong" in on:
            unit = rng.choice(("栋", "座"))
        if i == len(numbers) - 1 and "no_suffix" in on:
            unit = ""
        parts.append(text + unit)
    out = (" " if "spaces" in on else "").join(parts)
    asked = tuple(s for s in SWITCHES if s in on)
    return TypedForm(out, asked, _effective(full_text, asked, place_name) if effective else asked)


def _effective(full_text: str, switches: tuple[str, ...], place: str | None) -> tuple[str, ...]:
    """The switches whose removal changes the text. Both sides draw from one fixed generator: a
    switch that changes nothing draws nothing, so the other draws stay aligned."""
    if not switches:
        return ()
    full = _text(full_text, switches, place)
    return tuple(
        s for s in SWITCHES if s in switches and _text(full_text, tuple(x for x in switches if x != s), place) != full
    )


def _text(full_text: str, switches: tuple[str, ...], place: str | None) -> str:
    return typed(full_text, switches, random.Random(0), place, effective=False).text


def typed_forms(
    address_id: int, full_text: str, per_address: int, place_name: str | None = None, seed: int = 0
) -> list[TypedForm]:
    """``per_address`` distinct switch combinations of this address (all when fewer exist), drawn
    from the product of its applicable switches with a generator seeded by the address id."""
    rng = random.Random(address_id * 1_000_003 + seed)
    switches = applicable(full_text, place_name)
    combos = [
        tuple(s for s, bit in zip(switches, bits, strict=True) if bit)
        for bits in itertools.product((0, 1), repeat=len(switches))
    ]
    combos = [c for c in combos if not ("group" in c and "place" in c)]
    chosen = rng.sample(combos, min(per_address, len(combos)))
    return [typed(full_text, combo, rng, place_name) for combo in chosen]
