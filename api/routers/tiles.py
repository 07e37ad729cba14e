"""Vector tiles (MVT) of every public layer: ``/tiles/{layer}/{z}/{x}/{y}.mvt``.

Incidents and hazards take a time window (``start``/``end``), incidents also the other filters
of ``api.params.incident_filter``; boundary layers an ``as_of`` moment. Tiles carry no personal
data, so every key (or ``?key=``) may read them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response

from api.auth import Viewer
from api.deps import ReadSessionDep
from api.params import IncidentFilterDep
from api.timeparams import as_of_param
from gis.outputs.tiles import MAX_ZOOM, TileError, TileRequest, check_tile, render_tile

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"

router = APIRouter(prefix="/tiles", tags=["tiles"])


@router.get(
    "/{layer}/{z}/{x}/{y}.mvt",
    summary="A vector tile (MVT, Web Mercator XYZ) of one layer",
    response_class=Response,
    responses={200: {"content": {MVT_MEDIA_TYPE: {}}}, 404: {"description": "unknown layer or tile"}},
)
def tile(
    principal: Viewer,
    session: ReadSessionDep,
    layer: Annotated[str, Path(description="towns, villages, grids, micro_grids, stations, beats, incidents, ...")],
    z: Annotated[int, Path(ge=0, le=MAX_ZOOM)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
    filters: IncidentFilterDep,
    as_of: Annotated[dt.datetime | None, Depends(as_of_param())] = None,
) -> Response:
    try:
        check_tile(layer, z, x, y)
    except TileError as exc:
        raise HTTPException(404, str(exc)) from None
    try:
        data = render_tile(session, TileRequest(layer, z, x, y, as_of=as_of, incidents=filters))
    except TileError as exc:
        raise HTTPException(422, str(exc)) from None
    # Point layers change all day; a short cache still absorbs a map's burst of identical requests.
    return Response(data, media_type=MVT_MEDIA_TYPE, headers={"Cache-Control": "private, max-age=60"})
