"""Residents' reports (居民上报): intake through the one incident intake, a ticket to follow it, and
the masked view of it.

``submit_report`` checks a report in the resident's terms (a category from the resident list, a
position as phones send it, GCJ-02 by default, or an address; photos checked by content), merges it
into an open incident it duplicates by the intake's rule (same category, within
``duplicate_radius_m`` and ``duplicate_window_hours``) or files a new incident with source
``resident_app``, and answers with a ticket number and a tracking token, all in the caller's
transaction: nothing is half-written. ``view_report`` shows the matter to the holder of the token.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from gis.channels import photos as ph
from gis.channels import tickets
from gis.channels.categories import RESIDENT_CATEGORIES, resident_category
from gis.channels.errors import FIELD_ZH, PublicInputError, pick_lang
from gis.core.settings import Settings, get_settings
from gis.incidents.intake import IncidentInputError, create_incident
from gis.spatial import crs as gcrs
from gis.spatial.address_text import AddressError
from gis.spatial.areas import Conn

SOURCE = "resident_app"
ACTOR = "resident"
PHONE = re.compile(r"^\+?[0-9][0-9 \-]{5,18}[0-9]$")
DEVICE = re.compile(r"^[A-Za-z0-9._:\-]{4,64}$")
POSITION_CRS = ("gcj02", "bd09", "wgs84")
MAX_DESCRIPTION = 2000
MAX_ADDRESS = 200

# What a resident is told of the matter's state (the staff loop has finer steps).
PUBLIC_STATUS: dict[str, tuple[str, str, str]] = {
    "reported": ("received", "已受理", "received"),
    "accepted": ("processing", "处理中", "being handled"),
    "dispatched": ("processing", "处理中", "being handled"),
    "in_progress": ("processing", "处理中", "being handled"),
    "handled": ("handled", "已处理", "handled"),
    "verified": ("handled", "已处理", "handled"),
    "closed": ("closed", "已办结", "closed"),
    "rejected": ("rejected", "不予受理", "not taken up"),
}
RATEABLE = ("handled", "verified", "closed", "rejected")


def bad(field: str, value: Any, en: str, zh: str | None = None) -> PublicInputError:
    return PublicInputError(field, value, zh or FIELD_ZH.get(field, "输入不正确"), en)


def _text(data: Mapping[str, Any], field: str, limit: int) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(field, value, f"must be text, got {type(value).__name__}")
    value = value.strip()
    if "\x00" in value:
        raise bad(field, value.replace("\x00", "\\0"), "contains a NUL character")
    if len(value) > limit:
        raise bad(field, value[:40] + "…", f"is {len(value)} characters long; at most {limit} allowed")
    return value or None


def _number(field: str, value: Any, limit: float) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        raise bad(field, value, f"{value!r} is not a number") from None
    if not math.isfinite(number) or abs(number) > limit:
        raise bad(field, value, f"{value!r} is not a number in [-{limit:g}, {limit:g}]")
    return number


def _position(conn: Conn, data: Mapping[str, Any]) -> tuple[float, float, dict[str, Any]] | None:
    """(lon, lat) WGS-84 for the duplicate search, and the intake fields; None: no position given."""
    crs = data.get("crs") or "gcj02"  # what Amap, WeChat and most phone map kits give
    if crs not in POSITION_CRS:
        raise bad("crs", crs, f"unknown coordinate system {crs!r}; accepted: {', '.join(POSITION_CRS)}")
    if data.get("lon") not in (None, "") or data.get("lat") not in (None, ""):
        if data.get("lon") in (None, ""):
            raise bad("lon", None, "missing; give lon and lat together")
        if data.get("lat") in (None, ""):
            raise bad("lat", None, "missing; give lon and lat together")
        lon, lat = _number("lon", data["lon"], 180), _number("lat", data["lat"], 90)
        wgs_lon, wgs_lat = gcrs.to_wgs84(lon, lat, crs)
        return float(wgs_lon), float(wgs_lat), {"lon": lon, "lat": lat, "crs": crs}
    address = _text(data, "address", MAX_ADDRESS)
    if not address:
        return None
    from gis.spatial.geocode import geocode  # heavy; only reports by address need it

    try:
        found = geocode(conn, address)
    except AddressError as exc:
        raise bad("address", address, str(exc)) from None
    if found.match is None:
        raise bad("address", address, f"{address!r} matches no standard address with enough confidence")
    return found.match.lon, found.match.lat, {"address": address}


def _intake_error(exc: IncidentInputError, data: Mapping[str, Any]) -> PublicInputError:
    field = {"reporter_phone": "phone"}.get(exc.field, exc.field)
    return bad(field, data.get(field), getattr(exc, "reason", str(exc)))


def submit_report(
    conn: Conn,
    data: Mapping[str, Any],
    *,
    ip: str | None = None,
    photos: list[bytes] | None = None,
    channel: str = "web",
    actor: str = ACTOR,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """File a resident's report; returns the ticket (with its token, shown only now) and the state."""
    settings = settings or get_settings()
    now = now or dt.datetime.now(dt.UTC)
    lang = pick_lang(data.get("lang"))
    category = resident_category(data.get("category"))
    if category is None:
        raise bad("category", data.get("category"), f"unknown category; accepted: {', '.join(RESIDENT_CATEGORIES)}")
    description = _text(data, "description", MAX_DESCRIPTION)
    if not description:
        raise bad("description", data.get("description"), "a description is required", "请描述您要反映的问题")
    phone = _text(data, "phone", 20)
    if phone and not PHONE.match(phone):
        raise bad("phone", phone, f"{phone!r} is not a phone number")
    device = _text(data, "device_id", 64)
    if device and not DEVICE.match(device):
        raise bad("device_id", device, "4-64 letters, digits or . _ : -")
    media_url = _text(data, "media_url", 500)
    if media_url and not media_url.startswith(("http://", "https://")):
        raise bad("media_url", media_url, "must be an http(s) URL")
    checked = ph.check_photos(photos or [], int(settings.public_photo_max_mb * 1024 * 1024))
    where = _position(conn, data)
    if where is None:
        raise bad(
            "lon",
            None,
            "a position is required: lon and lat (crs gcj02, bd09 or wgs84), or an address",
            "请在地图上选择位置，或填写地址",
        )
    lon, lat, located = where

    window = dt.timedelta(hours=settings.duplicate_window_hours)
    dup = tickets.duplicate_of(conn, category.category, lon, lat, now, settings.duplicate_radius_m, window)
    brief: dict[str, Any] | None = None
    if dup is not None:
        incident_id, merged = dup, True
    else:
        body = {
            "category": category.category,
            "source": SOURCE,
            "description": description,
            "reporter_phone": phone,
            **located,
        }
        try:
            incident, _ = create_incident(conn, body, actor, settings=settings, now=now)
        except IncidentInputError as exc:
            raise _intake_error(exc, data) from None
        incident_id, merged = int(incident["id"]), False
        brief = {k: incident[k] for k in BRIEF_COLUMNS}  # the intake answered with the row: no second read
    ticket = tickets.insert_ticket(
        conn,
        incident_id,
        merged=merged,
        channel=channel,
        device_id=device,
        ip=ip,
        phone=phone,
        lang=lang,
        media_url=media_url,
        now=now,
    )
    if merged:
        tickets.note_merged_report(conn, incident_id, ticket.ticket, now)
    ph.store_photos(conn, ticket.id, checked)
    if brief is None:
        brief = incident_brief(conn, incident_id)
    outside = brief["assign_status"] == "outside_jurisdiction"
    return {
        "ticket": ticket.ticket,
        "token": ticket.token,
        "open311_token": ticket.open311_token,
        "incident_id": incident_id,
        "merged": merged,
        "outside_county": outside,
        "photos": len(checked),
        "notice": _notice(lang, merged, outside),
        **_state(brief, lang),
    }


