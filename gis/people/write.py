"""Changes to people and postings, one at a time (the API's /staff): create a person, change a
person, add a posting, change a posting's dates or note, end a posting. Every change is audited.

History is kept: a posting is never deleted or moved; ending it sets its last day. Moving
someone to another area is ending one posting and adding another. Marking a person as left ends
their open postings. Each check raises ``PeopleInputError`` naming the field, before anything is
written; the bulk import (gis.people.staffimport) applies the same rules to whole files.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from gis.core import audit
from gis.people.rules import (
    EXCLUSIVE_ROLES,
    PeopleInputError,
    check_date,
    check_id_card,
    check_layer,
    check_name,
    check_period,
    check_phone,
    check_role,
    check_role_layer,
    check_status,
    county_today,
    jsonable,
)
from gis.spatial.areas import IN_GENERATION, Conn, current_generation


class NotFoundError(LookupError):
    """No person, posting or unit with that id or code."""


PERSON_COLUMNS = "id, name, phone, id_card, status"
POSTING_COLUMNS = (
    "po.id, po.person_id, pe.name, pe.phone, pe.id_card, pe.status, po.role, po.layer, po.area_code, "
    "ou.code AS org_unit, po.starts_on, po.ends_on, po.note"
)
POSTING_FROM = "postings po JOIN people pe ON pe.id = po.person_id LEFT JOIN org_units ou ON ou.id = po.org_unit_id"


def area_layers(conn: Conn, codes: list[str]) -> dict[str, list[str]]:
    """Code -> the layers it is a unit of, under the generation in force now."""
    generation = current_generation(conn)
    if generation is None or not codes:
        return {}
    rows = conn.execute(
        sa.text(f"SELECT code, layer FROM areas WHERE code = ANY(:codes) AND {IN_GENERATION}"),  # noqa: S608
        {"codes": sorted(set(codes)), "g": generation},
    ).all()
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r.code, []).append(r.layer)
    return out


def resolve_area(conn: Conn, layer: str | None, code: object) -> tuple[str, str]:
    """The (layer, code) of an area in force now; ``layer`` may be left out when the code says it."""
    text = str(code).strip() if code is not None else ""
    if not text:
        raise PeopleInputError("area_code", code, "is required")
    layers = area_layers(conn, [text]).get(text, [])
    if layer is not None:
        if layer not in layers:
            raise PeopleInputError("area_code", code, f"no {layer} with code {text!r} in the boundaries in force")
        return layer, text
    if not layers:
        raise PeopleInputError("area_code", code, f"no area with code {text!r} in the boundaries in force")
    if len(layers) > 1:
        raise PeopleInputError("layer", None, f"code {text!r} names a {' and a '.join(layers)}: give the layer")
    return layers[0], text


def org_unit_id(conn: Conn, code: object) -> int | None:
    if code is None or not str(code).strip():
        return None
    found = conn.execute(sa.text("SELECT id FROM org_units WHERE code = :c"), {"c": str(code).strip()}).scalar()
    if found is None:
        raise PeopleInputError("org_unit", code, f"no organisation unit with code {code!r}")
    return int(found)


def get_person(conn: Conn, person_id: int) -> dict[str, Any]:
    row = conn.execute(
        sa.text(f"SELECT {PERSON_COLUMNS} FROM people WHERE id = :id"),  # noqa: S608
        {"id": person_id},
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no person with id {person_id}")
    return dict(row._mapping)


def get_posting(conn: Conn, posting_id: int) -> dict[str, Any]:
    row = conn.execute(
        sa.text(f"SELECT {POSTING_COLUMNS} FROM {POSTING_FROM} WHERE po.id = :id"),  # noqa: S608
        {"id": posting_id},
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no posting with id {posting_id}")
    return dict(row._mapping)


def _id_card_free(conn: Conn, id_card: str | None, person_id: int | None = None) -> None:
    if id_card is None:
        return
    holder = conn.execute(sa.text("SELECT id FROM people WHERE id_card = :i"), {"i": id_card}).scalar()
    if holder is not None and holder != person_id:
        raise PeopleInputError("id_card", id_card, f"already recorded for person {holder}")


def create_person(
    conn: Conn, actor: str, *, name: object, phone: object = None, id_card: object = None, status: object = None
) -> dict[str, Any]:
    values = {
        "name": check_name(name),
        "phone": check_phone(phone),
        "id_card": check_id_card(id_card),
        "status": check_status(status),
    }
    _id_card_free(conn, values["id_card"])
    new_id = conn.execute(
        sa.text(
            "INSERT INTO people (name, phone, id_card, status) VALUES (:name, :phone, :id_card, :status) RETURNING id"
        ),
        values,
    ).scalar_one()
    audit.record(conn, actor, "person.create", f"person:{new_id}", name=values["name"])
    return get_person(conn, int(new_id))


def update_person(conn: Conn, actor: str, person_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Change name, phone, ID card number or status; ``left`` ends the open postings today."""
    before = get_person(conn, person_id)
    checkers = {"name": check_name, "phone": check_phone, "id_card": check_id_card, "status": check_status}
    values = {k: checkers[k](v) for k, v in changes.items() if k in checkers}
    if "id_card" in values:
        _id_card_free(conn, values["id_card"], person_id)
    if values:
        sets = ", ".join(f"{k} = :{k}" for k in values)
        conn.execute(sa.text(f"UPDATE people SET {sets} WHERE id = :id"), {**values, "id": person_id})  # noqa: S608
    ended: list[int] = []
    if values.get("status") == "left" and before["status"] != "left":
        today = county_today()
        ended = list(
            conn.execute(
                sa.text(
                    "UPDATE postings SET ends_on = greatest(starts_on, :d) "
                    "WHERE person_id = :id AND (ends_on IS NULL OR ends_on > :d) RETURNING id"
                ),
                {"id": person_id, "d": today},
            ).scalars()
        )
    changed = {k: v for k, v in values.items() if before.get(k) != v}
    audit.record(conn, actor, "person.update", f"person:{person_id}", fields=sorted(changed), ended_postings=ended)
    return get_person(conn, person_id)


