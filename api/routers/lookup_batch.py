"""POST /lookup/batch: many coordinates and/or addresses in one request (JSON or CSV); the single
lookup is api/routers/lookup.py."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.auth import require
from api.deps import SessionDep
from api.lookup_service import service_of
from api.routers.lookup import MAX_ADDRESS_CHARS, _sees, invalid
from api.routers.lookup_address import address_block, not_found_detail
from api.schemas.lookup import BatchOut
from api.timeparams import as_of_param
from gis.people.keys import Principal
from gis.spatial.address_text import AddressError
from gis.spatial.crs import to_wgs84
from gis.spatial.geocode import GeocodeResult, geocode_many
from gis.spatial.lookup import LookupService
from gis.spatial.lookupinput import LookupInputError, parse_point

router = APIRouter(tags=["lookup"])

BATCH_LIMIT = 10_000

BATCH_DESCRIPTION = f"""
Up to {BATCH_LIMIT:,} coordinates and/or addresses in one request, answered in input order.

Send either a JSON array of items, each `{{"lon": .., "lat": .., "crs": "wgs84"}}` (crs optional)
or `{{"address": ".."}}`, or a CSV file (as the body with `Content-Type: text/csv`, or as the
multipart field `file`) with a header naming `lon`, `lat`, `crs` and/or `address` columns.
A bad item is reported in its place (`ok: false`, `error.field` names the field) without failing
the others. Coordinates are assigned together in one vectorised pass. `as_of` applies to all.
"""

BATCH_BODY = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "maxItems": BATCH_LIMIT,
                    "items": {
                        "type": "object",
                        "properties": {
                            "lon": {"type": "number"},
                            "lat": {"type": "number"},
                            "crs": {"type": "string", "enum": ["wgs84", "gcj02", "bd09"]},
                            "address": {"type": "string", "maxLength": MAX_ADDRESS_CHARS},
                        },
                    },
                },
                "example": [
                    {"lon": 120.9215, "lat": 30.8412},
                    {"lon": 120.9262, "lat": 30.8388, "crs": "gcj02"},
                    {"address": "魏塘街道中山路128号3幢"},
                ],
            },
            "text/csv": {"schema": {"type": "string"}, "example": "lon,lat,crs\n120.9215,30.8412,wgs84\n"},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
        "required": True,
    }
}


async def _read_items(request: Request) -> list[Any]:
    ctype = request.headers.get("content-type", "").lower()
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise invalid("file", "the multipart upload needs a CSV file in the field 'file'", where="body")
        return _csv_items(await upload.read())
    body = await request.body()
    if ctype.startswith("text/csv") or ctype.startswith("application/csv"):
        return _csv_items(body)
    try:
        data = json.loads(body or b"null")
    except ValueError as exc:
        raise invalid("items", f"the body is not JSON ({exc}); send a JSON array or a CSV file", where="body") from None
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if not isinstance(data, list):
        raise invalid("items", "the body must be a JSON array of items", where="body")
    return data


def _csv_items(raw: bytes) -> list[Any]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")  # spreadsheets saved on Chinese Windows
        except UnicodeDecodeError:
            raise invalid("file", "the CSV is neither UTF-8 nor GB18030 text", where="body") from None
    # newline="": the csv module reads line ends itself (a bare CR is one), as its documentation asks.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        columns = {c.strip().lower() for c in reader.fieldnames or []}
        if not ({"lon", "lat"} <= columns or "address" in columns):
            msg = f"the CSV header {sorted(columns)} has neither lon and lat nor address"
            raise invalid("file", msg, where="body")
        rows = list(reader)
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise invalid("file", f"the CSV is malformed: {exc}", where="body") from None
    items = []
    for row in rows:
        clean = {(k or "").strip().lower(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
        items.append({k: v for k, v in clean.items() if k in ("lon", "lat", "crs", "address") and v not in ("", None)})
    return items


@router.post(
    "/lookup/batch",
    response_model=BatchOut,
    summary="Look up many coordinates and/or addresses at once (JSON or CSV)",
    description=BATCH_DESCRIPTION,
    openapi_extra=BATCH_BODY,
    responses={422: {"description": "the body is unusable or has more than 10,000 items"}},
)
async def lookup_batch(
    request: Request,
    session: SessionDep,
    caller: Annotated[Principal, Depends(require("viewer"))],
    at: Annotated[dt.datetime | None, Depends(as_of_param())] = None,
) -> Any:
    items = await _read_items(request)
    if len(items) > BATCH_LIMIT:
        raise invalid("items", f"{len(items):,} items is over the limit of {BATCH_LIMIT:,} per request", where="body")
    threshold = request.app.state.settings.geocode_min_score
    results = await run_in_threadpool(run_batch, session, service_of(request), items, at, _sees(caller), threshold)
    ok = sum(1 for r in results if r["ok"])
    return JSONResponse({"count": len(results), "ok": ok, "failed": len(results) - ok, "results": results})


def _fail(index: int, field: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"index": index, "ok": False, "error": {"field": field, "message": message}, "result": None, **extra}


def run_batch(
    session: Session, service: LookupService, items: list[Any], at: Any, sees: bool, threshold: float
) -> list[dict[str, Any]]:
    """Validate every item, assign all coordinates in one pass, geocode the addresses."""
    out: list[dict[str, Any] | None] = [None] * len(items)
    points: list[tuple[int, float, float, str]] = []
    addresses: list[tuple[int, str]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            out[i] = _fail(i, "item", f"expected an object with lon/lat or address, got {type(item).__name__}")
            continue
        if "address" in item and item["address"] is not None:
            text = item["address"]
            if "lon" in item or "lat" in item:
                out[i] = _fail(i, "address", "give either address or lon and lat, not both")
            elif not isinstance(text, str):
                out[i] = _fail(i, "address", f"must be a string, got {type(text).__name__}")
            elif len(text) > MAX_ADDRESS_CHARS:
                out[i] = _fail(i, "address", f"is {len(text):,} characters long, at most {MAX_ADDRESS_CHARS:,}")
            else:
                addresses.append((i, text))
            continue
        try:
            lon, lat, crs = parse_point(item.get("lon"), item.get("lat"), item.get("crs") or "wgs84")
            service.check_range(session, lon, lat, at=at)
        except LookupInputError as exc:
            out[i] = _fail(i, exc.param, exc.reason)
            continue
        points.append((i, lon, lat, crs.value))

    if points:
        idx = np.array([p[0] for p in points])
        lon_in = np.array([p[1] for p in points])
        lat_in = np.array([p[2] for p in points])
        crs_in = np.array([p[3] for p in points], dtype=object)
        lon_w, lat_w = lon_in.copy(), lat_in.copy()
        for crs in set(crs_in.tolist()) - {"wgs84"}:
            sel = crs_in == crs
            lon_w[sel], lat_w[sel] = to_wgs84(lon_in[sel], lat_in[sel], crs)
        answers = service.lookup(session, lon_w, lat_w, at=at, sees_personal_data=sees)
        for k, answer in enumerate(answers):
            answer["input"] = {"lon": float(lon_in[k]), "lat": float(lat_in[k]), "crs": crs_in[k]}
            answer["hint"] = None
            answer["address"] = None
            out[int(idx[k])] = {"index": int(idx[k]), "ok": True, "error": None, "result": answer}

    if addresses:
        found = geocode_many(session, [t for _, t in addresses], threshold=threshold)
        matched: list[tuple[int, GeocodeResult]] = []
        for (i, _), res in zip(addresses, found, strict=True):
            if isinstance(res, AddressError):
                out[i] = _fail(i, "address", str(res))
            elif res.match is None:
                block = address_block(res)
                out[i] = _fail(i, "address", not_found_detail(res, threshold), candidates=block["candidates"])
            else:
                matched.append((i, res))
        if matched:
            answers = service.lookup(
                session,
                [r.match.lon for _, r in matched if r.match],
                [r.match.lat for _, r in matched if r.match],
                at=at,
                sees_personal_data=sees,
            )
            for (i, res), answer in zip(matched, answers, strict=True):
                answer["input"] = None
                answer["hint"] = None
                answer["address"] = address_block(res)
                out[i] = {"index": i, "ok": True, "error": None, "result": answer}
    return [r for r in out if r is not None]
