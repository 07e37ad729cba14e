"""The demo's inspections (检查) and hazards (隐患): a year of the rental-safety checklist in every
rented house, with the hazards its failed items opened and their whole rectification history.

Every rented building is inspected with the rental-safety checklist (version 1, as the migration
seeds it) from the first days of the demo's year up to its reference instant, each time by a
joint team of its grid (a grid worker posted there that day, or else the grid's leader or
part-time worker, and the grid's auxiliary police officer when the grid has one that day), on
the date the product set after the previous inspection (the risk level's interval, from
``risk_intervals``) give or take a few days. Each item passes or fails with odds that follow
the building (a house registered with a fly line fails the fly-line item more often, crowded
rooms the people-per-room item, and some landlords are careless everywhere); gas does not apply
where there is none. A failed item opens a hazard with the item's severity, category, party and
deadline; an item with an unrectified hazard is re-inspected by the inspection, exactly as
POST /buildings/{id}/inspections does. Between inspections a hazard lives its own history
(demo.jiashan.hazardloop). The building's risk level, last inspection and next-inspection date
are the latest inspection's, derived by the product's own rule (gis.fieldwork.inspections.risk_of).

Stored in bulk (binary COPY, gis.bulk.copybin; the assignment trigger is off and a hazard takes
its building's codes, as visits do). No audit rows per inspection (the load's own audit row
counts them) and no deadline jobs: the hazard sweep (gis.work.tasks) moves pending hazards on
once their deadline passes, as it does for the demo's incidents.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from demo.jiashan.hazardloop import ACTOR, DAY, HOUR, Event, Hazard, advance, open_hazard, reinspect
from gis.bulk.copybin import Column, PgType, encode
from gis.core.vocab import COUNTY_TZ
from gis.fieldwork import checklists
from gis.fieldwork.inspections import risk_of

CHECKLIST_KIND = "rental_safety"
CHECKLIST_VERSION = 1
# Chance an item fails an inspection of an ordinary house (items not named here: DEFAULT_FAIL).
BASE_FAIL = {
    "escape_window": 0.01, "ebike_indoor": 0.015, "fly_line": 0.012, "wiring": 0.015, "extinguisher": 0.015,
    "smoke_alarm": 0.012, "gas": 0.005, "kitchen_bedroom": 0.004, "people_per_room": 0.005,
    "tenant_registration": 0.02, "responsibility_letter": 0.01,
}  # fmt: skip
DEFAULT_FAIL = 0.01
NO_GAS_SHARE = 0.2
LEAD_ROLES = ("grid_worker", "grid_leader", "part_time_worker")  # who leads, in order of preference

_BUILDINGS = sa.text(
    "SELECT id, grid_code, ST_X(geom) AS lon, ST_Y(geom) AS lat, escape_window, ebike_charging, wiring, "
    "rooms, tenants, town_code, village_code, micro_grid_code, station_code, beat_code, generation_id, "
    "assign_status, snap_distance_m FROM buildings WHERE is_rental AND grid_code IS NOT NULL ORDER BY id"
)
_POSTINGS = sa.text(
    "SELECT id, role, area_code, starts_on, ends_on FROM postings "
    "WHERE layer = 'grid' AND role IN ('grid_worker', 'grid_leader', 'part_time_worker', 'aux_police') ORDER BY id"
)
_SET_BUILDINGS = sa.text(
    "UPDATE buildings b SET risk_level = u.risk, last_inspected_at = u.at, last_inspection_id = u.insp, "
    "next_inspection_on = u.next_on FROM unnest(CAST(:ids AS bigint[]), CAST(:risk AS text[]), "
    "CAST(:at AS timestamptz[]), CAST(:insp AS bigint[]), CAST(:next_on AS date[])) AS u(id, risk, at, insp, next_on) "
    "WHERE b.id = u.id"
)


@dataclass
class Year:
    """What the simulation produced, as column lists (inspections and hazards by their index)."""

    inspections: dict[str, list[Any]] = field(
        default_factory=lambda: {k: [] for k in ("building", "at", "risk", "failed", "lon", "lat")}
    )
    inspectors: dict[str, list[int]] = field(default_factory=lambda: {"inspection": [], "posting": []})
    results: dict[str, list[Any]] = field(default_factory=lambda: {"inspection": [], "code": [], "result": []})
    hazards: list[tuple[Hazard, int]] = field(default_factory=list)  # with the building's row
    latest: dict[int, tuple[int, str, dt.date]] = field(default_factory=dict)  # row -> (inspection, risk, next on)


class Teams:
    """The grid postings held on a day (days counted from the year's first)."""

    def __init__(self, postings: pd.DataFrame, first: dt.date) -> None:
        self.by_grid: dict[str, dict[str, list[tuple[int, int, int]]]] = {}
        for p in postings.itertuples(index=False):
            begins = (p.starts_on - first).days if p.starts_on is not None else -(10**6)
            ends = (p.ends_on - first).days if p.ends_on is not None else 10**6
            self.by_grid.setdefault(str(p.area_code), {}).setdefault(str(p.role), []).append((int(p.id), begins, ends))

    def on(self, grid: str, day: int, pick: int) -> list[int] | None:
        roles = self.by_grid.get(grid, {})
        team: list[int] = []
        for role in LEAD_ROLES:
            held = [pid for pid, begins, ends in roles.get(role, []) if begins <= day <= ends]
            if held:
                team.append(held[pick % len(held)])
                break
        if not team:
            return None  # nobody of the grid to lead an inspection that day
        aux = [pid for pid, begins, ends in roles.get("aux_police", []) if begins <= day <= ends]
        return team + aux[:1]


def _fail_odds(b: pd.DataFrame, codes: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """(buildings, items) chance that each item fails at each building."""
    odds = np.tile([BASE_FAIL.get(c, DEFAULT_FAIL) for c in codes], (len(b), 1))
    boost = {
        "escape_window": b["escape_window"].isin(["missing", "blocked"]).to_numpy(),
        "fly_line": (b["ebike_charging"] == "fly_line").to_numpy(),
        "ebike_indoor": (b["ebike_charging"] == "indoor").to_numpy(),
        "wiring": b["wiring"].isin(["private", "aged"]).to_numpy(),
        "people_per_room": (b["tenants"].fillna(0) > 2 * b["rooms"].fillna(1).clip(lower=1)).to_numpy(),
    }
    for k, code in enumerate(codes):
        if code in boost:
            odds[:, k] *= np.where(boost[code], 4.0, 1.0)
    careless = rng.lognormal(0.0, 0.6, len(b))
    return np.minimum(odds * careless[:, None], 0.6)


def simulate(
    buildings: pd.DataFrame,
    teams: Teams,
    items: Sequence[Mapping[str, Any]],
    intervals: Mapping[str, int],
    first: dt.date,
    end: pd.Timestamp,
    rng: np.random.Generator,
) -> Year:
    """A year of inspections of ``buildings`` from ``first`` (a county date) up to ``end``."""
    codes = [str(i["code"]) for i in items]
    by_code = {str(i["code"]): dict(i) for i in items}
    days = [float(i["rectify_days"]) for i in items]
    midnight0 = pd.Timestamp(first, tz=COUNTY_TZ).timestamp()
    end_s = end.timestamp()
    last_day = int((end_s - midnight0) // DAY)
    odds = _fail_odds(buildings, codes, rng)
    no_gas = (rng.random(len(buildings)) < NO_GAS_SHARE).tolist()
    gas = codes.index("gas") if "gas" in codes else -1
    year = Year()
    ins = year.inspections
    for row, b in enumerate(buildings.itertuples(index=False)):
        day = int(rng.integers(0, intervals["low"]))
        unrectified: dict[int, Hazard] = {}
        while day <= last_day:
            team = teams.on(str(b.grid_code), day, row)
            if team is None:
                day += 7
                continue
            at = midnight0 + day * DAY + rng.uniform(8.5 * HOUR, 17.5 * HOUR)
            if at >= end_s:
                break
            n = len(ins["at"])
            for pending in unrectified.values():
                advance(pending, at, rng)
            unrectified = {k: p for k, p in unrectified.items() if p.status != "rectified"}
            results = []
            fails = (rng.random(len(codes)) < odds[row]).tolist()
            for k, code in enumerate(codes):
                found = unrectified.get(k)
                if found is not None:
                    result = "pass" if found.fix_at <= at else "fail"
                    reinspect(found, at, result == "pass", rng, inspection=n)
                elif k == gas and no_gas[row]:
                    result = "na"
                elif fails[k]:
                    result = "fail"
                    unrectified[k] = open_hazard(len(year.hazards), k, days[k], at, n, rng)
                    year.hazards.append((unrectified[k], row))
                else:
                    result = "pass"
                results.append({"code": code, "result": result})
            unrectified = {k: h for k, h in unrectified.items() if h.status != "rectified"}
            risk = risk_of(results, by_code)
            ins["building"].append(row)
            ins["at"].append(at)
            ins["risk"].append(risk)
            ins["failed"].append(sum(r["result"] == "fail" for r in results))
            ins["lon"].append(b.lon + rng.normal(0, 0.00005))
            ins["lat"].append(b.lat + rng.normal(0, 0.00005))
            year.inspectors["inspection"] += [n] * len(team)
            year.inspectors["posting"] += team
            year.results["inspection"] += [n] * len(results)
            year.results["code"] += codes
            year.results["result"] += [r["result"] for r in results]
            # The product's next date (the county day of the inspection + the risk's interval) ...
            local_day = int((at - midnight0) // DAY)  # the county keeps one offset all year
            next_day = local_day + intervals[risk]
            year.latest[row] = (n, risk, first + dt.timedelta(days=next_day))
            # ... which the team keeps give or take a few days.
            day = max(local_day + 1, next_day + int(rng.integers(-3, 11)))
        for h in unrectified.values():
            advance(h, end_s, rng)
    return year


def _stamps(seconds: Sequence[float | None]) -> pd.Series:
    return pd.to_datetime(pd.Series(seconds, dtype="float64"), unit="s", utc=True).dt.round("us")


def _copy(conn: Connection, table: str, columns: list[Column]) -> None:
    if not len(columns[0].values):  # type: ignore[arg-type]
        return
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    names = ", ".join(c.name for c in columns)
    with cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        for start in range(0, len(columns[0].values), 200_000):  # type: ignore[arg-type]
            part = [Column(c.name, c.pg, c.values[start : start + 200_000]) for c in columns]  # type: ignore[index]
            copy.write(encode(part, header=start == 0, trailer=start + 200_000 >= len(columns[0].values)))  # type: ignore[arg-type]


def _ids(conn: Connection, table: str, n: int) -> np.ndarray:
    """``n`` fresh ids of ``table``'s identity (taken at once; the rows are COPYed with them)."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    last = conn.execute(
        sa.text("SELECT setval(pg_get_serial_sequence(:t, 'id'), nextval(pg_get_serial_sequence(:t, 'id')) + :n - 1)"),
        {"t": table, "n": n},
    ).scalar_one()
    return np.arange(int(last) - n + 1, int(last) + 1, dtype=np.int64)


# The tables written here and the foreign keys they carry (to one another, buildings, postings,
# checklists). Checked row by row at the end of a COPY these cost most of the load's time (a
# million results, each looked up in inspections); dropped for the load and added back, each is
# checked by one join instead, as pg_restore does. Inside the load's transaction, which already
# holds these tables exclusively (the demo's TRUNCATE), nobody sees them missing.
_LOADED = ("inspections", "inspection_inspectors", "inspection_results", "hazards", "hazard_events")


@contextmanager
def _foreign_keys_after(conn: Connection) -> Iterator[None]:
    rows = conn.execute(
        sa.text(
            "SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid = ANY(CAST(:tables AS regclass[])) ORDER BY conrelid, conname"
        ),
        {"tables": list(_LOADED)},
    ).all()
    for t, name, _ in rows:
        conn.execute(sa.text(f'ALTER TABLE {t} DROP CONSTRAINT "{name}"'))
    yield
    for t, name, definition in rows:
        conn.execute(sa.text(f'ALTER TABLE {t} ADD CONSTRAINT "{name}" {definition}'))


def _col(name: str, pg: PgType, values: Any) -> Column:
    if isinstance(values, pd.Series):  # sliced by position in _copy
        values = values.reset_index(drop=True)
    return Column(name, pg, np.asarray(values, dtype=object) if pg == "text" else values)


def _store(conn: Connection, year: Year, buildings: pd.DataFrame, checklist: Mapping[str, Any]) -> None:
    ins = year.inspections
    insp_ids = _ids(conn, "inspections", len(ins["at"]))
    bid = buildings["id"].to_numpy()
    rows = np.asarray(ins["building"], dtype=np.int64)
    failed = np.asarray(ins["failed"], dtype=np.int64)
    _copy(
        conn,
        "inspections",
        [
            _col("id", "int8", insp_ids),
            _col("building_id", "int8", bid[rows]),
            _col("checklist_id", "int4", np.full(len(rows), checklist["id"])),
            _col("at", "timestamptz", _stamps(ins["at"])),
            _col("geom", "point", np.column_stack([ins["lon"], ins["lat"]])),
            _col("outcome", "text", np.where(failed > 0, "fail", "pass")),
            _col("risk_level", "text", ins["risk"]),
            _col("failed_items", "int2", failed),
            _col("actor", "text", [ACTOR] * len(rows)),
            _col("created_at", "timestamptz", _stamps(ins["at"])),
        ],
    )
    team = year.inspectors
    _copy(
        conn,
        "inspection_inspectors",
        [
            _col("inspection_id", "int8", insp_ids[team["inspection"]]),
            _col("posting_id", "int8", team["posting"]),
        ],
    )
    res = year.results
    _copy(
        conn,
        "inspection_results",
        [
            _col("inspection_id", "int8", insp_ids[res["inspection"]]),
            _col("item_code", "text", res["code"]),
            _col("result", "text", res["result"]),
        ],
    )
    _store_hazards(conn, year, buildings, checklist, insp_ids)
    latest = sorted(year.latest.items())
    conn.execute(
        _SET_BUILDINGS,
        {"ids": [int(bid[r]) for r, _ in latest], "risk": [risk for _, (_, risk, _) in latest],
         "at": _stamps([ins["at"][i] for _, (i, _, _) in latest]).dt.to_pydatetime().tolist(),
         "insp": [int(insp_ids[i]) for _, (i, _, _) in latest], "next_on": [on for _, (_, _, on) in latest]},
    )  # fmt: skip


def _store_hazards(
    conn: Connection, year: Year, buildings: pd.DataFrame, checklist: Mapping[str, Any], insp_ids: np.ndarray
) -> None:
    items = checklist["items"]
    hz = [h for h, _ in year.hazards]
    at_rows = np.asarray([r for _, r in year.hazards], dtype=np.int64)
    ids = _ids(conn, "hazards", len(hz))
    b = buildings.iloc[at_rows]
    item = [items[h.item] for h in hz]
    cols = [
        _col("id", "int8", ids),
        _col("category", "text", [i["hazard_category"] for i in item]),
        _col("severity", "text", [i["severity"] for i in item]),
        _col("status", "text", [h.status for h in hz]),
        _col("description", "text", [i["text"] for i in item]),
        _col("found_at", "timestamptz", _stamps([h.found_at for h in hz])),
        _col("rectify_by", "timestamptz", _stamps([h.rectify_by for h in hz])),
        _col("rectified_at", "timestamptz", _stamps([h.rectified_at for h in hz])),
        _col("building_id", "int8", b["id"].to_numpy()),
        _col("geom", "point", b[["lon", "lat"]].to_numpy()),
        *[
            _col(c, "text", b[c].to_numpy())
            for c in (
                "town_code",
                "village_code",
                "grid_code",
                "micro_grid_code",
                "station_code",
                "beat_code",
                "assign_status",
            )
        ],
        _col("generation_id", "int4", pd.array(b["generation_id"], dtype="Int64")),
        _col("snap_distance_m", "float8", b["snap_distance_m"].astype(float)),
        _col("responsible_party", "text", [i["party"] for i in item]),
        _col("source", "text", ["inspection"] * len(hz)),
        _col("inspection_id", "int8", insp_ids[[h.inspection for h in hz]] if hz else []),
        _col("item_code", "text", [i["code"] for i in item]),
        _col("escalation_level", "text", [h.level for h in hz]),
        *[
            _col(c, "timestamptz", _stamps([getattr(h, c) for h in hz]))
            for c in ("escalated_at", "escalation_due_at", "overdue_at", "notified_at", "submitted_at", "updated_at")
        ],
        _col("reported_by", "text", [ACTOR] * len(hz)),
    ]
    _copy(conn, "hazards", cols)
    events: list[Event] = sorted((e for h in hz for e in h.events), key=lambda e: (e[0], e[1]))
    insp = [None if e[7] is None else int(insp_ids[e[7]]) for e in events]
    _copy(
        conn,
        "hazard_events",
        [
            _col("hazard_id", "int8", ids[[e[0] for e in events]] if events else []),
            _col("at", "timestamptz", _stamps([e[1] for e in events])),
            _col("actor", "text", [e[2] for e in events]),
            _col("action", "text", [e[3] for e in events]),
            _col("from_status", "text", [e[4] for e in events]),
            _col("to_status", "text", [e[5] for e in events]),
            _col("deadline", "timestamptz", _stamps([e[6] for e in events])),
            _col("inspection_id", "int8", pd.array(insp, dtype="Int64")),
            _col("note", "text", [e[8] for e in events]),
        ],
    )


def add_inspections(conn: Connection, first: dt.date, end: pd.Timestamp, seed: int) -> dict[str, int]:
    """A year of inspections and hazards of the demo's rented buildings, ``first`` (a county date)
    to ``end`` (see the module docstring); returns the counts."""
    rng = np.random.default_rng(seed + 23)
    checklist = checklists.find(conn, CHECKLIST_KIND, CHECKLIST_VERSION)
    if checklist is None:
        raise LookupError(f"the {CHECKLIST_KIND} checklist v{CHECKLIST_VERSION} is missing (migration 0018 seeds it)")
    intervals = {str(r): int(d) for r, d in conn.execute(sa.text("SELECT risk_level, days FROM risk_intervals"))}
    buildings = pd.DataFrame(conn.execute(_BUILDINGS).mappings().all())
    if buildings.empty:
        return {"inspections": 0, "hazards": 0, "hazard_events": 0}
    postings = pd.DataFrame(conn.execute(_POSTINGS).mappings().all())
    year = simulate(buildings, Teams(postings, first), checklist["items"], intervals, first, end, rng)
    conn.execute(sa.text("SET LOCAL gridmap.bulk = 'on'"))
    with _foreign_keys_after(conn):
        _store(conn, year, buildings, checklist)
    conn.execute(sa.text("SET LOCAL gridmap.bulk = 'off'"))
    return {
        "inspections": len(year.inspections["at"]),
        "hazards": len(year.hazards),
        "hazard_events": sum(len(h.events) for h, _ in year.hazards),
    }


__all__ = ["CHECKLIST_KIND", "CHECKLIST_VERSION", "Teams", "Year", "add_inspections", "simulate"]
