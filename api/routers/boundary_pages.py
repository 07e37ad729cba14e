"""The boundary planning pages: the map editor of a draft (``/maps/boundaries/drafts/{id}``) and
its impact preview as a before/after map. Viewer key (``?key=``); saving in the editor needs a Planner key."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.auth import Viewer
from api.deps import SessionDep, SettingsDep
from api.routers.boundaries import _fail, _visible
from boundaries import drafts
from boundaries.impact import preview_impact
from gis.core.privacy import role_sees_personal_data
from maps.editor import editor_page
from maps.impact_map import impact_map_page

router = APIRouter(tags=["boundaries"])


@router.get("/maps/boundaries/drafts/{draft_id}", response_class=HTMLResponse)
def editor(
    draft_id: int,
    session: SessionDep,
    settings: SettingsDep,
    who: Viewer,
    key: str | None = None,
) -> HTMLResponse:
    """The map editor for a draft (open with ``?key=``; saving needs a Planner key)."""
    info = _visible(session, draft_id, who)
    html = editor_page(
        info.id,
        info.layer,
        info.scope_code,
        key=key,
        tile_url=settings.tile_url,
        tile_attribution=settings.tile_attribution,
    )
    return HTMLResponse(html)


@router.get("/maps/boundaries/drafts/{draft_id}/impact", response_class=HTMLResponse)
def impact_map(
    draft_id: int,
    session: SessionDep,
    who: Viewer,
) -> HTMLResponse:
    """The impact preview as a before/after map (open with ``?key=``)."""
    info = _visible(session, draft_id, who)
    try:
        report = preview_impact(session, draft_id, sees_personal_data=role_sees_personal_data(who.role))
    except ValueError as exc:
        raise _fail(exc) from None
    report["base_generation"] = info.base_generation
    base = drafts.base_features(session, info)
    features = drafts.load_features(session, draft_id)
    return HTMLResponse(impact_map_page(base, features, report))
