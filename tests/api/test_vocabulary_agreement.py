"""Every output means the same by open, pending, overdue and escalated (gis.core.vocab).

One grid holds an incident for every status × deadline (past, future) × escalation (grid,
village). The listing, the statistics, the grid and beat details, the map data (grid figures,
overdue and escalated layers), the map pages' legend and the grid dashboard must all give the
counts the definitions give.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from gis.core.vocab import FINAL_STATUSES, INCIDENT_STATUSES, PENDING_STATUSES

GRID = "330421001001001"  # entirely inside beat 330421P0101, which holds no other grid's incidents here
BEAT = "330421P0101"
POINT = (120.905, 30.834)

CASES = list(itertools.product(INCIDENT_STATUSES, (True, False), ("grid", "village")))


def _expected() -> dict[str, int]:
    """The counts by the definitions, from the cases themselves (not from any SQL)."""
    open_ = [c for c in CASES if c[0] not in FINAL_STATUSES]
    return {
        "open": len(open_),
        "pending": sum(1 for c in CASES if c[0] in PENDING_STATUSES),
        "overdue": sum(1 for s, past, _ in CASES if s in PENDING_STATUSES and past),
        "escalated": sum(1 for _, _, level in open_ if level != "grid"),
    }


EXPECTED = _expected()


@pytest.fixture
def one_grid(connection: Connection, mini_county: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    for status, past, level in CASES:
        connection.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, status, deadline_at, escalation_level, geom) "
                "VALUES ('dispute', 'grid_patrol', :r, :s, :d, :l, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
            ),
            {
                "r": now - dt.timedelta(days=2),
                "s": status,
                "d": now + dt.timedelta(hours=-5 if past else 5),
                "l": level,
                "x": POINT[0],
                "y": POINT[1],
            },
        )


def _total(client: TestClient, headers: dict[str, str], **params: str) -> int:
    resp = client.get("/incidents", params={"grid": GRID, "limit": "1", **params}, headers=headers)
    assert resp.status_code == 200, resp.text
    return int(resp.json()["total"])


def _legend_number(html: str, pattern: str) -> int:
    found = re.search(pattern, html)
    assert found is not None, pattern
    return int(found.group(1).replace(",", ""))


def _dashboard_cell(html: str, name: str) -> int:
    found = re.search(rf"<tr><th>{name}</th><td>(\d+)</td></tr>", html)
    assert found is not None, name
    return int(found.group(1))


def test_every_output_agrees(client: TestClient, make_key: Any, one_grid: None) -> None:
    headers = make_key("viewer")
    # The definitions themselves, so that a wrong one cannot pass by a coincidence of the cases.
    assert EXPECTED == {"open": 24, "pending": 16, "overdue": 8, "escalated": 12}

    listing = {
        "open": _total(client, headers, open="true"),
        "pending": _total(client, headers, pending="true"),
        "overdue": _total(client, headers, overdue="true"),
        "escalated": _total(client, headers, open="true", escalated="true"),
    }
    assert listing == EXPECTED
    assert _total(client, headers) == len(CASES)

    stats = client.get("/stats", params={"level": "grid", "period": "month", "grid": GRID}, headers=headers)
    assert stats.status_code == 200, stats.text
    assert {k: stats.json()["totals"][k] for k in EXPECTED} == EXPECTED

    for path in (f"/grids/{GRID}", f"/beats/{BEAT}"):
        details = client.get(path, headers=headers)
        assert details.status_code == 200, details.text
        assert {k: details.json()["incidents"][k] for k in EXPECTED} == EXPECTED, path

    # The grid popups of the command-centre map read these figures.
    figures = client.get("/maps/data/grids/stats.json", params={"grid": GRID}, headers=headers)
    assert figures.status_code == 200, figures.text
    assert {k: figures.json()[GRID][k] for k in EXPECTED} == EXPECTED

    overdue = client.get("/maps/data/incidents/overdue.geojson", headers=headers).json()
    escalated = client.get("/maps/data/incidents/escalated.geojson", headers=headers).json()
    assert len(overdue["features"]) == EXPECTED["overdue"]
    assert len(escalated["features"]) == EXPECTED["escalated"]
    assert {f["properties"]["status"] for f in overdue["features"]} == set(PENDING_STATUSES)

    page = client.get("/maps/command-center", params={"lang": "en"}, headers=headers)
    assert page.status_code == 200, page.text
    assert _legend_number(page.text, r"([\d,]+) overdue incidents \(map marks") == EXPECTED["overdue"]
    assert _legend_number(page.text, r"([\d,]+) open escalated incidents") == EXPECTED["escalated"]

    dashboard = client.get(f"/maps/grids/{GRID}", params={"lang": "en"}, headers=headers)
    assert dashboard.status_code == 200, dashboard.text
    for key, name in (("open", "Open"), ("pending", "Pending"), ("overdue", "Overdue"), ("escalated", "Escalated")):
        assert _dashboard_cell(dashboard.text, name) == EXPECTED[key], name


def test_incident_flags_follow_the_definitions(client: TestClient, make_key: Any, one_grid: None) -> None:
    """Each listed incident's own ``overdue``/``escalated`` flags agree with the filters."""
    resp = client.get("/incidents", params={"grid": GRID, "limit": "100"}, headers=make_key("viewer"))
    items = resp.json()["items"]
    assert len(items) == len(CASES)
    assert sum(i["overdue"] for i in items) == EXPECTED["overdue"]
    now = dt.datetime.now(dt.UTC)
    for i in items:
        past = dt.datetime.fromisoformat(i["deadline_at"]) < now
        assert i["overdue"] == (i["status"] in PENDING_STATUSES and past), i
    assert sum(i["escalated"] and i["status"] not in FINAL_STATUSES for i in items) == EXPECTED["escalated"]
