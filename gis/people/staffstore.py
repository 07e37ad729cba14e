"""Writing an imported staff file (gis.people.staffimport): what is stored already for its people,
and the inserts and updates, one statement per table.

A person is matched by ID card number, else by name and phone; a posting by person, role, area
and start day. New people get ids first (so their postings can name them), then everyone is
inserted with one ``unnest`` statement per table: one statement-level NOTIFY (migration 0011),
and 8,000 postings in about a second.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.bulk import ImportResult
from gis.people.rules import EXCLUSIVE_ROLES


@dataclass
class PostingRow:
    """One good row of a staff file: the person and the posting."""

    position: int
    person: tuple[str, ...]  # identity: ("id", card) or ("np", name, phone)
    name: str
    phone: str | None
    id_card: str | None
    status: str
    role: str
    layer: str
    area_code: str
    org_unit: int | None
    starts_on: dt.date
    ends_on: dt.date | None
    note: str


@dataclass
class Stored:
    people: dict[tuple[str, ...], dict[str, Any]]
    postings: dict[tuple[Any, ...], dict[str, Any]]  # (person_id, role, layer, area, starts_on) -> row
    holders: dict[tuple[str, str, str], list[dict[str, Any]]]  # one-holder postings by (role, layer, area)


def read_stored(conn: Connection, rows: list[PostingRow]) -> Stored:
    """The people the rows name, their postings, and the holders of one-holder roles of the rows' areas."""
    cards = sorted({r.id_card for r in rows if r.id_card})
    pairs = {(r.name, r.phone or "") for r in rows if not r.id_card}
    people: dict[tuple[str, ...], dict[str, Any]] = {}
    for p in conn.execute(
        sa.text(
            "SELECT id, name, phone, id_card, status FROM people WHERE id_card = ANY(:cards) "
            "OR (id_card IS NULL AND name = ANY(:names)) ORDER BY id"
        ),
        {"cards": cards, "names": sorted({n for n, _ in pairs})},
    ):
        key = ("id", p.id_card) if p.id_card else ("np", p.name, p.phone or "")
        people.setdefault(key, dict(p._mapping))
    ids = [p["id"] for p in people.values()]
    postings = {
        (r.person_id, r.role, r.layer, r.area_code, r.starts_on): dict(r._mapping)
        for r in conn.execute(
            sa.text(
                "SELECT id, person_id, role, layer, area_code, starts_on, ends_on, org_unit_id, note "
                "FROM postings WHERE person_id = ANY(:ids)"
            ),
            {"ids": ids},
        )
    }
    areas = sorted({r.area_code for r in rows if r.role in EXCLUSIVE_ROLES})
    holders: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for h in conn.execute(
        sa.text(
            "SELECT po.id, po.person_id, pe.name, po.role, po.layer, po.area_code, po.starts_on, po.ends_on "
            "FROM postings po JOIN people pe ON pe.id = po.person_id "
            "WHERE po.role = ANY(:roles) AND po.area_code = ANY(:areas)"
        ),
        {"roles": sorted(EXCLUSIVE_ROLES), "areas": areas},
    ):
        holders.setdefault((h.role, h.layer, h.area_code), []).append(dict(h._mapping))
    return Stored(people, postings, holders)


def store_rows(conn: Connection, rows: list[PostingRow], stored: Stored, result: ImportResult) -> None:
    """Insert the new people and postings, update changed ones; counts go into ``result``."""
    people = stored.people
    new_people: list[PostingRow] = []
    changed_people: dict[int, PostingRow] = {}
    for r in rows:
        found = people.get(r.person)
        if found is None:
            placeholder = {"id": None, "name": r.name, "phone": r.phone, "id_card": r.id_card, "status": r.status}
            people[r.person] = placeholder
            new_people.append(r)
        elif found["id"] is not None and (found["name"], found["phone"], found["status"]) != (
            r.name,
            r.phone,
            r.status,
        ):
            changed_people[found["id"]] = r
    if new_people:
        ids = (
            conn.execute(
                sa.text("SELECT nextval(pg_get_serial_sequence('people', 'id')) FROM generate_series(1, :n)"),
                {"n": len(new_people)},
            )
            .scalars()
            .all()
        )
        for r, new_id in zip(new_people, ids, strict=True):
            people[r.person]["id"] = int(new_id)
        added = [people[r.person] for r in new_people]
        # One statement (unnest) rather than one per row: a single statement-level NOTIFY, and fast.
        conn.execute(
            sa.text(
                "INSERT INTO people (id, name, phone, id_card, status) SELECT * FROM unnest("
                "CAST(:id AS bigint[]), CAST(:name AS text[]), CAST(:phone AS text[]), CAST(:id_card AS text[]), "
                "CAST(:status AS text[]))"
            ),
            {k: [p[k] for p in added] for k in ("id", "name", "phone", "id_card", "status")},
        )
    if changed_people:
        conn.execute(
            sa.text("UPDATE people SET name = :n, phone = :p, status = :s WHERE id = :id"),
            [{"id": k, "n": r.name, "p": r.phone, "s": r.status} for k, r in changed_people.items()],
        )
    inserts, updates = [], []
    for r in rows:
        pid = people[r.person]["id"]
        values = {
            "p": pid, "r": r.role, "l": r.layer, "c": r.area_code, "u": r.org_unit,
            "s": r.starts_on, "e": r.ends_on, "n": r.note,
        }  # fmt: skip
        old = stored.postings.get((pid, r.role, r.layer, r.area_code, r.starts_on))
        if old is None:
            inserts.append(values)
            stored.postings[(pid, r.role, r.layer, r.area_code, r.starts_on)] = {"id": None, **values}
        elif (old.get("ends_on"), old.get("org_unit_id"), old.get("note")) != (r.ends_on, r.org_unit, r.note):
            if old.get("id") is not None:
                updates.append({"id": old["id"], "e": r.ends_on, "u": r.org_unit, "n": r.note})
        else:
            result.already_stored += 1
    if inserts:
        conn.execute(
            sa.text(
                "INSERT INTO postings (person_id, role, layer, area_code, org_unit_id, starts_on, ends_on, note) "
                "SELECT * FROM unnest(CAST(:p AS bigint[]), CAST(:r AS text[]), CAST(:l AS text[]), "
                "CAST(:c AS text[]), CAST(:u AS integer[]), CAST(:s AS date[]), CAST(:e AS date[]), CAST(:n AS text[]))"
            ),
            {k: [v[k] for v in inserts] for k in ("p", "r", "l", "c", "u", "s", "e", "n")},
        )
    if updates:
        conn.execute(sa.text("UPDATE postings SET ends_on = :e, org_unit_id = :u, note = :n WHERE id = :id"), updates)
    result.inserted = len(inserts)
    result.notes.append(
        f"{len(new_people)} people added, {len(changed_people)} updated; {len(updates)} postings updated"
    )
