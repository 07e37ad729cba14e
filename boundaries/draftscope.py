"""Drafts of a scoped account (issue 15): a town planner drafts only inside the town.

A draft records its area in ``drafts.scope_code``. A scoped caller opens drafts only with a
scope code inside its own scope (by default its one area), sees only such drafts (any other,
county-wide drafts included, is "not found": its existence is not revealed), and writes only
polygons whose code and parent code are inside its scope; a write naming a code outside is
refused naming that code. Publishing checks the whole change set once more, so a scoped draft
never changes a unit outside the scope.

Boundary generations (list, diff) stay county-wide: they are the published record of which
boundaries were in force when, the same for every reader, and name no draft.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from boundaries.drafts import (
    DraftError,
    DraftInfo,
    DraftNotFoundError,
    base_features,
    create_draft,
    get_draft,
    list_drafts,
    load_features,
)
from gis.spatial.areas import Conn

if TYPE_CHECKING:
    from gis.people.scope import Scope


class OutOfScopeError(DraftError):
    """A write naming a unit outside the caller's scope (HTTP 403); the message names the code."""


def sees(scope: Scope, info: DraftInfo) -> bool:
    """Whether a caller of ``scope`` may see the draft: a county-wide draft only the whole county."""
    if scope.whole:
        return True
    return info.scope_code is not None and scope.contains(info.scope_code)


def draft_in_scope(conn: Conn, draft_id: int, scope: Scope) -> DraftInfo:
    """The draft, or DraftNotFoundError (the same answer as for no such draft) when outside ``scope``."""
    info = get_draft(conn, draft_id)
    if not sees(scope, info):
        raise DraftNotFoundError(f"no draft with id {draft_id}")
    return info


def drafts_in_scope(conn: Conn, scope: Scope, status: str | None = None) -> list[DraftInfo]:
    return [d for d in list_drafts(conn, status) if sees(scope, d)]


def _describe(scope: Scope) -> str:
    return scope.label()  # the codes, or "lookup" for a key that drafts nothing


def draft_scope(scope: Scope, requested: str | None) -> str | None:
    """The scope code a new draft gets: the requested one, which a scoped caller must hold; a
    scoped caller of one area who names none drafts in that area."""
    if scope.whole:
        return requested
    if requested is None:
        if len(scope.codes) == 1:
            return scope.codes[0]
        raise OutOfScopeError(f"scope_code is required: name one of your areas ({_describe(scope)})")
    if not scope.contains(requested):
        raise OutOfScopeError(f"scope_code {requested!r} is outside your scope ({_describe(scope)})")
    return requested


def check_codes(scope: Scope, codes: Iterable[str | None], what: str = "code") -> None:
    """Refuse the first code outside ``scope`` (None codes are skipped)."""
    if scope.whole:
        return
    for code in codes:
        # Missing codes (None, or NaN from a table) name nothing to check.
        if isinstance(code, str) and code.strip() and not scope.contains(code.strip()):
            raise OutOfScopeError(f"{what} {code.strip()!r} is outside your scope ({_describe(scope)})")


def create_in_scope(conn: Conn, layer: str, scope: Scope, requested: str | None, *, author: str, note: str) -> int:
    """Open a draft (drafts.create_draft) in the caller's scope. Every polygon it copies must be
    inside the scope too (a town's beats are not: police codes are not under a town's), else it
    is refused naming the first, and nothing is kept (a savepoint)."""
    scope_code = draft_scope(scope, requested)
    with conn.begin_nested():
        draft_id = create_draft(conn, layer, scope_code, author=author, note=note)
        if not scope.whole:
            check_codes(scope, load_features(conn, draft_id)["code"], f"{layer} code")
    return draft_id


def check_publishable(conn: Conn, info: DraftInfo, features_codes: Iterable[str], scope: Scope) -> None:
    """Every unit a publish could add, change or remove lies inside ``scope``: the draft's own
    polygons and the polygons in force it was copied from."""
    if scope.whole:
        return
    check_codes(scope, features_codes)
    check_codes(scope, base_features(conn, info)["code"])
