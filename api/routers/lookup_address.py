"""The address side of a lookup (GET /lookup?address=.. and the address items of POST /lookup/batch):
the geocoder's answer as the ``address`` block, the 404 detail of no confident match, and the
lookup of a matched address."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Connection

from api.deps import autocommit_connection
from gis.spatial.address_text import AddressError
from gis.spatial.geocode import GeocodeResult, geocode
from gis.spatial.lookup import LookupService
from gis.spatial.lookupinput import LookupInputError


def address_block(result: GeocodeResult) -> dict[str, Any]:
    def match(m: Any) -> dict[str, Any]:
        return {
            "address_id": m.address_id,
            "full_text": m.full_text,
            "lon": m.lon,
            "lat": m.lat,
            "score": m.score,
            "precision": m.precision,
            "found": m.found,
            "place": m.place,
        }

    return {
        "query": result.query,
        "normalized": result.normalized,
        "method": result.method,
        "match": match(result.match) if result.match else None,
        "candidates": [match(c) for c in result.candidates],
    }


def not_found_detail(result: GeocodeResult, threshold: float) -> str:
    if not result.candidates:
        return f"no standard address resembles {result.query!r}"
    best = result.candidates[0]
    if best.precision in ("road", "village"):
        # Say what was found, honestly: a road or a village is not a position for a grid.
        return (
            f"only the {best.precision} {best.found!r} was found for {result.query!r} (confidence {best.score:.2f}, "
            f"below the threshold {threshold:.2f}); see the candidates"
        )
    return (
        f"no confident match for {result.query!r}: the best candidate scores {best.score:.2f}, "
        f"below the threshold {threshold:.2f}; see the candidates"
    )


def lookup_address(request: Request, service: LookupService, address: str, at: Any, sees: bool) -> JSONResponse:
    with autocommit_connection(request) as conn:
        return _answer_address(request, conn, service, address, at, sees)


def _answer_address(
    request: Request, conn: Connection, service: LookupService, address: str, at: Any, sees: bool
) -> JSONResponse:
    threshold = request.app.state.settings.geocode_min_score
    try:
        result = geocode(conn, address, threshold=threshold)
    except AddressError as exc:
        raise LookupInputError("address", str(exc)) from None
    block = address_block(result)
    if result.match is None:
        return JSONResponse(
            {"detail": not_found_detail(result, threshold), "error": "address_not_found", "address": block},
            status_code=404,
        )
    answer = service.lookup_point(conn, result.match.lon, result.match.lat, at=at, sees_personal_data=sees)
    answer["input"] = None
    answer["hint"] = None
    answer["address"] = block
    return JSONResponse(answer)
