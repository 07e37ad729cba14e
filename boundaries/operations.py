"""One edit request dispatched to its operation in boundaries/edits.py: which fields each ``op``
needs (a missing one is an EditError naming it), and how they map onto the edit's arguments."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from boundaries import edits
from gis.spatial.areas import Conn


class EditRequest(Protocol):
    """The fields of one edit (api.schemas.boundaries.Operation); only those of ``op`` are used."""

    op: Literal["split", "merge", "move_micro_grid", "move_edge", "rename", "delete"]
    code: str | None
    code_b: str | None
    codes: list[str] | None
    into: str | None
    new_code: str | None
    new_name: str | None
    name: str | None
    parent_code: str | None
    households: int | None
    micro_grid: str | None
    to_grid: str | None
    successor: str | None
    line: dict[str, Any] | list[list[float]] | None


def _need(value: Any, name: str, op: str) -> Any:
    if value in (None, "", []):
        raise edits.EditError(f"operation {op} needs {name!r}")
    return value


def apply_operation(session: Conn, draft_id: int, op: EditRequest, actor: str) -> Any:
    if op.op == "split":
        return edits.split_polygon(
            session,
            draft_id,
            _need(op.line, "line", op.op),
            actor=actor,
            code=op.code,
            new_code=_need(op.new_code, "new_code", op.op),
            new_name=op.new_name,
        )
    if op.op == "merge":
        return edits.merge_polygons(session, draft_id, _need(op.codes, "codes", op.op), actor=actor, into=op.into)
    if op.op == "move_micro_grid":
        return edits.move_micro_grid(
            session,
            draft_id,
            _need(op.micro_grid, "micro_grid", op.op),
            _need(op.to_grid, "to_grid", op.op),
            actor=actor,
        )
    if op.op == "move_edge":
        edits.move_shared_edge(
            session,
            draft_id,
            _need(op.code, "code", op.op),
            _need(op.code_b, "code_b", op.op),
            _need(op.line, "line", op.op),
            actor=actor,
        )
        return None
    if op.op == "rename":
        return edits.rename(
            session,
            draft_id,
            _need(op.code, "code", op.op),
            actor=actor,
            new_code=op.new_code,
            name=op.name,
            parent_code=op.parent_code,
            households=op.households,
        )
    edits.delete_polygon(session, draft_id, _need(op.code, "code", op.op), actor=actor, successor=op.successor)
    return None
