from __future__ import annotations

import io
from typing import Any

import pandas as pd
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection


def add_building(conn: Connection) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO buildings (code, name, landlord_name, landlord_phone, landlord_id_card, geom) VALUES "
            "('B1', '幸福里1幢', '赵六', '13600002222', '330421199001011234', "
            "ST_SetSRID(ST_MakePoint(120.906, 30.836), 4326))"
        )
    )


def read_csv(content: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(content), encoding="utf-8-sig", dtype=str)


def test_export_masks_for_viewer_and_audits(
    client: TestClient, connection: Connection, mini_county: Any, make_key: Any
) -> None:
    add_building(connection)
    response = client.get("/export/buildings", params={"format": "csv"}, headers=make_key("viewer", "alice"))
    assert response.status_code == 200
    assert 'filename="buildings.csv"' in response.headers["content-disposition"]
    row = read_csv(response.content).iloc[0]
    assert (row["landlord_phone"], row["landlord_id_card"], row["name"]) == (
        "136****2222",
        "330421********1234",
        "幸福里1幢",
    )
    audit = connection.execute(
        sa.text("SELECT actor, target, detail FROM audit_log WHERE action = 'export' ORDER BY id DESC LIMIT 1")
    ).one()
    assert (audit.actor, audit.target) == ("alice", "buildings")
    assert audit.detail["rows"] == 1 and audit.detail["personal_data"] is False


def test_export_unmasks_for_dispatcher_and_accepts_query_key(
    client: TestClient, connection: Connection, mini_county: Any, make_key: Any
) -> None:
    add_building(connection)
    key = make_key("dispatcher")["X-API-Key"]
    response = client.get("/export/buildings", params={"format": "csv", "key": key})
    assert response.status_code == 200
    assert read_csv(response.content).iloc[0]["landlord_phone"] == "13600002222"


def test_export_errors(client: TestClient, mini_county: Any, make_key: Any) -> None:
    assert client.get("/export/grids").status_code == 401
    headers = make_key("viewer")
    unknown = client.get("/export/roads", headers=headers)
    assert unknown.status_code == 404 and "unknown layer 'roads'" in unknown.json()["detail"]
    bad_format = client.get("/export/grids", params={"format": "kml"}, headers=headers)
    assert bad_format.status_code == 422 and "kml" in bad_format.json()["detail"]
    bad_crs = client.get("/export/grids", params={"crs": "bd09"}, headers=headers)
    assert bad_crs.status_code == 422 and "bd09" in bad_crs.json()["detail"]
    window = client.get("/export/grids", params={"start": "2024-01-01T00:00:00Z"}, headers=headers)
    assert window.status_code == 422 and "boundary layer" in window.json()["detail"]
