"""A Jiashan-sized synthetic county and a year of incidents, for the map benchmark.

Used only when the demo dataset is not loaded: ~506 km^2 disc, 9 towns, 174 villages, ~760 grids,
~5,600 micro-grids (nested Voronoi coverages, so polygons have realistic vertex counts), 130
beats in 10 stations, 20,000 rental buildings, 5,000 hazards, and clustered incidents with a
daily rhythm over 365 days. Points are assigned with gridmap's own in-process assigner and
written with COPY, the way the bulk loader does.
"""

from __future__ import annotations

import datetime as dt
import io

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from boundaries.generations import publish_layers
from gis.spatial import crs
from gis.spatial.assign import assign_points

CENTRE = (120.92, 30.88)
RADIUS_M = 12_700.0  # pi r^2 ~ 506 km^2, Jiashan's area
COUNTS = {"town": 9, "village": 174, "grid": 760, "micro_grid": 5600, "beat": 130, "station": 10}
CATEGORIES = (
    "dispute",
    "neighbour_dispute",
    "labour_dispute",
    "fire",
    "production_safety",
    "stability",
    "homicide_prevention",
    "public_security",
    "environment",
    "traffic",
)
SOURCES = ("grid_patrol", "resident_app", "110", "12345")
HAZARDS = ("private_wiring", "ebike_flyline", "blocked_fire_escape", "illegal_ebike_parking", "gas")


def _to_wgs(geoms: npt.NDArray[np.object_]) -> npt.NDArray[np.object_]:
    out: npt.NDArray[np.object_] = shapely.transform(
        geoms, lambda c: np.column_stack(crs.from_metric(c[:, 0], c[:, 1]))
    )
    return out


def _points_in(area: shapely.Geometry, n: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    x0, y0, x1, y1 = area.bounds
    out: list[npt.NDArray[np.float64]] = []
    have = 0
    while have < n:
        xy = np.column_stack([rng.uniform(x0, x1, 2 * n), rng.uniform(y0, y1, 2 * n)])
        xy = xy[shapely.contains_xy(area, xy[:, 0], xy[:, 1])]
        out.append(xy)
        have += len(xy)
    return np.vstack(out)[:n]


def _cells(area: shapely.Geometry, sites: npt.NDArray[np.float64]) -> npt.NDArray[np.object_]:
    """Voronoi cells of ``sites`` clipped to ``area``, in the order of ``sites``."""
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(sites), extend_to=area))
    owner = shapely.STRtree(cells).query(shapely.points(sites), predicate="within")
    ordered = np.empty(len(sites), dtype=object)
    ordered[owner[0]] = cells[owner[1]]
    clipped: npt.NDArray[np.object_] = shapely.intersection(ordered, area)
    return clipped


def _group_union(cells: npt.NDArray[np.object_], label: npt.NDArray[np.int64], n: int) -> list[shapely.Geometry]:
    return [shapely.coverage_union_all(cells[label == i]) for i in range(n)]


