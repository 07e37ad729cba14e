"""One demo hazard's rectification history, step by step as the product would have written it.

A hazard opened by a failed checklist item gets a plan when it is opened (and again after a failed
re-inspection): when the rectification order is served (notified), when the party starts work, when
it says the work is done (submitted; the moment the defect is actually gone) and when the grid
worker comes back to re-inspect it (nine times in ten it passes). Most parties finish before the
deadline; some are late and a few very late. ``advance`` walks the steps in time order up to an
instant, with the same rules as gis.fieldwork.hazards.apply (the states a step starts from, the new
deadline of a failed re-inspection or of work restarted after the deadline) and the deadline job
gis.fieldwork.overdue (overdue at the deadline, then one escalation level up each time the level's
hours pass: grid → village → town → county). An inspection of the building in between re-inspects
the hazard itself (``reinspect``), as POST /buildings/{id}/inspections does.

Times are Unix seconds (floats); events are tuples in ``hazard_events`` column order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gis.fieldwork.hazards import ACTIONS
from gis.fieldwork.overdue import SYSTEM_ACTOR
from gis.incidents.rules import ESCALATION_HOURS

HOUR = 3600.0
DAY = 86400.0
ACTOR = "demo"
# The escalation ladder of gis.fieldwork.overdue: the next level and the hours it is given.
NEXT_LEVEL = {"grid": "village", "village": "town", "town": "county", "county": "county"}
_PENDING = ("open", "notified", "rectifying")

# (hazard index, at, actor, action, from status, to status, deadline, inspection index, note)
Event = tuple[int, float, str, str, str | None, str, float | None, int | None, str | None]


@dataclass
class Hazard:
    idx: int
    item: int  # position of the item in the checklist
    days: float  # the item's days to rectify
    found_at: float
    inspection: int  # index of the inspection that found it
    rectify_by: float
    status: str = "open"
    level: str = "grid"
    escalated_at: float | None = None
    escalation_due_at: float | None = None
    overdue_at: float | None = None
    notified_at: float | None = None
    submitted_at: float | None = None
    rectified_at: float | None = None
    updated_at: float = 0.0
    # The plan (see the module docstring).
    notify_at: float | None = None
    start_at: float | None = None
    fix_at: float = 0.0
    check_after: float = 0.0
    passes: bool = True
    restart_at: float | None = None
    events: list[Event] = field(default_factory=list)


def _plan(h: Hazard, now: float, rng: np.random.Generator) -> None:
    span = h.days * DAY
    if h.status == "open":
        h.notify_at = now + rng.uniform(1, 6) * HOUR
    begin = h.notify_at if h.notify_at is not None and h.status == "open" else now
    h.start_at = begin + rng.uniform(HOUR, max(2 * HOUR, min(DAY, 0.3 * span)))
    late = rng.random()
    share = rng.uniform(0.3, 0.95) if late < 0.8 else rng.uniform(1.05, 2.5) if late < 0.96 else rng.uniform(3, 8)
    h.fix_at = max(now + share * span, h.start_at + HOUR)
    h.check_after = rng.uniform(4 * HOUR, 3 * DAY)
    h.passes = bool(rng.random() < 0.9)


def open_hazard(idx: int, item: int, days: float, at: float, inspection: int, rng: np.random.Generator) -> Hazard:
    """A hazard found at ``at`` by inspection ``inspection``, with its ``open`` event and its plan."""
    h = Hazard(idx, item, days, at, inspection, rectify_by=at + days * DAY, updated_at=at)
    h.events.append((idx, at, ACTOR, "open", None, "open", h.rectify_by, inspection, None))
    _plan(h, at, rng)
    return h


def _move(h: Hazard, at: float, verb: str, to: str, **extra: object) -> None:
    if h.status not in ACTIONS[verb][0]:  # the product's own table of allowed steps
        raise AssertionError(f"demo hazard {h.idx}: {verb} from {h.status}")
    deadline = extra.get("deadline")
    action = str(extra.get("action", verb))
    h.events.append((h.idx, at, ACTOR, action, h.status, to, deadline, extra.get("inspection"), None))  # type: ignore[arg-type]
    if deadline is not None:  # a new deadline ends the escalation clock (gis.fieldwork.hazards.apply)
        h.rectify_by = float(deadline)  # type: ignore[arg-type]
        h.escalation_due_at = None
    h.status, h.updated_at = to, at
    if to == "notified":
        h.notified_at = at
    elif to == "submitted":
        h.submitted_at = at
    elif to == "rectified":
        h.rectified_at = at


def _overdue(h: Hazard, at: float, rng: np.random.Generator) -> None:
    """The deadline job (or the sweep) at ``at``: overdue, one level up, the next level's clock."""
    frm, before = h.level, h.status
    nxt = NEXT_LEVEL[frm]
    h.escalation_due_at = at + ESCALATION_HOURS[nxt] * HOUR if frm != "county" else None
    if nxt != frm:
        h.escalated_at = at
    h.level, h.status, h.updated_at = nxt, "overdue", at
    h.overdue_at = h.overdue_at if h.overdue_at is not None else at
    note = f"deadline passed: {frm} → {nxt}"
    h.events.append((h.idx, at, SYSTEM_ACTOR, "overdue", before, "overdue", h.escalation_due_at, None, note))
    if before != "overdue":  # prodded by the escalation, most parties get to work within two days
        h.restart_at = at + rng.uniform(2 * HOUR, 2 * DAY) if rng.random() < 0.6 else None


