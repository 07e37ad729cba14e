"""POST /places/import: places (points of interest) from a CSV (UTF-8 or GBK) or XLSX file, for
the address lookup to understand their names (gis.spatial.placeimport). Admin only; all or
nothing: a refused file gets a 422 listing every bad row as (row, field, value, reason)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import JSONResponse

from api.auth import Admin
from api.deps import SessionDep
from gis.bulk.readers import FORMATS, ImportFileError, read_table
from gis.core import audit
from gis.spatial.crs import UnknownCRSError, parse_crs
from gis.spatial.placeimport import PlaceImportError, import_places

router = APIRouter(tags=["lookup"])

MAX_FILE_BYTES = 20 * 1024 * 1024
_CHUNK = 1024 * 1024


def _refused(detail: str, problems: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": detail, "problems": problems}, status_code=422)


@router.post("/places/import", summary="Import places (name, aliases, kind, address or coordinate)")
def post_places_import(
    session: SessionDep,
    caller: Admin,
    file: UploadFile = File(..., description="CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) or XLSX"),
    crs: str = Query("wgs84", description="coordinate system of rows without a crs column: wgs84, gcj02, bd09"),
) -> Any:
    try:
        default_crs = parse_crs(crs)
    except UnknownCRSError as exc:
        return _refused(str(exc), [{"row": None, "field": "crs", "value": crs, "reason": str(exc)}])
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in FORMATS or FORMATS[suffix] not in ("csv", "xlsx"):
        reason = f"expected a .csv or .xlsx file, got {file.filename!r}"
        return _refused(reason, [{"row": None, "field": "file", "value": file.filename, "reason": reason}])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"places{suffix}"
        size = 0
        with path.open("wb") as out:
            while chunk := file.file.read(_CHUNK):
                size += len(chunk)
                if size > MAX_FILE_BYTES:
                    reason = f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB"
                    return _refused(
                        f"file {reason}", [{"row": None, "field": "file", "value": file.filename, "reason": reason}]
                    )
                out.write(chunk)
        try:
            raw = read_table(path)
        except ImportFileError as exc:
            return _refused(str(exc), [{"row": None, "field": "file", "value": file.filename, "reason": str(exc)}])
        raw.path = Path(file.filename or path.name)
        conn = session.connection()
        try:
            result = import_places(conn, raw, default_crs=default_crs, source=file.filename or "")
        except PlaceImportError as exc:
            # Nothing was written: every row is checked before the first is stored.
            problems = [{"row": p.row, "field": p.field, "value": p.value, "reason": p.reason} for p in exc.problems]
            return _refused(str(exc), problems)
    audit.record(
        conn,
        caller.name,
        "places.import",
        file.filename,
        rows=result.rows,
        inserted=result.inserted,
        updated=result.updated,
    )
    return {"rows": result.rows, "inserted": result.inserted, "updated": result.updated}
