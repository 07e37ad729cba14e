"""Campaigns (专项整治) at the request edge: create one, read it, its progress as JSON or XLSX."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from api.auth import Dispatcher, Viewer
from api.deps import SessionDep, SettingsDep
from api.routers.maps import GEOJSON_OK, GeoJSONResponse, _display_crs, _geojson
from api.schemas.fieldwork import CampaignIn
from gis.core import audit
from gis.fieldwork import campaigns, maplayers

router = APIRouter(prefix="/campaigns", tags=["campaigns"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CampaignId = Annotated[int, Path(ge=1, le=2**31 - 1, description="campaign id")]


@router.post("", status_code=201, summary="Start a campaign")
def post_campaign(body: CampaignIn, principal: Dispatcher, session: SessionDep) -> Any:
    """A named checklist, an area (a unit code inside the key's scope), a period (`starts_on`,
    `ends_on`, county days) and target buildings (default: the area's rental buildings)."""
    return campaigns.create(session, body.model_dump(), principal.name, principal.scope)


@router.get("/{campaign_id}", summary="One campaign", responses={404: {"description": "no such campaign"}})
def get_campaign(campaign_id: CampaignId, principal: Viewer, session: SessionDep) -> Any:
    return campaigns.get(session, campaign_id, principal.scope)


@router.get(
    "/{campaign_id}/progress",
    summary="A campaign's progress per grid and town",
    responses={
        200: {"content": {XLSX: {}}, "description": "JSON, or an XLSX workbook with format=xlsx"},
        404: {"description": "no such campaign"},
    },
)
def get_progress(
    campaign_id: CampaignId,
    principal: Viewer,
    session: SessionDep,
    format: str = Query("json", pattern="^(json|xlsx)$"),
) -> Any:
    """Target buildings, inspected, failed; hazards found, rectified, rectified on time (by the
    order's deadline) and overdue now: in total, per town and per grid (inside the key's scope)."""
    data = campaigns.progress(session, campaign_id, principal.scope)
    if format == "xlsx":
        audit.record(session, principal.name, "export", f"campaign/{campaign_id}", format="xlsx")
        name = f"campaign-{campaign_id}.xlsx"
        return Response(
            campaigns.write_xlsx(data),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return data


@router.get(
    "/{campaign_id}/progress.geojson",
    summary="A campaign's progress per grid as a map layer (GeoJSON)",
    responses={404: {"description": "no such campaign"}},
)
def get_progress_layer(campaign_id: CampaignId, principal: Viewer, session: SessionDep) -> Any:
    """Each target grid's boundary with the campaign figures and the shares inspected and rectified."""
    return campaigns.grid_features(session, campaign_id, principal.scope)


@router.get(
    "/{campaign_id}/grids.geojson",
    response_class=GeoJSONResponse,
    responses={**GEOJSON_OK, 404: {"description": "no such campaign"}},
    summary="Map layer: a campaign's target grids coloured by the share inspected or rectified",
)
def get_grid_layer(
    campaign_id: CampaignId,
    request: Request,
    principal: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    measure: str = Query("inspected", pattern="^(inspected|rectified)$", description="inspected or rectified"),
) -> Response:
    """The grids (boundaries in force, in the map's display CRS) with the campaign's figures and
    `share`: of the target buildings inspected, or of the hazards found rectified (null: none)."""
    crs, cache = _display_crs(settings), request.app.state.map_layers
    return _geojson(lambda: maplayers.campaign_grids(session, campaign_id, measure, principal.scope, crs, cache))
