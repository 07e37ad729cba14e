"""Published boundary generations (``/boundaries/generations``): the history, the difference
between two generations, and a rollback to an earlier one (a Planner key of the whole county)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from api.auth import Planner, Viewer
from api.deps import SessionDep, SettingsDep
from api.routers.boundaries import PREFIX, _fail
from api.schemas.boundaries import GenerationOut, RestoreIn
from boundaries import history
from boundaries.publish import restore_generation
from gis.core.counties import CountyError, check_county

router = APIRouter(tags=["boundaries"])


@router.get(f"{PREFIX}/generations", response_model=list[GenerationOut])
def list_generations(session: SessionDep, who: Viewer) -> list[dict[str, Any]]:
    # County-wide for every key, scoped or not: the published record (boundaries.draftscope).
    return history.generations(session)


@router.get(f"{PREFIX}/generations/{{a}}/diff/{{b}}")
def diff(a: int, b: int, session: SessionDep, who: Viewer) -> dict[str, Any]:
    """Polygons added, removed and changed per layer from generation a to b, with area change."""
    try:
        return history.diff_generations(session, a, b)
    except ValueError as exc:
        raise _fail(exc) from None


@router.post(f"{PREFIX}/generations/{{generation}}/restore")
def restore(
    generation: int, body: RestoreIn, session: SessionDep, settings: SettingsDep, who: Planner
) -> dict[str, Any]:
    """Roll back: publish an earlier generation's polygons again, as a new generation."""
    county = body.county
    if not who.scope.whole:
        # A rollback republishes whole layers of a county: a key of exactly one county may restore
        # its county; a smaller scope may not.
        own = who.scope.codes[0] if len(who.scope.codes) == 1 and len(who.scope.codes[0]) == 6 else None
        if own is None or county not in (None, own):
            raise HTTPException(403, "restoring a generation changes whole counties; a key of one county is needed")
        county = own
    if county is not None:
        try:
            check_county(county)
        except CountyError as exc:
            raise HTTPException(422, [{"loc": ["body", "county"], "msg": str(exc), "type": "value_error"}]) from None
    try:
        return restore_generation(
            session,
            generation,
            actor=who.name,
            note=body.note,
            snap_tolerance_m=settings.snap_tolerance_m,
            county=county,
        ).to_dict()
    except ValueError as exc:
        raise _fail(exc) from None
