from __future__ import annotations


def test_health_reports_database_and_postgis_versions(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok"
    assert body["postgresql"].split(".")[0].isdigit()
    assert body["postgis"].startswith("3.")