def reinspect(h: Hazard, at: float, passed: bool, rng: np.random.Generator, inspection: int | None = None) -> None:
    """A re-inspection at ``at`` (by an inspection of the building, or on its own): pass rectifies,
    fail sends the hazard back to rectifying with the item's period from now."""
    if passed:
        _move(h, at, "reinspect", "rectified", action="reinspect_pass", inspection=inspection)
        return
    deadline = at + h.days * DAY
    _move(h, at, "reinspect", "rectifying", action="reinspect_fail", inspection=inspection, deadline=deadline)
    _plan(h, at, rng)


def _next(h: Hazard) -> tuple[float, str]:
    steps: list[tuple[float, str]] = []
    if h.status in _PENDING:
        steps.append((h.rectify_by, "overdue"))  # the deadline job, due at the deadline
    if h.status == "overdue" and h.escalation_due_at is not None:
        steps.append((h.escalation_due_at, "overdue"))
    if h.status == "open" and h.notify_at is not None:
        steps.append((h.notify_at, "notify"))
    if h.status == "notified" and h.start_at is not None:
        steps.append((h.start_at, "start"))
    if h.status == "overdue" and h.restart_at is not None and h.restart_at < h.fix_at:
        steps.append((h.restart_at, "restart"))
    if h.status in (*_PENDING, "overdue"):
        steps.append((h.fix_at, "submit"))
    if h.status == "submitted" and h.submitted_at is not None:
        steps.append((h.submitted_at + h.check_after, "check"))
    return min(steps)


def advance(h: Hazard, until: float, rng: np.random.Generator) -> None:
    """Every step of the plan before ``until``."""
    while h.status != "rectified":
        at, step = _next(h)
        if at >= until:
            return
        if step == "overdue":
            _overdue(h, at, rng)
        elif step == "notify":
            _move(h, at, "notify", "notified")
        elif step == "start":
            _move(h, at, "start", "rectifying")
        elif step == "restart":  # work started after the deadline: a new period from now
            h.restart_at = None
            _move(h, at, "start", "rectifying", deadline=at + h.days * DAY)
        elif step == "submit":
            _move(h, at, "submit", "submitted")
        else:
            reinspect(h, at, h.passes, rng)


__all__ = ["ACTOR", "DAY", "HOUR", "Event", "Hazard", "advance", "open_hazard", "reinspect"]
