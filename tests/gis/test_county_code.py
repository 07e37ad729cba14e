"""county_code (migration 0032): filled by the assignment trigger, the reassignment companion
trigger, the intake fast path and bulk import; rows outside every county get the home county."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from api.fastpath import IntakeFastPath
from boundaries.sample import X0, X1, XM, Y0, Y1
from gis.bulk import import_frame
from gis.core.counties import county_codes, home_county_function_sql

INSIDE = ((X0 + XM) / 2, 30.834)
FAR = (X1 + 0.5, (Y0 + Y1) / 2)  # outside every county: nothing to snap to


def _insert(conn: Connection, external_id: str, lon: float, lat: float, county: str | None = None) -> str:
    cols, vals = ("county_code,", ":c,") if county else ("", "")
    return str(
        conn.execute(
            sa.text(
                f"INSERT INTO incidents (category, source, external_id, reported_at, status, {cols} geom) "
                f"VALUES ('dispute', 'other', :e, now(), 'reported', {vals} ST_SetSRID(ST_MakePoint(:x, :y), 4326)) "
                "RETURNING county_code"
            ),
            {"e": external_id, "x": lon, "y": lat, "c": county},
        ).scalar_one()
    )


def test_trigger_fills_county_inside_and_home_county_outside(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    assert _insert(connection, "in", *INSIDE) == "330421"
    assert _insert(connection, "out", *FAR) == "330421"  # the home county (first configured)
    # A writer that names the county of a row outside every county keeps it.
    assert _insert(connection, "named", *FAR, county="330402") == "330402"
    # Inside a county the boundaries decide, whatever the writer said.
    assert _insert(connection, "wrong", *INSIDE, county="330402") == "330421"
    # The session setting overrides the home county written by the migration.
    connection.execute(sa.text("SELECT set_config('gridmap.home_county', '330481', true)"))
    assert _insert(connection, "home", *FAR) == "330481"
    connection.execute(sa.text("SELECT set_config('gridmap.home_county', '', true)"))
    nulls = connection.execute(sa.text("SELECT count(*) FROM incidents WHERE county_code IS NULL")).scalar_one()
    assert nulls == 0


def test_moving_and_reassigning_keep_county_in_step(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    connection.execute(sa.text("SELECT set_config('gridmap.home_county', '330481', true)"))
    _insert(connection, "mover", *FAR)
    moved = connection.execute(
        sa.text(
            "UPDATE incidents SET geom = ST_SetSRID(ST_MakePoint(:x, :y), 4326) WHERE external_id = 'mover' "
            "RETURNING county_code, town_code"
        ),
        {"x": INSIDE[0], "y": INSIDE[1]},
    ).one()
    assert moved.county_code == "330421" and moved.town_code.startswith("330421")
    # Reassignment writes the unit columns alone: the companion trigger follows them.
    recoded = connection.execute(
        sa.text(
            "UPDATE incidents SET town_code = NULL, station_code = '330402P01' WHERE external_id = 'mover' "
            "RETURNING county_code"
        )
    ).scalar_one()
    assert recoded == "330402"


def test_intake_fast_path_fills_county(app: FastAPI, client: TestClient, make_key, connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    def _report(**over: Any) -> dict[str, Any]:
        body = {"lon": INSIDE[0], "lat": INSIDE[1], "category": "dispute", "source": "resident_app"}
        return {**body, **over}

    reporter = make_key("reporter")
    assert client.post("/incidents", json=_report(external_id="warm"), headers=reporter).status_code == 201
    layer: Any = app.middleware_stack
    while layer is not None and not isinstance(layer, IntakeFastPath):
        layer = getattr(layer, "app", None)
    before = layer.answered
    inside = client.post("/incidents", json=_report(external_id="fp-in"), headers=reporter)
    outside = client.post("/incidents", json=_report(external_id="fp-out", lon=FAR[0], lat=FAR[1]), headers=reporter)
    assert inside.status_code == 201 and outside.status_code == 201, outside.text
    assert layer.answered == before + 2  # both went through the fast path
    got = dict(
        connection.execute(
            sa.text("SELECT external_id, county_code FROM incidents WHERE external_id LIKE 'fp-%'")
        ).all()
    )
    assert got == {"fp-in": "330421", "fp-out": "330421"}


def test_bulk_import_fills_county_as_the_trigger_does(connection: Connection, mini_county) -> None:  # type: ignore[no-untyped-def]
    points = [INSIDE, (XM + 0.01, 30.846), FAR, (X0 - 20 / 95_500, (Y0 + Y1) / 2)]
    frame = pd.DataFrame(
        {
            "external_id": [f"bulk-{i}" for i in range(len(points))],
            "category": "dispute",
            "source": "other",
            "reported_at": "2024-06-01 12:00:00+08",
            "lon": [p[0] for p in points],
            "lat": [p[1] for p in points],
            "status": "reported",
        }
    )
    assert import_frame(connection, "incidents", frame).inserted == len(points)
    for i, p in enumerate(points):
        _insert(connection, f"sql-{i}", *p)
    rows = connection.execute(
        sa.text(
            "SELECT a.county_code AS bulk, b.county_code AS sql, a.assign_status FROM incidents a "
            "JOIN incidents b ON b.external_id = 'sql-' || substr(a.external_id, 6) "
            "WHERE a.external_id LIKE 'bulk-%' ORDER BY a.external_id"
        )
    ).all()
    assert [r.bulk for r in rows] == [r.sql for r in rows] == ["330421"] * len(points)
    assert {r.assign_status for r in rows} == {"inside", "snapped", "outside_jurisdiction"}


def test_county_codes_vectorised_and_home_function_checked() -> None:
    out = county_codes(["330421001", None, None], [None, "330402P01", None], home="330481")
    assert out.tolist() == ["330421", "330402", "330481"]
    try:
        home_county_function_sql("33'; DROP")
    except ValueError as exc:
        assert "six-digit" in str(exc)
    else:
        raise AssertionError("a malformed home county was accepted")
