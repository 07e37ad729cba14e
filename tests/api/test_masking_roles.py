"""Personal data per role, everywhere it leaves the service (PIPL).

Phone numbers, ID-card numbers and the names of landlords and reporters are shown in full to
dispatchers, planners and admins, and masked (138****5678, 330421********1234, 张**) for viewers
and reporters: in JSON (incidents, lookups, grid and beat details), in exports (CSV and
GeoJSON), on the map data endpoints and pages, in vector tiles; the OGC views mask for everyone.
The check is on the raw bytes of each answer, so a value cannot slip out under another field name.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

G1, BEAT = "330421001001001", "330421P0101"
POINT = {"lon": 120.905, "lat": 30.835}  # in G1 and beat P0101 of the mini county

LANDLORD = {"name": "张三丰", "phone": "13812345678", "id_card": "330421199001011234"}
REPORTER = {"name": "王小明", "phone": "13712345678"}
STAFF = {"name": "李建国", "phone": "13912345678", "id_card": "330421198501015678"}
AUX = {"name": "赵警官", "phone": "13612345678"}

# Grid staff follow the same rule as everyone (gis.core.privacy.mask_staff): name and phone masked below
# dispatcher in every output; their ID-card numbers never leave the service.
RAW = [
    LANDLORD["name"], LANDLORD["phone"], LANDLORD["id_card"], REPORTER["name"], REPORTER["phone"],
    STAFF["name"], STAFF["phone"], STAFF["id_card"], AUX["name"], AUX["phone"],
]  # fmt: skip
ROLES = ["viewer", "reporter", "dispatcher", "planner", "admin"]
SEES = {"dispatcher", "planner", "admin"}


@pytest.fixture
def people(connection: Connection, mini_county: Any, client: TestClient, make_key: Any) -> int:
    """A rental building with its landlord, two staff in G1, and an incident with its reporter."""
    connection.execute(
        sa.text(
            "INSERT INTO staff (grid_code, role, name, phone, id_card) VALUES "
            "(:g, 'grid_leader', :sn, :sp, :si), (:g, 'aux_police', :an, :ap, NULL)"
        ),
        {"g": G1, "sn": STAFF["name"], "sp": STAFF["phone"], "si": STAFF["id_card"], "an": AUX["name"],
         "ap": AUX["phone"]},
    )  # fmt: skip
    connection.execute(
        sa.text(
            "INSERT INTO buildings (code, name, is_rental, households, landlord_name, landlord_phone, "
            "landlord_id_card, risk_level, tenants, geom) VALUES ('B-mask', '出租楼', true, 6, :n, :p, :i, 'high', "
            "5, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
        ),
        {"n": LANDLORD["name"], "p": LANDLORD["phone"], "i": LANDLORD["id_card"], **POINT},
    )
    client.app.state.admission.clear()  # type: ignore[attr-defined]
    body = {
        **POINT, "category": "dispute", "source": "grid_patrol", "description": "邻里纠纷",
        "reporter_name": REPORTER["name"], "reporter_phone": REPORTER["phone"],
    }  # fmt: skip
    resp = client.post("/incidents", json=body, headers=make_key("admin"))
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def _outputs(client: TestClient, headers: dict[str, str], incident_id: int) -> dict[str, bytes]:
    """Every output that carries personal data, as the caller's role receives it."""
    gets = {
        "incident": f"/incidents/{incident_id}",
        "incident list": "/incidents",
        "lookup": f"/lookup?lon={POINT['lon']}&lat={POINT['lat']}",
        "grid details": f"/grids/{G1}",
        "beat details": f"/beats/{BEAT}",
        "export incidents csv": "/export/incidents?format=csv",
        "export incidents geojson": "/export/incidents?format=geojson",
        "export buildings csv": "/export/buildings?format=csv",
        "export buildings geojson": "/export/buildings?format=geojson",
        "map live incidents": "/maps/data/incidents/live.geojson",
        "map buildings": "/maps/data/buildings.geojson",
        "map grid stats": "/maps/data/grids/stats.json?window=30d",
        "map grid page": f"/maps/grids/{G1}",
        "map beat page": f"/maps/beats/{BEAT}",
        "map command centre": "/maps/command-center",
    }
    out = {}
    for name, path in gets.items():
        resp = client.get(path, headers=headers)
        assert resp.status_code == 200, (name, resp.status_code, resp.text[:300])
        out[name] = resp.content
    batch = client.post("/lookup/batch", json=[POINT], headers=headers)
    assert batch.status_code == 200, batch.text
    out["lookup batch"] = batch.content
    return out


