"""The demo's field work: household visits and patrol tracks consistent with its staff and buildings.

Every grid worker (专职网格员, an open posting on a grid) visits buildings of their own grid: 6 to
14 a day (so the quota of 10 is met on some days and not on others) for ``VISIT_DAYS`` days up to
the day before the demo's reference instant, mostly routine day visits, some night visits
(19:00-21:30), care visits and follow-ups, with the four-knows checks mostly complete and the
phone's position a few metres from the building. Stored in bulk (the point trigger is skipped; the
codes are the visited building's, which is where the visit counts).

On each of the last ``PATROL_DAYS`` days most workers patrol their grid once: an afternoon walk
through a dozen of its buildings in nearest-neighbour order at walking pace, a GPS fix every
30 s; one patrol in fifty has a GPS jump that the speed rule flags. The display track and
figures are worked out like ``POST /patrols/{id}/points`` does (gis.fieldwork.patrols).

A quarter of visits rather than a year: a year of ten visits a day per worker is three million rows,
more than a demo needs to show coverage, quotas and the 30-day layer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.core.vocab import COUNTY_TZ, VISIT_KINDS
from gis.fieldwork.patrols import TRACK_TOLERANCE_M, speed_flags
from gis.spatial.crs import METRIC_EPSG

VISIT_DAYS = 90
PATROL_DAYS = 3
FIX_EVERY_S = 30
WALK_M_S = 1.3
ACTOR = "demo"

_WORKERS = sa.text(
    "SELECT DISTINCT ON (s.person_id, s.area_code) s.id AS posting_id, s.person_id, s.area_code AS grid_code "
    "FROM postings s WHERE s.role = 'grid_worker' AND s.layer = 'grid' AND s.ends_on IS NULL "
    "ORDER BY s.person_id, s.area_code, s.id"
)

# Rows arrive as arrays; the codes come from the visited building (bulk mode skips the trigger).
_INSERT_VISITS = sa.text(
    "INSERT INTO visits (client_id, person_id, posting_id, building_id, kind, knows_people, knows_family, "
    "knows_address, knows_situation, at, recorded_by, geom, town_code, village_code, grid_code, micro_grid_code, "
    "station_code, beat_code, generation_id, assign_status, snap_distance_m) "
    "SELECT 'demo-' || v.person || '-' || v.n, v.person, v.posting, b.id, v.kind, v.k1, v.k2, v.k3, v.k4, v.at, "
    ":actor, ST_Translate(b.geom, v.dx, v.dy), b.town_code, b.village_code, b.grid_code, b.micro_grid_code, "
    "b.station_code, b.beat_code, b.generation_id, b.assign_status, b.snap_distance_m "
    "FROM unnest(CAST(:person AS bigint[]), CAST(:posting AS bigint[]), CAST(:n AS int[]), "
    "CAST(:building AS bigint[]), CAST(:kind AS text[]), CAST(:k1 AS boolean[]), CAST(:k2 AS boolean[]), "
    "CAST(:k3 AS boolean[]), CAST(:k4 AS boolean[]), CAST(:at AS timestamptz[]), CAST(:dx AS float8[]), "
    "CAST(:dy AS float8[])) AS v(person, posting, n, building, kind, k1, k2, k3, k4, at, dx, dy) "
    "JOIN buildings b ON b.id = v.building"
)

_RETRACK_ALL = sa.text(
    "UPDATE patrols p SET track = ST_Transform(ST_Simplify(ST_Transform(l.g, :metric), :tol), 4326), "
    "length_m = ST_Length(ST_Transform(l.g, :metric)), point_count = l.n, flagged_count = l.f "
    "FROM (SELECT patrol_id, ST_MakeLine(geom ORDER BY t) FILTER (WHERE NOT flagged) AS g, count(*) AS n, "
    "count(*) FILTER (WHERE flagged) AS f FROM patrol_points WHERE patrol_id = ANY(:ids) GROUP BY patrol_id) l "
    "WHERE p.id = l.patrol_id"
)


def _buildings(conn: Connection) -> dict[str, pd.DataFrame]:
    frame = pd.DataFrame(
        conn.execute(
            sa.text(
                "SELECT id, grid_code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM buildings WHERE grid_code IS NOT NULL"
            )
        ).all(),
        columns=["id", "grid_code", "lon", "lat"],
    )
    return {code: group.reset_index(drop=True) for code, group in frame.groupby("grid_code")}


def _visits(
    conn: Connection,
    workers: list[tuple[int, int, str]],
    by_grid: dict[str, pd.DataFrame],
    end: pd.Timestamp,
    rng: np.random.Generator,
) -> int:
    first_day = end.tz_convert(COUNTY_TZ).normalize() - pd.Timedelta(days=VISIT_DAYS)
    parts: list[dict[str, np.ndarray]] = []
    for posting, person, grid in workers:
        homes = by_grid.get(grid)
        if homes is None or homes.empty:
            continue
        counts = rng.integers(6, 15, VISIT_DAYS)
        total = int(counts.sum())
        day = np.repeat(np.arange(VISIT_DAYS), counts)
        kind = rng.choice(np.array(VISIT_KINDS), total, p=[0.75, 0.1, 0.1, 0.05])
        minute = np.where(
            kind == "night",
            rng.integers(19 * 60, 21 * 60 + 30, total),
            rng.integers(8 * 60 + 30, 17 * 60 + 30, total),
        )
        parts.append(
            {
                "person": np.full(total, person),
                "posting": np.full(total, posting),
                "n": np.arange(1, total + 1),
                "building": homes["id"].to_numpy()[rng.integers(0, len(homes), total)],
                "kind": kind,
                "offset_min": day * 1440 + minute,
            }
        )
    if not parts:
        return 0
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    n = len(cols["person"])
    at = (first_day + pd.to_timedelta(cols.pop("offset_min"), unit="min")).to_pydatetime().tolist()
    complete = rng.random(n) < 0.85
    missing = rng.integers(0, 4, n)  # which of the four is missing when not complete
    knows = {f"k{i + 1}": (complete | (missing != i)).tolist() for i in range(4)}
    jitter = rng.normal(0, 0.00008, (2, n))  # ~8 m of GPS scatter
    values = {**{k: v.tolist() for k, v in cols.items()}, **knows, "at": at}
    values["dx"], values["dy"] = jitter[0].tolist(), jitter[1].tolist()
    for start in range(0, n, 100_000):
        conn.execute(_INSERT_VISITS, {**{k: v[start : start + 100_000] for k, v in values.items()}, "actor": ACTOR})
    return n


def _walk(homes: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A walk through a dozen of the grid's buildings (nearest next), a fix every FIX_EVERY_S."""
    stops = homes.iloc[rng.choice(len(homes), min(12, len(homes)), replace=False)][["lon", "lat"]].to_numpy()
    order, rest = [0], list(range(1, len(stops)))
    while rest:
        last = stops[order[-1]]
        nxt = min(rest, key=lambda i: float(np.hypot(*(stops[i] - last))))
        order.append(nxt)
        rest.remove(nxt)
    path = stops[order]
    step_deg = WALK_M_S * FIX_EVERY_S / 100_000  # ~1e5 m per degree here: near enough for a demo walk
    lon, lat = [path[0][0]], [path[0][1]]
    for a, b in zip(path[:-1], path[1:], strict=True):
        pieces = max(1, int(np.hypot(*(b - a)) / step_deg))
        for j in range(1, pieces + 1):
            lon.append(a[0] + (b[0] - a[0]) * j / pieces)
            lat.append(a[1] + (b[1] - a[1]) * j / pieces)
    return np.asarray(lon), np.asarray(lat)


