"""/assessments (考核): monthly scores and ranks of people and grids under the year's scheme (JSON
and XLSX), manual adjustments, and the schemes themselves. The rules are in gis.assessment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response

from api.auth import Admin, Planner, Viewer
from api.deps import SessionDep, SettingsDep
from api.schemas.assessment import AdjustmentIn, SchemeIn
from gis.assessment import adjustments, scheme, scoring
from gis.assessment.scheme import AssessmentInputError, AssessmentNotFound
from gis.core import audit

router = APIRouter(tags=["assessment"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_INDICATORS = "\n".join(f"- `{i.name}` ({i.label}, {i.unit}): {i.definition}" for i in scheme.INDICATORS)
T = TypeVar("T")


@contextmanager
def _answers(where: str) -> Iterator[None]:
    """gis.assessment's errors as HTTP answers: 422 naming the field and value, 404 outside the scope."""
    try:
        yield
    except AssessmentInputError as exc:
        loc = [where, *exc.field.replace("[", ".").replace("]", "").split(".")]
        raise HTTPException(422, [{"loc": loc, "msg": str(exc), "type": "value_error", "input": exc.value}]) from None
    except AssessmentNotFound as exc:
        raise HTTPException(404, str(exc)) from None


def _run(where: str, fn: Callable[[], T]) -> T:
    with _answers(where):
        return fn()


def _assessment(
    caller: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    period: str,
    level: str,
    area: str | None,
    org: str | None,
    key: str | None,
    role: str | None,
    sort: str,
    quota: int | None,
) -> dict[str, Any]:
    q = settings.visit_quota if quota is None else quota
    return _run("query", lambda: scoring.assess(session, period, level, caller.scope, area=area, org=org, key=key,
                                                role=role, sort=sort, quota=q))  # fmt: skip


def _xlsx(caller: Viewer, session: SessionDep, data: dict[str, Any]) -> Response:
    audit.record(session, caller.name, "export", "assessments", format="xlsx", period=data["period"],
                 level=data["level"])  # fmt: skip
    name = f"assessments-{data['level']}-{data['period']}.xlsx"
    return Response(scoring.write_xlsx(data), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


Period = Annotated[str, Query(max_length=20, description="the month, YYYY-MM (county time)")]
Level = Annotated[str, Query(max_length=10, description="person or grid")]
Area = Annotated[str | None, Query(max_length=32, description="only people posted inside / grids inside this area")]
Org = Annotated[str | None, Query(max_length=50, description="only this organisation unit's people / area's grids")]
Key = Annotated[str | None, Query(max_length=32, description="only this person (id) or grid (code), ranked among all")]
Role = Annotated[str | None, Query(max_length=40, description="only people with a posting of this role")]
Sort = Annotated[str, Query(max_length=40, description="rank (default), name, key or an indicator's name; - reverses")]
Quota = Annotated[int | None, Query(ge=0, le=1000, description="visits a day (default: the configured visit_quota)")]


@router.get(
    "/assessments",
    summary="Monthly assessment (考核) of people or grids: each indicator's raw value, score and weight, total, rank",
    description="The scheme of the month's year (the version the month was pinned to once a newer one came) "
    "scores each indicator 0-100 between its floor and target; the total is the weighted mean of the scores "
    f"there are plus the month's manual adjustments. Indicators:\n\n{_INDICATORS}",
    responses={
        200: {"content": {XLSX: {}}, "description": "JSON, or an XLSX workbook with format=xlsx"},
        404: {"description": "the area, org unit, person or grid is not in your scope"},
        422: {"description": "a parameter is wrong; `detail[].loc` names it"},
    },
)
def get_assessments(
    caller: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    period: Period,
    level: Level = "person",
    area: Area = None,
    org: Org = None,
    key: Key = None,
    role: Role = None,
    sort: Sort = "rank",
    quota: Quota = None,
    format: Annotated[Literal["json", "xlsx"], Query(description="json or xlsx")] = "json",
) -> Any:
    data = _assessment(caller, session, settings, period, level, area, org, key, role, sort, quota)
    return _xlsx(caller, session, data) if format == "xlsx" else data


@router.get(
    "/assessments.xlsx",
    summary="The monthly assessment as an XLSX workbook (the same rows as GET /assessments)",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}}, 404: {"description": "not in your scope"}, 422: {"description": "bad"}},
)
def get_assessments_xlsx(
    caller: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    period: Period,
    level: Level = "person",
    area: Area = None,
    org: Org = None,
    key: Key = None,
    role: Role = None,
    sort: Sort = "rank",
    quota: Quota = None,
) -> Response:
    return _xlsx(
        caller, session, _assessment(caller, session, settings, period, level, area, org, key, role, sort, quota)
    )


@router.post(
    "/assessments/adjustments",
    status_code=201,
    summary="A manual adjustment (加减分) of a person's or grid's month: bounded points with a reason, audited",
    responses={404: {"description": "the person or grid is not in your scope"}, 422: {"description": "bad value"}},
)
def post_adjustment(body: AdjustmentIn, caller: Planner, session: SessionDep) -> dict[str, Any]:
    return _run("body", lambda: adjustments.adjust(session, body.model_dump(), caller.name, caller.scope))


def _whole_county(caller: Admin) -> None:
    if not caller.scope.whole:
        raise HTTPException(
            403, f"schemes are the county's: a key of the whole county is needed ({caller.scope.label()})"
        )


@router.get(
    "/assessment-schemes",
    summary="The assessment schemes, every version, and the indicators they may use (a version is never edited: "
    "a change is a new version; the months already over keep theirs)",
)
def get_schemes(
    caller: Admin, session: SessionDep, year: Annotated[int | None, Query(ge=2000, le=2100)] = None
) -> dict[str, Any]:
    _whole_county(caller)
    county = _run("query", lambda: scheme.county_code(session))
    return {
        "county": county,
        "schemes": scheme.list_schemes(session, county, year),
        "default": scheme.default_scheme(county, year or scheme.today_month().year),
        "indicators": [i.__dict__ for i in scheme.INDICATORS],
    }


@router.get(
    "/assessment-schemes/{scheme_id}",
    summary="One version of a scheme, with the months pinned to it",
    responses={404: {"description": "no such scheme"}},
)
def get_scheme(
    scheme_id: Annotated[int, Path(ge=1, le=2**31 - 1)], caller: Admin, session: SessionDep
) -> dict[str, Any]:
    _whole_county(caller)
    return _run("path", lambda: scheme.get_scheme(session, scheme_id))


@router.post(
    "/assessment-schemes",
    status_code=201,
    summary="A new version of a year's assessment scheme (the months already over keep the version they had)",
    responses={422: {"description": "an unknown indicator, weights not summing to 100, ...: `loc` names it"}},
)
def post_scheme(body: SchemeIn, caller: Admin, session: SessionDep) -> dict[str, Any]:
    _whole_county(caller)
    data = body.model_dump(exclude_none=True)
    return _run("body", lambda: scheme.create_scheme(session, data, caller.name))
