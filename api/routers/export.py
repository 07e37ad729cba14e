"""File exports of the public layers: ``GET /export/{layer}?format=gpkg|geojson|shp|csv|xlsx&crs=...``.

Personal data are masked unless the caller is a dispatcher or above; every export is audited
(who, which layer, how many rows, whether personal data left unmasked).
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.auth import Viewer
from api.deps import SessionDep
from api.params import IncidentFilterDep
from api.timeparams import as_of_param
from gis.core import audit
from gis.outputs.export import FILE_SUFFIX, MEDIA_TYPES, export_layer, parse_format
from gis.outputs.exportcrs import parse_export_crs
from gis.outputs.exportquery import LAYER_NAMES, ExportError

router = APIRouter(prefix="/export", tags=["export"])


# The window of the point layers (incidents by report time, hazards by discovery time).
@router.get(
    "/{layer}",
    summary="Download a layer as GeoPackage, GeoJSON, zipped Shapefile, CSV or XLSX",
    response_class=FileResponse,
    responses={404: {"description": "unknown layer"}, 422: {"description": "bad format, crs or filter"}},
)
def export(
    principal: Viewer,
    session: SessionDep,
    layer: Annotated[str, Path(description=", ".join(LAYER_NAMES))],
    filters: IncidentFilterDep,
    format: Annotated[str, Query(description="gpkg, geojson, shp (zipped), csv or xlsx")] = "gpkg",
    crs: Annotated[str, Query(description="wgs84 (EPSG:4326), gcj02 or cgcs2000 (EPSG:4490)")] = "wgs84",
    as_of: Annotated[dt.datetime | None, Depends(as_of_param())] = None,
) -> FileResponse:
    """Incidents and hazards take the window `start`/`end`; incidents also the other incident filters."""
    if layer not in LAYER_NAMES:
        raise HTTPException(404, f"unknown layer {layer!r}; layers are {', '.join(LAYER_NAMES)}")
    try:
        fmt = parse_format(format)
        out_crs = parse_export_crs(crs)
    except ExportError as exc:
        raise HTTPException(422, str(exc)) from None
    folder = FilePath(tempfile.mkdtemp(prefix="gridmap-export-"))
    filename = f"{layer}{FILE_SUFFIX[fmt]}"
    try:
        result = export_layer(
            session, layer, fmt, folder / filename, crs=out_crs, role=principal.role, as_of=as_of, incidents=filters
        )
    except ExportError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise HTTPException(422, str(exc)) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    audit.record(
        session, principal.name, "export", layer,
        format=fmt.value, crs=out_crs.value, rows=result.count, personal_data=not result.masked,
    )  # fmt: skip
    return FileResponse(
        result.path,
        media_type=MEDIA_TYPES[fmt],
        filename=filename,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )
