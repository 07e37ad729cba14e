"""KPIs: every figure equals a direct pandas computation over the same rows; periods, comparisons,
groups; callbacks and the reopen they cause."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.analysis import callbacks as cb
from gis.analysis.kpis import CLOSE_LEVELS, KPI_NAMES, KpiInputError, compute_kpis, period_window, write_xlsx
from gis.core.vocab import COUNTY_TZ
from gis.incidents.filter import IncidentFilter
from gis.incidents.workflow import IllegalTransition, IncidentNotFound
from gis.people.scope import Scope

START = dt.datetime(2026, 3, 1, tzinfo=COUNTY_TZ)
END = dt.datetime(2026, 4, 1, tzinfo=COUNTY_TZ)
STATUSES = ("reported", "accepted", "rejected", "dispatched", "in_progress", "handled", "verified", "closed")


def _insert(conn: Connection, rng: random.Random, reported: dt.datetime) -> int:
    status = rng.choice(STATUSES + ("closed",) * 4)
    span = dt.timedelta(hours=rng.uniform(1, 80))
    step = STATUSES.index(status)
    accepted = reported + dt.timedelta(minutes=rng.uniform(1, 40)) if status not in ("reported", "rejected") else None
    on_scene = reported + dt.timedelta(minutes=rng.uniform(10, 120)) if step >= 4 else None
    handled = reported + span * 0.7 if step >= 5 else None
    closed = reported + span if status == "closed" else None
    escalated = reported + span * 0.5 if rng.random() < 0.2 else None
    level = rng.choice(CLOSE_LEVELS) if status == "closed" else None
    x, y = rng.uniform(120.901, 120.939), rng.uniform(30.831, 30.849)
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, status, deadline_at, accepted_at, on_scene_at, "
                "handled_at, closed_at, closed_level, escalated_at, geom) VALUES ('dispute', 'resident_app', :r, :s, "
                ":d, :a, :o, :h, :c, :l, :e, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"
            ),
            {
                "r": reported,
                "s": status,
                "d": reported + dt.timedelta(hours=48),
                "a": accepted,
                "o": on_scene,
                "h": handled,
                "c": closed,
                "l": level,
                "e": escalated,
                "x": x,
                "y": y,
            },
        ).scalar_one()
    )


@pytest.fixture
def incidents(connection: Connection, mini_county) -> list[int]:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    ids = []
    for _ in range(300):  # this period, the one before, and a year before
        for start in (START, START - dt.timedelta(days=31), START.replace(year=2025)):
            ids.append(_insert(connection, rng, start + dt.timedelta(minutes=rng.uniform(0, 44000))))
    closed = connection.execute(sa.text("SELECT id FROM incidents WHERE status = 'closed' ORDER BY id")).scalars()
    for n, incident in enumerate(closed):
        if n % 3 == 0:
            result = ("satisfied", "basically_satisfied", "dissatisfied")[n % 9 // 3]
            connection.execute(
                sa.text(
                    "INSERT INTO incident_callbacks (incident_id, at, result, actor) VALUES (:i, now(), :r, 'test')"
                ),
                {"i": incident, "r": result},
            )
        if n % 11 == 0:
            connection.execute(
                sa.text(
                    "INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status) "
                    "VALUES (:i, now(), 'test', 'reopen', 'closed', 'dispatched')"
                ),
                {"i": incident},
            )
    return ids


def _frame(conn: Connection, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """The rows, exported plainly (no SQL aggregation)."""
    frame = pd.read_sql(
        sa.text(
            "SELECT i.*, (SELECT c.result FROM incident_callbacks c WHERE c.incident_id = i.id "
            "ORDER BY c.at DESC, c.id DESC LIMIT 1) AS callback, "
            "EXISTS (SELECT 1 FROM incident_events e WHERE e.incident_id = i.id AND e.action = 'reopen') AS reopened "
            "FROM incidents i WHERE i.reported_at >= :s AND i.reported_at < :e"
        ),
        conn,
        params={"s": start, "e": end},
    )
    return frame


def _expected(f: pd.DataFrame) -> dict[str, object]:
    closed = f[f.status == "closed"]
    base = len(f) - int((f.status == "rejected").sum())

    def ratio(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    def pct(delta: pd.Series, q: float, scale: float) -> float | None:
        values = delta.dropna().dt.total_seconds() / 60 / scale
        return round(float(np.quantile(values, q)), 1) if len(values) else None

    out: dict[str, object] = {
        "reported": len(f),
        "rejected": int((f.status == "rejected").sum()),
        "closed": len(closed),
        "closure_rate": ratio(len(closed), base),
        "on_time_rate": ratio(int((closed.closed_at <= closed.deadline_at).sum()), len(closed)),
        "escalation_rate": ratio(int(f.escalated_at.notna().sum()), base),
        "reopen_rate": ratio(int(f.reopened.sum()), base),
        "callbacks": int(f.callback.notna().sum()),
        "satisfaction_rate": ratio(
            int(f.callback.isin(["satisfied", "basically_satisfied"]).sum()), int(f.callback.notna().sum())
        ),
    }
    for name, column, scale in (
        ("accept", "accepted_at", 1),
        ("arrive", "on_scene_at", 1),
        ("handle", "handled_at", 60),
    ):
        unit = "h" if name == "handle" else "min"
        out[f"{name}_p50_{unit}"] = pct(f[column] - f.reported_at, 0.5, scale)
        out[f"{name}_p90_{unit}"] = pct(f[column] - f.reported_at, 0.9, scale)
    for level in CLOSE_LEVELS:
        out[f"closed_at_{level}"] = int((closed.closed_level == level).sum())
    known = int(closed.closed_level.notna().sum())
    out["settled_in_town_rate"] = ratio(known - int((closed.closed_level == "county").sum()), known)
    return out


def test_county_kpis_equal_pandas(connection: Connection, incidents: list[int]) -> None:
    data = compute_kpis(connection, IncidentFilter(), START, END)
    assert data["total"]["kpis"] == _expected(_frame(connection, START, END))
    assert set(data["total"]["kpis"]) == set(KPI_NAMES)
    previous = _expected(_frame(connection, START - (END - START), START))
    last_year = _expected(_frame(connection, START.replace(year=2025), END.replace(year=2025)))
    for name in ("reported", "closure_rate", "satisfaction_rate", "accept_p50_min"):
        now_value = data["total"]["kpis"][name]
        assert data["total"]["vs_previous"][name] == pytest.approx(round(now_value - previous[name], 4))
        assert data["total"]["vs_last_year"][name] == pytest.approx(round(now_value - last_year[name], 4))


def test_town_groups_equal_pandas_and_add_up(connection: Connection, incidents: list[int]) -> None:
    data = compute_kpis(connection, IncidentFilter(), START, END, group_by="town")
    frame = _frame(connection, START, END)
    assert {g["key"] for g in data["groups"]} == set(frame.town_code.dropna())
    for group in data["groups"]:
        assert group["kpis"] == _expected(frame[frame.town_code == group["key"]]), group["key"]
        assert group["name"].startswith("测试镇")
    assert sum(g["kpis"]["reported"] for g in data["groups"]) == data["total"]["kpis"]["reported"]


def test_filter_and_scope_narrow_the_cohort(connection: Connection, incidents: list[int]) -> None:
    town = "330421001"
    frame = _frame(connection, START, END)
    scoped = compute_kpis(connection, IncidentFilter(scope=Scope.parse(town)), START, END, group_by="grid")
    assert scoped["total"]["kpis"] == _expected(frame[frame.town_code == town])
    assert all(g["key"].startswith(town) for g in scoped["groups"])


def test_periods_and_bad_values() -> None:
    start, end = period_window("week", dt.date(2026, 3, 5))  # a Thursday
    assert (start.date(), end.date()) == (dt.date(2026, 3, 2), dt.date(2026, 3, 9))
    assert period_window("month", dt.date(2026, 12, 31))[1].date() == dt.date(2027, 1, 1)
    assert period_window("year", dt.date(2024, 2, 29))[0].date() == dt.date(2024, 1, 1)
    with pytest.raises(KpiInputError, match="period"):
        period_window("fortnight", dt.date(2026, 3, 5))


def test_group_by_must_be_known(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KpiInputError, match="group_by"):
        compute_kpis(connection, IncidentFilter(), START, END, group_by="street")
    with pytest.raises(KpiInputError, match="end"):
        compute_kpis(connection, IncidentFilter(), END, START)


def test_xlsx_has_a_row_per_group(connection: Connection, incidents: list[int]) -> None:
    data = compute_kpis(connection, IncidentFilter(), START, END, group_by="town")
    book = pd.read_excel(__import__("io").BytesIO(write_xlsx(data)), sheet_name=None)
    kpis = book["指标 KPIs"]
    assert len(kpis) == 1 + len(data["groups"])
    assert int(kpis.loc[0, "受理量 reported"]) == data["total"]["kpis"]["reported"]
    assert len(book["口径 definitions"]) == len(KPI_NAMES)


def _closed(conn: Connection, closed_ago: dt.timedelta) -> int:
    now = dt.datetime.now(dt.UTC)
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, status, deadline_at, closed_at, closed_level, "
                "geom) VALUES ('dispute', 'resident_app', :r, 'closed', :d, :c, 'grid', "
                "ST_SetSRID(ST_MakePoint(120.905, 30.835), 4326)) RETURNING id"
            ),
            {"r": now - closed_ago - dt.timedelta(hours=5), "d": now - closed_ago + dt.timedelta(hours=20),
             "c": now - closed_ago},
        ).scalar_one()
    )  # fmt: skip


def test_dissatisfied_callback_reopens_within_seven_days(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    recent, old = _closed(connection, dt.timedelta(days=2)), _closed(connection, dt.timedelta(days=9))
    out = cb.record_callback(connection, recent, "dissatisfied", "caller", note="还是漏水")
    assert out["reopened"] and out["status"] == "in_progress"  # no holder on record: rules.REOPEN
    row = connection.execute(
        sa.text("SELECT status, closed_at, closed_level, deadline_at > now() FROM incidents WHERE id = :i"),
        {"i": recent},
    ).one()
    assert row == ("in_progress", None, None, True)
    event = connection.execute(
        sa.text("SELECT action, from_status, to_status, actor FROM incident_events WHERE incident_id = :i"),
        {"i": recent},
    ).one()
    assert event == ("reopen", "closed", "in_progress", "caller")
    late = cb.record_callback(connection, old, "dissatisfied", "caller")
    assert not late["reopened"] and late["status"] == "closed"
    assert cb.record_callback(connection, old, "satisfied", "caller")["result"] == "satisfied"


def test_callback_errors(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    incident = _closed(connection, dt.timedelta(days=1))
    with pytest.raises(cb.CallbackInputError, match="result"):
        cb.record_callback(connection, incident, "happy", "caller")
    with pytest.raises(IncidentNotFound):
        cb.record_callback(connection, incident, "satisfied", "caller", scope=Scope.parse("330421002"))
    cb.record_callback(connection, incident, "dissatisfied", "caller")  # reopened: no longer closed
    with pytest.raises(IllegalTransition, match="callback follows closing"):
        cb.record_callback(connection, incident, "satisfied", "caller")
    assert connection.execute(sa.text("SELECT count(*) FROM incident_callbacks WHERE incident_id = :i"),
                              {"i": incident}).scalar() == 1  # fmt: skip


def test_reopen_goes_back_to_the_last_lead_holder(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    from tests.dispatch_roster import give_holder

    incident = _closed(connection, dt.timedelta(days=1))
    first = give_holder(connection, incident)
    connection.execute(sa.text("UPDATE incident_assignments SET state = 'done' WHERE id = :a"), {"a": first})
    out = cb.record_callback(connection, incident, "dissatisfied", "caller", channel="hotline")
    assert out["reopened"] and out["status"] == "dispatched"
    offers = connection.execute(
        sa.text(
            "SELECT org_unit_id, state, offered_by, accept_by > now() FROM incident_assignments "
            "WHERE incident_id = :i ORDER BY id"
        ),
        {"i": incident},
    ).all()
    assert len(offers) == 2 and offers[1][0] == offers[0][0] and offers[1][1:] == ("offered", "caller", True)
    jobs = connection.execute(
        sa.text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'gridmap:offer_deadline' AND lock = :l"),
        {"l": f"assignment:{connection.execute(sa.text('SELECT max(id) FROM incident_assignments')).scalar()}"},
    ).scalar()
    assert jobs == 1
