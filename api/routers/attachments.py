"""Attachments (photos and files as evidence): upload, list, download, thumbnail.

The routes for each kind of owner are made from ``gis.files.owners.OWNERS`` (``/incidents/{id}/
attachments`` and, when registered there, ``/hazards/...`` and the others). An owner outside the
caller's scope answers 404 on every path, like a missing one. The file served to roles below
dispatcher is the copy without EXIF (gis.files.strip); the EXIF position and time are left out
of their JSON too. Uploads are raw bodies (the file, with its Content-Type) or multipart with a
``file`` field; either way they stream to disk (api.uploads) under GRIDMAP_ATTACHMENT_MAX_MB,
which this path enforces itself (it is exempt from the general body limit, api.body_limit).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import Reporter, Viewer
from api.deps import request_session
from api.uploads import receive
from gis.core.privacy import role_sees_personal_data
from gis.files import records
from gis.files.errors import TooLarge, UploadError
from gis.files.ingest import Upload, Uploader, attach
from gis.files.owners import OWNERS, OwnerKind, OwnerNotFound, locate
from gis.files.spool import Spool
from gis.files.storage import CHUNK, Storage, storage_at
from gis.people.keys import Principal
from gis.spatial.crs import CoordinateError, UnknownCRSError, check_lonlat, to_wgs84

router = APIRouter(tags=["attachments"])

Id = Annotated[int, PathParam(ge=1, le=2**63 - 1)]
MULTIPART_SLACK = 64 * 1024  # a multipart body's boundaries and part headers, beyond the file
LIST_LIMIT = 200

_UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the same content was already attached to this record: that attachment"},
    400: {"description": "the upload is truncated (or the file in it is cut short or damaged)"},
    404: {"description": "no such record, or one outside the key's scope"},
    413: {"description": "over GRIDMAP_ATTACHMENT_MAX_MB (the answer names the limit)"},
    415: {"description": "not a JPEG, PNG, HEIC/HEIF or PDF by content (the answer names what it is)"},
}


_BINARY = {"schema": {"type": "string", "format": "binary"}}
# The body is read as a stream (api.uploads), not by FastAPI: the document describes it here.
# Multipart (field `file`) is accepted too, as the description says; the document lists the raw
# bodies, which are what streams best.
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the file itself as the raw body, or multipart/form-data with the file in field `file`",
        "content": {t: _BINARY for t in ("image/jpeg", "image/png", "image/heic", "application/pdf")},
    }
}


def storage_of(request: Request) -> Storage:
    """The app's attachment store, made from its settings on first use."""
    state = request.app.state
    found: Storage | None = getattr(state, "attachment_storage", None)
    if found is None:
        found = state.attachment_storage = storage_at(state.settings.attachment_root)
    return found


def _work_dir(request: Request) -> Path:
    return Path(request.app.state.settings.attachment_root) / "incoming"


def describe(row: dict[str, Any], role: str) -> dict[str, Any]:
    """The JSON of an attachment; where and when the photo was taken only for dispatcher and up
    (it is what the stripped copy hides)."""
    out = {k: v for k, v in row.items() if not k.startswith(("exif_", "uploaded_by_"))}
    out.pop("public_key", None)
    if role_sees_personal_data(role):
        out["exif_lon"], out["exif_lat"] = row["exif_lon"], row["exif_lat"]
        out["exif_taken_at"] = row["exif_taken_at"]
    out["url"] = f"/attachments/{row['id']}"
    out["thumbnail_url"] = f"/attachments/{row['id']}/thumbnail" if row["thumbnail_key"] else None
    return out


def _claim(lon: float | None, lat: float | None, crs: str) -> tuple[float, float] | None:
    if (lon is None) != (lat is None):
        field = "lat" if lat is None else "lon"
        raise HTTPException(422, [{"loc": ["query", field], "msg": "lon and lat come together", "type": "value_error"}])
    if lon is None or lat is None:
        return None
    try:
        check_lonlat(lon, lat)
        x, y = to_wgs84(lon, lat, crs)
    except (CoordinateError, UnknownCRSError) as exc:
        raise HTTPException(422, [{"loc": ["query", "crs"], "msg": str(exc), "type": "value_error"}]) from None
    return float(x), float(y)


def _locate(request: Request, kind: str, owner_id: int, principal: Principal) -> tuple[float, float] | None:
    try:
        with request_session(request) as session:
            return locate(session, kind, owner_id, principal.scope)
    except OwnerNotFound as exc:
        raise HTTPException(404, str(exc)) from None


UPLOAD_DOC = """The type is read from the content (JPEG, PNG, PDF; HEIC/HEIF is converted to JPEG), never
from the name. The photo's EXIF position is compared with the claimed one (`lon`, `lat`, `crs`; by
default the record's own position): farther apart than GRIDMAP_ATTACHMENT_FAR_M is `flagged_far`.
The same content attached to the same record again answers 200 with the first attachment."""


