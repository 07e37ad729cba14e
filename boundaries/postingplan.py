"""The people in a boundary draft: which postings the redraw moves, the planner's decisions about
them (``draft_postings``, migration 0012), and the staffing check of the validation report.

``posting_plan`` proposes, from the successors of the units the draft deletes, splits or merges
(boundaries/successors.py), where each of their open postings goes (gis/people/moves.py), with
the planner's decisions applied: ``decide`` moves a posting to another unit of the draft, ends it,
or posts a person to a unit of the draft from the publish day. The impact preview shows the plan;
publishing applies it in its own transaction (boundaries/publish.py).

The staffing check (grid drafts): after the plan, a grid of the draft without an active grid
leader or full-time grid worker is an error when one of its predecessors (the grids in force it
takes area from, and its own code) had one on the publish day, so the publish would leave it
without; a gap the grid already had is a warning, as is a grid without auxiliary police. A
county whose grids have no postings at all (no roster loaded) cannot be checked: one warning says
so, and the per-grid ``no_staff`` warnings stay.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import sqlalchemy as sa

from boundaries.drafts import DraftError, DraftInfo, base_features, get_draft, load_features, require_open
from boundaries.findings import Finding, _finding
from boundaries.successors import Lineage, lineage
from gis.core import audit
from gis.people import moves as pm
from gis.people.rules import ROLE_LABELS, ROLE_LAYERS, check_role, county_today
from gis.spatial.areas import Conn

# The roles every grid needs (errors when a redraw takes them away), and the one it should have.
REQUIRED_ROLES = ("grid_leader", "grid_worker")
WANTED_ROLES = ("aux_police",)
ACTIONS = ("move", "end", "add")


class PlanError(DraftError):
    """A decision that cannot be recorded; the message names the field and the value (HTTP 422)."""


@dataclass
class PostingPlan:
    info: DraftInfo
    day: dt.date
    lineage: Lineage
    postings: list[pm.Posting]
    moves: list[pm.Move]
    problems: list[str]

    def to_dict(self, sees_personal_data: bool) -> dict[str, Any]:
        affected = sorted(
            code for code, heirs in self.lineage.successors.items() if code in self.lineage.removed or len(heirs) > 1
        )
        return {
            "draft_id": self.info.id,
            "layer": self.info.layer,
            "status": self.info.status,
            "effective_day": self.day.isoformat(),
            "successors": {c: [s.to_dict() for s in self.lineage.successors[c]] for c in affected},
            "deleted_without_successor": sorted(set(self.lineage.removed) - set(self.lineage.successors)),
            "moves": [m.to_dict(sees_personal_data) for m in self.moves],
            "problems": self.problems + [m.problem for m in self.moves if m.problem],
        }


def decisions(conn: Conn, draft_id: int) -> list[pm.Decision]:
    rows = conn.execute(
        sa.text(
            "SELECT id, action, posting_id, person_id, role, to_code FROM draft_postings "
            "WHERE draft_id = :d ORDER BY id"
        ),
        {"d": draft_id},
    ).all()
    return [pm.Decision(*r) for r in rows]


def posting_plan(
    conn: Conn,
    draft_id: int,
    *,
    day: dt.date | None = None,
    features: gpd.GeoDataFrame | None = None,
    base: gpd.GeoDataFrame | None = None,
) -> PostingPlan:
    """The proposed and decided posting moves of a draft, for publishing on ``day`` (default today)."""
    info = get_draft(conn, draft_id)
    day = day or county_today()
    features = load_features(conn, draft_id) if features is None else features
    base = base_features(conn, info) if base is None else base
    lin = lineage(base, features)
    postings = pm.open_postings(conn, info.layer, set(base["code"]) | lin.draft_codes, day)
    entries = decisions(conn, draft_id)
    persons = pm.people(conn, [d.person_id for d in entries if d.person_id is not None])
    heirs = {code: [s.code for s in found] for code, found in lin.successors.items()}
    moves, problems = pm.plan_moves(info.layer, heirs, lin.draft_codes, postings, entries, persons)
    return PostingPlan(info, day, lin, postings, moves, problems)


def decide(
    conn: Conn,
    draft_id: int,
    *,
    actor: str,
    action: str,
    posting_id: int | None = None,
    to_code: str | None = None,
    person_id: int | None = None,
    role: str | None = None,
) -> dict[str, Any]:
    """Record a decision: ``move`` posting_id to to_code, ``end`` posting_id, or ``add`` person_id as
    role on to_code. A new decision about a posting replaces the earlier one."""
    info = require_open(conn, draft_id, lock=True)
    if action not in ACTIONS:
        raise PlanError(f"action: {action!r} is not one of {', '.join(ACTIONS)}")
    codes = set(load_features(conn, draft_id)["code"])
    if action in ("move", "add") and to_code not in codes:
        raise PlanError(f"to_code: {to_code!r} is not a {info.layer} of draft {draft_id}")
    if action == "add":
        role = check_role(role)
        if info.layer not in ROLE_LAYERS[role]:
            raise PlanError(f"role: a {role} is posted to a {' or '.join(ROLE_LAYERS[role])}, not a {info.layer}")
        person = pm.people(conn, [person_id or 0]).get(person_id or 0)
        if person is None or person["status"] != "active":
            raise PlanError(f"person_id: {person_id} is {'not a person' if person is None else 'no longer active'}")
        entry = conn.execute(
            sa.text(
                "INSERT INTO draft_postings (draft_id, action, person_id, role, to_code, author) "
                "VALUES (:d, 'add', :p, :r, :c, :a) ON CONFLICT DO NOTHING RETURNING id"
            ),
            {"d": draft_id, "p": person_id, "r": role, "c": to_code, "a": actor},
        ).scalar()
        if entry is None:
            raise PlanError(f"person_id: {person_id} is already planned as {role} of {to_code}")
    else:
        base = set(base_features(conn, info)["code"])
        open_ids = {p.id for p in pm.open_postings(conn, info.layer, base | codes, county_today())}
        if posting_id not in open_ids:
            raise PlanError(f"posting_id: {posting_id} is not an open posting on a {info.layer} of draft {draft_id}")
        conn.execute(
            sa.text("DELETE FROM draft_postings WHERE draft_id = :d AND posting_id = :p"),
            {"d": draft_id, "p": posting_id},
        )
        entry = conn.execute(
            sa.text(
                "INSERT INTO draft_postings (draft_id, action, posting_id, to_code, author) "
                "VALUES (:d, :act, :p, :c, :a) RETURNING id"
            ),
            {"d": draft_id, "act": action, "p": posting_id, "c": to_code if action == "move" else None, "a": actor},
        ).scalar_one()
    detail = {"decision": action, "posting_id": posting_id, "person_id": person_id, "role": role, "to_code": to_code}
    audit.record(conn, actor, "draft.posting", f"draft:{draft_id}", entry=int(entry), **detail)
    return {"id": int(entry), "draft_id": draft_id, **detail, "action": action}


def withdraw(conn: Conn, draft_id: int, entry_id: int, *, actor: str) -> None:
    """Remove a decision; the proposal applies again."""
    require_open(conn, draft_id, lock=True)
    gone = conn.execute(
        sa.text("DELETE FROM draft_postings WHERE draft_id = :d AND id = :e RETURNING id"),
        {"d": draft_id, "e": entry_id},
    ).scalar()
    if gone is None:
        raise PlanError(f"entry_id: draft {draft_id} has no posting decision {entry_id}")
    audit.record(conn, actor, "draft.posting_withdraw", f"draft:{draft_id}", entry=entry_id)


def staffing_findings(plan: PostingPlan, features: gpd.GeoDataFrame) -> list[Finding]:
    """Errors and warnings about the people of the draft's units once the plan is applied."""
    findings = [
        _finding("posting_plan", "error", f"draft {plan.info.id}: {text}", None, _anywhere(features), metric=False)
        for text in plan.problems
    ]
    where = dict(zip(features["code"], features.geometry.values, strict=True))
    for m in plan.moves:
        if m.problem:
            code = m.to_code if m.to_code in where else None
            point = where[code].representative_point() if code else _anywhere(features)
            findings.append(_finding("posting_plan", "error", m.problem, code, point, metric=False))
        elif m.action == "end" and m.source == "proposed":
            text = f"{m.role} posting {m.posting_id} on {m.from_code} ends at publish: {m.reason}"
            # Shown where the posting's unit went (its main successor), else anywhere in the draft.
            heir = next((c for c in m.alternatives if c in where), None)
            point = where[heir].representative_point() if heir else _anywhere(features)
            findings.append(_finding("posting_ends", "warning", text, m.from_code, point, metric=False))
    if plan.info.layer != "grid":
        return findings
    unchecked = not plan.postings and not any(m.action == "add" for m in plan.moves)
    if unchecked:
        text = "no grid of the draft has postings (no roster loaded?): leaders and workers cannot be checked"
        findings.append(_finding("staff_unchecked", "warning", text, None, _anywhere(features), metric=False))
    before = pm.roles_by_unit(plan.postings, plan.day)
    after = pm.roles_after(plan.postings, plan.moves, plan.day)
    for code, geom in where.items():
        roles = after.get(code, set())
        had = set().union(*(before.get(p, set()) for p in plan.lineage.predecessors.get(code, {code})))
        point = geom.representative_point()
        caused = [r for r in REQUIRED_ROLES if r not in roles and r in had]
        for role in caused:
            text = (
                f"grid {code} would have no {role} ({ROLE_LABELS[role]}) after publishing, though its "
                "predecessor had one: move a posting here or post someone (POST .../postings)"
            )
            findings.append(_finding(f"no_{role}", "error", text, code, point, metric=False))
        if not roles:
            if not caused:
                text = f"grid {code} has no active staff; assign a grid leader and worker"
                findings.append(_finding("no_staff", "warning", text, code, point, metric=False))
            continue
        for role in REQUIRED_ROLES + WANTED_ROLES:
            if role not in roles and role not in caused:
                text = f"grid {code} has no {role} ({ROLE_LABELS[role]})"
                findings.append(_finding(f"no_{role}", "warning", text, code, point, metric=False))
    return findings


def _anywhere(features: gpd.GeoDataFrame) -> Any:
    return features.geometry.iloc[0].representative_point()


def apply_plan(conn: Conn, plan: PostingPlan, *, actor: str, generation: int) -> list[dict[str, Any]]:
    """Apply the moves after the new generation is in force (new units exist for the postings)."""
    if any(m.problem for m in plan.moves) or plan.problems:
        raise DraftError(f"draft {plan.info.id}: the posting plan has problems; see the validation report")
    why = f"redraw of draft {plan.info.id} (generation {generation})"
    return pm.apply_moves(conn, actor, plan.info.layer, plan.moves, plan.day, why)
