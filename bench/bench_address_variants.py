"""Addresses as operators and residents type them: hit rate (right grid) and latency, against the
code before this work, measured in the same run.

The evaluation set is generated from the demo's standard addresses (gis.spatial.addressvariants):
for each sampled address, ``--per-address`` combinations of the variant switches (no prefix, no
town, 栋/座 for 幢, no last unit word, Chinese numerals, full-width digits, spaces, a village group
for a rural house, a place name for the road and house number), drawn deterministically from the
product of the switches that apply to it. Places are generated too (a name for some of the
compounds, street houses and rural houses, a third of the street ones given by a GCJ-02
coordinate only) and imported as a GBK CSV with ``gis.spatial.placeimport``.

It runs on a scratch copy of the source database's boundaries and addresses (``--source``, by
default the configured one, read only), made once and kept with ``--keep-db``. Both codes answer
every query on an autocommit connection, as the API does, alternating which goes first:

* gridmap: ``gis.spatial.geocode.geocode``;
* peer: the geocoder of ``--peer-ref`` (default: the merge base with main), loaded from git.

A hit is a match (score at or above the threshold) whose position lies in the address's grid
(looked up like ``GET /lookup?address=`` does). Targets: >= 98 % overall, no variant below 95 %,
p95 <= 30 ms.

    .venv/bin/python bench/bench_address_variants.py --addresses 300 --per-address 6 --keep-db
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gis.bulk.readers import read_table  # noqa: E402
from gis.core import db  # noqa: E402
from gis.core.settings import get_settings  # noqa: E402
from gis.spatial.address_text import parse_address  # noqa: E402
from gis.spatial.addressvariants import SWITCHES, typed_forms  # noqa: E402
from gis.spatial.crs import from_wgs84  # noqa: E402
from gis.spatial.geocode import geocode  # noqa: E402
from gis.spatial.lookup import LookupService  # noqa: E402
from gis.spatial.placeimport import import_places  # noqa: E402

SCRATCH_DB = "gridmap_bench_addr"
WORDS_A = "金色 阳光 翠苑 锦绣 华府 东湖 西岸 南湖 北辰 紫薇 香樟 银杏 梧桐 碧水 青云 星河 明珠 江南 滨河 春晖"
WORDS_B = "名城 花苑 丽景 雅居 新天 嘉禾 怡景 枫林 御景 水岸 绿洲 康城 天地 佳苑 映月 凤凰 兰亭 书香 半岛 曦园"
COMPOUND = ("花园", "家园", "小区", "公寓", "新村", "华庭", "嘉园", "名苑")
STREET = (("农贸市场", "market"), ("小学", "school"), ("卫生院", "hospital"), ("超市", "shop"), ("公园", "park"))
TABLES = {"generations": None, "areas": None, "addresses": ("building_id",)}


# --- scratch database ----------------------------------------------------------------------


def _copy_table(src: Any, dst: Any, table: str, skip: tuple[str, ...]) -> None:
    with dst.cursor() as cur:
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s "
            "ORDER BY ordinal_position",
            (table,),
        )
        dst_cols = [r[0] for r in cur.fetchall()]
    with src.cursor() as cur:
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s",
            (table,),
        )
        src_cols = {r[0] for r in cur.fetchall()}
    cols = ", ".join(c for c in dst_cols if c in src_cols and c not in skip)
    with src.cursor() as scur, dst.cursor() as dcur:
        dcur.execute("SET LOCAL gridmap.bulk = 'on'")  # assignment copied as it is: no trigger
        with (
            scur.copy(f"COPY (SELECT {cols} FROM {table}) TO STDOUT (FORMAT binary)") as out,  # noqa: S608
            dcur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT binary)") as into,
        ):
            for block in out:
                into.write(block)
    dst.commit()


def scratch_database(source: str, fresh: bool) -> str:
    url = make_url(source).set(database=SCRATCH_DB).render_as_string(hide_password=False)
    admin = db.make_engine(make_url(source).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": SCRATCH_DB})
        if exists and fresh:
            conn.execute(sa.text(f'DROP DATABASE "{SCRATCH_DB}" WITH (FORCE)'))
            exists = None
    admin.dispose()
    if exists:
        return url
    started = time.monotonic()
    db.ensure_database(url)
    db.migrate(url)
    src_engine, dst_engine = db.make_engine(source, pool_size=1), db.make_engine(url, pool_size=1)
    src, dst = src_engine.raw_connection(), dst_engine.raw_connection()
    try:
        for table, skip in TABLES.items():
            _copy_table(src, dst, table, skip or ())
        with dst.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute("ANALYZE")
        dst.commit()
    finally:
        src.close()
        dst.close()
        src_engine.dispose()
        dst_engine.dispose()
    print(f"scratch database {SCRATCH_DB}: boundaries and addresses copied in {time.monotonic() - started:.0f}s")
    return url


def _names(rng: random.Random, suffixes: tuple[str, ...]) -> Iterator[str]:
    combos = [a + b for a in WORDS_A.split() for b in WORDS_B.split()]
    rng.shuffle(combos)
    for suffix in suffixes:
        for combo in combos:
            yield combo + suffix


def place_rows(conn: Connection, rng: random.Random) -> list[dict[str, str]]:
    """A place list for the demo: names for 40 % of the compounds, 5 % of the street houses and
    1 % of the rural houses; a third of the street places by GCJ-02 coordinate only."""
    compounds = conn.execute(
        sa.text(
            "SELECT DISTINCT ON (a.town_code, a.road, a.house_no) a.full_text, a.road, a.house_no "
            "FROM addresses a WHERE a.building_no IS NOT NULL AND a.room_no IS NULL ORDER BY a.town_code, a.road, "
            "a.house_no, a.id"
        )
    ).all()
    singles = conn.execute(
        sa.text(
            "SELECT full_text, road, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM addresses "
            "WHERE precision = 'house' ORDER BY id"
        )
    ).all()
    compound_names, street_names = _names(rng, COMPOUND), _names(rng, tuple(s for s, _ in STREET))
    rows: list[dict[str, str]] = []
    for r in compounds:
        if rng.random() < 0.4:
            house = r.full_text[: r.full_text.index(f"{r.road}{r.house_no}号") + len(f"{r.road}{r.house_no}号")]
            name = next(compound_names)
            alias = name[:2] + "小区" if rng.random() < 0.3 else ""
            rows.append({"名称": name, "别名": alias, "类型": "小区", "地址": house})
    for r in singles:
        share = 0.05 if r.road else 0.01
        if rng.random() >= share:
            continue
        name = next(street_names)
        kind = next(k for s, k in STREET if name.endswith(s))
        row = {"名称": name, "别名": "", "类型": kind, "地址": r.full_text}
        if rng.random() < 1 / 3:
            lon, lat = from_wgs84(r.lon, r.lat, "gcj02")
            row.update({"地址": "", "经度": f"{lon:.7f}", "纬度": f"{lat:.7f}", "坐标系": "gcj02"})
        rows.append(row)
    return rows


def load_places(url: str, rng: random.Random) -> dict[str, str]:
    """Import the generated place list (GBK CSV) unless the scratch database has places; the
    house text (urban: down to the house number) -> place name (or one of its aliases)."""
    engine = db.make_engine(url, pool_size=1)
    with engine.begin() as conn:
        if not conn.scalar(sa.text("SELECT count(*) FROM places")):
            rows = place_rows(conn, rng)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "places.csv"
                with path.open("w", encoding="gbk", newline="") as fh:
                    writer = csv.DictWriter(fh, ["名称", "别名", "类型", "地址", "经度", "纬度", "坐标系"])
                    writer.writeheader()
                    writer.writerows(rows)
                started = time.monotonic()
                result = import_places(conn, read_table(path), source="bench")
                print(f"places: {result.inserted:,} imported from a GBK CSV in {time.monotonic() - started:.1f}s")
        found = conn.execute(
            sa.text(
                "SELECT p.name, coalesce(p.address_normalized, a.normalized) AS house FROM places p "
                "LEFT JOIN LATERAL (SELECT normalized FROM addresses x ORDER BY x.geom <-> p.geom LIMIT 1) a ON true"
            )
        ).all()
    engine.dispose()
    return {r.house: r.name for r in found if r.house}


# --- the peer: the geocoder before this work, from git -------------------------------------


def load_peer(ref: str) -> ModuleType:
    def show(path: str) -> str:
        return subprocess.run(
            ["git", "show", f"{ref}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout

    tmp = Path(tempfile.mkdtemp(prefix="peer_geocode_"))
    (tmp / "peer_address_text.py").write_text(show("gis/spatial/address_text.py"))
    code = show("gis/spatial/geocode.py").replace(
        "from gis.spatial.address_text import", "from peer_address_text import"
    )
    (tmp / "peer_geocode.py").write_text(code)
    sys.path.insert(0, str(tmp))
    return importlib.import_module("peer_geocode")


def merge_base() -> str:
    out = subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "main"


# --- the run ----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def house_key(normalized: str) -> str:
    """The text a place stands for: an urban address down to its house number, a rural one whole."""
    p = parse_address(normalized)
    if p.road and p.house_no:
        return f"{p.town or ''}{p.road}{p.house_no}号"
    return normalized


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addresses", type=int, default=300, help="addresses sampled")
    parser.add_argument("--per-address", type=int, default=6, help="switch combinations per address")
    parser.add_argument("--source", default=None, help="database to copy (default: the configured one)")
    parser.add_argument("--peer-ref", default=None, help="git ref of the peer geocoder (default: merge base)")
    parser.add_argument("--fresh", action="store_true", help="rebuild the scratch database")
    parser.add_argument("--keep-db", action="store_true", help="keep the scratch database for the next run")
    parser.add_argument("--show-misses", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="another deterministic sample of addresses and forms")
    opts = parser.parse_args()
    source = opts.source or db.database_url(get_settings())
    threshold = get_settings().geocode_min_score
    load_before = os.getloadavg()
    url = scratch_database(source, opts.fresh)
    try:
        run(url, opts, threshold, load_before)
    finally:
        if not opts.keep_db:
            admin = db.make_engine(make_url(source).set(database="postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)'))
            admin.dispose()


def run(url: str, opts: argparse.Namespace, threshold: float, load_before: tuple[float, float, float]) -> None:
    places = load_places(url, random.Random(5))
    peer = load_peer(opts.peer_ref or merge_base())
    engine = db.make_engine(url, pool_size=2, isolation_level="AUTOCOMMIT")
    service = LookupService()
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT id FROM addresses ORDER BY id")).scalars().all()
        sample = sorted(random.Random(11 + opts.seed).sample(list(ids), min(opts.addresses, len(ids))))
        rows = conn.execute(
            sa.text("SELECT id, full_text, normalized, grid_code FROM addresses WHERE id = ANY(:ids) ORDER BY id"),
            {"ids": sample},
        ).all()
        queries = []
        for r in rows:
            place = places.get(house_key(r.normalized))
            for form in typed_forms(int(r.id), r.full_text, opts.per_address, place, seed=opts.seed):
                queries.append((r, form))
        coders: dict[str, Callable[[Connection, str], Any]] = {
            "gridmap": lambda c, t: geocode(c, t, threshold=threshold),
            "peer": lambda c, t: peer.geocode(c, t, threshold=threshold),
        }
        for _, form in queries[:20]:  # warm-up: caches, plans
            for fn in coders.values():
                fn(conn, form.text)
        service.warm(conn)
        stats: dict[str, dict[str, list[Any]]] = {name: defaultdict(list) for name in coders}
        misses: list[tuple[str, str, str]] = []
        for i, (row, form) in enumerate(queries):
            order = list(coders.items()) if i % 2 == 0 else list(reversed(coders.items()))
            for name, fn in order:
                started = time.perf_counter()
                result = fn(conn, form.text)
                elapsed = (time.perf_counter() - started) * 1000
                grid = None
                if result.match is not None:
                    answer = service.lookup_point(conn, result.match.lon, result.match.lat)
                    grid = (answer.get("grid") or {}).get("code")
                hit = grid == row.grid_code
                keys = ["all", f"size {len(form.effective)}", *form.effective]
                for key in keys:
                    stats[name][key].append((hit, elapsed, result.match is not None and not hit))
                if name == "gridmap" and not hit and len(misses) < opts.show_misses:
                    best = result.match or (result.candidates[0] if result.candidates else None)
                    misses.append((form.text, row.full_text, f"{best.precision} {best.score}" if best else "-"))
    engine.dispose()
    report(stats, len(rows), len(queries), load_before)
    for text, full, best in misses:
        print(f"  miss: {text!r} for {full} -> {best}")


def report(stats: dict[str, dict[str, list[Any]]], addresses: int, queries: int, load_before: Any) -> None:
    load_after = os.getloadavg()
    print(
        f"\n{addresses} addresses, {queries} typed forms; "
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}"
    )
    keys = ["all"] + sorted((k for k in stats["gridmap"] if k.startswith("size")), key=lambda k: int(k.split()[1]))
    keys += [s for s in SWITCHES if s in stats["gridmap"]]
    print(
        f"{'forms':<14}{'n':>6}{'hit %':>8}{'peer %':>8}{'wrong':>7}{'p50 ms':>8}{'p95 ms':>8}"
        f"{'peer p50':>9}{'peer p95':>9}"
    )
    for key in keys:
        ours, theirs = stats["gridmap"][key], stats["peer"][key]
        rate = 100 * sum(h for h, _, _ in ours) / len(ours)
        peer_rate = 100 * sum(h for h, _, _ in theirs) / len(theirs)
        wrong = sum(w for _, _, w in ours)
        t, pt = [e for _, e, _ in ours], [e for _, e, _ in theirs]
        print(
            f"{key:<14}{len(ours):>6}{rate:>8.1f}{peer_rate:>8.1f}{wrong:>7}{statistics.median(t):>8.1f}"
            f"{percentile(t, 95):>8.1f}{statistics.median(pt):>9.1f}{percentile(pt, 95):>9.1f}"
        )
    overall = stats["gridmap"]["all"]
    worst = min(
        (100 * sum(h for h, _, _ in stats["gridmap"][s]) / len(stats["gridmap"][s]), s)
        for s in SWITCHES
        if s in stats["gridmap"]
    )
    ok = (
        100 * sum(h for h, _, _ in overall) / len(overall) >= 98
        and worst[0] >= 95
        and percentile([e for _, e, _ in overall], 95) <= 30
    )
    print(
        f"lowest variant: {worst[1]} {worst[0]:.1f} %; targets (>= 98 %, every variant >= 95 %, p95 <= 30 ms):",
        "met" if ok else "NOT met",
    )
    print("('wrong' = a match in another grid: a confident wrong answer)")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