def _add_owner_routes(owner: OwnerKind) -> None:
    kind = owner.kind

    async def upload(
        owner_id: Id,
        request: Request,
        principal: Reporter,
        lon: Annotated[float | None, Query(description="longitude claimed (default: the record's)")] = None,
        lat: Annotated[float | None, Query(description="latitude of the claimed position")] = None,
        crs: Annotated[str, Query(max_length=16, description="wgs84, gcj02 or bd09")] = "wgs84",
        filename: Annotated[str | None, Query(max_length=255, description="original file name (raw bodies)")] = None,
    ) -> JSONResponse:
        settings = request.app.state.settings
        claimed = _claim(lon, lat, crs)
        position = await run_in_threadpool(_locate, request, kind, owner_id, principal)
        limit = int(settings.attachment_max_mb * 1024 * 1024)
        declared_text = request.headers.get("content-length", "")
        declared = int(declared_text) if declared_text.isdigit() else None
        multipart = request.headers.get("content-type", "").lower().startswith("multipart/form-data")
        spool: Spool | None = None
        try:
            if multipart and declared is not None and declared > limit + MULTIPART_SLACK:
                raise TooLarge(limit)  # refused before a byte is read
            spool = Spool(_work_dir(request), limit, None if multipart else declared)
            name = await receive(request, spool) or filename
            sha256 = spool.finish()
            received = Upload(spool.path, sha256, spool.size, name, claimed or position)
            who = Uploader(principal.name, principal.account_id, principal.person_id)

            def store() -> tuple[dict[str, Any], bool]:
                with request_session(request) as session:
                    return attach(
                        session, storage_of(request), kind, owner_id, received, who,
                        settings.attachment_far_m, _work_dir(request),
                    )  # fmt: skip

            row, created = await run_in_threadpool(store)
        except UploadError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        finally:
            if spool is not None:
                spool.discard()
        return JSONResponse(_jsonable(describe(row, principal.role)), status_code=201 if created else 200)

    def list_attachments(owner_id: Id, request: Request, principal: Viewer) -> JSONResponse:
        _locate(request, kind, owner_id, principal)
        with request_session(request) as session:
            rows = records.list_for(session, kind, owner_id, LIST_LIMIT)
        items = [_jsonable(describe(r, principal.role)) for r in rows]
        return JSONResponse({"owner_kind": kind, "owner_id": owner_id, "attachments": items})

    path = f"/{owner.path}/{{owner_id}}/attachments"
    router.add_api_route(
        path, upload, methods=["POST"], status_code=201, name=f"upload_{kind}_attachment",
        summary=f"Attach a photo or file to a {kind} (JPEG, PNG, HEIC, PDF)", responses=_UPLOAD_RESPONSES,
        openapi_extra=_UPLOAD_BODY, description=UPLOAD_DOC,
    )  # fmt: skip
    router.add_api_route(
        path, list_attachments, methods=["GET"], name=f"list_{kind}_attachments",
        summary=f"A {kind}'s attachments", responses={404: {"description": "no such record in scope"}},
    )  # fmt: skip


def _jsonable(item: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in item.items()}


for _owner in OWNERS.values():
    _add_owner_routes(_owner)


def _visible(request: Request, attachment_id: int, principal: Principal) -> dict[str, Any]:
    with request_session(request) as session:
        row = records.get(session, attachment_id)
        if row is not None and row["owner_kind"] in OWNERS:
            try:
                locate(session, row["owner_kind"], row["owner_id"], principal.scope)
            except OwnerNotFound:
                row = None
        else:
            row = None
    if row is None:
        raise HTTPException(404, f"no attachment with id {attachment_id}")
    return row


def _chunks(storage: Storage, key: str) -> Iterator[bytes]:
    with storage.open(key) as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _send(request: Request, key: str, media_type: str, name: str | None) -> StreamingResponse:
    storage = storage_of(request)
    if not storage.exists(key):
        raise HTTPException(404, "the attachment's file is missing from the store")
    headers = {"ETag": f'"{key}"', "Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"}
    if name:
        headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(name, safe='')}"
    return StreamingResponse(_chunks(storage, key), media_type=media_type, headers=headers)


@router.get(
    "/attachments/{attachment_id}",
    summary="An attachment's file (without EXIF below dispatcher)",
    responses={404: {"description": "no such attachment, or its record is outside the key's scope"}},
)
def get_attachment(attachment_id: Id, request: Request, principal: Viewer) -> StreamingResponse:
    """The file. Roles below dispatcher get the copy without EXIF/XMP/IPTC metadata (position, time,
    device), the same picture byte for byte."""
    row = _visible(request, attachment_id, principal)
    key = row["sha256"] if role_sees_personal_data(principal.role) else row["public_key"]
    return _send(request, key, row["media_type"], row["original_name"])


@router.get(
    "/attachments/{attachment_id}/thumbnail",
    summary="An attachment's thumbnail (JPEG, 320 px)",
    responses={404: {"description": "no such attachment in scope, or a PDF (no thumbnail)"}},
)
def get_thumbnail(attachment_id: Id, request: Request, principal: Viewer) -> StreamingResponse:
    row = _visible(request, attachment_id, principal)
    if row["thumbnail_key"] is None:
        raise HTTPException(404, f"attachment {attachment_id} ({row['media_type']}) has no thumbnail")
    return _send(request, row["thumbnail_key"], "image/jpeg", None)
