"""The generation rule (gis/spatial/genrule.py): open work follows the generation in force, ended
records keep the generation of their time, whoever writes the row (API, bulk import, plain SQL),
and publish, restore and verify agree with it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from boundaries import edits
from boundaries.drafts import create_draft
from boundaries.publish import publish_draft, restore_generation
from gis.bulk import import_frame
from gis.core import vocab
from gis.incidents import rules
from gis.incidents.workflow import transition
from gis.spatial.genrule import LIFECYCLES, POINT_TABLES, is_final, open_rows_sql
from gis.spatial.verify import verify

G1, G2 = "330421001001001", "330421001001002"  # the merge keeps G1; G2 is absorbed
LON, LAT = 120.915, 30.833  # inside G2 (x 120.91-120.92, y 30.83-30.84)
M21 = "33042100100100201"  # the micro-grid there, G2's before the merge and G1's after


def test_sql_and_python_final_statuses_agree(connection: Connection) -> None:
    for table in POINT_TABLES:
        in_db = connection.execute(sa.text("SELECT gridmap_final_statuses(:t)"), {"t": table}).scalar_one()
        life = LIFECYCLES.get(table)
        assert in_db == (list(life.final_statuses) if life else []), table
    assert set(vocab.FINAL_STATUSES) == set(rules.FINAL_STATUSES)  # the incident rules' copy, until merged
    assert set(vocab.OPEN_STATUSES) | set(vocab.FINAL_STATUSES) == set(vocab.INCIDENT_STATUSES)
    assert not set(vocab.OPEN_STATUSES) & set(vocab.FINAL_STATUSES)
    assert set(vocab.HAZARD_FINAL_STATUSES) < set(vocab.HAZARD_STATUSES)
    # The hazards table accepts exactly the vocabulary's statuses.
    check = connection.execute(
        sa.text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'hazards'::regclass AND conname LIKE '%status' AND conname NOT LIKE '%assign%'"
        )
    ).scalar_one()
    assert all(f"'{s}'" in check for s in vocab.HAZARD_STATUSES)
    # The condition publishing uses selects exactly the open statuses.
    for table, statuses in (("incidents", vocab.INCIDENT_STATUSES), ("hazards", vocab.HAZARD_STATUSES)):
        query = (
            "SELECT t.status FROM unnest(CAST(:s AS text[])) WITH ORDINALITY AS t(status, n) "
            f"WHERE {open_rows_sql(table)} ORDER BY t.n"
        )
        selected = connection.execute(sa.text(query), {"s": list(statuses)}).scalars().all()
        assert selected == [s for s, final in zip(statuses, is_final(table, statuses), strict=True) if not final]
    assert open_rows_sql("buildings") == "TRUE"


def _merge(conn: Connection) -> int:
    d = create_draft(conn, "grid", "330421001", author="planner", note="merge two grids")
    edits.merge_polygons(conn, d, [G1, G2], actor="planner", into=G1)
    return publish_draft(conn, d, actor="planner").generation


def _where(conn: Connection, table: str, row_id: int) -> tuple[str, str, int]:
    r = conn.execute(
        sa.text(f"SELECT grid_code, micro_grid_code, generation_id FROM {table} WHERE id = :i"),
        {"i": row_id},
    ).one()
    return r.grid_code, r.micro_grid_code, r.generation_id


def _assert_verified(conn: Connection) -> None:
    results = verify(conn)
    assert {r.table: r.disagreeing for r in results} == dict.fromkeys(POINT_TABLES, 0), [
        r.sample.to_dict("records") for r in results
    ]


def _iso(t: dt.datetime) -> str:
    return t.isoformat()


def _sql_incident(conn: Connection, status: str, reported: dt.datetime, closed: dt.datetime | None = None) -> int:
    return conn.execute(
        sa.text(
            "INSERT INTO incidents (category, source, reported_at, status, closed_at, geom) "
            "VALUES ('dispute', 'other', :r, :s, :c, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"
        ),
        {"r": reported, "s": status, "c": closed, "x": LON, "y": LAT},
    ).scalar_one()


def _sql_hazard(conn: Connection, status: str, found: dt.datetime, rectified: dt.datetime | None = None) -> int:
    return conn.execute(
        sa.text(
            "INSERT INTO hazards (category, severity, status, found_at, rectified_at, geom) "
            "VALUES ('gas', 'low', :s, :f, :r, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"
        ),
        {"s": status, "f": found, "r": rectified, "x": LON, "y": LAT},
    ).scalar_one()


def _bulk(conn: Connection, kind: str, rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    frame = pd.DataFrame([{**r, "lon": LON, "lat": LAT} for r in rows])
    import_frame(conn, kind, frame)
    table = "incidents" if kind == "incidents" else "hazards"
    ids = conn.execute(
        sa.text(f"SELECT {key}, id FROM {table} WHERE {key} = ANY(:k)"),
        {"k": [r[key] for r in rows]},
    ).all()
    return {k: i for k, i in ids}


def test_open_work_follows_the_merge_closed_records_keep_their_grid(
    connection: Connection, client: TestClient, mini_county, make_key
) -> None:  # type: ignore[no-untyped-def]
    old = mini_county.generation
    merged = _merge(connection)
    now = dt.datetime.now(dt.UTC)
    back = now - dt.timedelta(days=2)  # before the merge: G2 was in force then
    here = (G1, M21, merged)
    then = (G2, M21, old)
    _assert_verified(connection)

    # Through the API: back-dated and current reports are open, so both go to the merged grid.
    reporter = make_key("reporter")
    body = {"lon": LON, "lat": LAT, "source": "grid_patrol"}
    api_back = client.post(
        "/incidents", json={**body, "category": "dispute", "reported_at": _iso(back)}, headers=reporter
    )
    api_now = client.post("/incidents", json={**body, "category": "noise"}, headers=reporter)
    assert api_back.status_code == api_now.status_code == 201, api_back.text
    api = {"back": api_back.json()["id"], "now": api_now.json()["id"]}
    assert api_back.json()["grid_code"] == api_now.json()["grid_code"] == G1
    assert {k: _where(connection, "incidents", i) for k, i in api.items()} == {"back": here, "now": here}
    _assert_verified(connection)

    # Through the bulk importer: open ones follow the merge; closed ones keep the grid of their time.
    common = {"category": "dispute", "source": "grid_patrol"}
    bulk = _bulk(
        connection,
        "incidents",
        [
            {**common, "external_id": "B-open-back", "reported_at": _iso(back), "status": "dispatched"},
            {**common, "external_id": "B-open-now", "reported_at": _iso(now), "status": "reported"},
            {
                **common,
                "external_id": "B-closed-back",
                "reported_at": _iso(back),
                "status": "closed",
                "closed_at": _iso(back + dt.timedelta(hours=3)),
            },
            # Reported before the merge, closed after it: handled under the merged grid.
            {
                **common,
                "external_id": "B-closed-later",
                "reported_at": _iso(back),
                "status": "closed",
                "closed_at": _iso(now),
            },
            {**common, "external_id": "B-rejected-back", "reported_at": _iso(back), "status": "rejected"},
        ],
        "external_id",
    )
    assert {k: _where(connection, "incidents", i) for k, i in bulk.items()} == {
        "B-open-back": here,
        "B-open-now": here,
        "B-closed-back": then,
        "B-closed-later": here,
        "B-rejected-back": then,
    }
    _assert_verified(connection)

    # Through a plain SQL INSERT (the trigger): the same answers as the importer.
    sql = {
        "open-back": _sql_incident(connection, "in_progress", back),
        "open-now": _sql_incident(connection, "reported", now),
        "closed-back": _sql_incident(connection, "closed", back, back + dt.timedelta(hours=3)),
        "closed-later": _sql_incident(connection, "closed", back, now),
        "rejected-back": _sql_incident(connection, "rejected", back),
    }
    assert {k: _where(connection, "incidents", i) for k, i in sql.items()} == {
        "open-back": here,
        "open-now": here,
        "closed-back": then,
        "closed-later": here,
        "rejected-back": then,
    }
    _assert_verified(connection)

    # Hazards: a rectified one keeps the grid of its time, open ones follow the merge.
    hazards = {
        "open-back": _sql_hazard(connection, "overdue", back),
        "rectified-back": _sql_hazard(connection, "rectified", back, back + dt.timedelta(hours=5)),
        **_bulk(
            connection,
            "hazards",
            [
                {
                    "category": "gas",
                    "severity": "low",
                    "status": "open",
                    "found_at": _iso(back),
                    "description": "B-open",
                },
                {
                    "category": "gas",
                    "severity": "low",
                    "status": "rectified",
                    "found_at": _iso(back),
                    "rectified_at": _iso(back + dt.timedelta(hours=5)),
                    "description": "B-rectified",
                },
            ],
            "description",
        ),
    }
    assert {k: _where(connection, "hazards", i) for k, i in hazards.items()} == {
        "open-back": here,
        "rectified-back": then,
        "B-open": here,
        "B-rectified": then,
    }
    _assert_verified(connection)

    # An open incident that ends later keeps the assignment it had while open (the merged grid).
    transition(connection, api["back"], "reject", "dispatcher", now=now)
    assert _where(connection, "incidents", api["back"]) == here
    _assert_verified(connection)

    # Restoring the old boundaries moves the open work back; what has ended stays where it was.
    restored = restore_generation(connection, old, actor="admin", note="undo the merge").generation
    back_home = (G2, M21, restored)
    assert _where(connection, "incidents", api["now"]) == back_home
    for key in ("B-open-back", "B-open-now"):
        assert _where(connection, "incidents", bulk[key]) == back_home, key
    for key in ("open-back", "open-now"):
        assert _where(connection, "incidents", sql[key]) == back_home, key
    for key in ("open-back", "B-open"):
        assert _where(connection, "hazards", hazards[key]) == back_home, key
    assert _where(connection, "incidents", api["back"]) == here  # rejected after the merge
    assert _where(connection, "incidents", bulk["B-closed-later"]) == here
    assert _where(connection, "incidents", sql["closed-later"]) == here
    assert _where(connection, "incidents", bulk["B-closed-back"]) == then
    assert _where(connection, "incidents", sql["rejected-back"]) == then
    assert _where(connection, "hazards", hazards["B-rectified"]) == then
    _assert_verified(connection)

    # Lookups by date answer from the boundaries of that date, as before.
    viewer = make_key("viewer")

    def lookup(**extra: str) -> tuple[str, int]:
        resp = client.get("/lookup", params={"lon": LON, "lat": LAT, **extra}, headers=viewer)
        assert resp.status_code == 200, resp.text
        return resp.json()["grid"]["code"], resp.json()["generation"]

    assert lookup(as_of=_iso(back)) == (G2, old)
    assert lookup() == (G2, restored)


def test_a_moved_point_of_closed_work_keeps_its_time(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    # Correcting the location of a closed record reassigns it (the trigger fires on UPDATE OF
    # geom) under the generation of its time, not the one in force.
    old = mini_county.generation
    back = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    closed = _sql_incident(connection, "closed", back, back)
    merged = _merge(connection)
    assert _where(connection, "incidents", closed) == (G2, M21, old)
    connection.execute(
        sa.text("UPDATE incidents SET geom = ST_SetSRID(ST_MakePoint(:x, :y), 4326) WHERE id = :i"),
        {"x": LON + 0.001, "y": LAT, "i": closed},
    )
    assert _where(connection, "incidents", closed) == (G2, M21, old)
    opened = _sql_incident(connection, "accepted", back)
    assert _where(connection, "incidents", opened) == (G1, M21, merged)
    _assert_verified(connection)
