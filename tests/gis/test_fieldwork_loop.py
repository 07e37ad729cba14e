"""The done-when test of field work: a joint inspection with a failed escape-window item opens a
hazard with its deadline; the deadline passes (the job body runs with a later clock) and marks it
overdue and escalates it; a re-inspection passes and closes it (rectified); the building's risk
level and history reflect every step; the campaign's progress counts it."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image
from sqlalchemy.orm import Session

from boundaries.sample import MiniCounty
from gis.core.vocab import COUNTY_TZ
from gis.fieldwork import buildings, campaigns, hazards, inspections, overdue
from gis.fieldwork.common import FieldworkInputError, NotFound
from gis.fieldwork.hazardquery import HazardFilter, get_hazard, list_hazards
from gis.files.ingest import Uploader, attach_bytes
from gis.files.records import list_for
from gis.files.storage import storage_at
from gis.people.scope import Scope
from tests.gis.fieldwork_fixtures import GRID, TOWN, make_field

T0 = dt.datetime(2026, 5, 4, 10, 0, tzinfo=COUNTY_TZ)  # a Monday morning, county time
NOW = dt.datetime(2026, 5, 4, 12, 0, tzinfo=COUNTY_TZ)


def _all_pass_but(failed: str) -> list[dict[str, str]]:
    codes = ("escape_window", "smoke_alarm", "extinguisher", "fly_line")
    return [{"code": c, "result": "fail" if c == failed else "pass"} for c in codes]


def test_inspection_hazard_overdue_reinspection_campaign(
    session: Session, mini_county: MiniCounty, tmp_path: Path
) -> None:
    f = make_field(session)
    campaign = campaigns.create(
        session,
        {"name": "出租房消防专项整治", "area_code": TOWN, "starts_on": "2026-05-01", "ends_on": "2026-06-30"},
        "planner",
    )
    assert campaign["targets"] == 1

    # 1. The joint inspection fails the escape window: a hazard with the item's 3-day deadline.
    body = {"inspectors": [f.worker_posting, f.police_posting], "at": T0.isoformat(), "lon": 120.9051,
            "lat": 30.8351, "results": _all_pass_but("escape_window"), "notes": "防盗窗焊死"}  # fmt: skip
    first = inspections.record(session, f.building_id, body, "worker", now=NOW)
    assert first["outcome"] == "fail" and first["risk_level"] == "high"
    assert len(first["hazards_opened"]) == 1
    hazard_id = first["hazards_opened"][0]
    hazard = get_hazard(session, hazard_id)
    deadline = T0 + dt.timedelta(days=3)
    assert hazard["status"] == "open" and hazard["rectify_by"] == deadline
    assert (hazard["category"], hazard["severity"], hazard["responsible_party"]) == (
        "blocked_escape",
        "high",
        "landlord",
    )
    assert hazard["grid_code"] == GRID and hazard["inspection_id"] == first["id"]
    # Its deadline job is queued with it, at the deadline.
    job = session.execute(
        sa.text("SELECT task_name, scheduled_at, args FROM procrastinate_jobs WHERE lock = :l"),
        {"l": f"hazard:{hazard_id}"},
    ).one()
    assert job.task_name == overdue.HAZARD_TASK and job.scheduled_at == deadline
    building = buildings.building_detail(session, f.building_id)
    assert building["risk_level"] == "high"
    assert building["next_inspection_on"] == dt.date(2026, 5, 11)  # high risk: 7 days
    assert [i["id"] for i in building["inspections"]] == [first["id"]]
    assert {p["role"] for p in building["inspections"][0]["inspectors"]} == {"grid_worker", "aux_police"}

    # 2. The rectification order is served; the job running before the deadline changes nothing.
    hazards.transition(session, hazard_id, {"action": "notify"}, "worker", now=T0 + dt.timedelta(hours=2))
    assert overdue.mark_overdue(session, hazard_id, "grid", now=deadline - dt.timedelta(minutes=1)) is False
    # The deadline passes: the job marks it overdue and escalates it one level; a re-run changes nothing.
    late = deadline + dt.timedelta(minutes=1)
    assert overdue.mark_overdue(session, hazard_id, "grid", now=late) is True
    assert overdue.mark_overdue(session, hazard_id, "grid", now=late) is False
    hazard = get_hazard(session, hazard_id)
    assert (hazard["status"], hazard["escalation_level"], hazard["overdue"]) == ("overdue", "village", True)
    assert hazard["overdue_at"] == late and hazard["escalation_due_at"] == late + dt.timedelta(hours=24)
    next_job = session.execute(
        sa.text("SELECT count(*) FROM procrastinate_jobs WHERE lock = :l AND args->>'level' = 'village'"),
        {"l": f"hazard:{hazard_id}"},
    ).scalar_one()
    assert next_job == 1
    flt = HazardFilter(grid=(GRID,), overdue=True)
    assert [h["id"] for h in list_hazards(session, flt)[0]] == [hazard_id]

    # 3. The re-inspection passes the escape window: the hazard is rectified, no new one opens.
    again = dict(body, at=(late + dt.timedelta(hours=3)).isoformat(), results=_all_pass_but("none"))
    second = inspections.record(session, f.building_id, again, "police", now=late + dt.timedelta(hours=4))
    assert second["outcome"] == "pass" and second["risk_level"] == "low"
    assert second["hazards_rectified"] == [hazard_id] and second["hazards_opened"] == []
    hazard = get_hazard(session, hazard_id)
    assert hazard["status"] == "rectified" and hazard["overdue"] is False
    steps = [(e["action"], e["from_status"], e["to_status"]) for e in hazard["history"]]
    assert steps == [
        ("open", None, "open"),
        ("notify", "open", "notified"),
        ("overdue", "notified", "overdue"),
        ("reinspect_pass", "overdue", "rectified"),
    ]
    # The re-inspection's photo (evidence): stored by content, listed with the inspection.
    photo = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(photo, "JPEG")
    store = storage_at(tmp_path / "files")
    row, created = attach_bytes(
        session, store, "inspection", second["id"], photo.getvalue(), Uploader("police"), work_dir=tmp_path
    )
    assert created and row["media_type"] == "image/jpeg" and store.exists(row["sha256"])
    assert [a["id"] for a in list_for(session, "inspection", second["id"])] == [row["id"]]
    # The village-level job firing later finds it rectified: nothing changes.
    assert overdue.mark_overdue(session, hazard_id, "village", now=late + dt.timedelta(days=2)) is False

    # 4. The building shows every step.
    building = buildings.building_detail(session, f.building_id)
    assert building["risk_level"] == "low" and building["last_inspection_id"] == second["id"]
    assert building["next_inspection_on"] == (late + dt.timedelta(hours=3)).astimezone(COUNTY_TZ).date() + dt.timedelta(
        days=90
    )
    assert [i["outcome"] for i in building["inspections"]] == ["pass", "fail"]
    assert [h["status"] for h in building["hazards"]] == ["rectified"]

    # 5. The campaign counts it: inspected, failed, one hazard rectified, not on time.
    progress = campaigns.progress(session, campaign["id"], now=late + dt.timedelta(days=1))
    expected = {"targets": 1, "inspected": 1, "failed": 1, "hazards": 1, "rectified": 1, "rectified_on_time": 0,
                "overdue": 0}  # fmt: skip
    assert progress["total"] == expected
    assert [(t["town_code"], t["inspected"]) for t in progress["towns"]] == [(TOWN, 1)]
    assert [(g["grid_code"], g["rectified"]) for g in progress["grids"]] == [(GRID, 1)]
    assert campaigns.write_xlsx(progress)[:2] == b"PK"  # a zip: an XLSX workbook


def test_a_failed_reinspection_sends_the_hazard_back_with_a_new_deadline(
    session: Session, mini_county: MiniCounty
) -> None:
    f = make_field(session)
    body = {"inspectors": [f.worker_posting], "at": T0.isoformat(), "results": _all_pass_but("smoke_alarm")}
    hazard_id = inspections.record(session, f.building_id, body, "w", now=NOW)["hazards_opened"][0]
    hazards.transition(session, hazard_id, {"action": "submit"}, "landlord", now=T0 + dt.timedelta(days=1))
    later = T0 + dt.timedelta(days=2)
    again = inspections.record(session, f.building_id, dict(body, at=later.isoformat()), "w", now=later)
    assert again["hazards_reopened"] == [hazard_id] and again["hazards_opened"] == []
    hazard = get_hazard(session, hazard_id)
    assert hazard["status"] == "rectifying" and hazard["rectify_by"] == later + dt.timedelta(days=7)


def test_refused_inspections_write_nothing(session: Session, mini_county: MiniCounty) -> None:
    f = make_field(session)
    before = session.execute(sa.text("SELECT count(*) FROM inspections")).scalar_one()
    good = {"inspectors": [f.worker_posting], "at": T0.isoformat(), "results": [{"code": "gas", "result": "fail"}]}
    cases = [
        ({"results": [{"code": "no_such_item", "result": "fail"}]}, "results[0].code", "no_such_item"),
        ({"results": [{"code": "gas", "result": "maybe"}]}, "results[0].result", "maybe"),
        ({"results": [{"code": "gas", "result": "fail", "deadline": "2026-05-01"}]}, "results[0].deadline", "2026-05"),
        ({"inspectors": [999999]}, "inspectors[0]", "999999"),
        ({"checklist_version": 9}, "checklist_version", "9"),
    ]
    for change, field, named in cases:
        with pytest.raises(FieldworkInputError) as err:
            inspections.record(session, f.building_id, {**good, **change}, "w", now=NOW)
        assert err.value.field == field and named in err.value.reason
    with pytest.raises(NotFound):
        inspections.record(session, 10**12, good, "w", now=NOW)
    # A key scoped to the other town does not see the building: 404, not 403.
    with pytest.raises(NotFound):
        inspections.record(session, f.building_id, good, "w", scope=Scope.parse("330421002"), now=NOW)
    assert session.execute(sa.text("SELECT count(*) FROM inspections")).scalar_one() == before
    assert session.execute(sa.text("SELECT count(*) FROM hazards")).scalar_one() == 0


def test_a_direct_report_refuses_a_deadline_before_the_finding(session: Session, mini_county: MiniCounty) -> None:
    f = make_field(session)
    data = {"category": "gas", "building_id": f.building_id, "found_at": "2026-05-04T10:00", "deadline": "2026-05-03"}
    with pytest.raises(FieldworkInputError) as err:
        hazards.report(session, data, "w", now=NOW)
    assert err.value.field == "deadline" and "not after the finding" in err.value.reason
    hazard_id = hazards.report(session, {**data, "deadline": "2026-05-10"}, "w", now=NOW)
    assert get_hazard(session, hazard_id)["source"] == "report"


def test_campaign_counts_rectified_on_time_by_the_orders_deadline(session: Session, mini_county: MiniCounty) -> None:
    f = make_field(session, "B-ON-TIME")
    other = make_field(session, "B-LATE")
    period = {"name": "电动车专项", "area_code": GRID, "starts_on": "2026-05-01", "ends_on": "2026-05-31"}
    campaign = campaigns.create(session, period, "planner")
    assert campaign["targets"] == 2
    for building in (f.building_id, other.building_id):
        body = {"inspectors": [f.worker_posting], "at": T0.isoformat(), "results": _all_pass_but("fly_line")}
        inspections.record(session, building, body, "w", now=NOW)  # fly-line: 1 day to rectify
    within = T0 + dt.timedelta(hours=20)
    late = T0 + dt.timedelta(days=2)
    for building, when in ((f.building_id, within), (other.building_id, late)):
        body = {"inspectors": [f.worker_posting], "at": when.isoformat(), "results": _all_pass_but("none")}
        inspections.record(session, building, body, "w", now=when)
    figures = campaigns.progress(session, campaign["id"], now=late)["total"]
    assert (figures["inspected"], figures["failed"], figures["hazards"]) == (2, 2, 2)
    assert (figures["rectified"], figures["rectified_on_time"], figures["overdue"]) == (2, 1, 0)
    # A key of the other town does not see the campaign of this grid; the grid's own town sees it.
    with pytest.raises(NotFound):
        campaigns.progress(session, campaign["id"], scope=Scope.parse("330421002"))
    assert campaigns.progress(session, campaign["id"], scope=Scope.parse(TOWN))["total"]["targets"] == 2
