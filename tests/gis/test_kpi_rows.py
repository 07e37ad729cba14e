"""gis.analysis.kpirows: the percentiles handed back equal PostgreSQL's percentile_cont over the
former numeric minutes, bit for bit (ties at .x5, microseconds, groups without a value, incidents
without a grid); identical windows are answered once for both names; overlapping ones each count
their own incidents."""

from __future__ import annotations

import datetime as dt
import random

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.analysis.kpirows import COUNTS, window_rows
from gis.core.vocab import COUNTY_TZ

START = dt.datetime(2026, 3, 1, tzinfo=COUNTY_TZ)


def _insert(conn: Connection, rng: random.Random, reported: dt.datetime, inside: bool) -> None:
    def later(seconds: float | None) -> dt.datetime | None:
        return None if seconds is None else reported + dt.timedelta(seconds=seconds)

    # Whole seconds give exact .x5 minutes (e.g. 1539 s = 25.65 min); some carry microseconds.
    accept = rng.choice([None, 1539, 1533, 600, rng.randint(60, 3000), rng.uniform(60, 3000)])
    arrive = rng.choice([None, None, 3003, rng.randint(300, 9000) + 0.000001])
    handle = rng.choice([None, 5580, rng.uniform(3600, 90000)])
    x, y = (rng.uniform(120.901, 120.939), rng.uniform(30.831, 30.849)) if inside else (121.5, 31.5)
    conn.execute(
        sa.text(
            "INSERT INTO incidents (category, source, reported_at, status, deadline_at, accepted_at, on_scene_at, "
            "handled_at, geom) VALUES ('dispute', 'resident_app', :r, 'handled', :d, :a, :o, :h, "
            "ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
        ),
        {"r": reported, "d": later(172800), "a": later(accept), "o": later(arrive), "h": later(handle), "x": x, "y": y},
    )


@pytest.fixture
def incidents(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(11)
    for start in (START, START - dt.timedelta(days=31), START.replace(year=2025)):
        for _ in range(70):
            _insert(connection, rng, start + dt.timedelta(minutes=rng.uniform(0, 40000)), rng.random() < 0.9)


def _reference(conn: Connection, ws: dt.datetime, we: dt.datetime, key: str | None) -> dict[str, object]:
    """The former query's figures for one window and grid (None: all), computed plainly."""
    pcts = ", ".join(
        f"percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY extract(epoch FROM {c} - reported_at) / 60.0 / {s}) "
        f"FILTER (WHERE {c} IS NOT NULL)"
        for c, s in (("accepted_at", 1), ("on_scene_at", 1), ("handled_at", 60))
    )
    group = "TRUE" if key is None else "grid_code IS NULL" if key == "" else "grid_code = :k"
    row = conn.execute(
        sa.text(f"SELECT count(*), {pcts} FROM incidents WHERE reported_at >= :s AND reported_at < :e AND {group}"),
        {"s": ws, "e": we, "k": key},
    ).one()
    return {"reported": row[0], "accept_pcts": row[1], "arrive_pcts": row[2], "handle_pcts": row[3]}


def test_percentiles_equal_percentile_cont_bit_for_bit(connection: Connection, incidents: None) -> None:
    windows = {
        "current": (START, START + dt.timedelta(days=31)),
        "previous": (START - dt.timedelta(days=31), START),
        "last_year": (START.replace(year=2025), START.replace(year=2025) + dt.timedelta(days=31)),
    }
    out = window_rows(connection, windows, "i.grid_code", "", "TRUE", {})
    keys = {k for (_, k) in out}
    assert "" in keys and None in keys and len(keys) > 3  # incidents outside every grid, and the totals
    for (win, key), figures in out.items():
        expected = _reference(connection, *windows[win], key)
        got = {name: figures[name] for name in expected}
        assert got == expected, (win, key)
        assert set(COUNTS) <= set(figures)


def test_identical_windows_are_counted_once_and_overlaps_apart(connection: Connection, incidents: None) -> None:
    month = (START, START + dt.timedelta(days=31))
    overlap = (START + dt.timedelta(days=10), START + dt.timedelta(days=45))
    out = window_rows(connection, {"current": month, "previous": month, "other": overlap}, "NULL", "", "TRUE", {})
    assert set(out) == {("current", None), ("previous", None), ("other", None)}
    assert out[("current", None)] == out[("previous", None)]
    for name, span in (("current", month), ("other", overlap)):
        expected = _reference(connection, *span, None)
        assert {k: out[(name, None)][k] for k in expected} == expected
