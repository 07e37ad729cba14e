"""Inspection test data on the mini county (tests/fieldwork_data.py's lattice of 36 buildings in G1
and one in another town), all made rental: most with a latest inspection set on the row (as file
imports and the demo do) at known ages and risk levels, a few never inspected, and real
inspections (gis.fieldwork.inspections) that open hazards (one overdue, one open, one rectified)
inside a running campaign of town 1."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.fieldwork import campaigns, inspections
from tests.fieldwork_data import TOWN1, Field, seed
from tests.gis.fieldwork_fixtures import add_posting

# Days since the latest inspection, building by building (None: never), cycling over the lattice;
# the values sit on both sides of each class limit (30, 90, 180) and of each risk interval.
AGES: tuple[int | None, ...] = (None, 1, 6, 8, 29, 31, 45, 89, 91, 120, 179, 181, 400)
RISKS: tuple[str | None, ...] = ("high", "medium", "low", None, "low", "medium", "high")
CHECKED = ("escape_window", "smoke_alarm", "extinguisher", "fly_line", "wiring")


@dataclass(frozen=True)
class Inspected:
    field: Field
    now: dt.datetime
    campaign_id: int
    inspected: list[int]  # buildings inspected through gis.fieldwork.inspections (campaign's kind)


def _results(failed: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"code": c, "result": "fail" if c in failed else "pass"} for c in CHECKED]


def seed_inspections(conn: Connection, now: dt.datetime | None = None) -> Inspected:
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    field = seed(conn)
    every = [*field.buildings, field.other_building]
    conn.execute(sa.text("UPDATE buildings SET is_rental = true WHERE id = ANY(:ids)"), {"ids": every})
    for n, building in enumerate(every):
        # The first four get real inspections below: left uninspected here, so those are their latest.
        age, risk = (None if n < 4 else AGES[n % len(AGES)]), RISKS[n % len(RISKS)]
        conn.execute(
            sa.text("UPDATE buildings SET risk_level = :r, last_inspected_at = :at WHERE id = :id"),
            {"r": risk if age is not None else None, "at": None if age is None else now - dt.timedelta(days=age),
             "id": building},
        )  # fmt: skip
    worker = add_posting(conn, "检查员", "grid_worker")
    campaign = campaigns.create(
        conn,
        {"name": "出租房消防专项", "area_code": TOWN1, "starts_on": (now - dt.timedelta(days=60)).date().isoformat(),
         "ends_on": (now + dt.timedelta(days=30)).date().isoformat()},
        "planner",
    )  # fmt: skip

    def inspect(building: int, days_ago: float, failed: tuple[str, ...] = ()) -> None:
        at = now - dt.timedelta(days=days_ago)
        body = {"inspectors": [worker], "at": at.isoformat(), "results": _results(failed)}
        inspections.record(conn, building, body, "inspector", now=now)

    b = field.buildings
    inspect(b[0], 10, ("fly_line",))  # 1 day to rectify: overdue (the deadline job has not run)
    inspect(b[1], 2, ("wiring",))  # 7 days: open, not overdue
    inspect(b[2], 20, ("escape_window",))
    inspect(b[2], 5)  # re-inspection passes: rectified
    inspect(b[3], 40)  # passes: low risk, next inspection in 90 days (set on the row)
    inspect(field.other_building, 3, ("fly_line",))  # overdue, outside town 1
    return Inspected(field, now, int(campaign["id"]), [b[0], b[1], b[2], b[3]])
