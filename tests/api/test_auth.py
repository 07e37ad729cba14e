"""API keys and roles: 401 without a valid key, 403 for a role without the right, 429 past the limit."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from api.auth import Admin, Dispatcher, Viewer


@pytest.fixture
def guarded(app: FastAPI) -> TestClient:
    router = APIRouter()

    @router.get("/_t/viewer")
    def viewer(p: Viewer) -> dict[str, str]:
        return {"role": p.role}

    @router.get("/_t/dispatcher")
    def dispatcher(p: Dispatcher) -> dict[str, str]:
        return {"role": p.role}

    @router.get("/_t/admin")
    def admin(p: Admin) -> dict[str, str]:
        return {"role": p.role}

    app.include_router(router)
    app.state.admission.clear()
    return TestClient(app)


def test_missing_and_unknown_keys_get_401_with_json(guarded: TestClient) -> None:
    resp = guarded.get("/_t/viewer")
    assert resp.status_code == 401
    assert "API key is required" in resp.json()["detail"]
    resp = guarded.get("/_t/viewer", headers={"X-API-Key": "gm_deadbeef_nope"})
    assert resp.status_code == 401
    assert "unknown or revoked" in resp.json()["detail"]


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        ("viewer", "/_t/viewer", 200),
        ("viewer", "/_t/dispatcher", 403),
        ("reporter", "/_t/dispatcher", 403),
        ("dispatcher", "/_t/dispatcher", 200),
        ("planner", "/_t/admin", 403),
        ("admin", "/_t/admin", 200),
    ],
)
def test_roles_are_ordered(guarded: TestClient, make_key, role: str, path: str, status: int) -> None:  # type: ignore[no-untyped-def]
    resp = guarded.get(path, headers=make_key(role))
    assert resp.status_code == status
    if status == 403:
        assert role in resp.json()["detail"]


def test_bearer_header_works_and_revoked_key_stops(guarded: TestClient, make_key, connection) -> None:  # type: ignore[no-untyped-def]
    from gis.people.keys import revoke_key

    key = make_key("viewer")["X-API-Key"]
    assert guarded.get("/_t/viewer", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    key_id = connection.exec_driver_sql("SELECT max(id) FROM api_keys").scalar()
    assert revoke_key(connection, key_id)
    # The few-second key cache would otherwise still accept it.
    guarded.app.state.admission.clear()  # type: ignore[attr-defined]
    assert guarded.get("/_t/viewer", headers={"X-API-Key": key}).status_code == 401


def test_rate_limit_answers_429_with_retry_after(guarded: TestClient, make_key) -> None:  # type: ignore[no-untyped-def]
    guarded.app.state.settings = guarded.app.state.settings.model_copy(update={"rate_limit_per_minute": 5})  # type: ignore[attr-defined]
    headers = make_key("viewer")
    codes = [guarded.get("/_t/viewer", headers=headers).status_code for _ in range(7)]
    assert codes[:5] == [200] * 5
    assert codes[5] == 429
    resp = guarded.get("/_t/viewer", headers=headers)
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) >= 1
    # another key has its own bucket
    assert guarded.get("/_t/viewer", headers=make_key("viewer")).status_code == 200


def test_a_key_may_come_as_header_bearer_or_query_in_that_order(guarded: TestClient, make_key) -> None:  # type: ignore[no-untyped-def]
    viewer, admin = make_key("viewer")["X-API-Key"], make_key("admin")["X-API-Key"]
    assert guarded.get("/_t/admin", params={"key": admin}).json() == {"role": "admin"}
    # X-API-Key before Bearer before ?key=: the first one present decides, usable or not.
    assert guarded.get("/_t/admin", params={"key": admin}, headers={"X-API-Key": viewer}).status_code == 403
    bearer = {"Authorization": f"Bearer {viewer}"}
    assert guarded.get("/_t/admin", params={"key": admin}, headers=bearer).status_code == 403
    assert guarded.get("/_t/admin", headers={"X-API-Key": admin, **bearer}).status_code == 200
    assert guarded.get("/_t/viewer", params={"key": viewer}, headers={"X-API-Key": "gm_00_nope"}).status_code == 401


def test_refusals_are_audited_alike_however_the_key_came(guarded: TestClient, make_key, caplog) -> None:  # type: ignore[no-untyped-def]
    guarded.app.state.settings = guarded.app.state.settings.model_copy(update={"rate_limit_per_minute": 1})  # type: ignore[attr-defined]
    caplog.set_level("WARNING", logger="gridmap.audit.auth")
    assert guarded.get("/_t/viewer", params={"key": "gm_cafe01_secret"}).status_code == 401
    assert guarded.get("/_t/viewer", headers={"X-API-Key": "gm_cafe02_secret"}).status_code == 401
    key = make_key("viewer", name="limited")["X-API-Key"]
    assert [guarded.get("/_t/viewer", params={"key": key}).status_code for _ in range(3)] == [200, 429, 429]
    lines = [r.getMessage() for r in caplog.records if r.name == "gridmap.audit.auth"]
    assert any("401" in line and "gm_cafe01" in line for line in lines), lines
    assert any("401" in line and "gm_cafe02" in line for line in lines), lines
    assert not any("secret" in line for line in lines)  # the key's secret part is never logged
    # 429s of one key are audited once per few seconds, not once per request.
    assert [("429" in line and "limited" in line) for line in lines].count(True) == 1, lines
