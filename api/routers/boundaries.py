"""Boundary planning drafts: create, list, features, uploads, validation, impact, publishing,
rebase, discard and export. Edit operations are api/routers/draft_operations.py, the published
generations api/routers/generations.py, the editor and impact pages api/routers/boundary_pages.py;
the helpers below (``_fail``, ``_visible``) are shared with them.

Reads need a Viewer key, writes a Planner key. Uploads are sent as the raw request body
(``curl --data-binary @grids.zip``) so the size limit is enforced while reading, before anything
is stored.

A scoped key (issue 15) works on drafts of its own areas only (boundaries.draftscope): others
answer 404, writes naming a unit outside its scope 403.
"""

from __future__ import annotations

from typing import Annotated, Any

import geopandas as gpd
import shapely
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from shapely.geometry import mapping
from starlette.concurrency import run_in_threadpool

from api.auth import Planner, Viewer
from api.deps import SessionDep, SettingsDep
from api.routers.draft_postings import router as postings_router
from api.schemas.boundaries import (
    DraftCreate,
    DraftOut,
    FeatureCollectionIn,
    PublishIn,
)
from boundaries import drafts, draftscope, fileio, history
from boundaries.findings import Rules
from boundaries.impact import preview_impact
from boundaries.publish import PublishBlockedError, StaleDraftError, publish_draft
from boundaries.validate import validate_draft
from gis.core.privacy import role_sees_personal_data
from gis.people.keys import Principal

router = APIRouter(tags=["boundaries"])
router.include_router(postings_router)
PREFIX = "/boundaries"
# Declared in the OpenAPI document; 401/403/404/429/503 are declared for every route in api.errors.
_CLOSED: dict[int | str, dict[str, Any]] = {
    409: {"description": "the draft is published or discarded, or its base is no longer current"}
}
_UPLOAD: dict[int | str, dict[str, Any]] = {
    **_CLOSED,
    413: {"description": "the upload is over the size limit (GRIDMAP_BOUNDARY_UPLOAD_MAX_MB)"},
}


def _fail(exc: Exception) -> HTTPException:
    if isinstance(exc, (drafts.DraftNotFoundError, history.GenerationNotFoundError)):
        return HTTPException(404, str(exc))
    if isinstance(exc, (StaleDraftError, drafts.DraftClosedError)):
        return HTTPException(409, str(exc))
    if isinstance(exc, draftscope.OutOfScopeError):
        return HTTPException(403, str(exc))
    return HTTPException(422, str(exc))


def _visible(session: SessionDep, draft_id: int, who: Principal) -> drafts.DraftInfo:
    """The draft if the caller's scope holds it, else 404 (as for no such draft)."""
    try:
        return draftscope.draft_in_scope(session, draft_id, who.scope)
    except ValueError as exc:
        raise _fail(exc) from None


def _check_frame(gdf: gpd.GeoDataFrame, who: Principal) -> None:
    """Every polygon written, and its parent, inside the caller's scope."""
    draftscope.check_codes(who.scope, gdf["code"])
    if "parent_code" in gdf:
        draftscope.check_codes(who.scope, gdf["parent_code"], "parent_code")


def _draft_out(info: drafts.DraftInfo) -> DraftOut:
    return DraftOut(**info.__dict__)


def _feature_collection(gdf: gpd.GeoDataFrame) -> dict[str, Any]:
    features = []
    for rec in gdf.to_dict("records"):
        geom = rec.pop("geometry")
        households = rec.get("households")
        rec["households"] = None if households is None or households != households else int(households)
        features.append({"type": "Feature", "properties": rec, "geometry": mapping(geom)})
    return {"type": "FeatureCollection", "features": features}