def check_overlap(
    conn: Conn, role: str, layer: str, code: str, starts_on: dt.date, ends_on: dt.date | None, skip: int | None = None
) -> None:
    """For one-holder roles: no other posting of the role over the area shares a day with this one."""
    if role not in EXCLUSIVE_ROLES:
        return
    # Serialises writers of the same (role, area) so that two requests cannot both pass the check.
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"posting:{role}:{layer}:{code}"})
    clash = conn.execute(
        sa.text(
            "SELECT po.id, pe.name, po.starts_on, po.ends_on FROM postings po JOIN people pe ON pe.id = po.person_id "
            "WHERE po.role = :role AND po.layer = :layer AND po.area_code = :code "
            "AND (CAST(:skip AS bigint) IS NULL OR po.id <> :skip) "
            "AND po.starts_on <= coalesce(CAST(:e AS date), 'infinity'::date) "
            "AND coalesce(po.ends_on, 'infinity'::date) >= :s ORDER BY po.starts_on LIMIT 1"
        ),
        {"role": role, "layer": layer, "code": code, "skip": skip, "s": starts_on, "e": ends_on},
    ).one_or_none()
    if clash is not None:
        until = clash.ends_on.isoformat() if clash.ends_on else "open end"
        raise PeopleInputError(
            "role",
            role,
            f"{layer} {code} already has a {role} in that period: posting {clash.id} "
            f"({clash.name}, {clash.starts_on.isoformat()} to {until}); end it first",
        )


