"""Edit operations on a boundary draft (``POST /boundaries/drafts/{id}/operations``): the scope
check of the units an edit names; the dispatch to the edit is boundaries/operations.py.

Needs a Planner key; a scoped key may name units of its own areas only (403 otherwise).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import Planner
from api.deps import SessionDep
from api.routers.boundaries import _CLOSED, PREFIX, _fail, _visible
from api.schemas.boundaries import Operation
from boundaries import draftscope
from boundaries.operations import apply_operation
from gis.people.keys import Principal

router = APIRouter(tags=["boundaries"])


@router.post(f"{PREFIX}/drafts/{{draft_id}}/operations", responses=_CLOSED)
def operation(draft_id: int, op: Operation, session: SessionDep, who: Planner) -> dict[str, Any]:
    """Apply one edit: split, merge, move_micro_grid, move_edge, rename or delete."""
    _visible(session, draft_id, who)
    try:
        _check_operation(op, who)
        result = apply_operation(session, draft_id, op, who.name)
    except ValueError as exc:
        raise _fail(exc) from None
    return {"draft": draft_id, "op": op.op, "result": result}


def _check_operation(op: Operation, who: Principal) -> None:
    """Every unit the edit names (the ones it changes or creates) inside the caller's scope."""
    named = [op.code, op.code_b, *(op.codes or []), op.into, op.new_code, op.micro_grid, op.to_grid, op.successor]
    draftscope.check_codes(who.scope, named)
    draftscope.check_codes(who.scope, [op.parent_code], "parent_code")
