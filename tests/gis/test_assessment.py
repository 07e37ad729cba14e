"""The assessment (gis.assessment): each indicator against a direct computation on the fixture's
rows (tests/assessment_data.py), normalisation and weights, ranking ties, bounded and audited
adjustments, scheme versions, and bad input naming the field and the value."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from gis.assessment import adjustments, scheme, scoring
from gis.assessment.scheme import AssessmentInputError, AssessmentNotFound, normalise
from gis.core.vocab import COUNTY_TZ
from gis.people.scope import WHOLE_COUNTY, Scope
from tests.assessment_data import G1, G2, G_OTHER, MONTH, NOW, QUOTA, TOWN2, Data, seed

MARCH = (dt.datetime(2026, 3, 1, tzinfo=COUNTY_TZ), dt.datetime(2026, 4, 1, tzinfo=COUNTY_TZ))


def in_march(when: dt.datetime | None) -> bool:
    return when is not None and MARCH[0] <= when < MARCH[1]


@pytest.fixture
def data(connection, mini_county) -> Data:  # type: ignore[no-untyped-def]
    return seed(connection)


def run(connection, level: str, **kw):  # type: ignore[no-untyped-def]
    out = scoring.assess(connection, MONTH, level, kw.pop("scope", WHOLE_COUNTY), quota=QUOTA, now=NOW, **kw)
    return {r["key"]: r for r in out["rows"]}, out


def raw(row: dict, name: str) -> float | None:  # type: ignore[type-arg]
    return next(i["raw"] for i in row["indicators"] if i["name"] == name)


def ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


# --- direct computations on the same rows ---------------------------------------------------------


def expected(d: Data, level: str) -> dict[str, dict[str, float | None]]:
    """Every indicator per person or grid, computed in Python/pandas from the fixture's rows."""
    letter = {v: k for k, v in d.people.items()}
    inc = pd.DataFrame(d.incidents)
    inc = inc[inc["rep_at"].map(in_march)]
    key = (lambda who: str(d.people[who])) if level == "person" else None
    out: dict[str, dict[str, float | None]] = {}

    def put(k: str, name: str, value: float | None) -> None:
        out.setdefault(k, {})[name] = value

    # visits: quota x 31 days x grid workers
    vis = pd.DataFrame(d.visits)
    vis = vis[vis["at"].map(in_march)]
    workers = {"A": G1, "B": G2, "C": G_OTHER}
    if level == "person":
        for who in d.people:
            made = int((vis["who"] == who).sum())
            put(key(who), "visits", ratio(made, QUOTA * 31) if who in workers else None)
    else:
        for grid in workers.values():
            put(grid, "visits", ratio(int((vis["grid"] == grid).sum()), QUOTA * 31))
    # valid reports: by the reporter's person or the incident's grid
    reps = inc[inc["rep"].notna()]
    groups = reps.groupby(reps["rep"].map(key) if level == "person" else reps["grid"])
    for k, g in groups:
        put(k, "valid_reports", ratio(int((g["status"] != "rejected").sum()), len(g)))
    # KPI-based: by the lead or the grid
    by = inc["lead"].map(key) if level == "person" else inc["grid"]
    for k, g in inc.groupby(by):
        closed = g[g["status"] == "closed"]
        put(k, "on_time", ratio(int((closed["closed"] <= closed["deadline"]).sum()), len(closed)))
        latest = [c[-1] for c in g["cbs"] if c]
        put(k, "satisfaction", ratio(sum(r in ("satisfied", "basically_satisfied") for r in latest), len(latest)))
        accepted = g[g["status"] != "rejected"]
        put(
            k,
            "settled_unescalated",
            None if not len(accepted) else round(1 - round(g["esc"].sum() / len(accepted), 4), 4),
        )
        pending = g["status"].isin(["reported", "accepted", "dispatched", "in_progress"])
        put(k, "overdue", float((pending & (g["deadline"] < NOW)).sum()))
    # returned: send-backs in March, by the incident's lead or grid
    for ev in d.events:
        if ev["action"] == "send_back" and in_march(ev["at"]):
            i = d.incidents[ev["incident"]]
            k = key(i["lead"]) if level == "person" else i["grid"]
            put(k, "returned", (out.get(k, {}).get("returned") or 0) + 1.0)
    # hazards due in March (deadline passed or met), by finder or grid
    hz = [h for h in d.hazards if in_march(h["due"]) and (h["due"] <= NOW or h["done"])]
    finders: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for h in hz:
        if level == "grid":
            ks = {h["grid"]}
        else:
            ks = {key(h["by"][-1])} if h["by"].startswith("acct-") else set()
            ks |= {key(i["who"]) for i in d.inspections if i["id"] == h["insp"]}
        for k in ks:
            finders.setdefault(k, []).append(h)
    for k, hs in finders.items():
        put(k, "hazards_on_time", ratio(sum(1 for h in hs if h["done"] and h["done"] <= h["due"]), len(hs)))
    # inspection coverage: buildings of the grid (or the person's posted grid)
    last = dt.date(2026, 3, 31)
    cover: dict[str, list[int]] = {}
    for b in d.buildings:
        inspected = any(i["building"] == b["id"] and in_march(i["at"]) for i in d.inspections)
        due = inspected or (b["next_on"] is not None and b["next_on"] <= last) or (b["rental"] and not b["last_insp"])
        c = cover.setdefault(b["grid"], [0, 0])
        c[0] += inspected
        c[1] += due
    posted = {"A": G1, "B": G2, "C": G_OTHER, "D": G1}
    for who, grid in posted.items() if level == "person" else ((g, g) for g in cover):
        k = key(who) if level == "person" else grid
        if grid in cover:
            put(k, "inspection_coverage", ratio(*cover[grid]))
    assert letter  # the people were made
    return out


