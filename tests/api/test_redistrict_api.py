"""POST/GET /analysis/redistrict: 202 with a run id, the run's state and report, and 4xx naming the field."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from boundaries.sample import MiniCounty
from gis.analysis import proposal


def test_post_queues_a_job_and_get_reports_the_draft(
    client: TestClient, connection: Connection, mini_county: MiniCounty, make_key
) -> None:  # type: ignore[no-untyped-def]
    connection.execute(sa.text("UPDATE areas SET households = 160 WHERE layer = 'micro_grid'"))
    planner = make_key("planner")
    r = client.post("/analysis/redistrict", json={"area_code": "330421002"}, headers=planner)
    assert r.status_code == 202, r.text
    run = r.json()
    assert run["status"] == "queued" and run["params"]["band"] == [300, 500] and run["progress"] == 0
    job = connection.execute(
        sa.text("SELECT queue_name, args, lock FROM procrastinate_jobs WHERE task_name = 'gridmap:redistrict'")
    ).one()
    assert job.queue_name == "analysis" and job.args == {"run_id": run["id"]}
    assert job.lock == f"redistrict:{run['id']}"
    # What the worker does (tests/gis/test_redistrict_job.py runs a real one).
    run_id = run["id"]
    assert proposal.execute_run(connection, run_id, proposal.params_from(run["params"]), lambda f, m: None) == "done"
    got = client.get(f"/analysis/redistrict/{run_id}", headers=make_key("viewer")).json()
    assert got["status"] == "done" and got["progress"] == 1.0
    assert got["draft_url"] == f"/maps/boundaries/drafts/{got['draft_id']}/impact"
    assert got["report"]["proposal"]["units"] == 4
    assert client.get(got["draft_url"], headers=planner).status_code == 200


def test_bad_input_names_the_field(client: TestClient, mini_county: MiniCounty, make_key) -> None:  # type: ignore[no-untyped-def]
    planner = make_key("planner")
    r = client.post("/analysis/redistrict", json={"area_code": "999999"}, headers=planner)
    assert r.status_code == 422 and "area_code '999999'" in r.text
    r = client.post(
        "/analysis/redistrict", json={"area_code": "330421001", "band_min": 500, "band_max": 300}, headers=planner
    )
    assert r.status_code == 422 and "band_min (500) must be below band_max (300)" in r.text
    r = client.post("/analysis/redistrict", json={"area_code": "330421001", "balance": "people"}, headers=planner)
    assert r.status_code == 422 and "balance" in r.text
    r = client.post("/analysis/redistrict", json={"area_code": "330421001"}, headers=make_key("viewer"))
    assert r.status_code == 403
    assert client.get("/analysis/redistrict/987654", headers=planner).status_code == 404
    assert client.get(f"/analysis/redistrict/{2**70}", headers=planner).status_code in (404, 422)
    assert client.post("/analysis/redistrict", json={"area_code": "33\u0000"}, headers=planner).status_code == 422
    scoped = make_key("planner", scope="330421001")
    r = client.post("/analysis/redistrict", json={"area_code": "330421002"}, headers=scoped)
    assert r.status_code == 403 and "area_code" in r.text
