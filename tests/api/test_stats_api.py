"""Statistics checked against numbers computed by hand from seven incidents with known times."""

from __future__ import annotations

import datetime as dt

import pytest

from gis.core.settings import Settings
from gis.incidents.filter import FilterError, IncidentFilter
from gis.incidents.intake import create_incident
from gis.incidents.stats import StatsInputError, incident_stats
from gis.incidents.workflow import transition
from tests.dispatch_roster import give_holder

UTC = dt.UTC
CN = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2024, 5, 1, tzinfo=CN)
END = dt.datetime(2024, 6, 1, tzinfo=CN)
MAY = IncidentFilter(start=START, end=END)
LOOP = ("accept", "dispatch", "start", "handle", "verify", "close")


@pytest.fixture
def seven(connection, mini_county):  # type: ignore[no-untyped-def]
    def add(lon: float, lat: float, category: str, at: dt.datetime, actions: tuple[str, ...] = (), hours=0.0) -> int:  # type: ignore[no-untyped-def]
        data = {"lon": lon, "lat": lat, "category": category, "source": "grid_patrol", "reported_at": at}
        incident, _ = create_incident(connection, data, "t", settings=Settings(duplicate_radius_m=0))
        if "dispatch" in actions:
            give_holder(connection, incident["id"])  # ``dispatched`` requires a holder
        for action in actions:
            transition(connection, incident["id"], action, "d", now=at + dt.timedelta(hours=hours))
        return int(incident["id"])

    town1 = (120.905, 30.832)  # village 330421001001
    add(*town1, "dispute", dt.datetime(2024, 5, 1, 2, tzinfo=UTC), LOOP, 10)  # A: closed after 10 h
    add(*town1, "fire", dt.datetime(2024, 5, 1, 3, tzinfo=UTC), LOOP, 4)  # B: closed after 4 h
    add(*town1, "dispute", dt.datetime(2024, 5, 2, 1, tzinfo=UTC), ("reject",), 1)  # C: rejected
    add(*town1, "traffic", dt.datetime(2024, 5, 2, 2, tzinfo=UTC))  # D: pending, overdue
    # E: 00:30 on 2 May in China (still 1 May in UTC): closed after 6 h; village 330421002002
    add(120.935, 30.845, "dispute", dt.datetime(2024, 5, 1, 16, 30, tzinfo=UTC), LOOP, 6)
    # F: handled, so not overdue though past its deadline; village 330421002001
    add(120.925, 30.832, "dispute", dt.datetime(2024, 5, 3, 1, tzinfo=UTC), LOOP[:4], 1)
    add(*town1, "dispute", END)  # G: at the end of the range, which is exclusive


def _rows(stats: dict) -> list[tuple]:  # type: ignore[type-arg]
    return [
        (
            str(r["period_start"]),
            r["area_code"],
            r["total"],
            r["closed"],
            r["rejected"],
            r["overdue"],
            r["closure_rate"],
            r["mean_handling_hours"],
        )
        for r in stats["rows"]
    ]


def test_per_town_and_day_in_china_time(connection, seven) -> None:  # type: ignore[no-untyped-def]
    stats = incident_stats(connection, "town", "day", MAY)
    assert _rows(stats) == [
        ("2024-05-01", "330421001", 2, 2, 0, 0, 1.0, 7.0),
        ("2024-05-02", "330421001", 2, 0, 1, 1, 0.0, None),
        ("2024-05-02", "330421002", 1, 1, 0, 0, 1.0, 6.0),
        ("2024-05-03", "330421002", 1, 0, 0, 0, 0.0, None),
    ]
    assert stats["totals"] == {
        "total": 6,
        "closed": 3,
        "rejected": 1,
        "open": 2,  # D (pending) and F (handled, still to be verified and closed)
        "pending": 1,
        "overdue": 1,
        "escalated": 0,
        "closure_rate": 0.6,
        "mean_handling_hours": 6.667,
    }
    assert stats["rows"][0]["area_name"] == "测试镇1"


def test_per_village_and_month(connection, seven) -> None:  # type: ignore[no-untyped-def]
    stats = incident_stats(connection, "village", "month", MAY)
    assert _rows(stats) == [
        ("2024-05-01", "330421001001", 4, 2, 1, 1, 0.6667, 7.0),
        ("2024-05-01", "330421002001", 1, 0, 0, 0, 0.0, None),
        ("2024-05-01", "330421002002", 1, 1, 0, 0, 1.0, 6.0),
    ]


def test_week_starts_on_monday_and_filters_apply(connection, seven) -> None:  # type: ignore[no-untyped-def]
    stats = incident_stats(connection, "grid", "week", MAY.replace(category=("dispute",)))
    assert [(str(r["period_start"]), r["area_code"], r["total"]) for r in stats["rows"]] == [
        ("2024-04-29", "330421001001001", 2),
        ("2024-04-29", "330421002001001", 1),
        ("2024-04-29", "330421002002002", 1),
    ]


def test_bad_parameters_are_named(connection) -> None:  # type: ignore[no-untyped-def]
    for kwargs, field in (({"level": "county"}, "level"), ({"period": "year"}, "period")):
        with pytest.raises(StatsInputError) as err:
            incident_stats(connection, **kwargs)
        assert err.value.field == field
    for values, field in (({"start": END, "end": START}, "start"), ({"category": ("arson",)}, "category")):
        with pytest.raises(FilterError) as bad:
            incident_stats(connection, flt=IncidentFilter(**values))  # type: ignore[arg-type]
        assert bad.value.field == field


def test_stats_endpoint(client, seven, make_key) -> None:  # type: ignore[no-untyped-def]
    headers = make_key("viewer")
    params = {"level": "town", "period": "day", "start": "2024-05-01T00:00:00", "end": "2024-06-01T00:00:00+08:00"}
    resp = client.get("/stats", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["totals"]["total"] == 6 and body["totals"]["closure_rate"] == 0.6
    assert [(r["period_start"], r["area_code"], r["overdue"]) for r in body["rows"]] == [
        ("2024-05-01", "330421001", 0),
        ("2024-05-02", "330421001", 1),
        ("2024-05-02", "330421002", 0),
        ("2024-05-03", "330421002", 0),
    ]
    for query, loc in (
        ({"level": "county"}, ["query", "level"]),
        ({"category": "arson"}, ["query", "category"]),
        ({"start": "2024-06-01T00:00:00Z", "end": "2024-05-01T00:00:00Z"}, ["query", "start"]),
    ):
        bad = client.get("/stats", params=query, headers=headers)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == loc
    assert client.get("/stats").status_code == 401
