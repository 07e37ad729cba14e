"""Map pages on the mini county: layers and labels, offline, filters, aggregation, masking."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection, Engine

from gis.core.settings import Settings
from gis.incidents.filter import FilterError
from gis.outputs import mapdata
from maps.page import PageContext
from maps.standalone import build_html

NOW = dt.datetime.now(dt.UTC)
GRID = "330421001001001"  # south-west grid of the mini county: lon 120.90-120.91, lat 30.83-30.84
BEAT = "330421P0101"
EXTERNAL = re.compile(r"""(?:\b(?:src|href|action)\s*=\s*["']|url\(\s*["']?)((?:[a-z]+:)?//[^"')\s]*)""", re.I)


def _incident(conn: Connection, lon: float, lat: float, **values: Any) -> int:
    row = {
        "category": "fire",
        "source": "110",
        "reported_at": NOW - dt.timedelta(hours=2),
        "status": "closed",
        "deadline_at": None,
        "reporter_name": "张三丰",
        "reporter_phone": "13812345678",
        **values,
    }
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, status, deadline_at, reporter_name, "
                "reporter_phone, geom) VALUES (:category, :source, :reported_at, :status, :deadline_at, "
                ":reporter_name, :reporter_phone, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) RETURNING id"
            ),
            {**row, "lon": lon, "lat": lat},
        ).scalar_one()
    )


@pytest.fixture
def county(connection: Connection, mini_county: Any) -> dict[str, Any]:
    """The mini county with staff, rental buildings, hazards and incidents (some overdue)."""
    connection.execute(
        sa.text(
            "INSERT INTO staff (grid_code, role, name, phone) VALUES "
            "(:g, 'grid_leader', '李网格', '13900001111'), (:g, 'grid_worker', '王巡查', '13900002222')"
        ),
        {"g": GRID},
    )
    connection.execute(
        sa.text(
            "INSERT INTO buildings (code, name, is_rental, landlord_name, landlord_phone, tenants, rooms, risk_level, "
            "geom) VALUES ('B1', '出租楼一', true, '赵房东', '13700001234', 12, 6, 'high', "
            "ST_SetSRID(ST_MakePoint(120.905, 30.835), 4326)), ('B2', '出租楼二', true, '钱房东', '13700005678', 3, 2, "
            "'low', ST_SetSRID(ST_MakePoint(120.925, 30.845), 4326))"
        )
    )
    connection.execute(
        sa.text(
            "INSERT INTO hazards (category, severity, status, found_at, geom) VALUES "
            "('gas', 'high', 'open', now(), ST_SetSRID(ST_MakePoint(120.906, 30.836), 4326)), "
            "('private_wiring', 'low', 'rectified', now(), ST_SetSRID(ST_MakePoint(120.931, 30.846), 4326))"
        )
    )
    ids = [_incident(connection, 120.901 + 0.0035 * (i % 10), 30.831 + 0.0018 * (i // 10)) for i in range(100)]
    ids.append(
        _incident(
            connection,
            120.933,
            30.844,
            category="dispute",
            source="hotline_12345",
            reported_at=NOW - dt.timedelta(days=20),
        )
    )
    overdue = _incident(connection, 120.904, 30.834, status="dispatched", deadline_at=NOW - dt.timedelta(hours=5))
    return {"ids": ids, "overdue": overdue, "generation": mini_county.generation}


@pytest.fixture
def make_client(engine: Engine, sessions_in_transaction: Any) -> Iterator[Any]:
    """A TestClient on an app with the given settings, sharing the test's transaction."""
    from api.app import create_app

    clients: list[TestClient] = []

    def _make(**settings: Any) -> TestClient:
        app = create_app(Settings(**settings), engine=engine, sessions=sessions_in_transaction)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield _make
    for c in clients:
        c.__exit__(None, None, None)


def _external_refs(html: str) -> list[str]:
    return EXTERNAL.findall(html)


