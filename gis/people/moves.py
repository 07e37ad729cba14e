"""Postings that follow a boundary redraw: which posting goes where, and applying that.

When a redraw deletes, splits or merges a unit, the people posted to it follow it to its
successors (boundaries/successors.py). This module decides, from the successors and the
planner's decisions (boundaries/postingplan.py), one ``Move`` per affected posting, and applies
the moves through gis.people.write, so the one-holder rules and the audit apply as for any other
change. History is kept: a move ends the old posting the day before the publish day and opens a
new one on the successor from the publish day.

The proposal, without decisions: a posting on a unit that survives stays; a posting on a unit
that goes moves to its main successor (the largest overlap; for a merge the merged unit), the
others being listed as alternatives. A one-holder role (a grid leader) whose successor already
has its holder is proposed to end, not to clash. A unit with no successor at all ends its
postings. Only postings of active people that are open on the publish day are moved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from gis.core.privacy import mask_staff
from gis.people.rules import EXCLUSIVE_ROLES, ROLE_LABELS, ROLE_LAYERS, TEAM_ORDER
from gis.people.write import add_posting, end_posting
from gis.spatial.areas import Conn


@dataclass(frozen=True)
class Posting:
    id: int
    person_id: int
    name: str
    phone: str | None
    role: str
    layer: str
    area_code: str
    org_unit: str | None
    starts_on: dt.date
    ends_on: dt.date | None


@dataclass(frozen=True)
class Decision:
    """A planner's entry in a draft: ``move`` or ``end`` a posting, or ``add`` a person to a unit."""

    id: int
    action: str
    posting_id: int | None = None
    person_id: int | None = None
    role: str | None = None
    to_code: str | None = None


@dataclass
class Move:
    action: str  # "move" | "end" | "add"
    role: str
    person_id: int
    name: str
    phone: str | None
    from_code: str | None  # None for an added posting
    to_code: str | None  # None when the posting ends
    posting_id: int | None
    source: str  # "proposed" | "planner"
    reason: str
    alternatives: list[str] = field(default_factory=list)
    entry_id: int | None = None
    problem: str | None = None  # why it cannot be applied; blocks publishing
    starts_on: dt.date | None = None  # of the posting moved
    ends_on: dt.date | None = None
    org_unit: str | None = None

    def to_dict(self, sees_personal_data: bool) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("starts_on", "ends_on", "org_unit")}
        out["role_label"] = ROLE_LABELS.get(self.role, self.role)
        return mask_staff(out, sees_personal_data)


def open_postings(conn: Conn, layer: str, codes: Iterable[str], on: dt.date) -> list[Posting]:
    """Postings of active people on ``codes`` of ``layer`` not ended before ``on``."""
    rows = conn.execute(
        sa.text(
            "SELECT po.id, po.person_id, pe.name, pe.phone, po.role, po.layer, po.area_code, ou.code AS org_unit, "
            "po.starts_on, po.ends_on FROM postings po JOIN people pe ON pe.id = po.person_id "
            "LEFT JOIN org_units ou ON ou.id = po.org_unit_id "
            "WHERE po.layer = :layer AND po.area_code = ANY(:codes) AND pe.status = 'active' "
            "AND (po.ends_on IS NULL OR po.ends_on >= :on) ORDER BY po.id"
        ),
        {"layer": layer, "codes": sorted(set(codes)), "on": on},
    ).all()
    return [Posting(*r) for r in rows]


def people(conn: Conn, ids: Iterable[int]) -> dict[int, Mapping[str, Any]]:
    rows = conn.execute(
        sa.text("SELECT id, name, phone, status FROM people WHERE id = ANY(:ids)"), {"ids": sorted(set(ids))}
    ).all()
    return {int(r.id): dict(r._mapping) for r in rows}


def _move(p: Posting, action: str, to_code: str | None, source: str, reason: str, **extra: Any) -> Move:
    return Move(
        action,
        p.role,
        p.person_id,
        p.name,
        p.phone,
        p.area_code,
        to_code,
        p.id,
        source,
        reason,
        starts_on=p.starts_on,
        ends_on=p.ends_on,
        org_unit=p.org_unit,
        **extra,
    )


