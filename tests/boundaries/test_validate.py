"""Each validation finding on the mini county, and that errors block publishing while warnings don't."""

from __future__ import annotations

import geopandas as gpd
import pytest
import sqlalchemy as sa
from shapely.geometry import MultiPolygon, Polygon, box
from sqlalchemy.engine import Connection

from boundaries import edits
from boundaries.drafts import create_draft, load_features, put_features
from boundaries.findings import Report, Rules
from boundaries.geomchecks import check_layer_geometry
from boundaries.publish import PublishBlockedError, publish_draft
from boundaries.validate import validate_draft

G1, G2 = "330421001001001", "330421001001002"


def _put(conn: Connection, draft: int, code: str, geom: object, **extra: object) -> None:
    f = load_features(conn, draft)
    rec = (
        f[f["code"] == code].iloc[0].to_dict()
        if code in set(f["code"])
        else {"code": code, "name": code, "parent_code": "330421001001", "households": None, "attrs": {}}
    )
    rec.update(extra, geometry=geom)
    put_features(conn, draft, gpd.GeoDataFrame([rec], geometry="geometry", crs=4326))


def _kinds(report: Report, severity: str | None = None) -> set[str]:
    return {f.kind for f in report.findings if severity is None or f.severity == severity}


def _building(conn: Connection, code: str, lon: float, lat: float, households: int) -> None:
    conn.execute(
        sa.text("INSERT INTO buildings (code, households, geom) VALUES (:c, :h, ST_Point(:x, :y, 4326))"),
        {"c": code, "h": households, "x": lon, "y": lat},
    )


def _incident(conn: Connection, lon: float, lat: float, status: str = "reported") -> int:
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, status, geom) "
                "VALUES ('litter', 'test', now(), :s, ST_Point(:x, :y, 4326)) RETURNING id"
            ),
            {"s": status, "x": lon, "y": lat},
        ).scalar_one()
    )


def test_an_untouched_draft_is_clean(connection: Connection, mini_county) -> None:
    report = validate_draft(connection, create_draft(connection, "micro_grid", None, author="p"))
    assert report.ok and report.findings == []
    assert report.features == 16


def test_invalid_geometry_is_an_error_with_its_location(connection: Connection, mini_county) -> None:
    d = create_draft(connection, "grid", "330421001", author="p")
    bowtie = Polygon([(120.90, 30.83), (120.91, 30.84), (120.91, 30.83), (120.90, 30.84)])
    _put(connection, d, G1, bowtie)
    report = validate_draft(connection, d)
    bad = [f for f in report.findings if f.kind == "invalid_geometry"]
    assert len(bad) == 1 and bad[0].code == G1 and bad[0].severity == "error"
    assert (bad[0].lon, bad[0].lat) == pytest.approx((120.905, 30.835))
    with pytest.raises(PublishBlockedError, match="Self-intersection"):
        publish_draft(connection, d, actor="p")


def test_overlap_gap_and_nesting(connection: Connection, mini_county) -> None:
    d = create_draft(connection, "grid", "330421001", author="p")
    _put(connection, d, G1, box(120.90, 30.83, 120.912, 30.84))  # 0.002 deg into G2
    report = validate_draft(connection, d)
    overlap = [f for f in report.findings if f.kind == "overlap"]
    assert len(overlap) == 1 and {G1, G2} <= set(overlap[0].message.split())
    assert overlap[0].lon == pytest.approx(120.911, abs=1e-3)
    _put(connection, d, G1, box(120.90, 30.83, 120.908, 30.84))  # leaves a strip uncovered
    report = validate_draft(connection, d)
    gaps = [f for f in report.findings if f.kind == "gap"]
    assert len(gaps) == 1 and gaps[0].code == "330421001001"
    assert gaps[0].lon == pytest.approx(120.909, abs=1e-3)
    assert gaps[0].geometry is not None and gaps[0].geometry["type"] == "Polygon"
    _put(connection, d, G1, box(120.895, 30.83, 120.91, 30.84))  # reaches out of the village and county
    assert "not_nested" in _kinds(validate_draft(connection, d), "error")


def test_sliver_is_a_warning(connection: Connection, mini_county) -> None:
    d = create_draft(connection, "grid", "330421001", author="p")
    tiny = box(120.9050, 30.8300, 120.90505, 30.83005)  # ~5 m x 5 m
    body = box(120.90, 30.83, 120.91, 30.84).difference(tiny)
    _put(connection, d, G1, body)
    _put(connection, d, "330421001001003", MultiPolygon([tiny]), parent_code="330421001001")
    report = validate_draft(connection, d)
    slivers = [f for f in report.findings if f.kind == "sliver"]
    assert [f.code for f in slivers] == ["330421001001003"] and slivers[0].severity == "warning"
    assert "sliver" not in _kinds(validate_draft(connection, d, Rules(sliver_m2=1.0)))


