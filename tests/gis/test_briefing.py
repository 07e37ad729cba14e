"""The weekly briefing: each figure against a direct computation over the same rows (pandas on the
incidents and hazards as stored), on the 10 x 10 lattice of grids over the mini county."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from boundaries.sample import MiniCounty
from gis.analysis.briefing import (
    BriefingError,
    check_town,
    parse_week,
    same_week_last_year,
    weekly_briefing,
)
from gis.analysis.emerging import emerging
from gis.core.vocab import COUNTY_TZ, OPEN_STATUSES, PENDING_STATUSES
from gis.incidents.filter import IncidentFilter
from gis.people.scope import Scope
from tests.gis.test_hotspots_db import BLOCK, cell_centre, cell_code, plant_week, publish_lattice

WEEK = dt.date(2026, 11, 16)  # a Monday: ISO 2026-W47
START = dt.datetime.combine(WEEK, dt.time(), COUNTY_TZ)
END = START + dt.timedelta(days=7)
NOW = END + dt.timedelta(days=2, hours=10)  # Wednesday after: the last complete week is WEEK
TOWN1, TOWN2 = "330421001", "330421002"


def insert(conn: Connection, cell: tuple[int, int], reported: dt.datetime, **values: Any) -> None:
    lon, lat = cell_centre(*cell)
    row = {"category": "fire", "status": "reported", "deadline_at": None, "closed_at": None, "closed_level": None}
    row |= values
    conn.execute(
        sa.text(
            "INSERT INTO incidents (category, source, reported_at, status, deadline_at, closed_at, closed_level, geom) "
            "VALUES (:category, 'grid_patrol', :r, :status, :deadline_at, :closed_at, :closed_level, "
            "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
        ),
        {**row, "r": reported, "lon": lon, "lat": lat},
    )


def hazard(conn: Connection, cell: tuple[int, int], status: str, rectify_by: dt.datetime) -> None:
    lon, lat = cell_centre(*cell)
    conn.execute(
        sa.text(
            "INSERT INTO hazards (category, severity, status, found_at, rectify_by, geom) VALUES ('gas', 'high', "
            ":s, :f, :r, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
        ),
        {"s": status, "f": rectify_by - dt.timedelta(days=10), "r": rectify_by, "lon": lon, "lat": lat},
    )


@pytest.fixture
def county(connection: Connection, mini_county: MiniCounty) -> None:
    publish_lattice(connection, mini_county)
    # Eight weeks of background; the block is hot only in the briefing's week (a new hot spot).
    for k in range(8):
        plant_week(connection, WEEK - dt.timedelta(days=7 * k), block_each=12 if k == 0 else 0, seed=k)
    # Categories: fire 1 a week before, 5 this week (rising); traffic 3 a week before, 1 now (falling).
    for k in range(1, 5):
        monday = START - dt.timedelta(days=7 * k)
        insert(connection, (8, 8), monday + dt.timedelta(hours=30))
        for i in range(3):
            insert(connection, (8, 1), monday + dt.timedelta(hours=20 + i), category="traffic")
    for i in range(5):
        insert(connection, (1, 7), START + dt.timedelta(hours=5 + i))
    insert(connection, (8, 1), START + dt.timedelta(hours=3), category="traffic")
    # Closed this week, on time or late, at various levels; and the same ISO week a year earlier.
    for i, (cell, late, level) in enumerate(
        [((1, 1), False, "grid"), ((1, 2), True, "county"), ((7, 7), False, "town"), ((7, 8), False, "village")]
    ):
        reported = START + dt.timedelta(hours=10 + i)
        deadline = reported + dt.timedelta(hours=24)
        closed = deadline + dt.timedelta(hours=5 if late else -5)
        insert(connection, cell, reported, category="dispute", status="closed", deadline_at=deadline,
               closed_at=closed, closed_level=level)  # fmt: skip
    ly_start = same_week_last_year(WEEK)[0]
    for i in range(3):
        insert(connection, (2, 6), ly_start + dt.timedelta(hours=12 + i), category="dispute")
    insert(connection, (2, 2), ly_start + dt.timedelta(hours=40), category="dispute", status="rejected")
    # Overdue now (pending past the deadline), in both towns, and one pending within its deadline.
    for cell, hours in (((0, 0), -5), ((0, 1), -50), ((9, 9), -3), ((9, 8), +30)):
        insert(connection, cell, NOW - dt.timedelta(days=3), category="dispute", status="dispatched",
               deadline_at=NOW + dt.timedelta(hours=hours))  # fmt: skip
    # Hazards: overdue in town 1 (two) and town 2 (one, marked), one still within its deadline.
    hazard(connection, (0, 0), "open", NOW - dt.timedelta(days=2))
    hazard(connection, (1, 3), "rectifying", NOW - dt.timedelta(hours=1))
    hazard(connection, (6, 6), "overdue", NOW - dt.timedelta(days=9))
    hazard(connection, (6, 7), "notified", NOW + dt.timedelta(days=2))
    hazard(connection, (6, 8), "rectified", NOW - dt.timedelta(days=2))


def incidents(conn: Connection) -> pd.DataFrame:
    return pd.read_sql(sa.text("SELECT * FROM incidents"), conn)


def hazards(conn: Connection) -> pd.DataFrame:
    return pd.read_sql(sa.text("SELECT * FROM hazards"), conn)


def brief(conn: Connection, **kwargs: Any) -> dict[str, Any]:
    return weekly_briefing(conn, now=NOW, p_value="analytic", **kwargs)


def in_week(f: pd.DataFrame, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    return f[(f.reported_at >= start) & (f.reported_at < end)]


def test_week_parsing() -> None:
    assert parse_week("2026-W47") == WEEK == parse_week("2026-11-19") == parse_week("2026W47")
    assert parse_week("2026-W01") == dt.date(2025, 12, 29)
    for bad, reason in (("2026-48", "ISO week"), ("2025-W53", "no week 53"), ("x" * 30, "ISO week")):
        with pytest.raises(BriefingError) as err:
            parse_week(bad)
        assert err.value.field == "week" and reason in str(err.value)
    # The same ISO week a year earlier starts on a Monday; a week 53 compares with week 52.
    assert same_week_last_year(WEEK)[0] == dt.datetime(2025, 11, 17, tzinfo=COUNTY_TZ)
    assert same_week_last_year(dt.date(2026, 12, 28))[0].date() == dt.date(2025, 12, 22)


def test_county_kpis_per_town_equal_the_rows(connection: Connection, county: None) -> None:
    data = brief(connection)
    assert data["week"] == "2026-W47" and data["unit"] == "town" and data["area"]["layer"] == "county"
    rows = incidents(connection)
    week = in_week(rows, START, END)
    total = data["kpis"]["total"]
    assert total["kpis"]["reported"] == len(week)
    closed = week[week.status == "closed"]
    assert total["kpis"]["closed"] == len(closed) == 4
    assert total["kpis"]["closure_rate"] == round(len(closed) / (len(week) - (week.status == "rejected").sum()), 4)
    assert total["kpis"]["on_time_rate"] == round((closed.closed_at <= closed.deadline_at).sum() / len(closed), 4)
    assert total["kpis"]["settled_in_town_rate"] == 0.75  # one of four closed at county level
    before = in_week(rows, START - dt.timedelta(days=7), START)
    assert total["vs_previous"]["reported"] == len(week) - len(before)
    last_year = in_week(rows, *same_week_last_year(WEEK))
    assert len(last_year) == 4
    assert total["vs_last_year"]["reported"] == len(week) - len(last_year)
    # Per town: the same counts by the rows' town codes.
    by_town = week.groupby("town_code").size().to_dict()
    groups = {g["key"]: g for g in data["kpis"]["groups"]}
    assert {k: g["kpis"]["reported"] for k, g in groups.items()} == by_town
    assert groups[TOWN1]["name"] == "测试镇1"
    ly_town2 = int((last_year.town_code == TOWN2).sum())
    assert groups[TOWN2]["vs_last_year"]["reported"] == by_town[TOWN2] - ly_town2
    assert groups[TOWN1]["vs_last_year"]["reported"] == by_town[TOWN1] - int((last_year.town_code == TOWN1).sum())


def test_backlog_and_hazards_by_town_equal_the_rows(connection: Connection, county: None) -> None:
    data = brief(connection)
    rows = incidents(connection)
    now = pd.Timestamp(NOW)
    open_ = rows[rows.status.isin(OPEN_STATUSES)]
    overdue = rows[rows.status.isin(PENDING_STATUSES) & (rows.deadline_at < now)]
    units = {u["code"]: u for u in data["backlog"]["units"]}
    assert {k: u["open"] for k, u in units.items()} == open_.groupby("town_code").size().to_dict()
    assert {k: u["overdue"] for k, u in units.items() if u["overdue"]} == overdue.groupby("town_code").size().to_dict()
    assert data["backlog"]["total"]["overdue"] == len(overdue) == 3
    assert data["backlog"]["total"]["open"] == len(open_)
    h = hazards(connection)
    late = h[(h.status == "overdue") | (h.status.isin(["open", "notified", "rectifying"]) & (h.rectify_by < now))]
    assert {u["code"]: u["overdue"] for u in data["hazards"]["units"]} == late.groupby("town_code").size().to_dict()
    assert data["hazards"]["overdue"] == len(late) == 3
    # The longest overdue first.
    assert [x["id"] for x in data["hazards"]["items"]] == late.sort_values("rectify_by").id.tolist()


def test_rising_categories_equal_the_rows(connection: Connection, county: None) -> None:
    data = brief(connection)
    rows = incidents(connection)
    rows = rows[(rows.reported_at >= START - dt.timedelta(days=28)) & (rows.reported_at < END)]
    rows = rows.assign(k=((rows.reported_at - (START - dt.timedelta(days=28))).dt.days // 7))
    expected = {}
    for category, f in rows.groupby("category"):
        this = int((f.k == 4).sum())
        mean = float((f.k < 4).sum()) / 4
        expected[category] = (this, round(mean, 2), round(this - mean, 2))
    got = {c["category"]: (c["count"], c["previous_mean"], c["change"]) for c in data["categories"]}
    assert got == expected
    assert got["fire"] == (5, 1.0, 4.0) and got["traffic"] == (1, 3.0, -2.0)
    order = sorted(expected.items(), key=lambda x: (-x[1][2], -x[1][0], x[0]))
    rising = [c for c, (_, _, change) in order if change > 0]
    assert data["rising"] == rising and "fire" in rising and "traffic" not in rising


def test_new_hot_spots_and_repeats(connection: Connection, county: None) -> None:
    data = brief(connection)
    block = {cell_code(r, c) for r, c in BLOCK}
    new = {r["code"] for r in data["hotspots"]["new"]}
    assert block <= new | {r["code"] for r in data["hotspots"]["hot"]}
    assert cell_code(3, 3) in new  # hot this week only
    direct = emerging(connection, "grid", IncidentFilter(), day=WEEK, weeks=8, p_value="analytic", now=NOW)
    assert new == {r["code"] for r in direct["rows"] if r["class"] == "new"}
    # Repeat locations: 3+ incidents within 30 m in the 30 days, one of them this week.
    rows = incidents(connection)
    assert data["repeats"]["locations"]
    for loc in data["repeats"]["locations"]:
        near = connection.execute(
            sa.text(
                "SELECT count(*), max(reported_at) FROM incidents WHERE reported_at >= :s AND reported_at < :e "
                "AND ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography, 45)"
            ),
            {"s": END - dt.timedelta(days=30), "e": END, "x": loc["lon"], "y": loc["lat"]},
        ).one()
        assert near[0] >= 3 and near[1] >= START
    # Each block cell had 12 incidents this week at its centre: each is a repeat location.
    places = [(loc["lon"], loc["lat"], loc["count"]) for loc in data["repeats"]["locations"]]
    for r, c in BLOCK:
        lon, lat = cell_centre(r, c)
        assert any(abs(x - lon) < 0.0005 and abs(y - lat) < 0.0005 and n >= 12 for x, y, n in places), (r, c)
    assert data["repeats"]["total"] >= len(data["repeats"]["locations"]) > 0 and len(rows) > data["repeats"]["total"]


def test_town_briefing_and_scope(connection: Connection, county: None) -> None:
    town = brief(connection, town=TOWN1)
    assert town["unit"] == "village" and town["area"] == {"layer": "town", "code": TOWN1, "name": "测试镇1"}
    rows = in_week(incidents(connection), START, END)
    mine = rows[rows.town_code == TOWN1]
    assert town["kpis"]["total"]["kpis"]["reported"] == len(mine)
    assert {g["key"]: g["kpis"]["reported"] for g in town["kpis"]["groups"]} == (
        mine.groupby("village_code").size().to_dict()
    )
    assert all(r["code"].startswith(TOWN1) for r in town["hotspots"]["new"] + town["hotspots"]["hot"])
    assert all(u["code"].startswith(TOWN1) for u in town["hazards"]["units"])
    assert {c["category"]: c["count"] for c in town["categories"]} == {
        k: int(v) for k, v in mine.groupby("category").size().items()
    } | {c["category"]: 0 for c in town["categories"] if c["category"] not in set(mine.category)}
    # A key scoped to town 2 sees town 2's figures only, in the county briefing too.
    scoped = brief(connection, scope=Scope.parse(TOWN2))
    assert [g["key"] for g in scoped["kpis"]["groups"]] == [TOWN2]
    assert scoped["kpis"]["total"]["kpis"]["reported"] == int((rows.town_code == TOWN2).sum())
    assert all(r["code"].startswith(TOWN2) for r in scoped["hotspots"]["hot"] + scoped["hotspots"]["new"])
    assert {u["code"] for u in scoped["backlog"]["units"]} <= {TOWN2}
    assert check_town(connection, TOWN1, Scope.parse(TOWN2)) is None
    assert check_town(connection, TOWN2, Scope.parse(TOWN2)) == "测试镇2"
    assert check_town(connection, "330421009", Scope()) is None
    with pytest.raises(BriefingError):
        check_town(connection, "33042100", Scope())


def test_hot_spots_are_kept_until_the_incidents_change(
    connection: Connection, county: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gis.analysis.hotspots as module

    first = brief(connection)
    runs: list[int] = []
    real = module.hotspots
    monkeypatch.setattr(module, "hotspots", lambda *a, **k: runs.append(1) or real(*a, **k))
    town = brief(connection, town=TOWN1)  # the county-wide runs serve the town's briefing
    assert runs == []
    assert town["hotspots"]["new"] == [r for r in first["hotspots"]["new"] if r["code"].startswith(TOWN1)]
    assert town["hotspots"]["hot"] == [r for r in first["hotspots"]["hot"] if r["code"].startswith(TOWN1)]
    # One more incident in the week: the runs are made again and count it.
    insert(connection, (3, 3), START + dt.timedelta(hours=1))
    again = brief(connection)
    assert runs == [1]
    count = {r["code"]: r["count"] for r in again["hotspots"]["hot"]}
    before = {r["code"]: r["count"] for r in first["hotspots"]["hot"]}
    assert count[cell_code(3, 3)] == before[cell_code(3, 3)] + 1
