"""Assessment test data on the mini county, March 2026: grid workers A (grid G1) and B (grid G2) in
town 1, C in town 2 (scope tests), part-timer D in G1; their accounts; incidents with lead holders,
reports, callbacks and send-backs; visits; buildings and inspections; hazards. The rows are kept
as Python lists (``Data``) so that the tests compute each indicator from the same rows directly."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.people.keys import create_key

G1, G2, G_OTHER = "330421001001001", "330421001001002", "330421002001001"
TOWN1, TOWN2 = "330421001", "330421002"
POINT = {G1: (120.905, 30.832), G2: (120.915, 30.832), G_OTHER: (120.925, 30.835)}
MONTH = "2026-03"
NOW = dt.datetime(2026, 4, 10, tzinfo=dt.UTC)
QUOTA = 2


def t(day: int, hour: int = 2, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=dt.UTC)


@dataclass
class Data:
    people: dict[str, int] = field(default_factory=dict)  # A, B, C, D -> id
    postings: dict[str, int] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # account -> headers
    incidents: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)  # send-backs and reopenings
    visits: list[dict] = field(default_factory=list)
    buildings: list[dict] = field(default_factory=list)
    inspections: list[dict] = field(default_factory=list)
    hazards: list[dict] = field(default_factory=list)


# Incidents: reporter (an account's letter, None: a resident), lead (person letter), grid, status,
# reported, deadline, closed, escalated, callbacks (oldest first).
INCIDENTS = [
    dict(rep="A", lead="A", grid=G1, status="closed", rep_at=t(2), deadline=t(4), closed=t(3), esc=False,
         cbs=["dissatisfied", "satisfied"]),
    dict(rep="A", lead="A", grid=G1, status="closed", rep_at=t(3), deadline=t(4), closed=t(6), esc=False,
         cbs=["dissatisfied"]),
    dict(rep="A", lead="B", grid=G2, status="rejected", rep_at=t(4), deadline=t(6), closed=None, esc=False, cbs=[]),
    dict(rep="B", lead="B", grid=G2, status="closed", rep_at=t(5), deadline=t(9), closed=t(8), esc=True,
         cbs=["basically_satisfied"]),
    dict(rep="B", lead="A", grid=G1, status="in_progress", rep_at=t(10), deadline=t(20), closed=None, esc=False,
         cbs=[]),
    dict(rep="A", lead="A", grid=G1, status="dispatched", rep_at=t(12), deadline=t(1, month=5), closed=None,
         esc=False, cbs=[]),
    dict(rep="C", lead="C", grid=G_OTHER, status="closed", rep_at=t(6), deadline=t(9), closed=t(7), esc=False,
         cbs=[]),
    dict(rep=None, lead="B", grid=G2, status="reported", rep_at=t(14), deadline=t(25), closed=None, esc=False,
         cbs=[]),
    dict(rep="A", lead="A", grid=G1, status="closed", rep_at=t(20, month=2), deadline=t(22, month=2),
         closed=t(21, month=2), esc=False, cbs=["dissatisfied"]),
    dict(rep="B", lead="B", grid=G2, status="closed", rep_at=t(15), deadline=t(18), closed=t(17), esc=False,
         cbs=[]),
]  # fmt: skip
# Events on incidents (by index): handled -> in_progress sent back (核查退回), or a reopening.
EVENTS = [
    dict(incident=4, at=t(12), action="send_back"),
    dict(incident=4, at=t(14), action="send_back"),
    dict(incident=3, at=t(7), action="send_back"),
    dict(incident=0, at=t(3, 8), action="reopen"),
    dict(incident=8, at=t(25, month=2), action="send_back"),
]
VISITS = {"A": (G1, 31), "B": (G2, 62), "D": (G1, 5), "C": (G_OTHER, 10)}


def _point(grid: str, dx: float = 0.0) -> dict[str, float]:
    x, y = POINT[grid]
    return {"x": x + dx, "y": y}


def seed(conn: Connection) -> Data:
    d = Data()
    roles = {"A": ("grid_worker", G1), "B": ("grid_worker", G2), "C": ("grid_worker", G_OTHER),
             "D": ("part_time_worker", G1)}  # fmt: skip
    for who, (role, grid) in roles.items():
        pid = conn.execute(sa.text("INSERT INTO people (name) VALUES (:n) RETURNING id"), {"n": f"考核{who}"}).scalar()
        d.people[who] = int(pid)
        d.postings[who] = conn.execute(
            sa.text("INSERT INTO postings (person_id, role, layer, area_code, starts_on) VALUES (:p, :r, 'grid', :a, "
                    "DATE '2020-01-01') RETURNING id"),
            {"p": pid, "r": role, "a": grid},
        ).scalar_one()  # fmt: skip
        scope = TOWN2 if who == "C" else TOWN1
        d.headers[who] = {"X-API-Key": create_key(conn, "reporter", f"acct-{who}", scope, person_id=int(pid))}
    ids = []
    for inc in INCIDENTS:
        x = _point(inc["grid"])
        iid = conn.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, status, deadline_at, closed_at, escalated_at, "
                "escalation_level, geom) VALUES ('other', 'grid_patrol', :r, :s, :dl, :c, :e, :lvl, "
                "ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"
            ),
            {"r": inc["rep_at"], "s": inc["status"], "dl": inc["deadline"], "c": inc["closed"],
             "e": inc["rep_at"] + dt.timedelta(hours=1) if inc["esc"] else None,
             "lvl": "village" if inc["esc"] else "grid", **x},
        ).scalar_one()  # fmt: skip
        ids.append(iid)
        actor = f"acct-{inc['rep']}" if inc["rep"] else "resident-app"
        conn.execute(
            sa.text("INSERT INTO incident_events (incident_id, at, actor, action, to_status) "
                    "VALUES (:i, :at, :a, 'report', 'reported')"),
            {"i": iid, "at": inc["rep_at"], "a": actor},
        )  # fmt: skip
        conn.execute(
            sa.text("INSERT INTO incident_assignments (incident_id, kind, role, person_id, state, offered_at, "
                    "offered_by) VALUES (:i, 'dispatch', 'lead', :p, 'accepted', :at, 'tests')"),
            {"i": iid, "p": d.people[inc["lead"]], "at": inc["rep_at"]},
        )  # fmt: skip
        for n, result in enumerate(inc["cbs"]):
            conn.execute(
                sa.text("INSERT INTO incident_callbacks (incident_id, at, result, actor) VALUES (:i, :at, :r, 'cb')"),
                {"i": iid, "at": (inc["closed"] or inc["rep_at"]) + dt.timedelta(hours=1 + n), "r": result},
            )
        d.incidents.append({**inc, "id": iid})
    for ev in EVENTS:
        conn.execute(
            sa.text("INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status) "
                    "VALUES (:i, :at, 'verifier', :a, 'handled', 'in_progress')"),
            {"i": ids[ev["incident"]], "at": ev["at"], "a": ev["action"]},
        )  # fmt: skip
        d.events.append({**ev, "incident_id": ids[ev["incident"]]})
    _fieldwork(conn, d)
    return d


def _building(conn: Connection, d: Data, grid: str, n: int, **attrs: object) -> int:
    row = {"grid": grid, "next_on": None, "rental": False, "last_insp": None, **attrs}
    bid = conn.execute(
        sa.text("INSERT INTO buildings (code, households, is_rental, next_inspection_on, last_inspected_at, geom) "
                "VALUES (:c, 2, :r, :n, :li, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"),
        {"c": f"AS-{grid[-3:]}-{n}", "r": row["rental"], "n": row["next_on"], "li": row["last_insp"],
         **_point(grid, 0.0005 * n)},
    ).scalar_one()  # fmt: skip
    d.buildings.append({**row, "id": bid})
    return int(bid)


def _fieldwork(conn: Connection, d: Data) -> None:
    b1 = _building(conn, d, G1, 1, next_on=dt.date(2026, 9, 1), last_insp=t(8))
    _building(conn, d, G1, 2, next_on=dt.date(2026, 3, 20))
    _building(conn, d, G1, 3, next_on=dt.date(2026, 6, 1))
    _building(conn, d, G1, 4, rental=True)
    b5 = _building(conn, d, G2, 5, next_on=dt.date(2026, 9, 1), last_insp=t(9))
    _building(conn, d, G2, 6, next_on=dt.date(2026, 2, 1))
    checklist = conn.execute(sa.text("SELECT id FROM checklists ORDER BY id LIMIT 1")).scalar_one()
    inspection = {}
    for who, building, at in (("A", b1, t(8)), ("B", b5, t(9)), ("A", b1, t(2, month=4))):
        iid = conn.execute(
            sa.text("INSERT INTO inspections (building_id, checklist_id, at, outcome, risk_level, actor) "
                    "VALUES (:b, :c, :at, 'fail', 'medium', :a) RETURNING id"),
            {"b": building, "c": checklist, "at": at, "a": f"acct-{who}"},
        ).scalar_one()  # fmt: skip
        conn.execute(sa.text("INSERT INTO inspection_inspectors VALUES (:i, :p)"), {"i": iid, "p": d.postings[who]})
        d.inspections.append({"id": iid, "building": building, "at": at, "who": who})
        inspection.setdefault(who, iid)
    hazards = [
        dict(grid=G1, by="acct-A", insp=None, due=t(10), done=t(9)),
        dict(grid=G1, by="acct-A", insp=None, due=t(15), done=t(20)),
        dict(grid=G1, by="inspector-x", insp=inspection["A"], due=t(25), done=None),
        dict(grid=G2, by="acct-B", insp=None, due=t(5, month=4), done=None),
        dict(grid=G2, by="acct-B", insp=None, due=t(31, 4), done=t(31, 1)),
    ]
    for h in hazards:
        hid = conn.execute(
            sa.text("INSERT INTO hazards (category, severity, status, found_at, rectify_by, rectified_at, "
                    "reported_by, inspection_id, geom) VALUES ('gas', 'high', :s, :f, :due, :done, :by, :insp, "
                    "ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"),
            {"s": "rectified" if h["done"] else "rectifying", "f": t(1), "due": h["due"], "done": h["done"],
             "by": h["by"], "insp": h["insp"], **_point(h["grid"])},
        ).scalar_one()  # fmt: skip
        d.hazards.append({**h, "id": hid})
    for who, (grid, count) in VISITS.items():
        for n in range(count):
            at = t(1 + n % 31, 3)
            conn.execute(
                sa.text("INSERT INTO visits (client_id, person_id, building_id, kind, at, recorded_by, geom) "
                        "VALUES (:c, :p, :b, 'routine', :at, 'tests', ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
                {"c": f"{who}-{n}", "p": d.people[who], "b": b1, "at": at, **_point(grid)},
            )  # fmt: skip
            d.visits.append({"who": who, "grid": grid, "at": at})
        # one visit in April: outside the month
        conn.execute(
            sa.text("INSERT INTO visits (client_id, person_id, building_id, kind, at, recorded_by, geom) "
                    "VALUES (:c, :p, :b, 'routine', :at, 'tests', ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
            {"c": f"{who}-april", "p": d.people[who], "b": b1, "at": t(1, 3, month=4), **_point(grid)},
        )  # fmt: skip
        d.visits.append({"who": who, "grid": grid, "at": t(1, 3, month=4)})
