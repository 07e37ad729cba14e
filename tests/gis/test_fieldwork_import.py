"""Import of past inspections (GBK CSV and XLSX, Chinese headers) and of hazards with the loop's
statuses and responsible party (gis.bulk)."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from boundaries.sample import MiniCounty
from gis.bulk import import_file
from gis.bulk.readers import read_table
from gis.bulk.specs import HAZARD_CATEGORIES as HAZARD_LABELS
from gis.core.vocab import HAZARD_CATEGORIES
from gis.fieldwork.hazardquery import get_hazard
from gis.fieldwork.importer import InspectionImportError, import_inspections
from gis.fieldwork.overdue import sweep
from tests.gis.fieldwork_fixtures import LAT, LON, make_field

HEADER = ["建筑编码", "检查时间", "检查人员岗位", "逃生窗口", "灭火器", "燃气", "备注"]


def _gbk_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="gbk", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def test_past_inspections_from_a_gbk_csv_replay_the_loop(
    connection: Connection, mini_county: MiniCounty, tmp_path: Path
) -> None:
    f = make_field(connection, "B-IMP-1")
    team = f"{f.worker_posting}、{f.police_posting}"
    path = _gbk_csv(
        tmp_path / "台账.csv",
        [  # the later row first: the import orders rows by time
            ["B-IMP-1", "2025-03-10 09:00", team, "合格", "合格", "不适用", "复查"],
            ["B-IMP-1", "2025-03-01 09:00", team, "不合格", "合格", "", "防盗窗焊死"],
        ],
    )
    raw = read_table(path)
    summary = import_inspections(connection, raw.frame, "cli", first_row=int(raw.rows[0]))
    assert (summary.inspections, summary.hazards_opened, summary.hazards_rectified) == (2, 1, 1)
    hazard_id = connection.execute(
        sa.text("SELECT id FROM hazards WHERE building_id = :b"), {"b": f.building_id}
    ).scalar_one()
    hazard = get_hazard(connection, hazard_id)
    assert hazard["status"] == "rectified" and hazard["item_code"] == "escape_window"
    assert [e["action"] for e in hazard["history"]] == ["open", "reinspect_pass"]
    risk = connection.execute(
        sa.text("SELECT risk_level, next_inspection_on FROM buildings WHERE id = :b"), {"b": f.building_id}
    ).one()
    assert risk.risk_level == "low" and str(risk.next_inspection_on) == "2025-06-08"  # 10 March + 90 days


def test_a_bad_row_is_named_and_nothing_is_stored(
    connection: Connection, mini_county: MiniCounty, tmp_path: Path
) -> None:
    make_field(connection, "B-IMP-2")
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append(["B-IMP-2", "2025-03-01 09:00", "", "不合格", "", "", ""])
    sheet.append(["B-IMP-2", "2025-03-02 09:00", "", "坏了", "", "", ""])
    path = tmp_path / "bad.xlsx"
    book.save(path)
    raw = read_table(path)
    with pytest.raises(InspectionImportError) as err:
        import_inspections(connection, raw.frame, "cli", first_row=int(raw.rows[0]))
    assert (err.value.row, err.value.column) == (3, "逃生窗口") and "坏了" in err.value.reason
    assert connection.execute(sa.text("SELECT count(*) FROM inspections")).scalar_one() == 0


def test_hazards_import_takes_the_loop_statuses_and_party(
    connection: Connection, mini_county: MiniCounty, tmp_path: Path
) -> None:
    path = tmp_path / "h.csv"
    with path.open("w", encoding="gbk", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["类别", "等级", "状态", "发现时间", "整改期限", "经度", "纬度", "责任方"])
        writer.writerow(["消防通道堵塞", "高", "已下发整改通知", "2025-03-01", "2025-03-04", LON, LAT, "房东"])
        writer.writerow(["租客未登记", "低", "已提交整改", "2025-03-01", "2025-03-08", LON, LAT, "租客"])
    assert set(HAZARD_LABELS) == set(HAZARD_CATEGORIES)  # the import's labels cover the one vocabulary
    result = import_file(connection, "hazards", path)
    assert result.inserted == 2
    rows = connection.execute(
        sa.text("SELECT category, status, responsible_party, source FROM hazards ORDER BY category")
    ).all()
    assert [tuple(r) for r in rows] == [
        ("blocked_escape", "notified", "landlord", "import"),
        ("tenant_registration", "submitted", "tenant", "import"),
    ]
    # Imported hazards have no deadline job: the sweep marks the notified one overdue (its deadline
    # passed); the submitted one waits for its re-inspection and is never overdue.
    assert sweep(connection) == 1
    statuses = connection.execute(sa.text("SELECT status, escalation_level FROM hazards ORDER BY category")).all()
    assert [tuple(r) for r in statuses] == [("overdue", "village"), ("submitted", "grid")]
