"""gridmap import/export staff: GBK CSV and XLSX round trips, bad rows named by row and field with
nothing written, and the team of a grid (village chief grid leader, beat officer)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.bulk import ImportOptions, ImportRejected
from gis.people.roster import team_of
from gis.people.rules import id_card_check_char
from gis.people.staffexport import staff_frame, write_staff
from gis.people.staffimport import import_staff

VILLAGE = "330421001001"
G1, G2 = "330421001001001", "330421001001002"
BEAT = "330421P0101"


def card(seq: int) -> str:
    body = f"33042119850101{seq:03d}"
    return body + id_card_check_char(body)


def roster() -> pd.DataFrame:
    rows = [
        ("王网格", "13900000001", card(1), "在岗", "网格长", "", G1, "", "2024-01-01", "", ""),
        ("李专职", "13900000002", card(2), "active", "grid_worker", "grid", G1, "", "2024-01-01", "", ""),
        ("李专职", "13900000002", card(2), "active", "grid_worker", "grid", G2, "", "2024-01-01", "2024-06-30", "借调"),
        (
            "赵民警",
            "0573-84123456",
            card(3),
            "active",
            "chief_grid_leader",
            "village",
            VILLAGE,
            "",
            "2023-05-01",
            "",
            "",
        ),
        (
            "赵民警",
            "0573-84123456",
            card(3),
            "active",
            "community_police",
            "village",
            VILLAGE,
            "",
            "2023-05-01",
            "",
            "",
        ),
        ("孙警格", "13900000004", card(4), "active", "beat_officer", "beat", BEAT, "", "2024-02-01", "", ""),
        ("周微格", "", "", "active", "micro_grid_leader", "", G1 + "01", "", "2024-03-01", "", ""),
        ("吴旧长", "13900000006", card(6), "left", "grid_leader", "grid", G2, "", "2020-01-01", "2023-12-31", ""),
    ]
    columns = ["姓名", "手机", "身份证号", "状态", "角色", "层级", "区域代码", "单位", "开始日期", "结束日期", "备注"]
    return pd.DataFrame(rows, columns=columns)


def _counts(conn: Connection) -> tuple[int, int]:
    people = conn.execute(sa.text("SELECT count(*) FROM people")).scalar_one()
    postings = conn.execute(sa.text("SELECT count(*) FROM postings")).scalar_one()
    return int(people), int(postings)


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_round_trip(connection: Connection, mini_county, tmp_path: Path, suffix: str) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / f"roster.{suffix}"
    if suffix == "csv":
        roster().to_csv(source, index=False, encoding="gbk")  # as Excel saves it in China
    else:
        roster().to_excel(source, index=False)
    result = import_staff(connection, source, ImportOptions(actor="tests"))
    assert (result.rows, result.bad, result.inserted) == (8, 0, 8)
    assert _counts(connection) == (6, 8)  # 李专职 and 赵民警 hold two postings each
    first = staff_frame(connection, personal_data=True)
    assert len(first) == 8 and set(first["role"]) >= {"chief_grid_leader", "beat_officer"}

    # Export (GBK CSV or XLSX), empty the tables, import the export: the same rows come back.
    exported = write_staff(first, tmp_path / f"export.{suffix}", encoding="gbk")
    if suffix == "csv":
        assert "王网格".encode("gbk") in exported.read_bytes()
    again = import_staff(connection, exported, ImportOptions(actor="tests"))
    assert (again.inserted, again.already_stored) == (0, 8)  # importing twice changes nothing
    connection.execute(sa.text("DELETE FROM postings; DELETE FROM people"))
    back = import_staff(connection, exported, ImportOptions(actor="tests"))
    assert back.inserted == 8
    second = staff_frame(connection, personal_data=True)
    pd.testing.assert_frame_equal(first.reset_index(drop=True), second.reset_index(drop=True))
    logged = connection.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'import.staff'")).scalar()
    assert logged == 3


BAD_CASES = [
    # (row index to spoil, column, value, field named, words in the reason)
    (1, "区域代码", "330421999999999", "area_code", "no grid"),
    (2, "结束日期", "2023-01-01", "ends_on", "ends before"),
    (3, "手机", "12345", "phone", "not a phone"),
    (5, "身份证号", card(4)[:17] + ("0" if card(4)[17] != "0" else "1"), "id_card", "check character"),
    (0, "角色", "grid_boss", "role", "unknown role"),
]


@pytest.mark.parametrize(("index", "column", "value", "field", "words"), BAD_CASES)
def test_bad_rows_are_named_and_nothing_is_stored(  # type: ignore[no-untyped-def]
    connection: Connection, mini_county, tmp_path: Path, index: int, column: str, value: str, field: str, words: str
) -> None:
    frame = roster()
    frame.loc[index, column] = value
    source = tmp_path / "bad.csv"
    frame.to_csv(source, index=False, encoding="utf-8-sig")
    with pytest.raises(ImportRejected) as caught:
        import_staff(connection, source, ImportOptions(actor="tests"))
    problems = caught.value.result.problems
    assert list(problems["row"]) == [index + 2]  # header is row 1
    assert list(problems["field"]) == [field]
    assert words in problems["reason"].iloc[0]
    assert _counts(connection) == (0, 0)
    report = pd.read_csv(tmp_path / "bad.report.csv", encoding="utf-8-sig")
    assert list(report.columns) == ["row", "field", "value", "reason"] and report["row"].tolist() == [index + 2]


def test_overlapping_leaders_in_file_and_stored(connection: Connection, mini_county, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    frame = roster()
    extra = frame.iloc[[0]].assign(姓名="钱重复", 身份证号=card(9), 手机="13900000009", 开始日期="2024-05-01")
    source = tmp_path / "overlap.csv"
    pd.concat([frame, extra], ignore_index=True).to_csv(source, index=False)
    with pytest.raises(ImportRejected) as caught:
        import_staff(connection, source, ImportOptions(actor="tests"))
    problems = caught.value.result.problems
    assert problems[["row", "field"]].values.tolist() == [[10, "role"]]
    assert "row 2 (王网格)" in problems["reason"].iloc[0]
    assert _counts(connection) == (0, 0)

    # --skip-bad stores the rest; a later file clashing with the stored leader is refused.
    result = import_staff(connection, source, ImportOptions(actor="tests", skip_bad=True))
    assert (result.inserted, result.bad) == (8, 1) and result.reject_path is not None
    extra.to_csv(tmp_path / "later.csv", index=False)
    with pytest.raises(ImportRejected) as later:
        import_staff(connection, tmp_path / "later.csv", ImportOptions(actor="tests"))
    assert "stored posting" in later.value.result.problems["reason"].iloc[0]
    # A successor starting after the leader's posting ends is fine.
    connection.execute(
        sa.text("UPDATE postings SET ends_on = '2024-04-30' WHERE role = 'grid_leader' AND area_code = :g"), {"g": G1}
    )
    assert import_staff(connection, tmp_path / "later.csv", ImportOptions(actor="tests")).inserted == 1


def test_team_of_a_grid_includes_village_and_beat(connection: Connection, mini_county, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "roster.csv"
    roster().to_csv(source, index=False)
    import_staff(connection, source, ImportOptions(actor="tests"))
    units = [("grid", G1), ("micro_grid", G1 + "01"), ("village", VILLAGE), ("beat", BEAT), ("station", "330421P01")]
    team = team_of(connection, units, True, on=dt.date(2024, 7, 1))
    assert [(p["role"], p["name"], p["layer"]) for p in team] == [
        ("grid_leader", "王网格", "grid"),
        ("grid_worker", "李专职", "grid"),
        ("community_police", "赵民警", "village"),
        ("chief_grid_leader", "赵民警", "village"),
        ("micro_grid_leader", "周微格", "micro_grid"),
        ("beat_officer", "孙警格", "beat"),
    ]
    # G2 is served by the same village chief, but 李专职's posting there ended on 2024-06-30.
    other = team_of(connection, [("grid", G2), ("village", VILLAGE)], False, on=dt.date(2024, 7, 1))
    assert [(p["role"], p["name"]) for p in other] == [("community_police", "赵**"), ("chief_grid_leader", "赵**")]
