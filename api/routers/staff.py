"""/staff: people and their postings (who serves which area, as what, from when to when).

Reading is for every key (names, phones and ID card numbers masked below dispatcher); changes are
for planners and admins and are audited. History is kept: a posting is ended, never deleted.

A scoped key (issue 15) sees the postings to areas inside its scope only, and a person only
through such a posting: anyone else is "not found" (404), as are writes to postings or areas
outside its scope. It may post a person to an area of its own, whoever the person is.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from api.auth import Planner, Viewer
from api.deps import SessionDep
from api.schemas.people import (
    EndIn,
    Layer,
    PersonIn,
    PersonOut,
    PersonPatch,
    PostingIn,
    PostingOut,
    PostingPage,
    PostingPatch,
    Role,
)
from api.timeparams import day_param
from gis.core.privacy import role_sees_personal_data
from gis.people import write
from gis.people.keys import Principal
from gis.people.roster import list_postings, mask_posting
from gis.people.rules import PeopleInputError

router = APIRouter(tags=["staff"])

PersonId = Annotated[int, Path(ge=1, description="person id")]
PostingId = Annotated[int, Path(ge=1, description="posting id")]


def unprocessable(exc: PeopleInputError, where: str = "body") -> NoReturn:
    value = exc.value if isinstance(exc.value, str | int | float | bool | None) else str(exc.value)
    raise HTTPException(422, [{"type": "value_error", "loc": [where, exc.field], "msg": exc.reason, "input": value}])


def not_found(exc: LookupError) -> NoReturn:
    raise HTTPException(404, str(exc.args[0]) if exc.args else "not found")


def area_in_scope(caller: Principal, area_code: str) -> None:
    """404 for an area outside the caller's scope, as for an area that does not exist."""
    if not caller.scope.contains(area_code.strip()):
        raise HTTPException(404, f"no area {area_code.strip()!r} in your scope")


def _posting_in_scope(session: SessionDep, caller: Principal, posting_id: int) -> None:
    """404 for a posting outside the caller's scope, as for one that does not exist."""
    if caller.scope.whole:
        return
    try:
        posting = write.get_posting(session, posting_id)
    except write.NotFoundError as exc:
        not_found(exc)
    if not caller.scope.contains(posting["area_code"]):
        raise HTTPException(404, f"no posting with id {posting_id}")


class _PostingError(Exception):
    def __init__(self, number: int, error: PeopleInputError):
        super().__init__(error.reason)
        self.number = number
        self.error = error


def _person(session: SessionDep, person_id: int, caller: Principal, *, check_scope: bool = True) -> dict[str, Any]:
    """The person with the postings the caller's scope holds; NotFoundError when it holds none
    (unless ``check_scope`` is off: the answer to the caller's own write)."""
    person = write.get_person(session, person_id)
    _, postings = list_postings(session, person_id=person_id, limit=1000, scope=caller.scope)
    if check_scope and not postings and not caller.scope.whole:
        raise write.NotFoundError(f"no person with id {person_id}")
    sees = role_sees_personal_data(caller.role)
    return {**mask_posting(person, sees), "postings": [mask_posting(p, sees) for p in postings]}