def test_command_center_has_every_layer_and_chinese_labels(
    county: Any, connection: Connection, make_client: Any, make_key: Any
) -> None:
    client = make_client()
    key = make_key("viewer")["X-API-Key"]
    r = client.get("/maps/command-center", params={"key": key})
    assert r.status_code == 200, r.text
    html = r.text
    for text in (
        "指挥中心综合态势图",
        "县界",
        "镇(街道)",
        "村(社区)",
        "网格",
        "微网格",
        "派出所辖区",
        "警格",
        "出租房屋(按风险)",
        "事件热力图",
        "超期事件",
        "实时事件",
        "燃气隐患",
        "私拉乱接电线",
        "边界为合成演示数据",
    ):
        assert text in html, text
    assert "L.control.layers.tree(" in html
    assert "L.heatLayer(" in html
    assert "L.realtime(" in html and "/maps/data/incidents/live.geojson" in html
    assert "L.markerClusterGroup(" in html
    assert f"key={key}" in html  # passed on to the data URLs the page fetches
    assert _external_refs(html) == []
    assert "/static/vendor/npm/leaflet@1.9.3/dist/leaflet.js" in html
    assert "/maps/data/grids/stats.json" in html  # what a grid's popup fetches
    # The grid popup's figures: staff with names and phones masked for a viewer, and counts in the window.
    stats = client.get("/maps/data/grids/stats.json", params={"key": key, "grid": GRID}).json()[GRID]
    assert [s["name"] for s in stats["staff"]] == ["李**", "王**"]  # masked for a viewer, like lookups
    assert stats["staff"][0]["phone"] == "139****1111"
    in_grid = connection.execute(sa.text("SELECT count(*) FROM incidents WHERE grid_code = :g"), {"g": GRID}).scalar()
    assert stats["incidents"] == in_grid > 10 and stats["overdue"] == 1 and stats["rentals"] == 1


def test_every_script_the_page_loads_is_served(county: Any, make_client: Any, make_key: Any) -> None:
    client = make_client()
    html = client.get("/maps/command-center", headers=make_key("viewer")).text
    refs = re.findall(r"""<(?:script|link)\b[^>]*(?:src|href)=["'](/static/vendor/[^"']+)""", html)
    assert len(refs) > 10
    assert "/static/vendor/gridmap/favicon.ico" in refs  # gridmap's icon, not a request for a missing one
    for ref in refs:
        assert client.get(ref).status_code == 200, ref


def test_english_switch(county: Any, make_client: Any, make_key: Any) -> None:
    r = make_client().get("/maps/command-center", params={"lang": "en"}, headers=make_key("viewer"))
    assert r.status_code == 200
    for text in (
        "Command centre overview",
        "Incident heatmap",
        "Overdue incidents",
        "Grids",
        "Police beats",
        "Boundaries are synthetic (demo data)",
    ):
        assert text in r.text, text
    assert "指挥中心综合态势图" not in r.text


def test_pages_need_a_viewer_key(county: Any, make_client: Any) -> None:
    client = make_client()
    assert client.get("/maps/command-center").status_code == 401
    assert client.get("/maps/command-center", params={"key": "gm_nope_nope"}).status_code == 401
    assert client.get("/maps/data/incidents/live.geojson").status_code == 401