def _nearest(points: npt.NDArray[np.float64], sites: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    tree = shapely.STRtree(shapely.points(sites))
    found: npt.NDArray[np.int64] = tree.nearest(shapely.points(points))
    return found


def build_layers(rng: np.random.Generator) -> dict[str, gpd.GeoDataFrame]:
    cx, cy = crs.to_metric(*CENTRE)
    county = shapely.Point(cx, cy).buffer(RADIUS_M, quad_segs=64)
    micro_sites = _points_in(county, COUNTS["micro_grid"], rng)
    grid_sites = _points_in(county, COUNTS["grid"], rng)
    village_sites = _points_in(county, COUNTS["village"], rng)
    town_sites = _points_in(county, COUNTS["town"], rng)
    micro = _cells(county, micro_sites)
    micro_grid = _nearest(micro_sites, grid_sites)
    used = np.unique(micro_grid)  # grids that got at least one micro-grid
    micro_grid = np.searchsorted(used, micro_grid)
    grid_sites = grid_sites[used]
    grids = np.array(_group_union(micro, micro_grid, len(used)), dtype=object)
    grid_village = _nearest(grid_sites, village_sites)
    used_v = np.unique(grid_village)
    grid_village = np.searchsorted(used_v, grid_village)
    village_sites = village_sites[used_v]
    villages = np.array(_group_union(grids, grid_village, len(used_v)), dtype=object)
    village_town = _nearest(village_sites, town_sites)
    used_t = np.unique(village_town)
    village_town = np.searchsorted(used_t, village_town)
    towns = np.array(_group_union(villages, village_town, len(used_t)), dtype=object)
    beat_sites = _points_in(county, COUNTS["beat"], rng)
    beats = _cells(county, beat_sites)
    beat_station = _nearest(beat_sites, _points_in(county, COUNTS["station"], rng))
    used_s = np.unique(beat_station)
    beat_station = np.searchsorted(used_s, beat_station)
    stations = np.array(_group_union(beats, beat_station, len(used_s)), dtype=object)

    town_codes = [f"330421{i + 1:03d}" for i in range(len(towns))]
    village_codes = [""] * len(villages)
    for t in range(len(towns)):
        for j, v in enumerate(np.flatnonzero(village_town == t)):
            village_codes[v] = f"{town_codes[t]}{j + 1:03d}"
    grid_codes = [""] * len(grids)
    for vi in range(len(villages)):
        for j, gi in enumerate(np.flatnonzero(grid_village == vi)):
            grid_codes[gi] = f"{village_codes[vi]}{j + 1:03d}"
    micro_codes = [""] * len(micro)
    for g_index in range(len(grids)):
        for j, mi in enumerate(np.flatnonzero(micro_grid == g_index)):
            micro_codes[mi] = f"{grid_codes[g_index]}{j + 1:02d}"
    station_codes = [f"330421P{i + 1:02d}" for i in range(len(stations))]
    beat_codes = [f"{station_codes[beat_station[b]]}{b + 1:03d}" for b in range(len(beats))]

    def frame(
        codes: list[str],
        names: list[str],
        parents: list[str],
        geoms: npt.NDArray[np.object_],
        households: list[int] | None = None,
    ) -> gpd.GeoDataFrame:
        data: dict[str, list[str] | list[int]] = {"code": codes, "name": names, "parent_code": parents}
        if households is not None:
            data["households"] = households
        return gpd.GeoDataFrame(data, geometry=list(_to_wgs(np.asarray(geoms, dtype=object))), crs="EPSG:4326")

    micro_hh = rng.integers(50, 81, len(micro)).tolist()
    grid_hh = np.bincount(micro_grid, weights=micro_hh).astype(int).tolist()
    return {
        "county": frame(["330421"], ["嘉善县(合成)"], ["330400"], np.array([county], dtype=object)),
        "town": frame(town_codes, [f"合成镇{i + 1}" for i in range(len(towns))], ["330421"] * len(towns), towns),
        "village": frame(
            village_codes, [f"合成村{c[-3:]}" for c in village_codes], [town_codes[t] for t in village_town], villages
        ),
        "grid": frame(
            grid_codes,
            [f"第{c[-3:]}网格" for c in grid_codes],
            [village_codes[v] for v in grid_village],
            grids,
            grid_hh,
        ),
        "micro_grid": frame(
            micro_codes, [f"{c[-2:]}微网格" for c in micro_codes], [grid_codes[g] for g in micro_grid], micro, micro_hh
        ),
        "station": frame(
            station_codes, [f"合成派出所{i + 1}" for i in range(len(stations))], ["330421"] * len(stations), stations
        ),
        "beat": frame(
            beat_codes, [f"警格{b + 1}" for b in range(len(beats))], [station_codes[s] for s in beat_station], beats
        ),
    }


def incident_points(n: int, rng: np.random.Generator) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Clustered points: 70 % around 60 hotspots, the rest spread over the county."""
    cx, cy = crs.to_metric(*CENTRE)
    county = shapely.Point(cx, cy).buffer(RADIUS_M, quad_segs=64)
    hot = _points_in(county.buffer(-1500), 60, rng)
    sigma = rng.uniform(250, 1500, len(hot))
    weight = rng.pareto(1.2, len(hot)) + 0.2
    n_hot = int(n * 0.7)
    pick = rng.choice(len(hot), n_hot, p=weight / weight.sum())
    xy_hot = hot[pick] + rng.normal(size=(n_hot, 2)) * sigma[pick, None]
    xy = np.vstack([xy_hot, _points_in(county, n - n_hot, rng)])
    inside = shapely.contains_xy(county, xy[:, 0], xy[:, 1])
    xy[~inside] = _points_in(county, int((~inside).sum()), rng)
    lon, lat = crs.from_metric(xy[:, 0], xy[:, 1])
    return np.asarray(lon), np.asarray(lat)


def incident_frame(n: int, end: dt.datetime, rng: np.random.Generator) -> pd.DataFrame:
    lon, lat = incident_points(n, rng)
    day = rng.integers(0, 365, n)
    hour_weights = np.array(
        [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 3.5, 3.5, 3, 2.5, 3, 3.5, 3.5, 3.2, 3, 2.8, 2.6, 2.3, 2, 1.6, 1.2]
    )
    hour = rng.choice(24, n, p=hour_weights / hour_weights.sum())
    seconds = day * 86400 + hour * 3600 + rng.integers(0, 3600, n)
    start = end - dt.timedelta(days=365)
    reported = pd.to_datetime(start) + pd.to_timedelta(seconds, unit="s")
    status = np.where(rng.random(n) < 0.993, "closed", rng.choice(["reported", "dispatched", "in_progress"], n))
    deadline = reported + pd.to_timedelta(3, unit="D")
    closed_at = reported + pd.to_timedelta(rng.integers(3600, 3 * 86400, n), unit="s")
    return pd.DataFrame(
        {
            "category": rng.choice(CATEGORIES, n),
            "source": rng.choice(SOURCES, n, p=[0.45, 0.25, 0.2, 0.1]),
            "reported_at": reported,
            "status": status,
            "deadline_at": deadline,
            "closed_at": pd.Series(closed_at).where(status == "closed"),
            "lon": lon,
            "lat": lat,
        }
    )


def _copy(conn: Connection, table: str, frame: pd.DataFrame) -> None:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False, na_rep="\\N")
    buf.seek(0)
    raw = conn.connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as copy,
    ):
        while chunk := buf.read(1 << 20):
            copy.write(chunk)


def _with_assignment(conn: Connection, frame: pd.DataFrame, times: pd.Series | None) -> pd.DataFrame:
    a = assign_points(conn, frame["lon"].to_numpy(), frame["lat"].to_numpy(), times)
    out = frame.drop(columns=["lon", "lat"]).copy()
    out["geom"] = [f"SRID=4326;POINT({x:.7f} {y:.7f})" for x, y in zip(frame["lon"], frame["lat"], strict=True)]
    for column in (
        "town_code",
        "village_code",
        "grid_code",
        "micro_grid_code",
        "station_code",
        "beat_code",
        "assign_status",
    ):
        out[column] = getattr(a, column)
    out["generation_id"] = a.generation_id
    return out


def add_incidents(conn: Connection, n: int, end: dt.datetime, seed: int) -> None:
    """COPY ``n`` incidents of the year before ``end`` (bulk mode: assigned in process)."""
    rng = np.random.default_rng(seed)
    conn.execute(sa.text("SET LOCAL gridmap.bulk = 'on'"))
    for first in range(0, n, 250_000):
        frame = incident_frame(min(250_000, n - first), end, rng)
        _copy(conn, "incidents", _with_assignment(conn, frame, None))


def load_county(conn: Connection, seed: int = 7) -> None:
    """Publish the synthetic layers and add staff, rental buildings and hazards."""
    rng = np.random.default_rng(seed)
    layers = build_layers(rng)
    publish_layers(
        conn, layers, note="map benchmark county", author="bench", published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    )
    conn.execute(sa.text("SET LOCAL gridmap.bulk = 'on'"))
    grids = layers["grid"]["code"].tolist()
    staff = pd.DataFrame(
        {
            "grid_code": [g for g in grids for _ in range(2)],
            "role": ["grid_leader", "grid_worker"] * len(grids),
            "name": [f"员工{i}" for i in range(2 * len(grids))],
            "phone": [f"139{i:08d}" for i in range(2 * len(grids))],
        }
    )
    # ``staff`` is a view of people and postings (migration 0011): rows go in through its insert trigger.
    conn.execute(
        sa.text(
            "INSERT INTO staff (grid_code, role, name, phone) SELECT * FROM unnest("
            "CAST(:g AS text[]), CAST(:r AS text[]), CAST(:n AS text[]), CAST(:p AS text[]))"
        ),
        {
            "g": staff["grid_code"].tolist(),
            "r": staff["role"].tolist(),
            "n": staff["name"].tolist(),
            "p": staff["phone"].tolist(),
        },
    )
    n_b = 20_000
    lon, lat = incident_points(n_b, rng)
    buildings = pd.DataFrame(
        {
            "code": [f"BENCH-B{i}" for i in range(n_b)],
            "name": [f"出租楼{i}" for i in range(n_b)],
            "is_rental": True,
            "landlord_name": "房东甲",
            "landlord_phone": "13700001234",
            "tenants": rng.integers(1, 40, n_b),
            "rooms": rng.integers(1, 20, n_b),
            "risk_level": rng.choice(["high", "medium", "low"], n_b, p=[0.1, 0.3, 0.6]),
            "lon": lon,
            "lat": lat,
        }
    )
    _copy(conn, "buildings", _with_assignment(conn, buildings, None))
    n_h = 5_000
    lon, lat = incident_points(n_h, rng)
    hazards = pd.DataFrame(
        {
            "category": rng.choice(HAZARDS, n_h),
            "severity": rng.choice(["low", "medium", "high"], n_h),
            "status": rng.choice(["open", "rectifying", "rectified", "overdue"], n_h, p=[0.2, 0.2, 0.55, 0.05]),
            "found_at": dt.datetime.now(dt.UTC) - dt.timedelta(days=30),
            "lon": lon,
            "lat": lat,
        }
    )
    _copy(conn, "hazards", _with_assignment(conn, hazards, None))