def plan_moves(
    layer: str,
    successors: Mapping[str, Sequence[str]],
    draft_codes: set[str],
    postings: Sequence[Posting],
    decisions: Sequence[Decision],
    persons: Mapping[int, Mapping[str, Any]],
) -> tuple[list[Move], list[str]]:
    """The moves, and problems with decisions that no longer fit the draft (both block publishing
    when they carry a problem). ``successors``: old code -> draft codes, main first; ``postings``:
    the open postings on the old and draft units."""
    by_id = {p.id: p for p in postings}
    problems: list[str] = []
    leaving = {d.posting_id for d in decisions if d.posting_id in by_id}
    # Holders of one-holder roles after the redraw, per (role, unit): first those who stay.
    slots: dict[tuple[str, str], str] = {}
    for p in postings:
        if p.role in EXCLUSIVE_ROLES and p.area_code in draft_codes and p.id not in leaving:
            slots.setdefault((p.role, p.area_code), f"posting {p.id} ({p.name})")
    moves: list[Move] = []

    def take(move: Move, code: str) -> None:
        holder = slots.get((move.role, code)) if move.role in EXCLUSIVE_ROLES else None
        if holder is not None:
            move.problem = f"{layer} {code} would have two {move.role}s: {holder} and {move.name}"
        elif move.role in EXCLUSIVE_ROLES:
            slots[(move.role, code)] = f"posting {move.posting_id or 'planned'} ({move.name})"

    for d in decisions:
        if d.action == "add":
            person = persons.get(d.person_id or 0)
            name = str(person["name"]) if person else "?"
            add = Move(
                action="add",
                role=d.role or "",
                person_id=d.person_id or 0,
                name=name,
                phone=person["phone"] if person else None,
                from_code=None,
                to_code=d.to_code,
                posting_id=None,
                source="planner",
                reason="posted by the planner",
                entry_id=d.id,
            )
            if person is None or person["status"] != "active":
                add.problem = f"entry {d.id}: person {d.person_id} is {'not known' if person is None else 'gone'}"
            elif layer not in ROLE_LAYERS.get(add.role, ()):
                add.problem = f"entry {d.id}: a {add.role} is not posted to a {layer}"
            elif d.to_code not in draft_codes:
                add.problem = f"entry {d.id}: {d.to_code} is not a unit of the draft"
            else:
                take(add, str(d.to_code))
            moves.append(add)
            continue
        decided = by_id.get(d.posting_id or 0)
        if decided is None:
            problems.append(f"entry {d.id}: posting {d.posting_id} is no longer open on a {layer} of the draft")
            continue
        if d.action == "end":
            moves.append(_move(decided, "end", None, "planner", "ended by the planner", entry_id=d.id))
            continue
        move = _move(decided, "move", d.to_code, "planner", "moved by the planner", entry_id=d.id)
        if d.to_code not in draft_codes:
            move.problem = f"entry {d.id}: {d.to_code} is not a unit of the draft"
        elif d.to_code == decided.area_code:
            move.problem = f"entry {d.id}: posting {decided.id} is already on {decided.area_code}"
        else:
            take(move, str(d.to_code))
        moves.append(move)

    gone = [p for p in postings if p.area_code not in draft_codes and p.id not in leaving]
    gone.sort(key=lambda p: (TEAM_ORDER.get(p.role, 99), p.starts_on, p.id))
    for p in gone:
        heirs = list(successors.get(p.area_code, []))
        if not heirs:
            moves.append(_move(p, "end", None, "proposed", f"{p.area_code} is deleted and has no successor"))
            continue
        main, others = heirs[0], heirs[1:]
        holder = slots.get((p.role, main)) if p.role in EXCLUSIVE_ROLES else None
        if holder is not None:
            reason = f"{main} keeps its {p.role}, {holder}; decide to move this posting elsewhere or end it"
            moves.append(_move(p, "end", None, "proposed", reason, alternatives=heirs))
            continue
        why = f"{p.area_code} is split; {main} has the largest part" if others else f"{p.area_code} goes into {main}"
        move = _move(p, "move", main, "proposed", why, alternatives=others)
        take(move, main)
        moves.append(move)
    return moves, problems


def roles_by_unit(postings: Iterable[Posting], on: dt.date) -> dict[str, set[str]]:
    """Roles in force on ``on`` per unit."""
    out: dict[str, set[str]] = {}
    for p in postings:
        if p.starts_on <= on and (p.ends_on is None or p.ends_on >= on):
            out.setdefault(p.area_code, set()).add(p.role)
    return out


def roles_after(postings: Sequence[Posting], moves: Sequence[Move], on: dt.date) -> dict[str, set[str]]:
    """Roles in force on ``on`` per unit once the moves are applied."""
    leaving = {m.posting_id for m in moves if m.posting_id is not None and m.action in ("move", "end")}
    out = roles_by_unit([p for p in postings if p.id not in leaving], on)
    for m in moves:
        if m.to_code is not None and m.problem is None:
            out.setdefault(m.to_code, set()).add(m.role)
    return out


def apply_moves(conn: Conn, actor: str, layer: str, moves: Sequence[Move], day: dt.date, why: str) -> list[dict]:
    """End the moved and ended postings the day before ``day``, then open the new postings from
    ``day`` (ends before starts, so a swap of one-holder roles fits). Returns what was written."""
    done: list[dict[str, Any]] = []
    for m in moves:
        if m.action in ("move", "end") and m.posting_id is not None:
            # A posting that only starts on the publish day or later ends on its first day (no
            # posting is empty): it is history, not deleted.
            last = max(m.starts_on or day, day - dt.timedelta(days=1))
            end_posting(conn, actor, m.posting_id, last)
            done.append({"action": "end", "posting": m.posting_id, "ends_on": last.isoformat()})
    for m in moves:
        if m.to_code is None:
            continue
        starts = max(day, m.starts_on or day)
        note = f"{why}: from {m.from_code}" if m.from_code else f"{why}: posted by the planner"
        data = {"role": m.role, "layer": layer, "area_code": m.to_code, "starts_on": starts, "note": note}
        if m.action == "move":
            data.update(ends_on=m.ends_on, org_unit=m.org_unit)
        new = add_posting(conn, actor, m.person_id, data)
        done.append({"action": "start", "posting": new["id"], "from_posting": m.posting_id, "to": m.to_code})
    return done
