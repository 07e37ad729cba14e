"""Province-wide work over the shards: KPIs and reassignment.

KPIs two ways, both with gis.analysis.kpis' one statement and the same figures:

* ``province_kpis``: on the coordinator, whose ``incidents``, ``incident_events`` and
  ``incident_callbacks`` are partitioned over the shards; postgres_fdw fetches the columns the
  statement reads from every shard (concurrently: ``async_capable``) and the coordinator
  aggregates. Nothing to maintain beyond ``gridmap shards init``; group labels come from the
  coordinator's ``areas``.
* ``province_kpis_direct``: the statement runs on every shard at once (threads, one connection
  each), each aggregating its own counties; the rows of all shards together are what the
  statement returns on one node holding them all (counts add up, each group hands over its
  packed timestamps), so the percentiles are exact, not averages of shards' percentiles.

``province_reassign``: gis.spatial.reassign's set-based reassignment of each shard's counties on
that shard, all shards at once; each shard uses its own generation in force.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from gis.analysis.kpirows import _fetch_binary
from gis.analysis.kpis import compute_kpis
from gis.incidents.filter import IncidentFilter
from gis.shards.routing import ShardRouter, ShardUnavailable
from gis.spatial.reassign import ReassignResult, reassign_extent_sql

_HEADER = struct.Struct(">iiiii")
# The packed arrays of the KPI statement (gis.analysis.kpirows: a window's group hashes with flags, and times).
_BLOBS = ("hashes", "reported_at", "accept_at", "arrive_at", "handle_at")
# Columns that name a row (equal in the rows merged), not counts to add.
_NAMING = ("win", "part", "key", "hash")


def province_kpis(
    coordinator: Connection, start: dt.datetime, end: dt.datetime, group_by: str = "county"
) -> dict[str, Any]:
    """The province's KPIs through the coordinator's partitioned tables. A shard that does not
    answer raises ShardUnavailable naming it (postgres_fdw names its foreign server)."""
    try:
        return compute_kpis(coordinator, IncidentFilter(), start, end, group_by)
    except (OperationalError, psycopg.OperationalError) as exc:
        raise _named(exc) from None


def _named(exc: Exception) -> Exception:
    """``exc`` as ShardUnavailable when postgres_fdw says which shard server failed. (The KPI
    statement runs on the driver's cursor: its errors are psycopg's, not SQLAlchemy's.)"""
    text = str(getattr(exc, "orig", None) or exc)
    found = re.search(r'server "shard_([a-z0-9_]+)"', text)
    if not found:
        return exc
    return ShardUnavailable(found.group(1), "province", text.strip().splitlines()[0][:200])


def _concat(blobs: list[bytes]) -> bytes:
    """array_send timestamptz[] blobs as one (their elements one after the other)."""
    count = sum(_HEADER.unpack_from(b)[3] for b in blobs)
    ndim, flags, oid, _, lower = _HEADER.unpack_from(blobs[0])
    return _HEADER.pack(ndim, flags, oid, count, lower) + b"".join(b[_HEADER.size :] for b in blobs)


def _merge(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the same (window, part, key) from several shards as one: counts added, packed arrays
    joined. (Area codes start with the county's code, so only the packed rows and rows without a
    code meet here.)"""
    merged: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    for row in rows:
        key = (row["win"], row.get("part"), row["key"])
        if key not in merged:
            merged[key] = dict(row)
            continue
        into = merged[key]
        for name, value in row.items():
            if name in _NAMING:
                continue
            if name in _BLOBS:
                into[name] = _concat([b for b in (into[name], value) if b is not None]) if value else into[name]
            elif value is not None:
                into[name] = value if into[name] is None else into[name] + value
    return list(merged.values())


def _on_shard(router: ShardRouter, shard: str, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    counties = ",".join(router.map.counties_on(shard)) or "none"
    try:
        with router.engine(shard).connect() as conn, conn.begin():
            return _fetch_binary(conn, sql, params)
    except (OperationalError, psycopg.OperationalError) as exc:
        text = str(getattr(exc, "orig", None) or exc)
        raise ShardUnavailable(shard, counties, text.splitlines()[0][:200]) from None


def province_kpis_direct(
    router: ShardRouter,
    start: dt.datetime,
    end: dt.datetime,
    group_by: str = "county",
    labels: Connection | None = None,
) -> dict[str, Any]:
    """The province's KPIs with the statement run on every shard at once. ``labels``: where the
    group names are read (the coordinator's areas), needed when grouping by an area layer."""
    shards = [s for s in router.map.shards if router.map.counties_on(s)]

    def fetch(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with ThreadPoolExecutor(max_workers=len(shards)) as pool:
            parts = list(pool.map(lambda s: _on_shard(router, s, sql, params), shards))
        return _merge([row for part in parts for row in part])

    if labels is None:
        if group_by != "county":
            raise ValueError(f"group_by={group_by!r}: grouped province KPIs need the coordinator for the labels")
        with router.engine(shards[0]).connect() as conn:  # no label is read for the county total
            return compute_kpis(conn, IncidentFilter(), start, end, group_by, fetch)
    return compute_kpis(labels, IncidentFilter(), start, end, group_by, fetch)


@dataclass(frozen=True)
class NodeReassign:
    node: str
    generation: int
    results: list[ReassignResult]
    seconds: float


def reassign_node(name: str, engine: Engine) -> NodeReassign:
    """Reassign every open point of this node's counties under its generation in force."""
    began = time.perf_counter()
    with engine.begin() as conn:
        generation = conn.execute(sa.text("SELECT gridmap_generation_at(now())")).scalar()
        if generation is None:
            raise ValueError(f"node {name}: no boundaries published")
        extent = conn.execute(
            sa.text(
                "SELECT ST_AsBinary(ST_SetSRID(CAST(ST_Extent(geom) AS geometry), 4326)) "
                "FROM areas WHERE gen_to IS NULL"
            )
        ).scalar_one()
        results = reassign_extent_sql(conn, int(generation), bytes(extent))
    return NodeReassign(name, int(generation), results, time.perf_counter() - began)


def province_reassign(engines: dict[str, Engine]) -> list[NodeReassign]:
    """``reassign_node`` on every node at once (one thread and connection each)."""
    with ThreadPoolExecutor(max_workers=len(engines)) as pool:
        return list(pool.map(lambda item: reassign_node(*item), engines.items()))
