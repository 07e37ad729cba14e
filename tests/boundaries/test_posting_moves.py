"""The people follow a redraw: posting moves proposed, decided, previewed, validated and applied."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import pytest
import sqlalchemy as sa
from shapely.geometry import box
from sqlalchemy.engine import Connection

from boundaries import edits
from boundaries.drafts import create_draft, get_draft, load_features, put_features
from boundaries.impact import preview_impact
from boundaries.postingplan import PlanError, decide, posting_plan, withdraw
from boundaries.publish import PublishBlockedError, publish_draft
from boundaries.validate import validate_draft
from gis.people import write
from gis.people.rules import county_today
from gis.spatial.areas import current_generation

G1, G2, G3 = "330421001001001", "330421001001002", "330421001001003"
VILLAGE = "330421001001"
SINCE = dt.date(2024, 1, 1)
# Cuts G1 (120.90-120.91 x 30.83-30.84) along its micro-grids' shared edge.
CUT = [[120.899, 30.835], [120.911, 30.835]]


def _post(conn: Connection, name: str, role: str, code: str) -> int:
    person = write.create_person(conn, "hr", name=name)
    posting = write.add_posting(conn, "hr", person["id"], {"role": role, "area_code": code, "starts_on": SINCE})
    return int(posting["id"])


def _team(conn: Connection, code: str, aux: bool = True) -> dict[str, int]:
    letter = code[-1]
    roles = {"grid_leader": f"张{letter}长", "grid_worker": f"李{letter}员"}
    if aux:
        roles["aux_police"] = f"王{letter}警"
    return {role: _post(conn, name, role, code) for role, name in roles.items()}


def _posting(conn: Connection, posting_id: int) -> sa.Row:
    return conn.execute(
        sa.text("SELECT person_id, role, area_code, starts_on, ends_on, note FROM postings WHERE id = :i"),
        {"i": posting_id},
    ).one()


def _open_on(conn: Connection, person_id: int, role: str) -> list[tuple[str, dt.date]]:
    rows = conn.execute(
        sa.text(
            "SELECT area_code, starts_on FROM postings WHERE person_id = :p AND role = :r AND ends_on IS NULL "
            "ORDER BY id"
        ),
        {"p": person_id, "r": role},
    ).all()
    return [(r.area_code, r.starts_on) for r in rows]


def _audited(conn: Connection, action: str, actor: str = "planner") -> list[str]:
    return list(
        conn.execute(
            sa.text("SELECT target FROM audit_log WHERE action = :a AND actor = :who ORDER BY id"),
            {"a": action, "who": actor},
        ).scalars()
    )


def test_split_refused_until_the_new_grid_has_a_leader_then_postings_move(connection: Connection, mini_county) -> None:
    g1 = _team(connection, G1)
    _team(connection, G2)
    d = create_draft(connection, "grid", VILLAGE, author="planner")
    edits.split_polygon(connection, d, CUT, actor="planner", code=G1, new_code=G3)

    report = validate_draft(connection, d)
    missing = {(f.kind, f.code) for f in report.errors}
    assert missing == {("no_grid_leader", G3), ("no_grid_worker", G3)}
    postings_before = connection.execute(sa.text("SELECT count(*), max(id) FROM postings")).one()
    generation_before = current_generation(connection)
    with pytest.raises(PublishBlockedError) as refused:
        publish_draft(connection, d, actor="planner", note="split G1")
    assert f"grid {G3} would have no grid_leader" in str(refused.value)
    # Nothing half-written: no generation, no posting, the draft still open.
    assert current_generation(connection) == generation_before
    assert connection.execute(sa.text("SELECT count(*), max(id) FROM postings")).one() == postings_before
    assert get_draft(connection, d).status == "open"

    # The planner sends G1's worker to the new half and posts a new leader there.
    leader = write.create_person(connection, "hr", name="赵新长")
    decide(connection, d, actor="planner", action="move", posting_id=g1["grid_worker"], to_code=G3)
    decide(connection, d, actor="planner", action="add", person_id=leader["id"], role="grid_leader", to_code=G3)
    report = validate_draft(connection, d)
    # G1 keeps its leader but lost its only worker: that is now the blocking gap.
    assert {(f.kind, f.code) for f in report.errors} == {("no_grid_worker", G1)}
    second = _post(connection, "钱二员", "grid_worker", G1)
    report = validate_draft(connection, d)
    assert report.ok
    assert [f.code for f in report.warnings if f.kind == "no_aux_police"] == [G3]

    result = publish_draft(connection, d, actor="planner", note="split G1")
    today = county_today()
    worker = _posting(connection, g1["grid_worker"])
    assert (worker.area_code, worker.ends_on) == (G1, today - dt.timedelta(days=1))
    assert _open_on(connection, worker.person_id, "grid_worker") == [(G3, today)]
    assert _open_on(connection, leader["id"], "grid_leader") == [(G3, today)]
    # Those who stay keep their posting untouched; history is kept (the old row is still there).
    assert _posting(connection, g1["grid_leader"]).ends_on is None and _posting(connection, second).ends_on is None
    assert {p["action"] for p in result.postings} == {"end", "start"} and len(result.postings) == 3
    assert _audited(connection, "posting.end") == [f"posting:{g1['grid_worker']}"]
    assert len(_audited(connection, "posting.create")) == 2
    published = connection.execute(
        sa.text("SELECT detail FROM audit_log WHERE action = 'boundaries.publish' ORDER BY id DESC LIMIT 1")
    ).scalar_one()
    assert len(published["postings"]) == 3


def test_a_split_that_removes_the_code_moves_everyone_to_the_largest_part(connection: Connection, mini_county) -> None:
    g1 = _team(connection, G1)
    d = create_draft(connection, "grid", VILLAGE, author="planner")
    edits.split_polygon(connection, d, CUT, actor="planner", code=G1, new_code=G3)
    edits.rename(connection, d, G1, actor="planner", new_code="330421001001004")
    plan = posting_plan(connection, d)
    heirs = [s.code for s in plan.lineage.successors[G1]]
    assert sorted(heirs) == [G3, "330421001001004"]
    main, other = heirs
    assert {(m.posting_id, m.action, m.to_code) for m in plan.moves} == {(p, "move", main) for p in g1.values()}
    assert all(m.alternatives == [other] for m in plan.moves)
    # The other half had G1's staff before; it is left without: refused.
    report = validate_draft(connection, d)
    assert {(f.kind, f.code) for f in report.errors} == {("no_grid_leader", other), ("no_grid_worker", other)}


def test_merge_moves_the_absorbed_grids_people_and_ends_a_second_leader(connection: Connection, mini_county) -> None:
    g1, g2 = _team(connection, G1), _team(connection, G2)
    d = create_draft(connection, "grid", VILLAGE, author="planner")
    edits.merge_polygons(connection, d, [G1, G2], actor="planner", into=G1)
    plan = posting_plan(connection, d)
    assert plan.lineage.successors[G2][0].code == G1
    proposed = {m.posting_id: (m.action, m.to_code) for m in plan.moves}
    assert proposed == {
        g2["grid_leader"]: ("end", None),  # G1 keeps its own leader: one holder per grid
        g2["grid_worker"]: ("move", G1),
        g2["aux_police"]: ("move", G1),
    }
    report = validate_draft(connection, d)
    assert report.ok
    ends = [f for f in report.warnings if f.kind == "posting_ends"]
    assert len(ends) == 1 and f"posting {g2['grid_leader']}" in ends[0].message and G1 in ends[0].message

    publish_draft(connection, d, actor="planner", note="merge")
    yesterday = county_today() - dt.timedelta(days=1)
    for role in ("grid_leader", "grid_worker", "aux_police"):
        assert _posting(connection, g2[role]).ends_on == yesterday
        assert _posting(connection, g1[role]).ends_on is None
    moved = _posting(connection, g2["grid_worker"]).person_id
    assert _open_on(connection, moved, "grid_worker") == [(G1, county_today())]
    assert _open_on(connection, _posting(connection, g2["grid_leader"]).person_id, "grid_leader") == []
    assert sorted(_audited(connection, "posting.end")) == sorted(f"posting:{p}" for p in g2.values())


def test_merge_into_a_leaderless_grid_brings_the_leader(connection: Connection, mini_county) -> None:
    g2 = _team(connection, G2)
    worker = _post(connection, "周一员", "grid_worker", G1)
    d = create_draft(connection, "grid", VILLAGE, author="planner")
    edits.merge_polygons(connection, d, [G1, G2], actor="planner", into=G1)
    plan = posting_plan(connection, d)
    assert {m.posting_id: m.to_code for m in plan.moves} == {p: G1 for p in g2.values()}
    publish_draft(connection, d, actor="planner", note="merge")
    leader = _posting(connection, g2["grid_leader"]).person_id
    assert _open_on(connection, leader, "grid_leader") == [(G1, county_today())]
    assert _posting(connection, worker).ends_on is None


def test_impact_preview_lists_the_moves_masked(connection: Connection, mini_county) -> None:
    g2 = _team(connection, G2, aux=False)
    _post(connection, "周一员", "grid_worker", G1)
    d = create_draft(connection, "grid", VILLAGE, author="planner")
    edits.merge_polygons(connection, d, [G1, G2], actor="planner", into=G1)
    masked = preview_impact(connection, d)["postings"]["moves"]
    assert [(m["posting_id"], m["role"], m["from_code"], m["to_code"], m["name"]) for m in masked] == [
        (g2["grid_leader"], "grid_leader", G2, G1, "张**"),
        (g2["grid_worker"], "grid_worker", G2, G1, "李**"),
    ]
    seen = preview_impact(connection, d, sees_personal_data=True)["postings"]["moves"]
    assert [m["name"] for m in seen] == ["张2长", "李2员"]


def test_aux_police_missing_is_a_warning(connection: Connection, mini_county) -> None:
    _team(connection, G1, aux=False)
    _team(connection, G2)
    d = create_draft(connection, "grid", VILLAGE, author="planner")
    edits.rename(connection, d, G1, actor="planner", name="改名")
    report = validate_draft(connection, d)
    aux = [f for f in report.findings if f.kind == "no_aux_police"]
    assert report.ok and [(f.code, f.severity) for f in aux] == [(G1, "warning")]
    assert "aux_police" in aux[0].message


def test_county_without_roster_is_not_checked(connection: Connection, mini_county) -> None:
    d = create_draft(connection, "grid", VILLAGE, author="planner")
    edits.split_polygon(connection, d, CUT, actor="planner", code=G1, new_code=G3)
    report = validate_draft(connection, d)
    assert report.ok and "staff_unchecked" in {f.kind for f in report.warnings}
    assert publish_draft(connection, d, actor="planner", note="split").postings == []


def test_decisions_are_checked_and_can_be_withdrawn(connection: Connection, mini_county) -> None:
    g1 = _team(connection, G1)
    g2 = _team(connection, G2)
    d = create_draft(connection, "grid", VILLAGE, author="planner")
    edits.split_polygon(connection, d, CUT, actor="planner", code=G1, new_code=G3)
    with pytest.raises(PlanError, match="to_code: '330421009009009'"):
        decide(connection, d, actor="planner", action="move", posting_id=g1["grid_worker"], to_code="330421009009009")
    with pytest.raises(PlanError, match="posting_id: 999999"):
        decide(connection, d, actor="planner", action="end", posting_id=999999)
    # Two leaders on one grid: a problem that blocks publishing, naming both.
    entry = decide(connection, d, actor="planner", action="move", posting_id=g2["grid_leader"], to_code=G1)
    report = validate_draft(connection, d)
    clash = [f for f in report.errors if f.kind == "posting_plan"]
    assert len(clash) == 1 and "two grid_leaders" in clash[0].message and G1 in clash[0].message
    withdraw(connection, d, entry["id"], actor="planner")
    assert not [f for f in validate_draft(connection, d).errors if f.kind == "posting_plan"]
    assert _audited(connection, "draft.posting") == [f"draft:{d}"]
    assert _audited(connection, "draft.posting_withdraw") == [f"draft:{d}"]


def test_deleted_grid_with_declared_successor(connection: Connection, mini_county) -> None:
    g2 = _team(connection, G2)
    _team(connection, G1)
    d = create_draft(connection, "grid", VILLAGE, author="planner")
    # G1 grows over G2 by hand (an upload would do the same), then G2 is deleted with G1 its successor.
    f = load_features(connection, d)
    rec = f[f["code"] == G1].iloc[0].to_dict()
    rec["geometry"] = box(120.90, 30.83, 120.92, 30.84)
    put_features(connection, d, gpd.GeoDataFrame([rec], geometry="geometry", crs=4326))
    edits.delete_polygon(connection, d, G2, actor="planner", successor=G1)
    plan = posting_plan(connection, d)
    assert {m.posting_id: (m.action, m.to_code) for m in plan.moves}[g2["grid_worker"]] == ("move", G1)


def test_micro_grid_merge_moves_its_leader(connection: Connection, mini_county) -> None:
    m1, m2 = "33042100100100101", "33042100100100102"
    person = write.create_person(connection, "hr", name="孙微长")
    posting = write.add_posting(
        connection, "hr", person["id"], {"role": "micro_grid_leader", "area_code": m2, "starts_on": SINCE}
    )["id"]
    d = create_draft(connection, "micro_grid", G1, author="planner")
    edits.merge_polygons(connection, d, [m1, m2], actor="planner", into=m1)
    plan = posting_plan(connection, d)
    assert [(m.posting_id, m.action, m.from_code, m.to_code) for m in plan.moves] == [(posting, "move", m2, m1)]
    assert validate_draft(connection, d).ok  # no grid staffing check on a micro-grid draft
    publish_draft(connection, d, actor="planner", note="merge micro-grids")
    assert _open_on(connection, person["id"], "micro_grid_leader") == [(m1, county_today())]
