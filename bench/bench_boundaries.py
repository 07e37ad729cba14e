"""Benchmarks for boundary planning (targets: validation of ~6,000 micro-grids <= 5 s; publishing a
redraw of one town's ~100 grids with 1,000,000 incidents stored <= 5 s, reassignment included).

Runs on a throwaway database on the configured server (``<db>_bench_boundaries``), dropped at
the end. The county is synthetic but shaped like the real one: a jittered lattice of 6,480
micro-grids (edges with shared, wobbly vertices) grouped into 1,080 grids, 120 villages and 10
towns, plus an independent overlay of police beats; 150,000 buildings and 1,000,000 incidents
(20% still open) are placed at random. Each figure is printed beside a peer baseline measured
in the same run.

    .venv/bin/python bench/bench_boundaries.py [--incidents 1000000]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import os
import pstats
import time
from collections.abc import Iterator
from contextlib import contextmanager

import geopandas as gpd
import numpy as np
import shapely
import sqlalchemy as sa
from shapely.geometry import Polygon
from sqlalchemy.engine import Engine, make_url

from boundaries.drafts import create_draft, load_features, put_features
from boundaries.generations import publish_layers
from boundaries.geomchecks import check_layer_geometry
from boundaries.publish import publish_draft
from boundaries.validate import validate_draft
from gis.core import db
from gis.spatial.areas import current_generation, load_layer
from gis.spatial.assign import Assigner
from gis.spatial.reassign import ASSIGN_COLUMNS, reassign_extent_sql, reassign_naive

X0, Y0, W, H = 120.76, 30.76, 0.28, 0.26
TOWNS = (5, 2)  # columns x rows
VILLAGES = (4, 3)  # per town
GRIDS = (3, 3)  # per village
MICROS = (3, 2)  # per grid
SEG = 4  # points per cell edge


def _lattice(rng: np.random.Generator) -> tuple[int, int, np.ndarray, np.ndarray]:
    nx = TOWNS[0] * VILLAGES[0] * GRIDS[0] * MICROS[0]
    ny = TOWNS[1] * VILLAGES[1] * GRIDS[1] * MICROS[1]
    dx, dy = W / nx, H / ny
    gx, gy = np.meshgrid(np.arange(nx + 1) * dx + X0, np.arange(ny + 1) * dy + Y0, indexing="ij")
    inner = (slice(1, -1), slice(1, -1))
    gx[inner] += rng.uniform(-0.25, 0.25, gx[inner].shape) * dx
    gy[inner] += rng.uniform(-0.25, 0.25, gy[inner].shape) * dy
    return nx, ny, gx, gy


def _edge(p: tuple[float, float], q: tuple[float, float], wobble: float) -> list[tuple[float, float]]:
    """Points from p towards q (q excluded). Both cells sharing an edge get the same points:
    they are generated in a canonical direction and reversed for the other side."""
    a, b = (p, q) if p <= q else (q, p)
    seed = hash((round(a[0], 9), round(a[1], 9), round(b[0], 9), round(b[1], 9))) & 0xFFFFFFFF
    t = np.linspace(0, 1, SEG + 1)
    off = np.random.default_rng(seed).uniform(-wobble, wobble, SEG + 1)
    off[0] = off[-1] = 0.0
    px, py = -(b[1] - a[1]), b[0] - a[0]
    pts = [(a[0] + (b[0] - a[0]) * s + px * o, a[1] + (b[1] - a[1]) * s + py * o) for s, o in zip(t, off, strict=True)]
    if a != p:
        pts.reverse()
    return pts[:-1]


def synthetic_county(seed: int = 7) -> dict[str, gpd.GeoDataFrame]:
    rng = np.random.default_rng(seed)
    nx, ny, gx, gy = _lattice(rng)
    cells: dict[tuple[int, int], Polygon] = {}
    for i in range(nx):
        for j in range(ny):
            corners = [
                (gx[i, j], gy[i, j]),
                (gx[i + 1, j], gy[i + 1, j]),
                (gx[i + 1, j + 1], gy[i + 1, j + 1]),
                (gx[i, j + 1], gy[i, j + 1]),
            ]
            ring: list[tuple[float, float]] = []
            for k in range(4):
                ring += _edge(corners[k], corners[(k + 1) % 4], 0.04)
            cells[(i, j)] = Polygon(ring)
    mx, my = MICROS
    gxn, gyn = GRIDS
    vxn, vyn = VILLAGES
    rows: dict[str, list[dict[str, object]]] = {k: [] for k in ("town", "village", "grid", "micro_grid")}
    for t in range(TOWNS[0] * TOWNS[1]):
        ti, tj = t % TOWNS[0], t // TOWNS[0]
        tcode = f"330421{t + 1:03d}"
        for v in range(vxn * vyn):
            vi, vj = ti * vxn + v % vxn, tj * vyn + v // vxn
            vcode = f"{tcode}{v + 1:03d}"
            for g in range(gxn * gyn):
                gi, gj = vi * gxn + g % gxn, vj * gyn + g // gxn
                gcode = f"{vcode}{g + 1:03d}"
                for m in range(mx * my):
                    ci, cj = gi * mx + m % mx, gj * my + m // mx
                    rows["micro_grid"].append(
                        {
                            "code": f"{gcode}{m + 1:02d}",
                            "name": f"微网格{gcode}{m + 1:02d}",
                            "parent_code": gcode,
                            "households": 65,
                            "i": ci,
                            "j": cj,
                            "geometry": cells[(ci, cj)],
                        }
                    )
    micro = gpd.GeoDataFrame(rows["micro_grid"], geometry="geometry", crs=4326)
    layers = {"micro_grid": micro.drop(columns=["i", "j"])}
    child = micro
    for layer, cut in (("grid", 15), ("village", 12), ("town", 9)):
        child = _parents(child, cut, layer)
        layers[layer] = child
    layers["county"] = gpd.GeoDataFrame(
        [
            {
                "code": "330421",
                "name": "嘉善县(合成)",
                "parent_code": "330400",
                "geometry": shapely.coverage_union_all(micro.geometry.values),
            }
        ],
        geometry="geometry",
        crs=4326,
    )
    # Police beats: an independent overlay of 12 x 12 cell blocks; stations group 3 beat columns.
    beat_key = [
        (f"330421P{(i // 36) + 1:02d}", f"{(i // 12) % 3:01d}{j // 12:01d}")
        for i, j in zip(micro["i"], micro["j"], strict=True)
    ]
    micro = micro.assign(station=[k[0] for k in beat_key], beat=[k[0] + k[1] for k in beat_key])
    beats = micro.dissolve(by="beat", as_index=False, method="coverage")[["beat", "station", "geometry"]]
    beats = beats.rename(columns={"beat": "code", "station": "parent_code"}).assign(name=lambda d: "警格" + d["code"])
    stations = beats.dissolve(by="parent_code", as_index=False, method="coverage")[["parent_code", "geometry"]]
    stations = stations.rename(columns={"parent_code": "code"}).assign(parent_code="330421", name=lambda d: d["code"])
    layers["beat"], layers["station"] = beats, stations
    return layers


def _parents(child: gpd.GeoDataFrame, cut: int, layer: str) -> gpd.GeoDataFrame:
    keyed = child.assign(key=child["code"].str[:cut])
    out = keyed.dissolve(by="key", as_index=False, method="coverage")[["key", "geometry"]]
    out = out.rename(columns={"key": "code"})
    out["parent_code"] = out["code"].str[: cut - 3]
    out["name"] = layer + out["code"]
    out["households"] = 400 if layer == "grid" else None
    return out[["code", "name", "parent_code", "households", "geometry"]]


@contextmanager
def throwaway_database() -> Iterator[Engine]:
    url = make_url(db.database_url())
    name = f"{url.database}_bench_boundaries"
    scratch = url.set(database=name).render_as_string(hide_password=False)
    admin = db.make_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    db.ensure_database(scratch)
    db.migrate(scratch)
    engine = db.make_engine(scratch)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _copy_points(engine: Engine, table: str, columns: str, lines: Iterator[str]) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SET LOCAL gridmap.bulk = 'on'")
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            buf = io.StringIO()
            for n, line in enumerate(lines, 1):
                buf.write(line)
                if n % 100_000 == 0:
                    copy.write(buf.getvalue())
                    buf = io.StringIO()
            copy.write(buf.getvalue())
        raw.commit()
    finally:
        raw.close()


def _assigned_lines(conn: sa.Connection, x: np.ndarray, y: np.ndarray, fixed: list[list[str]]) -> Iterator[str]:
    """COPY lines: the fixed columns, the assignment (as the bulk loader computes it), the point."""
    g = current_generation(conn) or 0
    a = Assigner.from_db(conn, g).assign(x, y)
    cols = [getattr(a, c) for c in ASSIGN_COLUMNS]

    def text(v: object) -> str:
        return "\\N" if v is None or (isinstance(v, float) and v != v) else str(v)

    for i in range(len(x)):
        head = "\t".join(f[i] for f in fixed)
        assigned = "\t".join(text(c[i]) for c in cols)
        yield f"{head}\t{assigned}\tSRID=4326;POINT({x[i]:.7f} {y[i]:.7f})\n"


def load_points(engine: Engine, county: Polygon, buildings: int, incidents: int, rng: np.random.Generator) -> None:
    """Bulk-load random points with their assignment computed in process (the trigger is off)."""
    x0, y0, x1, y1 = county.bounds
    cols = ", ".join(ASSIGN_COLUMNS)
    with engine.connect() as conn:
        bx, by = rng.uniform(x0, x1, buildings), rng.uniform(y0, y1, buildings)
        fixed = [[f"B{i}" for i in range(buildings)], [str(h) for h in rng.integers(1, 5, buildings)]]
        _copy_points(engine, "buildings", f"code, households, {cols}, geom", _assigned_lines(conn, bx, by, fixed))
        ix, iy = rng.uniform(x0, x1, incidents), rng.uniform(y0, y1, incidents)
        base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        fixed = [
            ["litter"] * incidents,
            ["bench"] * incidents,
            [str(base + dt.timedelta(minutes=i % 500_000)) for i in range(incidents)],
            ["in_progress" if o else "closed" for o in rng.random(incidents) < 0.2],
        ]
        _copy_points(
            engine,
            "incidents",
            f"category, source, reported_at, status, {cols}, geom",
            _assigned_lines(conn, ix, iy, fixed),
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE buildings"))
        conn.execute(sa.text("VACUUM ANALYZE incidents"))


def redraw_town(conn: sa.Connection, town: str) -> int:
    """A grid draft of one town whose grids become vertical strips of micro-grids (all reshaped)."""
    draft = create_draft(conn, "grid", town, author="bench", note="strips")
    grids = load_features(conn, draft)
    micro = load_layer(conn, "micro_grid", current_generation(conn) or 0)
    micro = micro[micro["code"].str.startswith(town)].copy()
    cx = micro.geometry.representative_point().x
    micro["village"] = micro["code"].str[:12]
    micro["rank"] = cx.groupby(micro["village"]).rank(method="first").astype(int) - 1
    per_village = micro.groupby("village")["code"].transform("count")
    micro["strip"] = (micro["rank"] * 9 // per_village).astype(int)
    new = micro.dissolve(by=["village", "strip"], as_index=False, method="coverage")
    new["code"] = [f"{v}{s + 1:03d}" for v, s in zip(new["village"], new["strip"], strict=True)]
    new["parent_code"] = new["village"]
    new["name"], new["households"], new["attrs"] = new["code"], None, [{} for _ in range(len(new))]
    assert set(new["code"]) == set(grids["code"]), "the redraw keeps the codes"
    put_features(conn, draft, new[["code", "name", "parent_code", "households", "attrs", "geometry"]])
    return draft


def timed(fn, *args, **kw):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def naive_overlaps(geoms: np.ndarray, sample: int) -> float:
    """Seconds for an all-pairs overlap test (no index) over ``sample`` polygons, scaled to all n²."""
    part = geoms[:sample]
    t = time.perf_counter()
    for i in range(len(part)):
        shapely.area(shapely.intersection(part[i], part[i + 1 :]))
    return (time.perf_counter() - t) * (len(geoms) / sample) ** 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--incidents", type=int, default=1_000_000)
    ap.add_argument("--buildings", type=int, default=150_000)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    layers, t_build = timed(synthetic_county)
    micro = layers["micro_grid"]
    print(
        f"synthetic county: {len(micro)} micro-grids, {len(layers['grid'])} grids, "
        f"{len(layers['village'])} villages, {len(layers['beat'])} beats ({t_build:.1f} s)"
    )

    findings, t_pure = timed(check_layer_geometry, micro.assign(attrs=[{}] * len(micro)), "micro_grid", layers["grid"])
    assert not [f for f in findings if f.severity == "error"], findings[:3]
    print(
        f"validate {len(micro)} micro-grids, geometry checks in memory: {t_pure:.2f} s "
        f"(peer: all-pairs overlap test without an index, extrapolated from 600: "
        f"{naive_overlaps(np.asarray(micro.geometry.values, dtype=object), 600):.0f} s)"
    )

    with throwaway_database() as engine:
        with engine.begin() as conn:
            publish_layers(
                conn, layers, note="bench", author="bench", published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
            )
        (_, t_load) = timed(load_points, engine, layers["county"].geometry.iloc[0], args.buildings, args.incidents, rng)
        print(f"loaded {args.buildings} buildings and {args.incidents} incidents ({t_load:.0f} s, assigned in process)")

        with engine.begin() as conn:
            draft = create_draft(conn, "micro_grid", None, author="bench")
            report, t_val = timed(validate_draft, conn, draft)
            conn.rollback()
        print(
            f"validate_draft, whole county micro-grid layer ({report.features} polygons, households from "
            f"{args.buildings} buildings): {t_val:.2f} s  [target <= 5 s]  errors={len(report.errors)}"
        )

        town = "330421003"
        with engine.connect() as conn:
            with conn.begin():
                draft = redraw_town(conn, town)
            tx = conn.begin()
            profile = cProfile.Profile() if os.environ.get("BENCH_PROFILE") else None
            if profile:
                profile.enable()
            result, t_pub = timed(publish_draft, conn, draft, actor="bench", note="bench redraw")
            if profile:
                profile.disable()
                pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
            tx.commit()
        moved = {r.table: (r.examined, r.changed) for r in result.reassigned}
        print(
            f"publish redraw of town {town}: {len(result.layers['grid']['changed'])} grids, "
            f"{len(result.layers.get('micro_grid', {}).get('changed', []))} micro-grids re-parented, "
            f"reassigned (examined, changed) {moved}: {t_pub:.2f} s  [target <= 5 s]"
        )

        # Peers, on the same rows under the same new generation (rolled back): the set-based SQL
        # join, and gridmap_assign row by row.
        extent = shapely.to_wkb(layers["town"].set_index("code").geometry[town])
        with engine.connect() as conn:
            tx = conn.begin()
            conn.execute(sa.text("UPDATE incidents SET grid_code = NULL WHERE town_code = :t"), {"t": town})
            sql, t_sql = timed(reassign_extent_sql, conn, result.generation, extent)
            tx.rollback()
        print(
            f"peer: the same reassignment as one set-based SQL join per table: {t_sql:.2f} s "
            f"({sum(r.examined for r in sql)} rows examined)"
        )
        with engine.connect() as conn:
            tx = conn.begin()
            town_filter = {
                "incidents": f"t.status NOT IN ('closed', 'rejected') AND t.town_code = '{town}'",
                "buildings": f"t.town_code = '{town}'",
            }
            naive, t_naive = timed(reassign_naive, conn, result.generation, tables=town_filter)
            tx.rollback()
        print(
            f"peer: gridmap_assign row by row over the town's {sum(r.examined for r in naive)} open incidents and "
            f"buildings: {t_naive:.2f} s (reassignment alone)"
        )


if __name__ == "__main__":
    main()
