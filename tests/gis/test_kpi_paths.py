"""gis.analysis.kpirows' two ways of reading the windows (each part rescanning the covering index,
or the rows read once and kept) answer the same; a collision of the groups' key hashes is detected
and the statement rerun with the next seed; the group lookup falls back to a binary search when no
20-bit slice of the hashes tells the groups apart; an empty window has no entry."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.analysis import kpirows
from gis.core.vocab import COUNTY_TZ

START = dt.datetime(2026, 3, 1, tzinfo=COUNTY_TZ)
WINDOWS = {
    "current": (START, START + dt.timedelta(days=31)),
    "previous": (START - dt.timedelta(days=31), START),
    "last_year": (START.replace(year=2025), START.replace(year=2025) + dt.timedelta(days=31)),
}


@pytest.fixture
def incidents(connection: Connection, mini_county: object) -> None:
    rng = random.Random(5)
    for start, _ in WINDOWS.values():
        for _ in range(60):
            reported = start + dt.timedelta(minutes=rng.uniform(0, 40000))
            status = rng.choice(("closed", "closed", "handled", "rejected", "dispatched"))
            inside = rng.random() < 0.9
            x, y = (rng.uniform(120.901, 120.939), rng.uniform(30.831, 30.849)) if inside else (121.5, 31.5)
            closed = status == "closed"
            arrive = rng.uniform(0, 9000)
            incident = connection.execute(
                sa.text(
                    "INSERT INTO incidents (category, source, reported_at, status, deadline_at, accepted_at, "
                    "on_scene_at, handled_at, closed_at, closed_level, geom) VALUES ('dispute', 'resident_app', "
                    ":r, :s, :d, :a, :o, :h, :c, :l, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"
                ),
                {
                    "r": reported,
                    "s": status,
                    "d": reported + dt.timedelta(days=2),
                    "a": reported + dt.timedelta(seconds=rng.uniform(30, 3000)),
                    "o": reported + dt.timedelta(seconds=arrive) if arrive > 900 else None,
                    "h": reported + dt.timedelta(hours=5),
                    "c": reported + dt.timedelta(hours=rng.uniform(1, 90)) if closed else None,
                    "l": rng.choice(kpirows.CLOSE_LEVELS) if closed else None,
                    "x": x,
                    "y": y,
                },
            ).scalar_one()
            if status == "closed" and rng.random() < 0.5:
                connection.execute(
                    sa.text(
                        "INSERT INTO incident_callbacks (incident_id, at, result, actor) "
                        "VALUES (:i, :at, :r, 'test'), (:i, :at + interval '1 hour', :r2, 'test')"
                    ),
                    {
                        "i": incident,
                        "at": reported,
                        "r": "dissatisfied",
                        "r2": rng.choice(("satisfied", "dissatisfied")),
                    },
                )


def test_rescanned_and_kept_rows_answer_the_same(connection: Connection, incidents: None) -> None:
    rescanned = kpirows.window_rows(connection, WINDOWS, "i.grid_code", "", "TRUE", {})
    kept = kpirows.window_rows(connection, WINDOWS, "i.grid_code", "", "i.category IS NOT NULL", {})
    assert rescanned == kept
    assert {k for (_, k) in rescanned} >= {None, ""}  # the totals and the incidents outside every grid
    assert sum(f["callbacks"] for (w, k), f in rescanned.items() if w == "current" and k is not None) > 0
    town = kpirows.window_rows(connection, WINDOWS, "i.town_code", "", "i.status <> :s", {"s": "rejected"})
    total = town[("current", None)]
    assert total["rejected"] == 0 and total["reported"] == sum(
        f["reported"] for (w, k), f in town.items() if w == "current" and k is not None
    )


def test_a_hash_collision_reruns_with_the_next_seed(
    connection: Connection, incidents: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = kpirows.window_rows(connection, WINDOWS, "i.grid_code", "", "TRUE", {})
    # Seed 0 hashes every key to 0: the groups collide; seed 1 is the real hash.
    monkeypatch.setattr(kpirows, "_HASH", kpirows._HASH.replace("coalesce(", "CAST(:kpi_seed AS bigint) * coalesce("))
    seeds: list[int] = []
    fetch = kpirows._fetch_binary

    def counting(conn: Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        seeds.append(params["kpi_seed"])
        return fetch(conn, sql, params)

    monkeypatch.setattr(kpirows, "_fetch_binary", counting)
    assert kpirows.window_rows(connection, WINDOWS, "i.grid_code", "", "TRUE", {}) == expected
    assert seeds == [0, 1]


def test_group_lookup_without_a_separating_slice_searches() -> None:
    # For every shift the table tries, a pair of hashes differing only outside its 20 bits.
    hashes = []
    for shift in range(0, 45, 4):
        base = 0x5A5A5A5A5A5A5A5 * (shift + 3) % 2**62
        bit = 63 if shift < 40 else 0
        hashes += [base, (base ^ (1 << bit)) - (2**64 if (base ^ (1 << bit)) >= 2**63 else 0)]
    groups = np.array(hashes, np.int64)
    rows = groups[np.random.default_rng(3).integers(0, len(groups), 500)]
    found = kpirows._group_of(groups, rows)
    assert np.array_equal(groups[found], rows)
    with pytest.raises(kpirows._Collision):
        kpirows._group_of(np.array([7, 7], np.int64), rows)
    with pytest.raises(ValueError, match="no group"):
        kpirows._group_of(groups[:3], rows)


def test_an_empty_window_has_no_entry(connection: Connection, incidents: None) -> None:
    empty = (START.replace(year=2020), START.replace(year=2020) + dt.timedelta(days=1))
    out = kpirows.window_rows(
        connection, {"current": WINDOWS["current"], "previous": empty}, "i.grid_code", "", "TRUE", {}
    )
    assert not [k for k in out if k[0] == "previous"]
    assert out[("current", None)]["reported"] == 60


def _kept(conn: Connection, incident: int) -> tuple[str | None, bool]:
    row = conn.execute(
        sa.text("SELECT last_callback_result, was_reopened FROM incidents WHERE id = :i"), {"i": incident}
    ).one()
    return row[0], row[1]


def test_triggers_keep_the_latest_callback_and_the_reopening(connection: Connection, incidents: None) -> None:
    incident = connection.execute(sa.text("SELECT min(id) FROM incidents")).scalar_one()
    at = dt.datetime(2026, 5, 1, tzinfo=COUNTY_TZ)

    def callback(when: dt.datetime, result: str) -> int:
        return int(
            connection.execute(
                sa.text(
                    "INSERT INTO incident_callbacks (incident_id, at, result, actor) "
                    "VALUES (:i, :at, :r, 'test') RETURNING id"
                ),
                {"i": incident, "at": when, "r": result},
            ).scalar_one()
        )

    connection.execute(sa.text("DELETE FROM incident_callbacks WHERE incident_id = :i"), {"i": incident})
    assert _kept(connection, incident) == (None, False)
    latest = callback(at, "satisfied")
    callback(at - dt.timedelta(days=1), "dissatisfied")  # recorded later, but earlier: not the latest
    assert _kept(connection, incident)[0] == "satisfied"
    tie = callback(at, "basically_satisfied")  # the same time: the later id counts
    assert _kept(connection, incident)[0] == "basically_satisfied"
    connection.execute(sa.text("UPDATE incident_callbacks SET result = 'dissatisfied' WHERE id = :c"), {"c": tie})
    assert _kept(connection, incident)[0] == "dissatisfied"
    connection.execute(sa.text("DELETE FROM incident_callbacks WHERE id = ANY(:c)"), {"c": [tie, latest]})
    assert _kept(connection, incident)[0] == "dissatisfied"  # the one left
    event = connection.execute(
        sa.text(
            "INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status) "
            "VALUES (:i, :at, 'test', 'reopen', 'closed', 'dispatched') RETURNING id"
        ),
        {"i": incident, "at": at},
    ).scalar_one()
    assert _kept(connection, incident)[1] is True
    connection.execute(sa.text("UPDATE incident_events SET action = 'note' WHERE id = :e"), {"e": event})
    assert _kept(connection, incident)[1] is False
    connection.execute(sa.text("UPDATE incident_events SET action = 'reopen' WHERE id = :e"), {"e": event})
    connection.execute(sa.text("DELETE FROM incident_events WHERE id = :e"), {"e": event})
    assert _kept(connection, incident)[1] is False
    # Deleting the incident takes its callbacks with it; their trigger finds no incident to update.
    callback(at, "satisfied")
    connection.execute(sa.text("DELETE FROM incidents WHERE id = :i"), {"i": incident})
    assert connection.execute(sa.text("SELECT count(*) FROM incidents WHERE id = :i"), {"i": incident}).scalar() == 0


def test_a_candidate_list_missing_keys_falls_back_to_the_windows_keys(
    connection: Connection, incidents: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = kpirows.window_rows(connection, WINDOWS, "i.grid_code", "", "TRUE", {})
    statements: list[str] = []
    fetch = kpirows._fetch_binary

    def counting(conn: Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        statements.append(sql)
        return fetch(conn, sql, params)

    monkeypatch.setattr(kpirows, "_fetch_binary", counting)
    # One candidate only: the other grids' incidents are unresolved, so the keys are found in the windows.
    one = connection.execute(sa.text("SELECT min(grid_code) FROM incidents")).scalar_one()
    found = kpirows.window_rows(connection, WINDOWS, "i.grid_code", "", "TRUE", {"g": one}, keys="SELECT :g")
    assert found == expected
    assert len(statements) == 2 and "SELECT :g" in statements[0] and "SELECT :g" not in statements[1]
    # A full list answers in one statement.
    statements.clear()
    every = "SELECT DISTINCT grid_code FROM incidents"
    assert kpirows.window_rows(connection, WINDOWS, "i.grid_code", "", "TRUE", {}, keys=every) == expected
    assert len(statements) == 1
