"""A tiny synthetic county with exact, hand-checkable edges, for tests, examples and benchmarks.

2 towns (split at XM) x 2 villages (split at YM) x 2 grids x 2 micro-grids; 3 police beats in 2
stations whose edges do not follow the grid edges. Codes grow west to east and south to north,
so on a shared edge the smaller code is the western or southern unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
from shapely.geometry import box

X0, X1, Y0, Y1 = 120.90, 120.94, 30.83, 30.85  # ~3.8 km x 2.2 km in Jiashan
XM, YM = 120.92, 30.84


@dataclass(frozen=True)
class MiniCounty:
    generation: int
    towns: gpd.GeoDataFrame
    villages: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    micro_grids: gpd.GeoDataFrame
    beats: gpd.GeoDataFrame
    stations: gpd.GeoDataFrame


def _gdf(rows: list[dict[str, object]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")


def build_mini_county() -> dict[str, gpd.GeoDataFrame]:
    """The layers of the sample county, EPSG:4326, keyed by layer name."""
    towns, villages, grids, micros = [], [], [], []
    for t, (tx0, tx1) in enumerate([(X0, XM), (XM, X1)], start=1):
        tcode = f"33042100{t}"
        towns.append({"code": tcode, "name": f"测试镇{t}", "parent_code": "330421", "geometry": box(tx0, Y0, tx1, Y1)})
        for v, (vy0, vy1) in enumerate([(Y0, YM), (YM, Y1)], start=1):
            vcode = f"{tcode}{v:03d}"
            villages.append(
                {"code": vcode, "name": f"测试镇{t}村{v}", "parent_code": tcode, "geometry": box(tx0, vy0, tx1, vy1)}
            )
            gx = (tx0 + tx1) / 2
            for g, (gx0, gx1) in enumerate([(tx0, gx), (gx, tx1)], start=1):
                gcode = f"{vcode}{g:03d}"
                grids.append(
                    {
                        "code": gcode,
                        "name": f"{vcode}第{g}网格",
                        "parent_code": vcode,
                        "households": 400,
                        "geometry": box(gx0, vy0, gx1, vy1),
                    }
                )
                my = (vy0 + vy1) / 2
                for m, (my0, my1) in enumerate([(vy0, my), (my, vy1)], start=1):
                    micros.append(
                        {
                            "code": f"{gcode}{m:02d}",
                            "name": f"{gcode}-{m}微网格",
                            "parent_code": gcode,
                            "households": 65,
                            "geometry": box(gx0, my0, gx1, my1),
                        }
                    )
    cuts = [X0, 120.913, 120.927, X1]
    beats = [
        {
            "code": f"330421P0{1 if b < 2 else 2}{b + 1:02d}",
            "name": f"警格{b + 1}",
            "parent_code": f"330421P0{1 if b < 2 else 2}",
            "geometry": box(cuts[b], Y0, cuts[b + 1], Y1),
        }
        for b in range(3)
    ]
    stations = [
        {"code": "330421P01", "name": "测试一派出所", "parent_code": "330421", "geometry": box(X0, Y0, cuts[2], Y1)},
        {"code": "330421P02", "name": "测试二派出所", "parent_code": "330421", "geometry": box(cuts[2], Y0, X1, Y1)},
    ]
    county = [{"code": "330421", "name": "嘉善县(测试)", "parent_code": "330400", "geometry": box(X0, Y0, X1, Y1)}]
    return {
        "county": _gdf(county),
        "town": _gdf(towns),
        "village": _gdf(villages),
        "grid": _gdf(grids),
        "micro_grid": _gdf(micros),
        "station": _gdf(stations),
        "beat": _gdf(beats),
    }


def shifted_county(code: str, dx: float, dy: float = 0.0) -> dict[str, gpd.GeoDataFrame]:
    """The sample county moved by (dx, dy) degrees and recoded as county ``code`` (every code and
    parent code starting with 330421 starts with ``code`` instead): another county beside the
    first, for tests of a deployment of several counties."""
    import shapely

    out = {}
    for layer, gdf in build_mini_county().items():
        moved = gdf.copy()
        moved["geometry"] = shapely.transform(
            moved.geometry.values,
            lambda xy: xy + [dx, dy],
        )
        for col in ("code", "parent_code"):
            moved[col] = [c if not str(c).startswith("330421") else code + str(c)[6:] for c in moved[col]]
        moved["name"] = [f"{code}:{n}" for n in moved["name"]]
        out[layer] = gpd.GeoDataFrame(moved, geometry="geometry", crs="EPSG:4326")
    return out