def _from_geojson(fc: FeatureCollectionIn) -> gpd.GeoDataFrame:
    rows, geoms = [], []
    for i, feature in enumerate(fc.features):
        props = dict(feature.get("properties") or {})
        if not feature.get("geometry"):
            raise HTTPException(422, f"feature {i + 1} has no geometry")
        try:
            geom = shapely.geometry.shape(feature["geometry"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise HTTPException(422, f"feature {i + 1}: unreadable geometry ({exc})") from None
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise HTTPException(422, f"feature {i + 1} ({props.get('code')}): {geom.geom_type} is not a polygon")
        try:
            fileio.check_lonlat_bounds(geom, f"feature {i + 1} ({props.get('code')})")
        except fileio.UploadError as exc:
            raise HTTPException(422, str(exc)) from None
        if not props.get("code"):
            raise HTTPException(422, f"feature {i + 1} has no 'code' property")
        attrs = props.get("attrs")
        rows.append(
            {
                "code": str(props["code"]),
                "name": props.get("name"),
                "parent_code": props.get("parent_code"),
                "households": props.get("households"),
                "attrs": attrs if isinstance(attrs, dict) else {},
            }
        )
        geoms.append(geom)
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=4326)


@router.post(f"{PREFIX}/drafts", status_code=201, response_model=DraftOut)
def create_draft(body: DraftCreate, session: SessionDep, who: Planner) -> DraftOut:
    """Open a draft of one layer in a scope, copied from the generation in force."""
    try:
        draft_id = draftscope.create_in_scope(
            session, body.layer, who.scope, body.scope_code, author=who.name, note=body.note
        )
        return _draft_out(drafts.get_draft(session, draft_id))
    except ValueError as exc:
        raise _fail(exc) from None


@router.get(f"{PREFIX}/drafts", response_model=list[DraftOut])
def list_drafts(session: SessionDep, who: Viewer, status: str | None = None) -> list[DraftOut]:
    return [_draft_out(d) for d in draftscope.drafts_in_scope(session, who.scope, status)]


@router.get(f"{PREFIX}/drafts/{{draft_id}}", response_model=DraftOut)
def get_draft(draft_id: int, session: SessionDep, who: Viewer) -> DraftOut:
    return _draft_out(_visible(session, draft_id, who))


@router.get(f"{PREFIX}/drafts/{{draft_id}}/features")
def draft_features(draft_id: int, session: SessionDep, who: Viewer) -> dict[str, Any]:
    """The draft's polygons as GeoJSON (EPSG:4326)."""
    _visible(session, draft_id, who)
    return _feature_collection(drafts.load_features(session, draft_id))


@router.put(f"{PREFIX}/drafts/{{draft_id}}/features", responses=_CLOSED)
def save_features(
    draft_id: int,
    body: FeatureCollectionIn,
    session: SessionDep,
    who: Planner,
    mode: Annotated[str, Query(pattern="^(replace|upsert)$")] = "replace",
) -> dict[str, int]:
    """Save polygons edited elsewhere (the map editor posts here)."""
    _visible(session, draft_id, who)
    gdf = _from_geojson(body)
    try:
        _check_frame(gdf, who)
        return drafts.replace_features(session, draft_id, gdf, actor=who.name, mode=mode, source="save")
    except ValueError as exc:
        raise _fail(exc) from None


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {declared} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"upload is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# Exempt from the app-wide body limit (api.body_limit): this route enforces
# GRIDMAP_BOUNDARY_UPLOAD_MAX_MB itself.
@router.post(f"{PREFIX}/drafts/{{draft_id}}/upload", responses=_UPLOAD)
async def upload(
    draft_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: Planner,
    filename: Annotated[str, Query(description="original file name; its extension picks the format")],
    crs: Annotated[str | None, Query(description="declare wgs84, gcj02 or bd09 for data without a usable CRS")] = None,
    code_column: Annotated[str | None, Query(description="attribute holding the code (default: code/编码)")] = None,
    encoding: Annotated[str | None, Query(description="attribute encoding of a Shapefile without .cpg")] = None,
    mode: Annotated[str, Query(pattern="^(replace|upsert)$")] = "replace",
) -> dict[str, Any]:
    """Upload GeoJSON, GeoPackage, KML or a zipped Shapefile into a draft (raw request body)."""
    limit = int(settings.boundary_upload_max_mb * 1024 * 1024)
    await run_in_threadpool(_visible, session, draft_id, who)
    data = await _read_limited(request, limit)

    def store() -> dict[str, int]:
        gdf = fileio.read_upload(
            data,
            filename,
            declared_crs=crs,
            code_column=code_column,
            encoding=encoding,
            limits=fileio.UploadLimits(max_bytes=limit),
        )
        _check_frame(gdf, who)
        return drafts.replace_features(session, draft_id, gdf, actor=who.name, mode=mode, source="upload")

    try:
        result = await run_in_threadpool(store)
    except ValueError as exc:
        raise _fail(exc) from None
    return {"draft": draft_id, "file": filename, **result}


@router.get(f"{PREFIX}/drafts/{{draft_id}}/validate")
def validate(draft_id: int, session: SessionDep, settings: SettingsDep, who: Viewer) -> dict[str, Any]:
    """Findings with their locations; errors block publishing, warnings do not."""
    _visible(session, draft_id, who)
    try:
        return validate_draft(session, draft_id, Rules.from_settings(settings)).to_dict()
    except ValueError as exc:
        raise _fail(exc) from None


@router.get(f"{PREFIX}/drafts/{{draft_id}}/impact")
def impact(draft_id: int, session: SessionDep, who: Viewer) -> dict[str, Any]:
    """What moves from which unit to which if the draft is published."""
    _visible(session, draft_id, who)
    try:
        return preview_impact(session, draft_id, sees_personal_data=role_sees_personal_data(who.role))
    except ValueError as exc:
        raise _fail(exc) from None


@router.post(f"{PREFIX}/drafts/{{draft_id}}/publish", response_model=None, responses=_CLOSED)
def publish(
    draft_id: int, body: PublishIn, session: SessionDep, settings: SettingsDep, who: Planner
) -> dict[str, Any] | JSONResponse:
    """Publish as a new generation in force from now; 409 if the draft's base is no longer current."""
    info = _visible(session, draft_id, who)
    try:
        draftscope.check_publishable(session, info, drafts.load_features(session, draft_id)["code"], who.scope)
        result = publish_draft(
            session,
            draft_id,
            actor=who.name,
            note=body.note,
            rules=Rules.from_settings(settings),
            snap_tolerance_m=settings.snap_tolerance_m,
        )
    except PublishBlockedError as exc:
        return JSONResponse({"detail": str(exc), "report": exc.report.to_dict()}, status_code=422)
    except StaleDraftError as exc:
        return JSONResponse(
            {"detail": str(exc), "base_generation": exc.base, "superseded_by": exc.superseded_by}, status_code=409
        )
    except ValueError as exc:
        raise _fail(exc) from None
    return result.to_dict()


@router.post(f"{PREFIX}/drafts/{{draft_id}}/rebase", responses=_CLOSED)
def rebase(draft_id: int, session: SessionDep, who: Planner) -> dict[str, Any]:
    """Move the draft onto the generation in force; conflicting codes keep the planner's version."""
    _visible(session, draft_id, who)
    try:
        return drafts.rebase_draft(session, draft_id, actor=who.name)
    except ValueError as exc:
        raise _fail(exc) from None


@router.post(f"{PREFIX}/drafts/{{draft_id}}/discard", response_model=DraftOut, responses=_CLOSED)
def discard(draft_id: int, session: SessionDep, who: Planner) -> DraftOut:
    _visible(session, draft_id, who)
    try:
        drafts.discard_draft(session, draft_id, actor=who.name)
        return _draft_out(drafts.get_draft(session, draft_id))
    except ValueError as exc:
        raise _fail(exc) from None


@router.get(f"{PREFIX}/drafts/{{draft_id}}/export")
def export(
    draft_id: int,
    session: SessionDep,
    who: Viewer,
    format: Annotated[str, Query(pattern="^(gpkg|geojson)$")] = "gpkg",
) -> Response:
    """The draft as a GeoPackage or GeoJSON file, to edit in QGIS and upload again."""
    info = _visible(session, draft_id, who)
    data = fileio.write_features(drafts.load_features(session, draft_id), format, f"{info.layer}_draft{draft_id}")
    media = "application/geopackage+sqlite3" if format == "gpkg" else "application/geo+json"
    name = f"draft{draft_id}_{info.layer}.{format}"
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})