def _present(raw: bytes, value: str) -> bool:
    # JSON may escape non-ASCII text; look for both spellings.
    escaped = value.encode("ascii", "backslashreplace").decode().replace("\\u", "\\u")
    return value.encode() in raw or escaped.encode() in raw or value.encode("unicode_escape") in raw


@pytest.mark.parametrize("role", ROLES)
def test_personal_data_is_masked_below_dispatcher(client: TestClient, make_key: Any, people: int, role: str) -> None:
    outputs = _outputs(client, make_key(role), people)
    if role in SEES:
        for name in ("incident", "incident list", "export incidents csv", "map live incidents"):
            assert _present(outputs[name], REPORTER["phone"]), f"{role} should see the reporter's phone in {name}"
        for name in ("export buildings csv", "export buildings geojson", "map buildings"):
            assert _present(outputs[name], LANDLORD["phone"]), f"{role} should see the landlord's phone in {name}"
        for name in ("lookup", "grid details", "lookup batch", "map grid stats"):
            assert _present(outputs[name], STAFF["phone"]), f"{role} should see staff phones in {name}"
        return
    leaks = [(name, value) for name, raw in outputs.items() for value in RAW if _present(raw, value)]
    assert not leaks, f"{role} sees unmasked personal data: {leaks}"
    expected = {
        "incident": ["137****5678", "王**"],
        "export incidents csv": ["137****5678", "王**"],
        "export buildings csv": ["138****5678", "330421********1234", "张**"],
        "export buildings geojson": ["138****5678", "330421********1234", "张**"],
        "map buildings": ["138****5678"],
        "lookup": ["139****5678", "李**"],
        "grid details": ["139****5678", "李**"],
        "map grid stats": ["139****5678", "李**"],
    }
    for name, masks in expected.items():
        for mask in masks:
            assert _present(outputs[name], mask), f"{name} for {role} lacks the masked form {mask}"


@pytest.mark.parametrize("role", ROLES)
def test_intake_answers_the_reporter_masked(client: TestClient, make_key: Any, mini_county: Any, role: str) -> None:
    client.app.state.admission.clear()  # type: ignore[attr-defined]
    body = {**POINT, "category": "public_order", "source": "grid_patrol", "reporter_name": REPORTER["name"],
            "reporter_phone": REPORTER["phone"]}  # fmt: skip
    resp = client.post("/incidents", json=body, headers=make_key(role))
    if role == "viewer":
        assert resp.status_code == 403
        return
    assert resp.status_code == 201, resp.text
    shown = resp.json()
    if role in SEES:
        assert (shown["reporter_name"], shown["reporter_phone"]) == (REPORTER["name"], REPORTER["phone"])
    else:
        assert (shown["reporter_name"], shown["reporter_phone"]) == ("王**", "137****5678")


def test_ogc_views_and_tiles_mask_for_everyone(client: TestClient, make_key: Any, connection: Connection,
                                               people: int) -> None:  # fmt: skip
    # The OGC API serves the ogc.* views (over its own connection pool, which cannot see this
    # test's uncommitted rows), so the views themselves are read here, inside the transaction.
    rows = connection.execute(
        sa.text(
            "SELECT row_to_json(b)::text FROM ogc.buildings b WHERE code = 'B-mask' "
            "UNION ALL SELECT row_to_json(i)::text FROM ogc.incidents i WHERE id = :i"
        ),
        {"i": people},
    ).scalars().all()  # fmt: skip
    assert len(rows) == 2
    text = " ".join(rows)
    assert not [v for v in RAW if v in text], text
    for mask in ("138****5678", "330421********1234", "张**", "137****5678", "王**"):
        assert mask in text
    catalog = client.get("/ogc/collections", headers=make_key("admin"))
    assert catalog.status_code == 200, catalog.text
    ids = {c["id"] for c in catalog.json()["collections"]}
    assert ids and all(i.startswith("ogc.") for i in ids), ids

    admin = make_key("admin")
    z = 14
    x = int((POINT["lon"] + 180) / 360 * 2**z)
    lat = math.radians(POINT["lat"])
    y = int((1 - math.asinh(math.tan(lat)) / math.pi) / 2 * 2**z)
    for layer in ("incidents", "buildings"):
        tile = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt", headers=admin)
        assert tile.status_code in (200, 204), tile.text
        assert not [v for v in RAW if v.encode() in tile.content], layer