def _patrols(
    conn: Connection,
    workers: list[tuple[int, int, str]],
    by_grid: dict[str, pd.DataFrame],
    end: pd.Timestamp,
    rng: np.random.Generator,
) -> tuple[int, int]:
    today = end.tz_convert(COUNTY_TZ).normalize()
    ids: list[int] = []
    points: dict[str, list[object]] = {k: [] for k in ("patrol", "t", "x", "y", "f", "s")}
    for posting, person, grid in workers:
        homes = by_grid.get(grid)
        if homes is None or len(homes) < 2:
            continue
        for d in range(PATROL_DAYS, 0, -1):
            if rng.random() > 0.7:
                continue
            start = today - pd.Timedelta(days=d) + pd.Timedelta(minutes=int(rng.integers(13 * 60, 16 * 60)))
            lon, lat = _walk(homes, rng)
            if rng.random() < 0.02 and len(lon) > 4:  # a GPS jump of ~3 km
                lon[len(lon) // 2] += 0.03
            times = [start + pd.Timedelta(seconds=FIX_EVERY_S * i) for i in range(len(lon))]
            t_s = np.array([t.timestamp() for t in times])
            flagged, speed = speed_flags(t_s, lon, lat, 150.0)
            pid = conn.execute(
                sa.text(
                    "INSERT INTO patrols (person_id, posting_id, grid_code, started_at, ended_at, recorded_by) "
                    "VALUES (:p, :s, :g, :a, :b, :actor) RETURNING id"
                ),
                {"p": person, "s": posting, "g": grid, "a": times[0], "b": times[-1], "actor": ACTOR},
            ).scalar_one()
            ids.append(pid)
            points["patrol"] += [pid] * len(lon)
            points["t"] += [t.to_pydatetime() for t in times]
            points["x"] += lon.tolist()
            points["y"] += lat.tolist()
            points["f"] += flagged.tolist()
            points["s"] += [None if np.isnan(v) else round(float(v), 2) for v in speed]
    conn.execute(
        sa.text(
            "INSERT INTO patrol_points (patrol_id, t, flagged, speed_kmh, geom) SELECT p, t, f, s, "
            "ST_SetSRID(ST_MakePoint(x, y), 4326) FROM unnest(CAST(:patrol AS bigint[]), CAST(:t AS timestamptz[]), "
            "CAST(:x AS float8[]), CAST(:y AS float8[]), CAST(:f AS boolean[]), CAST(:s AS float8[])) "
            "AS u(p, t, x, y, f, s)"
        ),
        points,
    )
    conn.execute(_RETRACK_ALL, {"ids": ids, "metric": METRIC_EPSG, "tol": TRACK_TOLERANCE_M})
    return len(ids), len(points["patrol"])


def add_fieldwork(conn: Connection, end: pd.Timestamp, seed: int) -> dict[str, int]:
    """Visits and patrols of the demo's grid workers up to ``end`` (see the module docstring)."""
    rng = np.random.default_rng(seed + 17)
    workers = [(r.posting_id, r.person_id, r.grid_code) for r in conn.execute(_WORKERS)]
    by_grid = _buildings(conn)
    conn.execute(sa.text("SET LOCAL gridmap.bulk = 'on'"))
    visits = _visits(conn, workers, by_grid, end, rng)
    patrols, points = _patrols(conn, workers, by_grid, end, rng)
    conn.execute(sa.text("SET LOCAL gridmap.bulk = 'off'"))
    return {"visits": visits, "patrols": patrols, "patrol_points": points}


__all__ = ["PATROL_DAYS", "VISIT_DAYS", "add_fieldwork"]