@pytest.mark.parametrize("level", ["person", "grid"])
def test_each_indicator_matches_a_direct_computation(connection, data, level) -> None:  # type: ignore[no-untyped-def]
    rows, out = run(connection, level)
    want = expected(data, level)
    assert out["scheme"]["version"] == 0  # no scheme stored: the built-in default
    checked = 0
    for k, row in rows.items():
        for name in scheme.INDICATOR_NAMES:
            got = raw(row, name)
            exp = want.get(k, {}).get(name, 0.0 if name in ("returned", "overdue") else None)
            assert got == pytest.approx(exp) if exp is not None else got is None, (k, name, got, exp)
            checked += exp is not None
    assert checked >= 25
    if level == "person":
        a = rows[str(data.people["A"])]
        assert raw(a, "visits") == 0.5 and raw(a, "returned") == 2 and raw(a, "overdue") == 1
        assert raw(rows[str(data.people["D"])], "visits") is None  # not a grid worker: no quota
    else:
        assert raw(rows[G2], "inspection_coverage") == 0.5 and raw(rows[G1], "hazards_on_time") == pytest.approx(
            1 / 3, abs=1e-4
        )


def test_satisfaction_and_on_time_are_the_kpi_table_figures(connection, data) -> None:  # type: ignore[no-untyped-def]
    from gis.analysis.kpis import compute_kpis
    from gis.incidents.filter import IncidentFilter

    rows, _ = run(connection, "person")
    kpis = {
        g["key"]: g["kpis"] for g in compute_kpis(connection, IncidentFilter(), *MARCH, group_by="person")["groups"]
    }
    for k, row in rows.items():
        if k in kpis:
            assert raw(row, "satisfaction") == kpis[k]["satisfaction_rate"]
            assert raw(row, "on_time") == kpis[k]["on_time_rate"]


def test_normalisation_and_weighted_total(connection, data) -> None:  # type: ignore[no-untyped-def]
    assert normalise(0.75, 1.0, 0.5) == 50.0
    assert normalise(1.2, 1.0, 0.5) == 100.0 and normalise(0.1, 1.0, 0.5) == 0.0
    assert normalise(1, 0, 5) == 80.0  # lower is better: 1 overdue of a floor of 5
    assert normalise(None, 1.0, 0.0) is None
    scheme.create_scheme(connection, {"year": 2026, "indicators": [
        {"name": "visits", "weight": 60, "target": 1.0, "floor": 0.0},
        {"name": "overdue", "weight": 40, "target": 0, "floor": 2},
        ]}, "admin", now=NOW)  # fmt: skip
    rows, out = run(connection, "person")
    assert out["scheme"]["version"] == 1
    a, d = rows[str(data.people["A"])], rows[str(data.people["D"])]
    # A: visits 0.5 -> 50, overdue 1 -> 50: (50*60 + 50*40)/100
    assert [i["score"] for i in a["indicators"]] == [50.0, 50.0]
    assert a["base_score"] == 50.0 and a["total"] == 50.0
    # D has no visits value: the total is overdue's score alone (weights in proportion)
    assert [i["score"] for i in d["indicators"]] == [None, 100.0] and d["total"] == 100.0
    assert [i["weight"] for i in a["indicators"]] == [60, 40]


