"""POST /analysis/redistrict with layer=micro_grid: the micro-grid band from the settings, a grid as
the area, the run done with a micro-grid draft; a grid as the area of a grid proposal is refused."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from boundaries.sample import MiniCounty
from gis.analysis import proposal

GRID = "330421001001001"


def test_micro_grid_proposal_over_the_api(
    client: TestClient, connection: Connection, mini_county: MiniCounty, make_key
) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    connection.execute(
        sa.text(
            "INSERT INTO buildings (code, households, geom) VALUES (:c, :h, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
        ),
        [
            {
                "c": f"A{k:03d}",
                "h": 8,
                "x": float(rng.uniform(120.9005, 120.9095)),
                "y": float(rng.uniform(30.8305, 30.8395)),
            }
            for k in range(40)
        ],
    )
    planner = make_key("planner")
    r = client.post("/analysis/redistrict", json={"area_code": GRID, "layer": "micro_grid"}, headers=planner)
    assert r.status_code == 202, r.text
    run = r.json()
    assert run["params"]["band"] == [50, 80] and run["params"]["layer"] == "micro_grid" and run["params"]["roads"]
    assert proposal.execute_run(connection, run["id"], proposal.params_from(run["params"]), lambda f, m: None) == "done"
    got = client.get(f"/analysis/redistrict/{run['id']}", headers=planner).json()
    assert got["status"] == "done", got["message"]
    layer = connection.execute(sa.text("SELECT layer FROM drafts WHERE id = :d"), {"d": got["draft_id"]}).scalar()
    assert layer == "micro_grid"
    units = got["report"]["units"]
    assert sum(u["households"] for u in units) == 320 and all(50 <= u["households"] <= 80 for u in units)
    r = client.post("/analysis/redistrict", json={"area_code": GRID}, headers=planner)
    assert r.status_code == 422 and f"area_code '{GRID}' is not a town or village" in r.text
    r = client.post("/analysis/redistrict", json={"area_code": GRID, "layer": "beat"}, headers=planner)
    assert r.status_code == 422 and "layer" in r.text
