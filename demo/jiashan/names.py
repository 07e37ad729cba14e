"""Synthetic people: Chinese names, mobile numbers and ID card numbers.

ID numbers follow GB 11643-1999: 6-digit region code, birth date, 3-digit
sequence (odd for men) and an ISO 7064 MOD 11-2 check character.  All people
drawn from one ``PersonFactory`` have distinct phones and ID numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from demo.jiashan.outline import COUNTY_CODE

# Common surnames in Jiaxing, roughly by frequency (weights are relative).
SURNAMES: tuple[tuple[str, int], ...] = (
    ("沈", 9),
    ("王", 9),
    ("张", 8),
    ("陈", 8),
    ("朱", 7),
    ("李", 6),
    ("徐", 6),
    ("顾", 5),
    ("陆", 5),
    ("钱", 5),
    ("周", 5),
    ("吴", 5),
    ("金", 4),
    ("姚", 4),
    ("孙", 4),
    ("杨", 4),
    ("费", 3),
    ("许", 3),
    ("胡", 3),
    ("俞", 3),
    ("蒋", 3),
    ("屠", 2),
    ("褚", 2),
    ("曹", 2),
    ("刘", 3),
    ("黄", 3),
    ("范", 2),
    ("蔡", 2),
    ("倪", 2),
    ("戴", 2),
    ("施", 2),
    ("邹", 2),
    ("马", 2),
    ("汤", 2),
    ("郁", 1),
    ("谈", 1),
    ("浦", 1),
    ("钟", 1),
    ("丁", 2),
    ("唐", 2),
)
GIVEN_CHARS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文斌志峰辉"
    "晓燕凤春林海波宇浩婷雪琴丹慧新荣雷俊飞鹏健亮云龙佳欣怡晨悦嘉善宏伟"
)

_CHECK_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_CHECK_CHARS = np.array(list("10X98765432"))
_PHONE_SECOND = np.array(list("3456789"))


def id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character for the first 17 digits of an ID number."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError(f"first17 must be 17 digits, got {first17!r}")
    total = int(np.dot(np.array([int(c) for c in first17]), _CHECK_WEIGHTS))
    return str(_CHECK_CHARS[total % 11])


def random_names(count: int, rng: np.random.Generator) -> list[str]:
    """Surname + one or two given-name characters."""
    surnames = np.array([s for s, _ in SURNAMES])
    weights = np.array([w for _, w in SURNAMES], dtype=np.float64)
    chars = np.array(list(GIVEN_CHARS))
    family = rng.choice(surnames, size=count, p=weights / weights.sum())
    first = rng.choice(chars, size=count)
    second = rng.choice(chars, size=count)
    two = rng.random(count) < 0.7
    return [f + a + (b if t else "") for f, a, b, t in zip(family, first, second, two, strict=True)]


def random_phones(count: int, rng: np.random.Generator) -> list[str]:
    """11-digit mainland mobile numbers, 1[3-9]xxxxxxxxx."""
    second = rng.choice(_PHONE_SECOND, size=count)
    rest = rng.integers(0, 10**9, size=count)
    return [f"1{s}{r:09d}" for s, r in zip(second, rest, strict=True)]


def random_id_cards(count: int, rng: np.random.Generator, region: str = COUNTY_CODE) -> list[str]:
    """18-character ID numbers of people born 1960-2003 in ``region``."""
    if len(region) != 6 or not region.isdigit():
        raise ValueError(f"region must be a 6-digit division code, got {region!r}")
    start = np.datetime64("1960-01-01")
    days = rng.integers(0, (np.datetime64("2003-12-31") - start).astype(int), size=count)
    births = (start + days.astype("timedelta64[D]")).astype(str)
    seq = rng.integers(1, 1000, size=count)
    body = [f"{region}{b.replace('-', '')}{s:03d}" for b, s in zip(births, seq, strict=True)]
    digits = np.array([[int(c) for c in text] for text in body], dtype=np.int64).reshape(count, 17)
    check = _CHECK_CHARS[(digits @ _CHECK_WEIGHTS) % 11]
    return [b + c for b, c in zip(body, check, strict=True)]


class PersonFactory:
    """Draws synthetic people; phones and ID numbers never repeat within one factory. ID numbers
    carry ``region`` (the county's code), so the people of different counties never share one."""

    def __init__(self, rng: np.random.Generator, region: str = COUNTY_CODE) -> None:
        self._rng = rng
        self._region = region
        self._phones: set[str] = set()
        self._ids: set[str] = set()

    def _fresh(self, count: int, draw: Callable[[int, np.random.Generator], list[str]], used: set[str]) -> list[str]:
        out: list[str] = []
        while len(out) < count:
            for value in draw(count - len(out), self._rng):
                if value not in used:
                    used.add(value)
                    out.append(value)
        return out

    def draw(self, count: int) -> pd.DataFrame:
        """``count`` people: columns name, phone, id_card."""
        return pd.DataFrame(
            {
                "name": random_names(count, self._rng),
                "phone": self._fresh(count, random_phones, self._phones),
                "id_card": self._fresh(count, lambda k, rng: random_id_cards(k, rng, self._region), self._ids),
            }
        )