def test_ranking_ties_share_a_rank() -> None:
    assert scoring.rank({"a": 80.0, "b": 90.0, "c": 80.0, "d": 70.0, "e": None}) == {
        "a": 2, "b": 1, "c": 2, "d": 4, "e": None,
    }  # fmt: skip


def test_ranking_of_equal_grids(connection, data) -> None:  # type: ignore[no-untyped-def]
    scheme.create_scheme(connection, {"year": 2026, "indicators": [
        {"name": "returned", "weight": 100, "target": 0, "floor": 4}]}, "admin", now=NOW)  # fmt: skip
    rows, out = run(connection, "grid")
    # G1 has 2 send-backs (50), G2 1 (75); every other grid has none (100) and shares rank 1
    assert rows[G2]["total"] == 75.0 and rows[G1]["total"] == 50.0
    tops = [r for r in out["rows"] if r["total"] == 100.0]
    assert len(tops) >= 2 and {r["rank"] for r in tops} == {1}
    assert rows[G2]["rank"] == len(tops) + 1 and rows[G1]["rank"] == len(tops) + 2
    assert [r["rank"] for r in out["rows"]] == sorted(r["rank"] for r in out["rows"])


def test_adjustment_is_audited_bounded_and_in_the_total(connection, data) -> None:  # type: ignore[no-untyped-def]
    a = str(data.people["A"])
    before, _ = run(connection, "person")
    made = adjustments.adjust(connection, {"period": MONTH, "level": "person", "key": a, "points": 4,
                                           "reason": "抗台抢险表现突出"}, "leader", WHOLE_COUNTY)  # fmt: skip
    after, _ = run(connection, "person")
    assert after[a]["total"] == pytest.approx(before[a]["total"] + 4)
    assert (
        after[a]["adjustments"][0]["reason"] == "抗台抢险表现突出" and after[a]["adjustments"][0]["actor"] == "leader"
    )
    entry = connection.execute(
        sa.text("SELECT actor, detail FROM audit_log WHERE action = 'assessment.adjust' AND target = :t"),
        {"t": f"assessment/person/{a}/{MONTH}"},
    ).one()
    assert entry.actor == "leader" and entry.detail["points"] == 4 and entry.detail["adjustment"] == made["id"]
    with pytest.raises(AssessmentInputError) as exc:  # one adjustment beyond ±10
        adjustments.adjust(connection, {"period": MONTH, "level": "person", "key": a, "points": -11, "reason": "x"},
                           "leader", WHOLE_COUNTY)  # fmt: skip
    assert exc.value.field == "points" and exc.value.value == -11
    with pytest.raises(AssessmentInputError) as exc:  # 4 + 7 > 10 in the month
        adjustments.adjust(connection, {"period": MONTH, "level": "person", "key": a, "points": 7, "reason": "x"},
                           "leader", WHOLE_COUNTY)  # fmt: skip
    assert exc.value.field == "points" and "11" in str(exc.value)
    with pytest.raises(AssessmentInputError) as exc:
        adjustments.adjust(connection, {"period": MONTH, "level": "person", "key": a, "points": 1, "reason": " "},
                           "leader", WHOLE_COUNTY)  # fmt: skip
    assert exc.value.field == "reason"
    with pytest.raises(AssessmentNotFound):  # a person outside the scope
        adjustments.adjust(connection, {"period": MONTH, "level": "person", "key": a, "points": 1, "reason": "x"},
                           "leader", Scope.parse(TOWN2))  # fmt: skip


