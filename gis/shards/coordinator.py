"""``gridmap shards init``: the coordinator's view of the province, and each shard's side of it.

On each shard (a database with the normal gridmap schema, migrated as any county database):

* a schema ``gridmap_shard`` with one view per county and table (``incidents_330421`` ...), the
  rows of that county only: a shard may hold several counties, and a foreign partition must not
  see its neighbours' rows (partition bounds are not enforced on foreign tables);
* ``search_path`` pinned on any trigger function of ``incidents`` that does not pin it (the
  assignment functions do since migration 0032): postgres_fdw's remote sessions run with
  ``search_path = pg_catalog``, where ``areas`` and PostGIS are not found;
* a trigger giving an incident inserted through the coordinator its id from the shard's own
  sequence: postgres_fdw sends every column of an INSERT, the id as NULL.

On the coordinator: postgres_fdw, one foreign server per shard with ``extensions 'postgis'``
(PostGIS operators and functions are then shipped to the shard: without it a spatial predicate
is evaluated on the coordinator after fetching every row; measured > 10 min for a province-wide
join, 1.5-2.1 s with it), ``fetch_size`` raised from 100 rows, ``async_capable`` (the partitions of
one query are scanned on all shards at once), ``use_remote_estimate``, a user mapping, and the province-wide tables as
LIST(county_code) partitioned tables whose partitions are foreign tables on the shards.
``incidents`` takes inserts (routed by county_code); events, callbacks and areas are read-only.
The coordinator holds no rows: init may be run again at any time (after adding a county).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url

from gis.core import db
from gis.shards.config import ShardMap

SCHEMA = "gridmap_shard"
FETCH_SIZE = 10_000
# Province-wide tables -> the shard-side SELECT of one county (``{county}`` is a validated 6-digit
# code, ``{cc}`` the incidents' county expression). Child tables take their county from the incident.
TABLES: dict[str, str] = {
    "incidents": "SELECT i.*{extra} FROM public.incidents i WHERE {cc} = '{county}'",
    "incident_events": (
        "SELECT e.*, CAST({cc} AS varchar(6)) AS county_code FROM public.incident_events e "
        "JOIN public.incidents i ON i.id = e.incident_id WHERE {cc} = '{county}'"
    ),
    "incident_callbacks": (
        "SELECT c.*, CAST({cc} AS varchar(6)) AS county_code FROM public.incident_callbacks c "
        "JOIN public.incidents i ON i.id = c.incident_id WHERE {cc} = '{county}'"
    ),
    # Reference data: every area code starts with its county's code.
    "areas": "SELECT a.*, CAST(left(a.code, 6) AS varchar(6)) AS county_code FROM public.areas a "
    "WHERE a.code LIKE '{county}%'",
}
WRITABLE = ("incidents",)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    default: str | None


def _has_county_column(conn: Connection) -> bool:
    found = conn.execute(
        sa.text(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = 'incidents' AND column_name = 'county_code'"
        )
    ).scalar()
    return bool(found)


def prepare_shard(conn: Connection, counties: list[str]) -> None:
    """The shard's side: per-county views, pinned search_path, the id trigger. Idempotent."""
    native = _has_county_column(conn)
    # Without the county_code column (before migration 0032) the county is the town code's prefix.
    cc = "i.county_code" if native else "left(i.town_code, 6)"
    extra = "" if native else ", CAST(left(i.town_code, 6) AS varchar(6)) AS county_code"
    conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    for table, select in TABLES.items():
        for county in counties:
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {SCHEMA}.{table}_{county}"))
            body = select.format(county=county, cc=cc, extra=extra)
            conn.execute(sa.text(f"CREATE VIEW {SCHEMA}.{table}_{county} AS {body}"))
    conn.execute(
        sa.text(f"""
        CREATE OR REPLACE FUNCTION {SCHEMA}.fill_id() RETURNS trigger LANGUAGE plpgsql
        SET search_path = pg_catalog, public AS $$
        BEGIN
            IF NEW.id IS NULL THEN
                NEW.id := nextval(pg_get_serial_sequence(quote_ident(TG_TABLE_NAME), 'id'));
            END IF;
            RETURN NEW;
        END $$""")
    )
    for table in ("incidents", "incident_events", "incident_callbacks"):
        # "a_" sorts first: the id is set before any other BEFORE trigger sees the row.
        conn.execute(sa.text(f"DROP TRIGGER IF EXISTS a_shard_fill_id ON public.{table}"))
        conn.execute(
            sa.text(
                f"CREATE TRIGGER a_shard_fill_id BEFORE INSERT ON public.{table} "
                f"FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.fill_id()"
            )
        )
    pin_search_path(conn)


def pin_search_path(conn: Connection) -> list[str]:
    """Pin ``search_path`` on the trigger functions of the tables the coordinator writes to that
    do not pin it yet (migration 0032 pins the assignment functions; this keeps a trigger added
    later from failing only through the coordinator); returns their names. Only trigger functions:
    a SET clause stops PostgreSQL from inlining a SQL function into the queries that call it."""
    rows = conn.execute(
        sa.text("""
        SELECT DISTINCT CAST(CAST(p.oid AS regprocedure) AS text) FROM pg_trigger t
        JOIN pg_proc p ON p.oid = t.tgfoid
        WHERE NOT t.tgisinternal AND t.tgrelid = ANY(CAST(:tables AS regclass[]))
          AND NOT coalesce(CAST(p.proconfig AS text) LIKE '%search_path=%', false)""").bindparams(
            tables=[f"public.{t}" for t in WRITABLE]
        )
    ).scalars()
    names = list(rows)
    for name in names:
        conn.execute(sa.text(f"ALTER FUNCTION {name} SET search_path = public, pg_catalog"))
    return names


