"""The one incident filter: checked values, one SQL builder, the vocabulary it composes."""

from __future__ import annotations

import datetime as dt

import pytest

from gis.core import predicates, vocab
from gis.incidents import rules
from gis.incidents.filter import FilterError, IncidentFilter, parse_bbox

CN = dt.timezone(dt.timedelta(hours=8))


def test_the_status_sets_follow_the_definitions() -> None:
    assert tuple(rules.STATUSES) == vocab.INCIDENT_STATUSES  # a label for every status, in loop order
    assert set(vocab.OPEN_STATUSES) == set(vocab.INCIDENT_STATUSES) - {"closed", "rejected"}
    assert set(vocab.PENDING_STATUSES) < set(vocab.OPEN_STATUSES)
    assert {"handled", "verified"} <= set(vocab.OPEN_STATUSES) - set(vocab.PENDING_STATUSES)
    assert vocab.ROLE_RANK["viewer"] < vocab.ROLE_RANK["dispatcher"] < vocab.ROLE_RANK["admin"]


@pytest.mark.parametrize(
    ("values", "field", "value"),
    [
        ({"grid": ("330421'--",)}, "grid", "330421'--"),
        ({"category": ("arson",)}, "category", "arson"),
        ({"status": ("lost",)}, "status", "lost"),
        ({"risk_group": ("weather",)}, "risk_group", "weather"),
        ({"assign_status": ("nearby",)}, "assign_status", "nearby"),
        ({"start": dt.datetime(2024, 5, 2)}, "start", dt.datetime(2024, 5, 2)),
        ({"bbox": (121.0, 30.8, 120.0, 30.9)}, "bbox", (121.0, 30.8, 120.0, 30.9)),
    ],
)
def test_bad_values_name_the_field_and_the_value(values: dict, field: str, value: object) -> None:  # type: ignore[type-arg]
    with pytest.raises(FilterError) as err:
        IncidentFilter(**values)
    assert err.value.field == field and err.value.value == value
    assert field in str(err.value)


def test_an_empty_window_is_refused_naming_both_ends() -> None:
    day = dt.datetime(2024, 5, 1, tzinfo=CN)
    with pytest.raises(FilterError, match="start.*end"):
        IncidentFilter(start=day, end=day)


def test_where_composes_the_shared_predicates_with_bound_values() -> None:
    flt = IncidentFilter(
        grid=["g1", "g1", "g2"],  # type: ignore[arg-type]  # lists are taken, as tuples without repeats
        risk_group=("fire",),
        overdue=True,
        escalated=False,
        start=dt.datetime(2024, 5, 1, tzinfo=CN),
        bbox=parse_bbox("120.9,30.8,121.0,30.9"),
    )
    assert flt.grid == ("g1", "g2")
    where, params = flt.where("i", now="at")
    assert predicates.is_overdue("i", "at") in where
    assert f"NOT {predicates.is_escalated('i')}" in where
    assert "i.grid_code = ANY(:f_grid)" in where and params["f_grid"] == ["g1", "g2"]
    fire = {c.code for c in rules.CATEGORIES.values() if c.risk_group == "fire"}
    assert set(params["f_risk_group"]) == fire
    assert params["f_start"] == flt.start and params["f_minlon"] == 120.9
    assert "g1" not in where  # values are bound, never written into the SQL
    assert IncidentFilter().where("i") == ("TRUE", {})


def test_query_round_trips_the_fields() -> None:
    flt = IncidentFilter(village=("330421001001",), status=("reported", "accepted"), open_only=True, pending=False)
    assert flt.query() == {
        "village": "330421001001",
        "status": "reported,accepted",
        "pending": "false",
        "open": "true",
    }
    may = IncidentFilter(
        start=dt.datetime(2024, 3, 1, tzinfo=CN), end=dt.datetime(2024, 4, 1, tzinfo=CN), window="custom"
    )
    assert may.query() == {"window": "custom", "from": "2024-03-01", "to": "2024-03-31"}
    assert may.current().start is None and may.current().window is None
