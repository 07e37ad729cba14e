"""The command centre's KPI strip, rankings and KPI choropleth: every value shown equals
gis.analysis.kpis for the same filter and period, inside the caller's scope."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from boundaries.sample import MiniCounty
from gis.analysis.kpis import compute_kpis
from gis.analysis.periods import county_midnight, period_of
from gis.core.vocab import COUNTY_TZ, OPEN_STATUSES, PENDING_STATUSES
from gis.incidents.filter import IncidentFilter
from gis.outputs import mapdata
from gis.people.scope import Scope
from maps.kpi_layer import CHOICES
from maps.kpi_strip import STRIP, fmt_value
from maps.page import PageContext
from maps.standalone import build_html

NOW = dt.datetime.now(dt.UTC)
TODAY = NOW.astimezone(COUNTY_TZ).date()
FROM, TO = TODAY - dt.timedelta(days=6), TODAY
WINDOW = {"window": "custom", "from": FROM.isoformat(), "to": TO.isoformat()}
TOWN2 = "330421002"
EXTERNAL = re.compile(r"""(?:\b(?:src|href|action)\s*=\s*["']|url\(\s*["']?)((?:[a-z]+:)?//[^"')\s]*)""", re.I)
# Grids of the mini county (lon, lat inside each): two per village, two villages per town.
POINTS = [(120.905, 30.835), (120.915, 30.835), (120.905, 30.845), (120.925, 30.835), (120.935, 30.845)]


def _incident(conn: Connection, point: tuple[float, float], age_h: float, status: str, late: bool, level: str) -> int:
    reported = NOW - dt.timedelta(hours=age_h)
    deadline = reported + dt.timedelta(hours=2)
    closed = deadline + dt.timedelta(hours=1 if late else -1) if status == "closed" else None
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, status, deadline_at, closed_at, closed_level, "
                "geom) VALUES ('dispute', 'grid_patrol', :r, :s, :d, :c, :l, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) "
                "RETURNING id"
            ),
            {
                "r": reported,
                "s": status,
                "d": deadline,
                "c": closed,
                "l": level if closed else None,
                "x": point[0],
                "y": point[1],
            },  # fmt: skip
        ).scalar_one()
    )


@pytest.fixture
def county(connection: Connection, mini_county: MiniCounty) -> None:
    statuses = ("closed", "closed", "dispatched", "closed", "rejected", "closed", "in_progress")
    levels = ("grid", "village", "town", "county")
    n = 0
    for i, point in enumerate(POINTS):
        for _ in range(3 + i):
            status = statuses[n % len(statuses)]
            # Ages from minutes (today) to five days (this week or the last 7 days).
            age = 0.05 + (n * 7.3) % 120
            incident = _incident(connection, point, age, status, late=n % 3 == 0, level=levels[n % 4])
            if status == "closed" and n % 2 == 0:
                result = ("satisfied", "dissatisfied", "basically_satisfied")[n % 3]
                connection.execute(
                    sa.text(
                        "INSERT INTO incident_callbacks (incident_id, at, result, actor) VALUES (:i, now(), :r, 't')"
                    ),
                    {"i": incident, "r": result},
                )
            n += 1


def _page(client: TestClient, key: str, **params: str) -> str:
    resp = client.get("/maps/command-center", params={**WINDOW, "key": key, **params})
    assert resp.status_code == 200, resp.text
    return resp.text


def _block(html: str, kpi: str) -> str:
    match = re.search(rf'<div class="gm-rank" data-kpi="{kpi}"[^>]*>(.*?)</div>', html, re.S)
    assert match, kpi
    return match.group(1)


def _ranked(groups: list[dict[str, Any]], kpi: str, lowest: bool = False, least: int = 0) -> list[tuple[str, float]]:
    """Computed here, not by the page's helper: units with a value (and ``least`` incidents), sorted
    by it, ties by code."""
    rows = [
        (g["key"], g["kpis"][kpi])
        for g in groups
        if g["key"] and g["kpis"][kpi] is not None and g["kpis"]["reported"] >= least
    ]
    return sorted(rows, key=lambda r: (r[1] if lowest else -r[1], r[0]))


def test_strip_equals_the_kpis_of_today_and_this_week(
    client: TestClient, connection: Connection, county: None, make_key: Any
) -> None:
    html = _page(client, make_key("viewer")["X-API-Key"])
    assert EXTERNAL.findall(html) == []
    for period in ("day", "week"):
        expected = compute_kpis(connection, IncidentFilter(), *period_of(TODAY, period))["total"]["kpis"]
        for kpi in STRIP:
            shown = re.search(rf'<td data-period="{period}" data-kpi="{kpi}">([^<]*)</td>', html)
            assert shown and shown.group(1) == fmt_value(kpi, expected[kpi]), (period, kpi)
    week = compute_kpis(connection, IncidentFilter(), *period_of(TODAY, "week"))["total"]["kpis"]
    assert week["reported"] > 0 and week["satisfaction_rate"] is not None
    statuses = connection.execute(sa.text("SELECT status, deadline_at FROM incidents")).all()
    opened = sum(s in OPEN_STATUSES for s, _ in statuses)
    overdue = sum(s in PENDING_STATUSES and d < dt.datetime.now(dt.UTC) for s, d in statuses)
    assert f'<b data-backlog="open">{opened:,}</b>' in html and f'<b data-backlog="overdue">{overdue:,}</b>' in html
    assert overdue > 0


def test_rankings_equal_the_kpis_by_town_and_grid(
    client: TestClient, connection: Connection, county: None, make_key: Any
) -> None:
    html = _page(client, make_key("viewer")["X-API-Key"])
    start, end = county_midnight(FROM), county_midnight(TO + dt.timedelta(days=1))
    towns = compute_kpis(connection, IncidentFilter(), start, end, group_by="town")["groups"]
    grids = compute_kpis(connection, IncidentFilter(), start, end, group_by="grid")["groups"]
    for kpi in CHOICES:
        block = _block(html, kpi)
        shown = {
            kind: [
                (c, float(v))
                for c, v in re.findall(rf'data-kind="{kind}" data-code="([^"]+)" data-value="([^"]+)"', block)
            ]
            for kind in ("town", "top", "bottom")
        }
        assert shown["town"] == _ranked(towns, kpi), kpi
        assert shown["top"] == _ranked(grids, kpi, least=5)[:10], kpi
        assert shown["bottom"] == _ranked(grids, kpi, lowest=True, least=5)[:10], kpi
    # The data make the ranking non-trivial, and leave out a grid of fewer than 5 incidents.
    assert len(_ranked(grids, "on_time_rate", least=5)) >= 2
    assert len(_ranked(grids, "reported", least=5)) < len(_ranked(grids, "reported"))
    # Only the selected KPI's rankings are shown; the selector switches them and the choropleth.
    assert '<div class="gm-rank" data-kpi="on_time_rate">' in html
    assert '<div class="gm-rank" data-kpi="closure_rate" style="display:none">' in html
    assert 'onchange="gridmap.kpiSelect(this.value)"' in html
    url = re.search(r'"(/maps/data/grids/kpis\.geojson\?[^"]+)"', html)
    assert url and "window=custom" in url.group(1)


def test_choropleth_values_equal_the_kpis_by_grid(
    client: TestClient, connection: Connection, county: None, make_key: Any
) -> None:
    start, end = county_midnight(FROM), county_midnight(TO + dt.timedelta(days=1))
    expected = {
        g["key"]: g["kpis"]
        for g in compute_kpis(connection, IncidentFilter(), start, end, group_by="grid")["groups"]
        if g["key"]
    }
    resp = client.get("/maps/data/grids/kpis.geojson", params=WINDOW, headers=make_key("viewer"))
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/geo+json"
    features = resp.json()["features"]
    assert len(features) == 8 and len(expected) == len(POINTS)
    for f in features:
        code = f["properties"]["code"]
        for kpi in CHOICES:
            assert f["properties"]["kpis"][kpi] == expected.get(code, {}).get(kpi), (code, kpi)
    # A key scoped to town 2: its grids only, with the figures of its incidents only (the same here).
    scoped = client.get("/maps/data/grids/kpis.geojson", params=WINDOW, headers=make_key("viewer", "t2", scope=TOWN2))
    codes = [f["properties"]["code"] for f in scoped.json()["features"]]
    assert codes and all(c.startswith(TOWN2) for c in codes)
    mine = compute_kpis(connection, IncidentFilter(scope=Scope.parse(TOWN2)), start, end, group_by="grid")
    assert {f["properties"]["code"]: f["properties"]["kpis"]["reported"] for f in scoped.json()["features"]} == {
        c: next((g["kpis"]["reported"] for g in mine["groups"] if g["key"] == c), None) for c in codes
    }


def test_scoped_strip_and_standalone_file(
    client: TestClient, connection: Connection, county: None, make_key: Any
) -> None:
    html = _page(client, make_key("viewer", "t2", scope=TOWN2)["X-API-Key"])
    flt = IncidentFilter(scope=Scope.parse(TOWN2))
    week = compute_kpis(connection, flt, *period_of(TODAY, "week"))["total"]["kpis"]
    shown = re.search(r'<td data-period="week" data-kpi="closure_rate">([^<]*)</td>', html)
    assert shown and shown.group(1) == fmt_value("closure_rate", week["closure_rate"])
    towns = re.findall(r'data-kind="town" data-code="([^"]+)"', html)
    assert towns and set(towns) == {TOWN2}
    standalone = build_html(connection, "command-center", PageContext(standalone=True), mapdata.parse_filter("7d"))
    assert 'gridmap.data["kpi_grids"]' in standalone and "/maps/data/grids/kpis.geojson" not in standalone
    # Outside the (inlined, third-party) script bodies nothing refers to another host.
    markup = re.sub(r"(<script\b[^>]*>).*?</script>", r"\1</script>", standalone, flags=re.S)
    assert EXTERNAL.findall(markup) == []