def _columns(conn: Connection, table: str, county: str) -> list[Column]:
    """The columns of the shard's county view as the coordinator declares them: the base table's
    generated columns left out (the shard computes them); for writable tables the base table's
    constant defaults (a remote INSERT sends every column)."""
    rows = conn.execute(
        sa.text("""
        SELECT v.attname, format_type(v.atttypid, v.atttypmod), coalesce(b.attgenerated, ''),
               pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute v
        LEFT JOIN pg_attribute b ON b.attrelid = CAST(:base AS regclass) AND b.attname = v.attname
        LEFT JOIN pg_attrdef d ON d.adrelid = b.attrelid AND d.adnum = b.attnum
        WHERE v.attrelid = CAST(:view AS regclass) AND v.attnum > 0 AND NOT v.attisdropped
        ORDER BY v.attnum"""),
        {"view": f"{SCHEMA}.{table}_{county}", "base": f"public.{table}"},
    ).all()
    out = []
    for name, typ, generated, default in rows:
        if generated:
            continue
        # Constants and now() only: nextval() and gridmap_* functions exist on the shards alone, and
        # county_code has no default here (it is the partition key: the caller names the county).
        plain = default is not None and ("(" not in default or default == "now()")
        keep = default if table in WRITABLE and plain else None
        out.append(Column(name, typ, keep))
    return out


def _server_options(url_text: str) -> dict[str, str]:
    url = make_url(url_text)
    host = url.host or url.query.get("host")
    port = url.port or url.query.get("port")
    options = {"dbname": str(url.database), "extensions": "postgis", "fetch_size": str(FETCH_SIZE)}
    options["async_capable"] = "true"
    # Row estimates from the shard's own planner (an EXPLAIN per foreign partition when a query is
    # planned): without them each partition counts as a few rows and a province-wide KPI joined
    # the callbacks by nested loop. ANALYZE on the coordinator would fetch whole remote tables
    # on PostgreSQL 15 (remote sampling came with 16).
    options["use_remote_estimate"] = "true"
    if host:
        options["host"] = str(host)
    if port:
        options["port"] = str(port)
    return options


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def init(shard_map: ShardMap) -> dict[str, list[str]]:
    """Prepare every shard and (re)build the coordinator's foreign partitions; returns the
    counties per shard. The coordinator database is created if missing."""
    if not shard_map.coordinator:
        raise ValueError("coordinator: GRIDMAP_SHARDS names no coordinator database")
    placed = {shard: shard_map.counties_on(shard) for shard in shard_map.shards}
    columns: dict[str, list[Column]] = {}
    for shard, url in shard_map.shards.items():
        engine = db.make_engine(url, pool_size=1, max_overflow=0)
        try:
            with engine.begin() as conn:
                # The column list is read from a view of a county (county_code included), or, on
                # a shard without counties yet, from a scratch one.
                prepare_shard(conn, placed[shard] or ["000000"])
                if not columns:
                    columns = {t: _columns(conn, t, (placed[shard] or ["000000"])[0]) for t in TABLES}
                if not placed[shard]:
                    for table in TABLES:
                        conn.execute(sa.text(f"DROP VIEW IF EXISTS {SCHEMA}.{table}_000000"))
        finally:
            engine.dispose()
    _build_coordinator(shard_map, columns, placed)
    return placed


def _build_coordinator(shard_map: ShardMap, columns: dict[str, list[Column]], placed: dict[str, list[str]]) -> None:
    url_text = shard_map.coordinator or ""
    db.ensure_database(url_text)  # postgis and pg_trgm: the shipped operators must exist here too
    engine = db.make_engine(url_text, pool_size=1, max_overflow=0)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgres_fdw"))
            for table in TABLES:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS public.{table} CASCADE"))
            for shard, url in shard_map.shards.items():
                server = f"shard_{shard}"
                conn.execute(sa.text(f"DROP SERVER IF EXISTS {server} CASCADE"))
                opts = ", ".join(f"{k} {_literal(v)}" for k, v in _server_options(url).items())
                conn.execute(sa.text(f"CREATE SERVER {server} FOREIGN DATA WRAPPER postgres_fdw OPTIONS ({opts})"))
                parsed = make_url(url)
                mapping = {"user": parsed.username or "postgres"}
                if parsed.password:
                    mapping["password"] = parsed.password
                mopts = ", ".join(f"{k} {_literal(v)}" for k, v in mapping.items())
                conn.execute(sa.text(f"CREATE USER MAPPING FOR CURRENT_USER SERVER {server} OPTIONS ({mopts})"))
            for table, cols in columns.items():
                decl = ", ".join(
                    f'"{c.name}" {c.type}' + (f" DEFAULT {c.default}" if c.default else "")
                    + (" NOT NULL" if c.name == "county_code" else "")
                    for c in cols
                )  # fmt: skip
                conn.execute(sa.text(f"CREATE TABLE public.{table} ({decl}) PARTITION BY LIST (county_code)"))
                for shard, counties in placed.items():
                    for county in counties:
                        conn.execute(
                            sa.text(
                                f"CREATE FOREIGN TABLE public.{table}_{county} PARTITION OF public.{table} "
                                f"FOR VALUES IN ('{county}') SERVER shard_{shard} "
                                f"OPTIONS (schema_name '{SCHEMA}', table_name '{table}_{county}')"
                            )
                        )
    finally:
        engine.dispose()