def add_posting(conn: Conn, actor: str, person_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Post a person: role, area (layer optional when the code says it), starts_on (default
    today), ends_on, org_unit (code), note."""
    person = get_person(conn, person_id)
    role = check_role(data.get("role"))
    layer, code = resolve_area(conn, check_layer(data.get("layer"), required=False), data.get("area_code"))
    check_role_layer(role, layer)
    starts_on = check_date("starts_on", data.get("starts_on")) or county_today()
    ends_on = check_date("ends_on", data.get("ends_on"))
    check_period(starts_on, ends_on)
    if person["status"] == "left" and (ends_on is None or ends_on >= county_today()):
        raise PeopleInputError("person_id", person_id, "the person has left; set their status to active first")
    unit = org_unit_id(conn, data.get("org_unit"))
    check_overlap(conn, role, layer, code, starts_on, ends_on)
    new_id = conn.execute(
        sa.text(
            "INSERT INTO postings (person_id, role, layer, area_code, org_unit_id, starts_on, ends_on, note) "
            "VALUES (:p, :r, :l, :c, :u, :s, :e, :n) RETURNING id"
        ),
        {
            "p": person_id,
            "r": role,
            "l": layer,
            "c": code,
            "u": unit,
            "s": starts_on,
            "e": ends_on,
            "n": str(data.get("note") or ""),
        },
    ).scalar_one()
    posting = get_posting(conn, int(new_id))
    audit.record(conn, actor, "posting.create", f"posting:{new_id}", **jsonable(_brief(posting)))
    return posting


def change_posting(conn: Conn, actor: str, posting_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Correct a posting's dates, organisation unit or note (the audit keeps the old values)."""
    before = get_posting(conn, posting_id)
    values: dict[str, Any] = {}
    if "starts_on" in data:
        values["starts_on"] = check_date("starts_on", data["starts_on"], required=True)
    if "ends_on" in data:
        values["ends_on"] = check_date("ends_on", data["ends_on"])
    if "org_unit" in data:
        values["org_unit_id"] = org_unit_id(conn, data["org_unit"])
    if "note" in data:
        values["note"] = str(data["note"] or "")
    for field in ("role", "layer", "area_code", "person_id"):
        if field in data and data[field] != before.get(field):
            raise PeopleInputError(field, data[field], "a posting keeps its person, role and area: end it, add another")
    starts_on = values.get("starts_on", before["starts_on"])
    ends_on = values.get("ends_on", before["ends_on"])
    check_period(starts_on, ends_on)
    check_overlap(conn, before["role"], before["layer"], before["area_code"], starts_on, ends_on, skip=posting_id)
    if values:
        sets = ", ".join(f"{k} = :{k}" for k in values)
        conn.execute(sa.text(f"UPDATE postings SET {sets} WHERE id = :id"), {**values, "id": posting_id})  # noqa: S608
    after = get_posting(conn, posting_id)
    changed = {k: {"from": before[k], "to": after[k]} for k in after if before.get(k) != after[k]}
    audit.record(conn, actor, "posting.update", f"posting:{posting_id}", **jsonable(changed))
    return after


def end_posting(conn: Conn, actor: str, posting_id: int, ends_on: object = None) -> dict[str, Any]:
    """Set a posting's last day (default today); an already ended posting may only end earlier."""
    before = get_posting(conn, posting_id)
    last = check_date("ends_on", ends_on) or county_today()
    check_period(before["starts_on"], last)
    if before["ends_on"] is not None and before["ends_on"] < last:
        raise PeopleInputError("ends_on", last.isoformat(), f"the posting already ended on {before['ends_on']}")
    conn.execute(sa.text("UPDATE postings SET ends_on = :e WHERE id = :id"), {"e": last, "id": posting_id})
    audit.record(conn, actor, "posting.end", f"posting:{posting_id}", ends_on=last.isoformat())
    return get_posting(conn, posting_id)


def _brief(posting: dict[str, Any]) -> dict[str, Any]:
    keys = ("person_id", "role", "layer", "area_code", "org_unit", "starts_on", "ends_on")
    return {k: posting[k] for k in keys}
