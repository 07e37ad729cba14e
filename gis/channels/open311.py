"""Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2) over the residents' tickets.

* ``services``: the resident categories (gis.channels.categories); none has metadata.
* ``requests`` (GET): the tickets of the public channels, newest first, at most ``MAX_REQUESTS``,
  filtered by ``service_request_id``, ``service_code``, ``status`` (open, closed), ``start_date``
  and ``end_date`` (by default the last 90 days; a range may span 90 days at most).
* ``requests/{id}``, ``tokens/{token}``: one ticket; the service_request_id of a POST's token.

Reads are public, as the spec intends, so a request shows nothing personal: no description, no
address, no phone, no photos, no staff; the position is rounded to 3 decimals (about 100 m). The
service_request_id is the ticket number; ``agency_responsible`` is the handling unit (the unit
holding the lead, else a village and town: gis.channels.tickets.handling_unit). Output is JSON or
XML, as the URL's suffix says.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gis.channels import tickets
from gis.channels.categories import RESIDENT_CATEGORIES
from gis.channels.public import PUBLIC_STATUS
from gis.core.vocab import COUNTY_TZ, FINAL_STATUSES
from gis.spatial.areas import Conn

JURISDICTION = "330421"  # 嘉善县: the county's administrative code
MAX_REQUESTS = 1000
MAX_SPAN = dt.timedelta(days=90)
POSITION_DECIMALS = 3
# Each resident code maps to its own gridmap category, so the category names the code back.
CODE_OF_CATEGORY = {c.category: c.code for c in RESIDENT_CATEGORIES.values()}
assert len(CODE_OF_CATEGORY) == len(RESIDENT_CATEGORIES), "two resident codes share a gridmap category"


class Open311Error(Exception):
    """An error in the spec's format: an HTTP status, the code it repeats, a description."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def check_jurisdiction(value: str | None) -> None:
    if value not in (None, "", JURISDICTION):
        raise Open311Error(404, f"jurisdiction_id {value!r} is not served here; this endpoint serves {JURISDICTION}")


def services() -> list[dict[str, Any]]:
    return [
        {
            "service_code": c.code,
            "service_name": c.zh,
            "description": f"{c.zh} ({c.en})",
            "metadata": False,
            "type": "realtime",
            "keywords": c.en,
            "group": c.group_zh,
        }
        for c in RESIDENT_CATEGORIES.values()
    ]


@dataclass(frozen=True)
class RequestFilter:
    ids: Sequence[str] = ()
    codes: Sequence[str] = ()
    status: str | None = None  # open | closed
    start: dt.datetime | None = None
    end: dt.datetime | None = None


def _split(field: str, value: str | None, known: Sequence[str] | None = None) -> list[str]:
    items = [v.strip() for v in (value or "").split(",") if v.strip()]
    if known is not None:
        for v in items:
            if v not in known:
                raise Open311Error(400, f"{field}: unknown value {v!r}; accepted: {', '.join(known)}")
    return items


def parse_filter(
    service_request_id: str | None,
    service_code: str | None,
    status: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    now: dt.datetime,
) -> RequestFilter:
    ids = _split("service_request_id", service_request_id)
    codes = _split("service_code", service_code, list(RESIDENT_CATEGORIES))
    statuses = _split("status", status, ["open", "closed"])
    if ids:  # the spec: ids override every other argument
        return RequestFilter(ids=ids)
    if start is None and end is None:
        start = now - MAX_SPAN
    elif start is not None and end is not None:
        if end < start:
            raise Open311Error(400, f"end_date {end.isoformat()} is before start_date {start.isoformat()}")
        if end - start > MAX_SPAN:
            raise Open311Error(400, f"start_date to end_date spans {(end - start).days} days; at most 90 allowed")
    elif start is None and end is not None:
        start = end - MAX_SPAN
    return RequestFilter((), codes, statuses[0] if len(statuses) == 1 else None, start, end)