def test_a_new_version_keeps_past_months_on_their_version(connection, data) -> None:  # type: ignore[no-untyped-def]
    v1 = [{"name": "visits", "weight": 100, "target": 1.0, "floor": 0.0}]
    v2 = [{"name": "visits", "weight": 100, "target": 0.5, "floor": 0.0}]
    first = scheme.create_scheme(
        connection, {"year": 2026, "indicators": v1}, "admin", now=dt.datetime(2026, 2, 10, tzinfo=dt.UTC)
    )
    a = str(data.people["A"])
    rows, out = run(connection, "person")
    assert out["scheme"]["version"] == 1 and rows[a]["total"] == 50.0
    second = scheme.create_scheme(connection, {"year": 2026, "indicators": v2}, "admin", now=NOW)
    assert (first["version"], second["version"]) == (1, 2)
    rows, out = run(connection, "person")  # March was over when version 2 came: it keeps version 1
    assert out["scheme"]["version"] == 1 and rows[a]["total"] == 50.0
    pinned = connection.execute(sa.text("SELECT month, scheme_id FROM assessment_periods ORDER BY month")).all()
    assert [(p.month.month, p.scheme_id) for p in pinned] == [(1, first["id"]), (2, first["id"]), (3, first["id"])]
    april = scoring.assess(connection, "2026-04", "person", WHOLE_COUNTY, quota=QUOTA, now=NOW)
    assert april["scheme"]["version"] == 2  # a month not over yet takes the newest version
    assert [s["version"] for s in scheme.list_schemes(connection, "330421", 2026)] == [1, 2]


@pytest.mark.parametrize(
    ("indicators", "field", "value"),
    [
        ([{"name": "bogus", "weight": 100, "target": 1, "floor": 0}], "indicators[0].name", "bogus"),
        ([{"name": "visits", "weight": 60, "target": 1, "floor": 0},
          {"name": "overdue", "weight": 30, "target": 0, "floor": 3}], "indicators.weight", 90.0),
        ([{"name": "visits", "weight": 100, "target": 1, "floor": 1}], "indicators[0].floor", 1.0),
        ([{"name": "visits", "weight": 100, "target": 2, "floor": 0}], "indicators[0].target", 2.0),
    ],
)  # fmt: skip
def test_bad_schemes_name_the_field(connection, mini_county, indicators, field, value) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AssessmentInputError) as exc:
        scheme.create_scheme(connection, {"year": 2026, "indicators": indicators}, "admin")
    assert exc.value.field == field and exc.value.value == value


@pytest.mark.parametrize("period", ["2026-3", "2026-13", "March", "2026-03-01", ""])
def test_bad_month_names_the_field(connection, mini_county, period) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AssessmentInputError) as exc:
        scoring.assess(connection, period, "person", WHOLE_COUNTY)
    assert exc.value.field == "period" and exc.value.value == period


def test_scope_keeps_people_and_grids_inside(connection, data) -> None:  # type: ignore[no-untyped-def]
    town2 = Scope.parse(TOWN2)
    rows, _ = run(connection, "person", scope=town2)
    assert set(rows) == {str(data.people["C"])}
    grids, _ = run(connection, "grid", scope=town2)
    assert G_OTHER in grids and G1 not in grids
    with pytest.raises(AssessmentNotFound):
        run(connection, "person", scope=town2, key=str(data.people["A"]))
    with pytest.raises(AssessmentNotFound):
        run(connection, "grid", scope=town2, area="330421001")


def test_role_and_org_narrow_the_people(connection, data) -> None:  # type: ignore[no-untyped-def]
    rows, _ = run(connection, "person", role="part_time_worker")
    assert set(rows) == {str(data.people["D"])}
    with pytest.raises(AssessmentInputError) as exc:
        run(connection, "person", role="astronaut")
    assert (exc.value.field, exc.value.value) == ("role", "astronaut")
    with pytest.raises(AssessmentNotFound) as missing:
        run(connection, "person", org="NO-SUCH-UNIT")
    assert missing.value.field == "org"
    rows, _ = run(connection, "grid", area="330421001001")  # a village: its grids only
    assert G1 in rows and G2 in rows and G_OTHER not in rows