def test_codes_duplicate_malformed_and_unknown_parent(connection: Connection, mini_county) -> None:
    d = create_draft(connection, "grid", "330421001", author="p")
    edits.rename(connection, d, G1, actor="p", new_code="330421002001001")  # a town-2 grid's code
    edits.rename(connection, d, G2, actor="p", new_code="G-2")
    edits.rename(connection, d, "330421001002001", actor="p", parent_code="330421009009")
    report = validate_draft(connection, d)
    by_kind = {f.kind: f for f in report.findings}
    assert by_kind["duplicate_code"].code == "330421002001001"
    assert by_kind["malformed_code"].code in ("G-2", "330421001002001")
    assert by_kind["unknown_parent"].code == "330421001002001"
    assert {"duplicate_code", "malformed_code", "unknown_parent"} <= _kinds(report, "error")


def test_household_balance_counts_buildings(connection: Connection, mini_county) -> None:
    _building(connection, "b1", 120.905, 30.835, 350)  # G1: within 300-500
    _building(connection, "b2", 120.915, 30.835, 600)  # G2: too many
    _building(connection, "b3", 120.905, 30.845, 100)  # 330421001002001: too few
    d = create_draft(connection, "grid", "330421001", author="p")
    report = validate_draft(connection, d)
    low = {f.code for f in report.findings if f.kind == "households_low"}
    high = {f.code for f in report.findings if f.kind == "households_high"}
    assert high == {G2}
    assert low == {"330421001002001", "330421001002002"}  # the last one has no buildings at all
    assert "600 households" in next(f.message for f in report.findings if f.kind == "households_high")
    wide = Rules(households={"grid": (0, 1000)})
    assert not {"households_low", "households_high"} & _kinds(validate_draft(connection, d, wide))


def test_grids_without_staff(connection: Connection, mini_county) -> None:
    connection.execute(
        sa.text(
            "INSERT INTO staff (grid_code, role, name) SELECT code, 'grid_leader', '张三' "
            "FROM areas WHERE layer = 'grid' AND code <> :g"
        ),
        {"g": G2},
    )
    d = create_draft(connection, "grid", "330421001", author="p")
    edits.split_polygon(
        connection, d, [[120.899, 30.835], [120.911, 30.835]], actor="p", code=G1, new_code="330421001001003"
    )
    report = validate_draft(connection, d)
    assert [f.code for f in report.findings if f.kind == "no_staff"] == [G2]  # a gap G2 had before: a warning
    # The new half of G1 would have no leader though G1 had one: the publish would cause that gap.
    leaderless = [f for f in report.errors if f.kind == "no_grid_leader"]
    assert [f.code for f in leaderless] == ["330421001001003"] and "grid_leader" in leaderless[0].message
    # G1 never had a full-time worker or auxiliary police: warnings, not errors.
    assert {(f.kind, f.severity) for f in report.findings if f.code == G1 and f.kind.startswith("no_")} == {
        ("no_grid_worker", "warning"),
        ("no_aux_police", "warning"),
    }


def test_deleting_a_polygon_with_open_incidents(connection: Connection, mini_county) -> None:
    _incident(connection, 120.915, 30.835)  # open, in G2
    _incident(connection, 120.915, 30.836, status="closed")
    d = create_draft(connection, "grid", "330421001", author="p")
    edits.delete_polygon(connection, d, G2, actor="p")
    report = validate_draft(connection, d)
    deleted = [f for f in report.findings if f.kind == "deleted_with_open_incidents"]
    assert len(deleted) == 1 and deleted[0].code == G2 and "1 open incident" in deleted[0].message
    # Merging instead says where they go.
    d2 = create_draft(connection, "grid", "330421001", author="p")
    edits.merge_polygons(connection, d2, [G1, G2], actor="p")
    assert validate_draft(connection, d2).ok


def test_children_straddling_new_borders(connection: Connection, mini_county) -> None:
    d = create_draft(connection, "grid", "330421001", author="p")
    edits.move_shared_edge(connection, d, G1, G2, [[120.905, 30.83], [120.905, 30.84]], actor="p")
    report = validate_draft(connection, d)
    straddle = [f for f in report.findings if f.kind == "not_nested"]
    assert {f.code for f in straddle} == {"33042100100100101", "33042100100100102"}
    assert "straddles" in straddle[0].message


def test_errors_block_publishing_warnings_do_not(connection: Connection, mini_county) -> None:
    d = create_draft(connection, "grid", "330421001", author="p")
    edits.rename(connection, d, G1, actor="p", name="仅改名")  # no staff anywhere: warnings only
    report = validate_draft(connection, d)
    assert report.ok and "no_staff" in _kinds(report, "warning")
    result = publish_draft(connection, d, actor="p", note="rename")
    assert result.layers["grid"]["changed"] == [G1]


def test_check_layer_geometry_needs_no_database(mini_county) -> None:
    grids = mini_county.grids.assign(attrs=[{}] * 8)
    findings = check_layer_geometry(grids, "grid", mini_county.villages)
    assert findings == []
    shrunk = grids.copy()
    shrunk.loc[0, "geometry"] = box(120.90, 30.83, 120.905, 30.84)
    found = check_layer_geometry(shrunk, "grid", mini_county.villages)
    assert {f.kind for f in found if f.severity == "error"} == {"gap"}
    # The neighbours' edges no longer meet vertex for vertex either.
    assert {f.kind for f in found if f.severity == "warning"} == {"edge_mismatch"}