@router.get("/staff", response_model=PostingPage, summary="List postings by area, role, unit and date")
def get_staff(
    session: SessionDep,
    caller: Viewer,
    active_on: Annotated[
        dt.date | None, Depends(day_param("active_on", "only postings in force that day (person active)"))
    ],
    area_code: str | None = Query(None, max_length=32, description="postings to this area"),
    layer: Layer | None = Query(None, description="postings to areas of this layer"),
    role: Role | None = Query(None, description="grid_leader, grid_worker, aux_police, ..."),
    person_id: int | None = Query(None, ge=1),
    org_unit: str | None = Query(None, max_length=32, description="members of this organisation unit"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> Any:
    total, rows = list_postings(
        session, area_code=area_code, layer=layer, role=role, active_on=active_on,
        person_id=person_id, org_unit=org_unit, limit=limit, offset=offset, scope=caller.scope,
    )  # fmt: skip
    sees = role_sees_personal_data(caller.role)
    return {"total": total, "limit": limit, "offset": offset, "items": [mask_posting(r, sees) for r in rows]}


@router.post("/staff", response_model=PersonOut, status_code=201, summary="Add a person, with postings")
def post_person(session: SessionDep, caller: Planner, body: PersonIn) -> Any:
    # A person and their postings go in together or not at all (the savepoint, whatever the caller's
    # transaction does with the error).
    for posting in body.postings:
        area_in_scope(caller, posting.area_code)
    try:
        with session.begin_nested():
            person = write.create_person(
                session, caller.name, name=body.name, phone=body.phone, id_card=body.id_card, status=body.status
            )
            for number, posting in enumerate(body.postings):
                try:
                    write.add_posting(session, caller.name, person["id"], posting.model_dump())
                except PeopleInputError as exc:
                    raise _PostingError(number, exc) from None
    except _PostingError as failed:
        error = failed.error
        detail = {"type": "value_error", "loc": ["body", "postings", failed.number, error.field], "msg": error.reason}
        raise HTTPException(422, [{**detail, "input": None if error.value is None else str(error.value)}]) from None
    except PeopleInputError as exc:
        unprocessable(exc)
    return _person(session, person["id"], caller, check_scope=False)


@router.get("/staff/people/{person_id}", response_model=PersonOut, summary="A person and all their postings")
def get_person(session: SessionDep, caller: Viewer, person_id: PersonId) -> Any:
    try:
        return _person(session, person_id, caller)
    except write.NotFoundError as exc:
        not_found(exc)


@router.patch("/staff/people/{person_id}", response_model=PersonOut, summary="Change a person (left: ends postings)")
def patch_person(session: SessionDep, caller: Planner, person_id: PersonId, body: PersonPatch) -> Any:
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        unprocessable(PeopleInputError("name", None, "cannot be empty"))
    try:
        shown = _person(session, person_id, caller)  # 404 outside the caller's scope
        if not caller.scope.whole and len(shown["postings"]) < list_postings(session, person_id=person_id, limit=1)[0]:
            # The change (a new name, or leaving, which ends every posting) would reach areas
            # beyond the caller's scope.
            raise HTTPException(403, f"person {person_id} also serves outside your scope; a wider key must change them")
        write.update_person(session, caller.name, person_id, changes)
        return _person(session, person_id, caller)
    except write.NotFoundError as exc:
        not_found(exc)
    except PeopleInputError as exc:
        unprocessable(exc)


@router.post("/staff/people/{person_id}/postings", response_model=PostingOut, status_code=201, summary="Post a person")
def post_posting(session: SessionDep, caller: Planner, person_id: PersonId, body: PostingIn) -> Any:
    area_in_scope(caller, body.area_code)
    try:
        return write.add_posting(session, caller.name, person_id, body.model_dump())
    except write.NotFoundError as exc:
        not_found(exc)
    except PeopleInputError as exc:
        unprocessable(exc)


@router.patch("/staff/postings/{posting_id}", response_model=PostingOut, summary="Correct a posting's dates or note")
def patch_posting(session: SessionDep, caller: Planner, posting_id: PostingId, body: PostingPatch) -> Any:
    _posting_in_scope(session, caller, posting_id)
    try:
        return write.change_posting(session, caller.name, posting_id, body.model_dump(exclude_unset=True))
    except write.NotFoundError as exc:
        not_found(exc)
    except PeopleInputError as exc:
        unprocessable(exc)


@router.post("/staff/postings/{posting_id}/end", response_model=PostingOut, summary="End a posting")
def end_posting(session: SessionDep, caller: Planner, posting_id: PostingId, body: EndIn | None = None) -> Any:
    _posting_in_scope(session, caller, posting_id)
    try:
        return write.end_posting(session, caller.name, posting_id, body.ends_on if body else None)
    except write.NotFoundError as exc:
        not_found(exc)
    except PeopleInputError as exc:
        unprocessable(exc)
