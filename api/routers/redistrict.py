"""/analysis/redistrict: redistricting proposals for planners, built by a background job
(gis.work.tasks.redistrict, gis.analysis.proposal). POST answers 202 with the run's id at once;
GET shows its status and progress, and once done the report and the boundary draft to inspect,
edit and publish."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.auth import Planner, Viewer
from api.deps import SessionDep, SettingsDep
from api.schemas.redistrict import RedistrictIn, RedistrictRunOut
from boundaries import draftscope
from gis.analysis import proposal

router = APIRouter(tags=["analysis"])


def _out(run: dict[str, object]) -> RedistrictRunOut:
    draft = run.get("draft_id")
    links = (
        {"draft_url": f"/maps/boundaries/drafts/{draft}/impact", "editor_url": f"/maps/boundaries/drafts/{draft}"}
        if draft
        else {}
    )
    return RedistrictRunOut.model_validate({**run, **links})


@router.post("/analysis/redistrict", status_code=202, response_model=RedistrictRunOut)
def start_redistrict(body: RedistrictIn, session: SessionDep, settings: SettingsDep, who: Planner) -> RedistrictRunOut:
    """Queue a proposal of grids (from micro-grids) for a town or village, or of micro-grids (from
    buildings) for a town, village or grid; poll GET /analysis/redistrict/{id}."""
    micro = body.layer == "micro_grid"
    default_low = settings.micro_grid_households_min if micro else settings.grid_households_min
    default_high = settings.micro_grid_households_max if micro else settings.grid_households_max
    low = body.band_min if body.band_min is not None else default_low
    high = body.band_max if body.band_max is not None else default_high
    if low >= high:
        raise HTTPException(422, f"band_min ({low}) must be below band_max ({high})")
    try:
        draftscope.check_codes(who.scope, [body.area_code], "area_code")
        proposal.area_kind(session, body.area_code, body.layer)
    except draftscope.OutOfScopeError as exc:
        raise HTTPException(403, str(exc)) from None
    except proposal.UnknownAreaError as exc:
        raise HTTPException(422, str(exc)) from None
    params = {
        "band": [low, high], "balance": body.balance, "layer": body.layer, "edge_slack": body.edge_slack,
        "roads": body.roads,
    }  # fmt: skip
    run_id = proposal.start_run(session, body.area_code, params, who.name)
    run = proposal.get_run(session, run_id)
    assert run is not None
    return _out(run)


@router.get("/analysis/redistrict/{run_id}", response_model=RedistrictRunOut)
def get_redistrict(run_id: int, session: SessionDep, who: Viewer) -> RedistrictRunOut:
    """A run's status, progress (0..1) and message; when done, the report and the draft."""
    run = proposal.get_run(session, run_id)
    if run is None or not who.scope.whole and not who.scope.contains(str(run["area_code"])):
        raise HTTPException(404, f"no redistricting run {run_id}")
    return _out(run)