def _notice(lang: str, merged: bool, outside: bool) -> str:
    if lang == "en":
        text = "Thank you: your report was received."
        if merged:
            text += " The same matter nearby is already being handled; your report was added to it."
        if outside:
            text += " The place lies outside Jiashan county; staff will forward it to whoever is responsible."
        return text
    text = "感谢您的反映，已收到。"
    if merged:
        text += "附近已有相同问题正在处理，您的反映已并入一并处理。"
    if outside:
        text += "该位置不在嘉善县范围内，工作人员将转交有关单位。"
    return text


# What the residents' views read of an incident (the intake's answer holds them all).
BRIEF_COLUMNS = (
    "id", "category", "status", "town_code", "village_code", "escalation_level", "assign_status", "reported_at",
    "closed_at",
)  # fmt: skip
_BRIEF_SQL = sa.text(f"SELECT {', '.join(BRIEF_COLUMNS)} FROM incidents WHERE id = :id")  # noqa: S608 - constants


# The tracking page reads the ticket, its incident's brief, its rating and its photo count at once.
_VIEW_COLUMNS = (
    ", ".join(f"i.{c} AS i_{c}" for c in BRIEF_COLUMNS)  # noqa: S608 - constants only
    + ", (SELECT r.rating FROM public_ratings r WHERE r.ticket_id = t.id) AS rating"
    + ", (SELECT count(*) FROM public_photos p WHERE p.ticket_id = t.id) AS photos"
)


def incident_brief(conn: Conn, incident_id: int) -> dict[str, Any]:
    row = (
        conn.execute(
            _BRIEF_SQL,
            {"id": incident_id},
        )
        .mappings()
        .one()
    )
    return dict(row)


def _state(brief: dict[str, Any], lang: str) -> dict[str, Any]:
    code, zh, en = PUBLIC_STATUS[brief["status"]]
    return {"status": code, "status_text": en if lang == "en" else zh}


def view_report(conn: Conn, ticket: str, token: str | None, lang: str = "zh") -> dict[str, Any]:
    """The ticket as its holder sees it: state, handling unit, masked timeline, rating."""
    found = tickets.find_ticket(conn, ticket, token, view=_VIEW_COLUMNS)
    brief = {k: found.pop(f"i_{k}") for k in BRIEF_COLUMNS}
    rating = {"rating": found["rating"]} if found["rating"] is not None else None
    unit = tickets.handling_unit(conn, brief["id"], brief, lang)  # read once: the timeline names it too
    return {
        "ticket": found["ticket"],
        "created_at": found["created_at"],
        "merged": found["merged"],
        "outside_county": brief["assign_status"] == "outside_jurisdiction",
        **_state(brief, lang),
        "unit": unit,
        "timeline": tickets.timeline(conn, found, brief, lang, unit or ""),
        "rating": rating["rating"] if rating else None,
        "can_rate": rating is None and brief["status"] in RATEABLE,
        "photos": found["photos"],
    }
