"""/briefings/weekly (JSON), /briefings/weekly.xlsx (the same figures) and /maps/briefing (renders,
nothing external), inside the caller's scope: a town outside it is 404 like a missing one."""

from __future__ import annotations

import io
import re
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.engine import Connection

from gis.analysis.briefing_xlsx import SHEETS
from gis.analysis.kpis import KPIS
from tests.gis.test_briefing import END, START, TOWN1, TOWN2, county  # noqa: F401  (the fixture)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXTERNAL = re.compile(r"""(?:\b(?:src|href|action)\s*=\s*["']|url\(\s*["']?)((?:[a-z]+:)?//[^"')\s]*)""", re.I)
pytestmark = pytest.mark.usefixtures("county")
FAST = {"week": "2026-W47", "p_value": "analytic"}


def _sheet(book: Any, key: str) -> list[tuple[Any, ...]]:
    return list(book[SHEETS[key]].iter_rows(values_only=True))


def test_json_and_xlsx_agree(client: TestClient, connection: Connection, make_key) -> None:  # type: ignore[no-untyped-def]
    viewer = make_key("viewer")
    resp = client.get("/briefings/weekly", params=FAST, headers=viewer)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    week = pd.read_sql(
        sa.text("SELECT town_code FROM incidents WHERE reported_at >= :s AND reported_at < :e"),
        connection,
        params={"s": START, "e": END},
    )
    assert data["week"] == "2026-W47" and data["kpis"]["total"]["kpis"]["reported"] == len(week)
    assert {g["key"]: g["kpis"]["reported"] for g in data["kpis"]["groups"]} == week.groupby(
        "town_code"
    ).size().to_dict()
    assert "fire" in data["rising"]

    book_resp = client.get("/briefings/weekly.xlsx", params=FAST, headers=viewer)
    assert book_resp.status_code == 200 and book_resp.headers["content-type"] == XLSX
    assert 'filename="briefing-2026-W47-county.xlsx"' in book_resp.headers["content-disposition"]
    book = load_workbook(io.BytesIO(book_resp.content))
    summary = {row[0]: row[2:] for row in _sheet(book, "summary")[1:]}
    total = data["kpis"]["total"]
    for kpi in KPIS:
        assert summary[kpi.name] == (
            total["kpis"][kpi.name],
            total["vs_previous"][kpi.name],
            total["vs_last_year"][kpi.name],
        ), kpi.name
    units = _sheet(book, "units")
    assert [r[0] for r in units[1:]] == [g["key"] for g in data["kpis"]["groups"]]
    reported_col = units[0].index("受理量 reported")
    assert [r[reported_col] for r in units[1:]] == [g["kpis"]["reported"] for g in data["kpis"]["groups"]]
    categories = {r[0]: (r[2], r[3], r[6]) for r in _sheet(book, "categories")[1:]}
    assert categories == {c["category"]: (c["count"], c["previous_mean"], c["change"] > 0) for c in data["categories"]}
    backlog = _sheet(book, "backlog")
    assert backlog[-1][2:] == tuple(data["backlog"]["total"][k] for k in ("open", "pending", "overdue", "escalated"))
    hazards = {r[0]: r[2] for r in _sheet(book, "hazards")[1:]}
    assert hazards == {u["code"]: u["overdue"] for u in data["hazards"]["units"]}
    hot = [r[1] for r in _sheet(book, "hotspots")[1:] if r[0] == "new"]
    assert hot == [r["code"] for r in data["hotspots"]["new"]]
    assert len(_sheet(book, "repeats")) - 1 == len(data["repeats"]["locations"])
    # The export is audited like every file that leaves the service.
    audited = connection.execute(sa.text("SELECT count(*) FROM audit_log WHERE target = 'briefing'")).scalar()
    assert audited == 1


def test_page_renders_offline_in_both_languages(client: TestClient, make_key) -> None:  # type: ignore[no-untyped-def]
    key = make_key("viewer")["X-API-Key"]
    page = client.get("/maps/briefing", params={**FAST, "town": TOWN1, "key": key})
    assert page.status_code == 200, page.text
    html = page.text
    assert EXTERNAL.findall(html) == []
    for text in (
        "每周会商研判",
        "测试镇1",
        "2026-W47",
        "本周指标",
        "环比上周",
        "同比去年同周",
        "各村(社区)",
        "下载Excel",
    ):
        assert text in html, text
    assert "<svg" in html and 'gridmap.data["brief_units"]' in html and 'gridmap.data["brief_hot"]' in html
    assert f"/briefings/weekly.xlsx?week=2026-W47&amp;town={TOWN1}&amp;key={key}" in html
    english = client.get("/maps/briefing", params={**FAST, "lang": "en", "key": key})
    assert english.status_code == 200 and "Weekly briefing" in english.text and "KPIs of the week" in english.text
    assert EXTERNAL.findall(english.text) == []


def test_scope_and_bad_input(client: TestClient, make_key) -> None:  # type: ignore[no-untyped-def]
    town2 = make_key("viewer", "town2", scope=TOWN2)
    for path in ("/briefings/weekly", "/briefings/weekly.xlsx", "/maps/briefing"):
        outside = client.get(path, params={**FAST, "town": TOWN1}, headers=town2)
        assert outside.status_code == 404, (path, outside.text)
        missing = client.get(path, params={**FAST, "town": "330421009"}, headers=town2)
        assert missing.status_code == 404
    own = client.get("/briefings/weekly", params={**FAST, "town": TOWN2}, headers=town2)
    assert own.status_code == 200 and own.json()["area"]["name"] == "测试镇2"
    county_view = client.get("/briefings/weekly", params=FAST, headers=town2).json()
    assert [g["key"] for g in county_view["kpis"]["groups"]] == [TOWN2]
    # A key of one village sees its town's briefing, made of its own village only.
    village = make_key("viewer", "village", scope=f"{TOWN2}001")
    part = client.get("/briefings/weekly", params={**FAST, "town": TOWN2}, headers=village).json()
    assert [g["key"] for g in part["kpis"]["groups"]] == [f"{TOWN2}001"]
    assert all(r["code"].startswith(f"{TOWN2}001") for r in part["hotspots"]["hot"] + part["hotspots"]["new"])
    viewer = make_key("viewer")
    for params, field in (({"week": "2026-48"}, "week"), ({"week": "2025-W53"}, "week"), ({"town": "abc"}, "town")):
        bad = client.get("/briefings/weekly", params={"p_value": "analytic", **params}, headers=viewer)
        assert bad.status_code == 422, bad.text
        assert bad.json()["detail"][0]["loc"] == ["query", field]
    assert client.get("/briefings/weekly", params=FAST).status_code == 401
