"""Synthetic town roads and house numbering (门牌号) for urban addresses.

Each town gets a handful of straight roads around its seat.  A point's road
is the nearest one; its number grows with the distance along the road
(odd numbers on the left-hand side, even on the right, one pair every 20 m).
The two main roads are split at the seat into 东路/西路 and 南路/北路 halves
numbered outward from the seat, as Chinese towns commonly do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

FloatArray = npt.NDArray[np.float64]

NUMBER_SPACING_M = 20.0

ROAD_STEMS = (
    "中山",
    "解放",
    "人民",
    "健康",
    "体育",
    "环城",
    "花园",
    "世纪",
    "文化",
    "新华",
    "建设",
    "和平",
    "胜利",
    "振兴",
    "富民",
    "阳光",
    "金星",
    "长江",
    "华山",
    "谈公",
    "晋阳",
    "子胥",
    "亭桥",
    "施家",
    "车站",
    "城北",
    "城南",
    "南苑",
    "北苑",
    "东升",
    "景阳",
    "梅花",
    "桂花",
    "玉兰",
    "兴业",
    "创业",
    "科技",
    "工业",
    "商城",
    "银河",
    "春晖",
    "秀水",
    "明珠",
    "锦绣",
    "嘉宝",
    "善福",
    "东方",
    "西园",
    "北星",
    "平安",
    "永安",
    "长春",
    "迎宾",
    "复兴",
    "泰山",
    "黄河",
    "珠江",
    "钱塘",
    "太湖",
    "汾湖",
    "祥符",
    "塘东",
    "南祥",
    "北塘",
    "浙沪",
    "沪杭",
    "利民",
    "新安",
    "清风",
    "荷花",
    "紫薇",
    "丁香",
    "枫泾",
    "翠竹",
    "青松",
    "松风",
    "芦墟",
    "朝阳",
    "育才",
    "学府",
    "兴善",
    "善西",
    "善东",
    "鹤鸣",
    "凤凰",
    "龙潭",
    "晨光",
    "湖滨",
    "滨河",
    "临河",
    "通济",
    "大胜",
    "红旗",
    "光明",
    "团结",
    "幸福",
)


@dataclass(frozen=True)
class Road:
    """A straight road: numbering starts at ``origin`` and runs along ``direction``."""

    name: str  # name on the positive side of the origin
    name_back: str  # name on the negative side (same as ``name`` unless split at the seat)
    origin: tuple[float, float]
    direction: tuple[float, float]  # unit vector


def town_stem(town_name: str) -> str:
    for suffix in ("街道", "镇", "乡"):
        if town_name.endswith(suffix):
            return town_name[: -len(suffix)]
    return town_name


def plan_roads(
    town_names: list[str],
    seats: list[tuple[float, float]],
    extents: list[float],
    urban: list[bool],
    rng: np.random.Generator,
) -> list[list[Road]]:
    """Roads for each town; road names are unique across the county."""
    counts = [int(rng.integers(10, 13)) if u else int(rng.integers(6, 9)) for u in urban]
    stems = rng.permutation(np.array(ROAD_STEMS))
    if sum(counts) > len(stems):
        raise ValueError(f"need {sum(counts)} road names but only {len(stems)} stems exist")
    out: list[list[Road]] = []
    used = 0
    for town, seat, extent, count in zip(town_names, seats, extents, counts, strict=True):
        roads: list[Road] = []
        sx, sy = seat
        for k in range(count):
            stem = str(stems[used])
            used += 1
            east_west = k % 2 == 0
            angle = np.radians(rng.uniform(-15, 15) + (0.0 if east_west else 90.0))
            direction = (float(np.cos(angle)), float(np.sin(angle)))
            normal = (-direction[1], direction[0])
            offset = 0.0 if k < 2 else float(rng.normal(0.0, extent / 4.0))
            through = (sx + normal[0] * offset, sy + normal[1] * offset)
            if k < 2:
                pos, back = ("东路", "西路") if east_west else ("北路", "南路")
                roads.append(Road(stem + pos, stem + back, through, direction))
                continue
            name = f"{town_stem(town)}大道" if k == 2 else stem + ("街" if k % 5 == 4 else "路")
            start = (through[0] - direction[0] * extent, through[1] - direction[1] * extent)
            roads.append(Road(name, name, start, direction))
        out.append(roads)
    return out


def locate(roads: list[Road], x: FloatArray, y: FloatArray) -> tuple[list[str], npt.NDArray[np.int64]]:
    """Nearest road name and raw house number for each point."""
    origin = np.array([r.origin for r in roads])
    direction = np.array([r.direction for r in roads])
    dx = x[:, None] - origin[None, :, 0]
    dy = y[:, None] - origin[None, :, 1]
    along = dx * direction[None, :, 0] + dy * direction[None, :, 1]
    across = dy * direction[None, :, 0] - dx * direction[None, :, 1]
    nearest = np.abs(across).argmin(axis=1)
    rows = np.arange(len(x))
    t = along[rows, nearest]
    left = across[rows, nearest] > 0
    pair = np.floor(np.abs(t) / NUMBER_SPACING_M).astype(np.int64) + 1
    number = np.where(left, 2 * pair - 1, 2 * pair)
    names = [roads[r].name if v >= 0 else roads[r].name_back for r, v in zip(nearest.tolist(), t.tolist(), strict=True)]
    return names, number


def road_kind(road: Road) -> str:
    """``main`` for the roads through the seat and the town's 大道, ``street`` for a 街, else ``road``."""
    if road.name != road.name_back or road.name.endswith("大道"):
        return "main"
    return "street" if road.name.endswith("街") else "road"


def road_lines(roads: list[Road], area: BaseGeometry, segment_m: float = 100.0) -> list[tuple[str, str, BaseGeometry]]:
    """(name, kind, line) of each road clipped to ``area`` (its town, in the roads' coordinates).

    ``locate`` names a point after the nearest unbounded line, so a road split at the seat is
    stored as its two halves (each under its own name) and any other road whole. Lines are
    densified every ``segment_m`` so that a later projection keeps them straight. Roads that miss
    the area are left out."""
    x0, y0, x1, y1 = area.bounds
    out: list[tuple[str, str, BaseGeometry]] = []
    for road in roads:
        ox, oy = road.origin
        dx, dy = road.direction
        # Far enough both ways to cross the whole area wherever the origin is.
        reach = max(math.hypot(cx - ox, cy - oy) for cx in (x0, x1) for cy in (y0, y1)) + segment_m
        ahead, behind = (ox + dx * reach, oy + dy * reach), (ox - dx * reach, oy - dy * reach)
        halves = (
            [(road.name, LineString([road.origin, ahead])), (road.name_back, LineString([behind, road.origin]))]
            if road.name != road.name_back
            else [(road.name, LineString([behind, ahead]))]
        )
        for name, line in halves:
            parts = [p for p in shapely.get_parts(line.intersection(area)) if p.geom_type == "LineString" and p.length]
            if parts:
                clipped = parts[0] if len(parts) == 1 else shapely.multilinestrings(parts)
                out.append((name, road_kind(road), shapely.segmentize(clipped, segment_m)))
    return out


class NumberBook:
    """Hands out house numbers so no two entities on one road share a number."""

    def __init__(self) -> None:
        self._taken: dict[str, set[int]] = {}

    def claim(self, road: str, number: int) -> int:
        taken = self._taken.setdefault(road, set())
        while number in taken:
            number += 2  # stay on the same side of the road
        taken.add(number)
        return number
