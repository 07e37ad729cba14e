"""Helpers of bench/bench_kpis.py: the KPI query as it was before issue 18's rework (the peer the
new one is measured against), and a throwaway copy of the database topped up with incidents."""

from __future__ import annotations

import psycopg
from sqlalchemy.engine import make_url

from gis.analysis.kpirows import CLOSE_LEVELS
from gis.analysis.kpis import _key

# The timestamps of an incident, shifted together so that its durations stay what they were.
_TIMES = {
    "reported_at",
    "deadline_at",
    "escalated_at",
    "closed_at",
    "created_at",
    "dispatched_at",
    "accepted_at",
    "on_scene_at",
    "handled_at",
    "verified_at",
}
_UNIQUE = {"external_id", "idempotency_key"}  # left NULL in the copies
# Kept by triggers from an incident's own callbacks and events (migration 0034): a copy has none.
_OWN = {"last_callback_result": "NULL", "was_reopened": "FALSE"}


def old_kpi_sql(group: str) -> str:
    """The former query (gis.analysis.kpis._sql up to issue 18), unchanged but for the name: the
    windows as bound :s_<name>/:e_<name>, no filter."""
    key, join, _ = _key(group)
    levels = ", ".join(
        f"count(*) FILTER (WHERE i.status = 'closed' AND i.closed_level = '{lv}') AS closed_at_{lv}"
        for lv in CLOSE_LEVELS
    )
    pcts = [
        f"percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY extract(epoch FROM i.{column} - i.reported_at) "
        f"/ 60.0 / {scale}) FILTER (WHERE i.{column} IS NOT NULL) AS {name}_pcts"
        for name, column, scale in (
            ("accept", "accepted_at", 1),
            ("arrive", "on_scene_at", 1),
            ("handle", "handled_at", 60),
        )
    ]
    if group == "county":
        select_key, grouping = "CAST(NULL AS text) AS key, 1 AS total_row", "GROUP BY w.win"
    else:
        select_key = f"{key} AS key, GROUPING({key}) AS total_row"
        grouping = f"GROUP BY GROUPING SETS ((w.win, {key}), (w.win))"
    return f"""
        WITH w(win, ws, we) AS (
            VALUES ('current', CAST(:s_current AS timestamptz), CAST(:e_current AS timestamptz)),
                   ('previous', CAST(:s_previous AS timestamptz), CAST(:e_previous AS timestamptz)),
                   ('last_year', CAST(:s_last_year AS timestamptz), CAST(:e_last_year AS timestamptz)))
        SELECT w.win, {select_key},
               count(*) AS reported,
               count(*) FILTER (WHERE i.status = 'rejected') AS rejected,
               count(*) FILTER (WHERE i.status = 'closed') AS closed,
               count(*) FILTER (WHERE i.status = 'closed' AND i.closed_at <= i.deadline_at) AS closed_on_time,
               {", ".join(pcts)},
               {levels},
               count(*) FILTER (WHERE i.escalated_at IS NOT NULL) AS escalated,
               count(ro.incident_id) AS reopened,
               count(cb.result) AS callbacks,
               count(*) FILTER (WHERE cb.result IN ('satisfied', 'basically_satisfied')) AS satisfied
        FROM incidents i
        JOIN w ON i.reported_at >= w.ws AND i.reported_at < w.we
        {join}
        LEFT JOIN (
            SELECT DISTINCT ON (c.incident_id) c.incident_id, c.result FROM incident_callbacks c
            ORDER BY c.incident_id, c.at DESC, c.id DESC) cb ON cb.incident_id = i.id
        LEFT JOIN (
            SELECT DISTINCT e.incident_id FROM incident_events e WHERE e.action = 'reopen') ro ON ro.incident_id = i.id
        WHERE TRUE
        {grouping}
    """  # noqa: S608


def _libpq(url: str, database: str | None = None) -> str:
    u = make_url(url)
    if database:
        u = u.set(database=database)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def copy_name(url: str) -> str:
    return f"{make_url(url).database}_kpibench"


def drop_copy(url: str) -> None:
    with psycopg.connect(_libpq(url, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{copy_name(url)}"')


def topped_up_copy(url: str, total: int) -> str:
    """A copy of ``url``'s database (named ``copy_name``, reused when it exists) whose incidents are
    topped up to ``total``; its URL. The copies are existing incidents with every timestamp shifted
    by one random amount within +-3 days (durations kept), their area codes kept (the assignment
    trigger is off, as for a bulk import), loaded with one COPY."""
    name = copy_name(url)
    with psycopg.connect(_libpq(url, "postgres"), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(url).database}"')
    copy_url = make_url(url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_libpq(url, name), autocommit=True) as conn:
        have = int(conn.execute("SELECT count(*) FROM incidents").fetchone()[0])  # type: ignore[index]
        if have >= total:
            return copy_url
        columns = [
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = 'incidents' "
                "AND is_generated = 'NEVER' AND is_identity = 'NO' ORDER BY ordinal_position"
            )
        ]
        exprs = [
            f"i.{c} + i.shift" if c in _TIMES else "NULL" if c in _UNIQUE else _OWN.get(c, f"i.{c}") for c in columns
        ]
        rounds = -(-(total - have) // have)
        # OFFSET 0 keeps the subquery apart, so that each row draws one shift for all its times.
        shift = "make_interval(secs => (random() - 0.5) * 6 * 86400)"
        shifted = f"SELECT i.*, {shift} AS shift FROM generate_series(1, {rounds}) g CROSS JOIN incidents i OFFSET 0"  # noqa: S608
        out_sql = f"COPY (SELECT {', '.join(exprs)} FROM ({shifted}) i LIMIT {total - have}) TO STDOUT (FORMAT binary)"  # noqa: S608
        with psycopg.connect(_libpq(url, name), autocommit=True) as dst:
            dst.execute("SET gridmap.bulk = 'on'")
            with (
                conn.cursor().copy(out_sql) as source,
                dst.cursor().copy(f"COPY incidents ({', '.join(columns)}) FROM STDIN (FORMAT binary)") as sink,
            ):
                for block in source:
                    sink.write(block)
            # Callbacks for a third of the closed incidents and a reopening for 2 %: a county has them.
            dst.execute(
                "INSERT INTO incident_callbacks (incident_id, at, result, actor) "
                "SELECT id, closed_at + interval '2 days', (ARRAY['satisfied', 'basically_satisfied', "
                "'dissatisfied'])[1 + id % 3], 'bench' FROM incidents WHERE status = 'closed' AND id % 3 = 0"
            )
            dst.execute(
                "INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status) "
                "SELECT id, closed_at + interval '2 days', 'bench', 'reopen', 'closed', 'dispatched' "
                "FROM incidents WHERE status = 'closed' AND id % 50 = 7"
            )
            dst.execute("VACUUM ANALYZE incidents")
            dst.execute("VACUUM ANALYZE incident_callbacks")
            dst.execute("VACUUM ANALYZE incident_events")
    return copy_url