_FINAL = ", ".join(f"'{s}'" for s in FINAL_STATUSES)
_SELECT = f"""
    SELECT t.id, t.ticket, t.created_at, t.open311_token, i.id AS incident_id, i.status, i.category, i.town_code,
           i.village_code, i.deadline_at, i.closed_at, round(ST_X(i.geom)::numeric, {POSITION_DECIMALS}) AS lon,
           round(ST_Y(i.geom)::numeric, {POSITION_DECIMALS}) AS lat,
           (SELECT max(e.at) FROM incident_events e WHERE e.incident_id = i.id) AS updated_at
    FROM public_tickets t JOIN incidents i ON i.id = t.incident_id
"""  # noqa: S608 - only constants are formatted in


def list_requests(conn: Conn, f: RequestFilter) -> list[dict[str, Any]]:
    wanted_categories = [RESIDENT_CATEGORIES[c].category for c in f.codes]
    rows = (
        conn.execute(
            sa.text(
                _SELECT + "WHERE (cardinality(CAST(:ids AS text[])) = 0 OR t.ticket = ANY(:ids)) "
                "AND (cardinality(CAST(:cats AS text[])) = 0 OR i.category = ANY(:cats)) "
                f"AND (CAST(:status AS text) IS NULL OR (i.status IN ({_FINAL})) = (:status = 'closed')) "
                "AND (CAST(:start AS timestamptz) IS NULL OR t.created_at >= :start) "
                "AND (CAST(:end AS timestamptz) IS NULL OR t.created_at <= :end) "
                "ORDER BY t.created_at DESC, t.id DESC LIMIT :limit"
            ),
            {
                "ids": list(f.ids),
                "cats": wanted_categories,
                "status": f.status,
                "start": f.start,
                "end": f.end,
                "limit": MAX_REQUESTS,
            },
        )
        .mappings()
        .all()
    )
    names = tickets.unit_names(conn, [c for r in rows for c in tickets.unit_codes(dict(r))])
    holders = tickets.holder_units(conn, [r["incident_id"] for r in rows])
    return [_request(conn, dict(r), names, holders) for r in rows]


def request_by_token(conn: Conn, token: str) -> dict[str, Any]:
    ticket = conn.execute(
        sa.text("SELECT ticket FROM public_tickets WHERE open311_token = :t"), {"t": token}
    ).scalar_one_or_none()
    if ticket is None:
        raise Open311Error(404, f"token {token!r} is unknown")
    return {"service_request_id": ticket, "token": token}


def _w3c(value: dt.datetime | None) -> str | None:
    return value.astimezone(COUNTY_TZ).isoformat(timespec="seconds") if value else None


def _request(conn: Conn, r: dict[str, Any], names: dict[str, str], holders: dict[int, str]) -> dict[str, Any]:
    # Staff may recategorise a matter: a category no resident code maps to shows as "other".
    code = CODE_OF_CATEGORY.get(r["category"], "other")
    category = RESIDENT_CATEGORIES[code]
    return {
        "service_request_id": r["ticket"],
        "status": "closed" if r["status"] in FINAL_STATUSES else "open",
        "status_notes": PUBLIC_STATUS[r["status"]][1],
        "service_name": category.zh,
        "service_code": code,
        "description": None,
        "agency_responsible": tickets.handling_unit(conn, r["incident_id"], r, names=names, holders=holders),
        "service_notice": None,
        "requested_datetime": _w3c(r["created_at"]),
        "updated_datetime": _w3c(r["updated_at"] or r["created_at"]),
        "expected_datetime": _w3c(r["deadline_at"]) if r["status"] not in FINAL_STATUSES else None,
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": float(r["lat"]) if r["lat"] is not None else None,
        "long": float(r["lon"]) if r["lon"] is not None else None,
        "media_url": None,
    }


# --- XML ------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_xml(root: str, item: str, rows: list[dict[str, Any]]) -> bytes:
    """``<root><item><field>value</field>…</item>…</root>``, the spec's XML shape."""
    top = ET.Element(root)
    for row in rows:
        element = ET.SubElement(top, item)
        for key, value in row.items():
            ET.SubElement(element, key).text = _text(value)
    return b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(top, encoding="unicode").encode()


def errors_xml(status: int, description: str) -> bytes:
    return to_xml("errors", "error", [{"code": status, "description": description}])
