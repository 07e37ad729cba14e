"""Sharding by county (gis.shards): two local shard servers, each holding one synthetic county
in the normal gridmap schema, and a coordinator database whose partitioned tables are foreign
partitions on them.

* an incident inserted through the coordinator lands on its county's shard and the shard's
  assignment trigger fills its codes (the remote session's search_path is pg_catalog); one
  inserted on the shard directly is assigned too;
* the province's KPIs through the coordinator are the sum of each shard's own KPIs (counts), and
  the direct fan-out gives the very figures of the coordinator (percentiles included);
* a province-wide reassignment runs on both shards at once;
* with one shard stopped, its county's requests get 503 naming the shard and the county, the
  other county still answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine, make_url

from api import errors
from api.deps import county_session
from gis.analysis.kpis import compute_kpis
from gis.core import db
from gis.core.cluster import ClusterError
from gis.incidents.filter import IncidentFilter
from gis.shards import coordinator, fanout, sample
from gis.shards.config import ShardMap
from gis.shards.local import LocalServer, local_servers
from gis.shards.routing import ShardRouter, ShardUnavailable
from tests.failover_support import free_ports, gridmap

A, B = "330421", "330482"  # the mini county and its recoded copy east of it
START, END = dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


@dataclass
class Province:
    servers: dict[str, LocalServer]
    map: ShardMap
    router: ShardRouter
    coordinator: Engine


def _shard_database(server: LocalServer, county: str) -> str:
    url = server.url("gridmap_shard")
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.begin() as conn:
            sample.seed_counties(conn, [county])
            sample.generate_incidents(conn, county, 400, seed=0.1 if county == A else 0.2)
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="module")
def province(database_url: str) -> Iterator[Province]:
    try:
        servers_cm = local_servers(["a", "b"], free_ports(2))
        servers = servers_cm.__enter__()
    except ClusterError as exc:
        pytest.skip(f"cannot run local shard servers here: {exc}")
    coord_url = make_url(database_url).set(database=f"{make_url(database_url).database}_coord")
    coord_text = coord_url.render_as_string(hide_password=False)
    router = None
    coord_engine = None
    try:
        for server in servers.values():  # alembic is not thread-safe: one after the other
            db.ensure_database(server.url("gridmap_shard"))
            db.migrate(server.url("gridmap_shard"))
        with ThreadPoolExecutor(2) as pool:  # the two shards are seeded side by side
            url_a, url_b = pool.map(_shard_database, [servers["a"], servers["b"]], [A, B])
        shard_map = ShardMap(coordinator=coord_text, shards={"a": url_a, "b": url_b}, counties={A: "a", B: "b"})
        coordinator.init(shard_map)
        router = ShardRouter(shard_map)
        coord_engine = db.make_engine(coord_text, pool_size=2, max_overflow=0)
        yield Province(servers, shard_map, router, coord_engine)
    finally:
        if router is not None:
            router.dispose()
        if coord_engine is not None:
            coord_engine.dispose()
        admin = db.make_engine(coord_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with suppress(Exception), admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{coord_url.database}" WITH (FORCE)'))
        admin.dispose()
        servers_cm.__exit__(None, None, None)


def _point(county: str) -> str:
    return f"SRID=4326;POINT({120.905 + sample.offset(county)} 30.835)"


def test_an_incident_inserted_through_the_coordinator_is_assigned_on_its_shard(province: Province) -> None:
    with province.coordinator.begin() as conn:
        new_id = conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, geom, county_code) "
                "VALUES ('noise', 'grid_patrol', now(), ST_GeomFromEWKT(:p), :c) RETURNING id"
            ),
            {"p": _point(B), "c": B},
        ).scalar_one()
    with province.router.connect(B) as conn:
        row = conn.execute(
            sa.text("SELECT town_code, grid_code, assign_status, status FROM incidents WHERE id = :i"), {"i": new_id}
        ).one()
    assert row.town_code.startswith(B) and row.grid_code.startswith(row.town_code)
    assert row.assign_status == "inside" and row.status == "reported"  # the coordinator's defaults
    with province.router.connect(A) as conn:  # not on the other shard
        assert conn.execute(sa.text("SELECT count(*) FROM incidents WHERE id = :i"), {"i": new_id}).scalar() == 0
        direct = conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, geom) "
                "VALUES ('noise', 'grid_patrol', now(), ST_GeomFromEWKT(:p)) RETURNING town_code"
            ),
            {"p": _point(A)},
        ).scalar_one()
    assert direct.startswith(A)
    with province.coordinator.connect() as conn:  # both seen province-wide, each under its county
        seen = dict(
            conn.execute(
                sa.text(
                    "SELECT county_code, count(*) FROM incidents "
                    "WHERE reported_at > now() - interval '1 hour' GROUP BY 1"
                )
            ).all()
        )
    assert seen == {A: 1, B: 1}


def test_province_kpis_are_the_shards_kpis_together(province: Province) -> None:
    with province.coordinator.connect() as conn:
        through = fanout.province_kpis(conn, START, END)["total"]["kpis"]
        grouped = fanout.province_kpis(conn, START, END, group_by="town")
    per_shard = []
    for county in (A, B):
        with province.router.connect(county) as conn:
            per_shard.append(compute_kpis(conn, IncidentFilter(), START, END)["total"]["kpis"])
    for name in ("reported", "rejected", "closed", "callbacks", "closed_at_grid", "closed_at_county"):
        assert through[name] == sum(k[name] for k in per_shard), name
    assert through["reported"] >= 800
    direct = fanout.province_kpis_direct(province.router, START, END)["total"]["kpis"]
    assert direct == through  # the percentiles too: every shard's durations, not its percentiles
    # Grouped by town: each town on the shard of its county, with its name from the areas.
    towns = {g["key"]: g["name"] for g in grouped["groups"] if g["key"]}
    assert {k[:6] for k in towns} == {A, B} and all(towns.values())


def test_a_province_wide_reassignment_runs_on_every_shard(province: Province) -> None:
    engines = {s: province.router.engine(s) for s in province.map.shards}
    done = fanout.province_reassign(engines)
    assert {d.node for d in done} == {"a", "b"}
    for node in done:
        incidents = next(r for r in node.results if r.table == "incidents")
        assert incidents.changed > 100  # the generated incidents had no codes yet
    with province.coordinator.connect() as conn:
        wrong = conn.execute(
            sa.text(
                "SELECT count(*) FROM incidents WHERE status NOT IN ('closed', 'rejected') "
                "AND (town_code IS NULL OR left(town_code, 6) <> county_code)"
            )
        ).scalar()
    assert wrong == 0


def test_a_stopped_shard_gives_503_naming_it_and_the_other_county_answers(province: Province) -> None:
    app = FastAPI()
    errors.install(app)
    app.state.shard_router = province.router

    @app.get("/counties/{county}/open")
    def open_count(county: str, request: Request) -> dict[str, int]:
        with county_session(request, county) as session:  # as a router would take its session
            return {"open": int(session.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one())}

    client = TestClient(app)
    assert client.get(f"/counties/{B}/open").status_code == 200
    province.servers["b"].stop()
    try:
        down = client.get(f"/counties/{B}/open")
        assert down.status_code == 503 and down.headers["retry-after"].isdigit()
        body = down.json()
        assert body["shard"] == "b" and body["county"] == B
        assert "'b'" in body["detail"] and B in body["detail"]
        up = client.get(f"/counties/{A}/open")
        assert up.status_code == 200 and up.json()["open"] > 0
        with pytest.raises(ShardUnavailable) as province_wide:  # a fan-out names the missing shard
            fanout.province_kpis_direct(province.router, START, END)
        assert province_wide.value.shard == "b" and province_wide.value.county == B
        with province.coordinator.connect() as conn, pytest.raises(ShardUnavailable) as through:
            fanout.province_kpis(conn, START, END)
        assert through.value.shard == "b"
    finally:
        province.servers["b"].start()
    assert client.get(f"/counties/{B}/open").status_code == 200  # back by itself


def test_spatial_predicates_run_on_the_shards(province: Province) -> None:
    """postgis is declared shippable: ST_Intersects goes to the shards in the remote SQL (without
    it every row would be fetched and tested on the coordinator)."""
    with province.coordinator.connect() as conn:
        plan = "\n".join(
            conn.execute(
                sa.text(
                    "EXPLAIN (VERBOSE) SELECT count(*) FROM incidents "
                    "WHERE ST_Intersects(geom, ST_MakeEnvelope(120.9, 30.83, 121.0, 30.85, 4326))"
                )
            ).scalars()
        )
    remote = [line for line in plan.splitlines() if "Remote SQL" in line]
    assert len(remote) == 2 and all("st_intersects" in line.lower() for line in remote), plan


def test_a_county_no_shard_holds_is_named(province: Province) -> None:
    with pytest.raises(ValueError, match="county='330999': no shard holds this county"):
        province.router.engine_for("330999")


def test_the_cli_builds_the_coordinator_from_the_settings(province: Province) -> None:
    """``gridmap shards init`` again (it rebuilds the coordinator, which holds no rows) and
    ``gridmap shards status``, from GRIDMAP_SHARDS."""
    env = {"GRIDMAP_SHARDS": province.map.to_json()}
    out = gridmap(env, "shards", "init")
    assert f"shard a: {A}" in out and f"shard b: {B}" in out and "coordinator ready" in out
    status = gridmap(env, "shards", "status")
    assert f"shard a: {A}: up" in status and f"shard b: {B}: up" in status
    with province.coordinator.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM incidents WHERE county_code = :c"), {"c": B}).scalar() > 0
