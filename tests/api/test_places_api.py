"""POST /places/import (admin; all or nothing, every bad row named) and GET /lookup?address= by a
place's name, by a typed combination of variants, and a road-only answer that says so."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from tests.gis.test_address_variants import typed_county  # noqa: F401 - the fixture
from tests.gis.test_places import count

CSV = "名称,别名,类型,地址\n金色家园,金色小区,小区,魏塘街道中山路128号\n丁栅村文化礼堂,,其他,西塘镇丁栅村3组2号\n"


def test_admin_imports_places_then_lookup_by_name(
    client: TestClient,
    make_key,  # type: ignore[no-untyped-def]
    typed_county: dict[str, int],  # noqa: F811
) -> None:
    files = {"file": ("places.csv", CSV.encode("gbk"), "text/csv")}
    resp = client.post("/places/import", files=files, headers=make_key("admin"))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"rows": 2, "inserted": 2, "updated": 0}
    found = client.get("/lookup", params={"address": "金色小区 二栋 二单元 302"}, headers=make_key("viewer"))
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["address"]["method"] == "place"
    assert body["address"]["match"]["address_id"] == typed_county["r2-2-302"]
    assert body["address"]["match"]["place"] == "金色家园"
    assert body["grid"]["code"] == "330421001001001"


def test_import_needs_admin(client: TestClient, make_key) -> None:  # type: ignore[no-untyped-def]
    files = {"file": ("places.csv", CSV.encode("utf-8"), "text/csv")}
    assert client.post("/places/import", files=files, headers=make_key("planner")).status_code == 403


def test_bad_rows_are_422_naming_each_and_nothing_is_stored(
    client: TestClient,
    make_key,  # type: ignore[no-untyped-def]
    connection: Connection,
    typed_county: dict[str, int],  # noqa: F811
) -> None:
    bad = CSV + "某某超市,,supermarket,魏塘街道中山路131号\n,,小区,魏塘街道中山路131号\n"
    resp = client.post(
        "/places/import", files={"file": ("p.csv", bad.encode("utf-8"), "text/csv")}, headers=make_key("admin")
    )
    assert resp.status_code == 422, resp.text
    problems = resp.json()["problems"]
    assert {(p["row"], p["field"]) for p in problems} == {(4, "kind"), (5, "name")}
    assert next(p for p in problems if p["row"] == 4)["value"] == "supermarket"
    assert count(connection, "places") == 0
    other = client.post(
        "/places/import", files={"file": ("p.pdf", b"%PDF", "application/pdf")}, headers=make_key("admin")
    )
    assert other.status_code == 422 and other.json()["problems"][0]["field"] == "file"


def test_typed_combination_and_road_only_over_http(
    client: TestClient,
    make_key,  # type: ignore[no-untyped-def]
    typed_county: dict[str, int],  # noqa: F811
) -> None:
    headers = make_key("viewer")
    typed = client.get("/lookup", params={"address": "中山路１２８号 二座 2单元 三零二"}, headers=headers)
    assert typed.status_code == 200, typed.text
    assert typed.json()["address"]["match"]["address_id"] == typed_county["r2-2-302"]
    road = client.get("/lookup", params={"address": "魏塘街道中山路"}, headers=headers)
    assert road.status_code == 404
    body = road.json()
    assert "only the road '魏塘街道中山路' was found" in body["detail"]
    assert body["address"]["candidates"][0]["precision"] == "road"