def test_filters_are_in_the_form_and_the_data(county: Any, make_client: Any, make_key: Any) -> None:
    client = make_client()
    headers = make_key("viewer")
    start = (NOW - dt.timedelta(days=30)).date().isoformat()
    end = (NOW - dt.timedelta(days=10)).date().isoformat()
    r = client.get(
        "/maps/command-center",
        headers=headers,
        params={"window": "custom", "from": start, "to": end, "category": "dispute", "source": "hotline_12345"},
    )
    assert r.status_code == 200, r.text
    html = r.text
    assert f'name="from" value="{start}"' in html and f'name="to" value="{end}"' in html
    assert '<option value="custom" selected>' in html
    assert '<option value="dispute" selected>' in html and '<option value="hotline_12345" selected>' in html
    assert "时段内事件 1 起" in html  # only the dispute reported 20 days ago
    today = client.get("/maps/command-center", headers=headers, params={"window": "today", "status": "closed"})
    assert today.status_code == 200
    assert '<option value="closed" selected>' in today.text
    bad = client.get("/maps/command-center", headers=headers, params={"window": "fortnight"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "window"]
    reversed_range = client.get("/maps/command-center", headers=headers, params={"from": end, "to": start})
    assert reversed_range.status_code == 422


def test_heat_is_aggregated_above_the_threshold(
    county: Any, connection: Connection, make_client: Any, make_key: Any
) -> None:
    flt = mapdata.parse_filter("7d")
    raw = mapdata.heat_data(connection, flt, threshold=1000)
    assert not raw.aggregated and len(raw.points) == raw.total == 101
    cells = mapdata.heat_data(connection, flt, threshold=50, cell_m=250)
    assert cells.aggregated and cells.total == 101
    assert sum(p[2] for p in cells.points) == 101 and len(cells.points) < 101
    # The weighted cells keep the centre of mass of the raw points (what the heat shows at county zoom).
    mean_raw = [sum(p[i] for p in raw.points) / raw.total for i in (0, 1)]
    mean_cells = [sum(p[i] * p[2] for p in cells.points) / cells.total for i in (0, 1)]
    assert mean_raw == pytest.approx(mean_cells, abs=1e-5)

    page = make_client(heat_point_threshold=20).get("/maps/command-center", headers=make_key("viewer"))
    assert "已在服务器按100米方格聚合" in page.text
    data = make_client(heat_point_threshold=20).get("/maps/data/heat.json", headers=make_key("viewer")).json()
    assert data["aggregated"] is True and data["total"] == 101


def test_personal_data_is_masked_by_role(county: Any, make_client: Any, make_key: Any) -> None:
    client = make_client()
    viewer = client.get("/maps/data/incidents/overdue.geojson", headers=make_key("viewer")).json()
    assert [f["properties"]["id"] for f in viewer["features"]] == [county["overdue"]]
    props = viewer["features"][0]["properties"]
    assert props["reporter_phone"] == "138****5678" and props["reporter_name"] == "张**"
    dispatcher = client.get("/maps/data/incidents/overdue.geojson", headers=make_key("dispatcher")).json()
    assert dispatcher["features"][0]["properties"]["reporter_phone"] == "13812345678"
    buildings = client.get("/maps/data/buildings.geojson", headers=make_key("viewer")).json()
    landlords = {f["properties"]["landlord_phone"] for f in buildings["features"]}
    assert landlords == {"137****1234", "137****5678"}
    assert {f["properties"]["grid_code"] for f in buildings["features"]} >= {GRID}


def test_live_layer_lists_incidents_just_received(
    county: Any, connection: Connection, make_client: Any, make_key: Any
) -> None:
    client = make_client()
    headers = make_key("viewer")

    def live(**params: str) -> set[int]:
        got = client.get("/maps/data/incidents/live.geojson", headers=headers, params=params).json()
        return {f["properties"]["id"] for f in got["features"]}

    before = live()
    new_id = _incident(connection, 120.921, 30.841, category="dispute", status="reported")
    assert new_id not in before and new_id in live()
    assert new_id not in live(category="fire")


def test_layer_and_hazard_endpoints(county: Any, make_client: Any, make_key: Any) -> None:
    client = make_client()
    headers = make_key("viewer")
    micro = client.get("/maps/data/layers/micro_grid.geojson", headers=headers).json()
    assert len(micro["features"]) == 16
    assert client.get("/maps/data/layers/nope.geojson", headers=headers).status_code == 422
    gas = client.get("/maps/data/hazards.geojson", headers=headers, params={"category": "gas"}).json()
    assert [f["properties"]["category"] for f in gas["features"]] == ["gas"]


def test_grid_dashboard_has_charts_and_the_grids_things(county: Any, make_client: Any, make_key: Any) -> None:
    client = make_client()
    r = client.get(f"/maps/grids/{GRID}", headers=make_key("viewer"))
    assert r.status_code == 200, r.text
    html = r.text
    assert html.count("<svg") == 2 and "<rect" in html and "<polyline" in html
    assert "每周事件数(按类别)" in html and "每周办结率" in html
    assert "出租楼一" in html and "出租楼二" not in html  # only this grid's buildings
    assert "赵**" in html and "赵房东" not in html
    assert _external_refs(html) == []
    assert client.get("/maps/grids/999", headers=make_key("viewer")).status_code == 404


def test_beat_page_lists_overlapping_grids(county: Any, make_client: Any, make_key: Any) -> None:
    r = make_client().get(f"/maps/beats/{BEAT}", headers=make_key("viewer"), params={"lang": "en"})
    assert r.status_code == 200, r.text
    # Beat 1 spans lon 120.900-120.913: all of the western grids (to 120.91) and part of the next ones.
    assert "Grids overlapping this beat" in r.text
    assert "100%" in r.text and "30%" in r.text
    assert "330421001001001" in r.text and "330421002001001" not in r.text


def test_heat_time_page_has_frames(county: Any, make_client: Any, make_key: Any) -> None:
    client = make_client()
    hourly = client.get("/maps/heatmap/time", headers=make_key("viewer"))
    assert hourly.status_code == 200, hourly.text
    assert "TDHeatmap(" in hourly.text and "23:00" in hourly.text
    daily = client.get("/maps/heatmap/time", headers=make_key("viewer"), params={"by": "day", "window": "7d"})
    assert daily.status_code == 200 and NOW.date().isoformat()[:8] in daily.text
    assert client.get("/maps/heatmap/time", headers=make_key("viewer"), params={"by": "week"}).status_code == 422


def test_standalone_file_needs_no_server(county: Any, connection: Connection) -> None:
    ctx = PageContext(standalone=True, role="viewer")
    html = build_html(connection, "command-center", ctx, mapdata.parse_filter("7d"))
    assert "/static/vendor/" not in html
    markup = re.sub(r"(<script\b[^>]*>).*?</script>", r"\1</script>", html, flags=re.S)
    assert re.search(r"<script\b[^>]*\bsrc=|<link\b(?![^>]*href=\"data:)", markup) is None  # all inline
    # Outside the (third-party) script bodies nothing refers to another host.
    assert _external_refs(markup) == []
    assert "L.realtime(" not in html  # nothing to poll without a server
    assert '<link rel="icon" href="data:image/x-icon;base64,' in html  # the icon came along
    assert "离线快照" in html and "137****1234" in html  # buildings inlined, masked
    assert "李**" in html and "139****1111" in html  # grid figures inlined, masked
    assert "李网格" not in html and "13900001111" not in html
    grid = build_html(connection, "grid", ctx, mapdata.parse_filter("30d"), code=GRID)
    assert "<svg" in grid and "/static/vendor/" not in grid


def test_gcj02_base_map_shifts_overlays(county: Any, connection: Connection) -> None:
    wgs = mapdata.layer_geojson(connection, "county", tolerance_m=0)
    gcj = mapdata.layer_geojson(connection, "county", tolerance_m=0, display_crs="gcj02")
    a = wgs["features"][0]["geometry"]["coordinates"][0][0][0]
    b = gcj["features"][0]["geometry"]["coordinates"][0][0][0]
    # In Jiashan the GCJ-02 offset is a few hundred metres, mostly eastward.
    assert 0.002 < b[0] - a[0] < 0.008 and abs(b[1] - a[1]) < 0.004


def test_filter_validation_names_the_field() -> None:
    with pytest.raises(FilterError, match="status"):  # the one incident filter's error
        mapdata.parse_filter("7d", status="lost")
    with pytest.raises(mapdata.MapQueryError, match="from"):
        mapdata.parse_filter("custom", start="yesterday")
    flt = mapdata.parse_filter(start="2024-03-01", end="2024-03-31")
    assert flt.window == "custom" and (flt.end - flt.start).days == 31
    assert flt.query() == {"window": "custom", "from": "2024-03-01", "to": "2024-03-31"}
