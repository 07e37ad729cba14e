"""Residents' tickets in the database: numbers, tracking tokens, the duplicate search, the masked
timeline and the unit handling a matter.

A ticket number is the county date and six random digits (``261203-482139``): short enough to read
out on the phone, and not a counter that tells how many reports came in. The tracking token is 128
random bits shown once; only its SHA-256 is stored, and it is compared in constant time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gis.channels.errors import TicketNotFound
from gis.core.predicates import is_current, is_open
from gis.core.vocab import COUNTY_TZ
from gis.incidents import rules
from gis.spatial.areas import Conn

TICKET_ATTEMPTS = 8
_LEVEL_REACHED = re.compile(r"→ (\w+)")


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _inet(ip: str | None) -> str | None:
    """The address as PostgreSQL's inet, None for what is no IP address (a Unix socket peer)."""
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return None


def new_ticket_number(now: dt.datetime) -> str:
    return f"{now.astimezone(COUNTY_TZ):%y%m%d}-{secrets.randbelow(1_000_000):06d}"


@dataclass(frozen=True)
class NewTicket:
    id: int
    ticket: str
    token: str  # the plain token: given to the resident once, never stored
    open311_token: str | None


def insert_ticket(
    conn: Conn,
    incident_id: int,
    *,
    merged: bool,
    channel: str,
    device_id: str | None,
    ip: str | None,
    phone: str | None,
    lang: str,
    media_url: str | None,
    now: dt.datetime,
) -> NewTicket:
    token = secrets.token_urlsafe(16)
    spec_token = secrets.token_hex(8) if channel == "open311" else None
    for _ in range(TICKET_ATTEMPTS):  # a collision of numbers on one day is rare; try another
        number = new_ticket_number(now)
        row = conn.execute(
            sa.text(
                "INSERT INTO public_tickets (ticket, token_hash, incident_id, merged, channel, device_id, ip, phone, "
                "lang, open311_token, media_url, created_at) "
                "VALUES (:ticket, :hash, :incident, :merged, :channel, :device, CAST(:ip AS inet), :phone, :lang, "
                ":spec_token, :media_url, :now) ON CONFLICT (ticket) DO NOTHING RETURNING id"
            ),
            {
                "ticket": number,
                "hash": token_hash(token),
                "incident": incident_id,
                "merged": merged,
                "channel": channel,
                "device": device_id,
                "ip": _inet(ip),
                "phone": phone,
                "lang": lang,
                "spec_token": spec_token,
                "media_url": media_url,
                "now": now,
            },
        ).scalar_one_or_none()
        if row is not None:
            return NewTicket(int(row), number, token, spec_token)
    raise RuntimeError("no free ticket number after several tries")


def find_ticket(conn: Conn, ticket: str, token: str | None, lock: bool = False, view: str = "") -> dict[str, Any]:
    """The ticket whose number and token both match; else TicketNotFound (the same either way).
    ``view``: more columns (a constant SQL list over ``t`` and its incident ``i``) read in the same
    statement, so that the tracking page is one round trip fewer per thing it shows."""
    join = " JOIN incidents i ON i.id = t.incident_id" if view else ""
    row = (
        conn.execute(
            sa.text(
                "SELECT t.id, t.ticket, t.token_hash, t.incident_id, t.merged, t.channel, t.created_at, t.lang"  # noqa: S608
                + (f", {view}" if view else "")
                + f" FROM public_tickets t{join} WHERE t.ticket = :ticket"
                + (" FOR UPDATE OF t" if lock else "")
            ),
            {"ticket": ticket},
        )
        .mappings()
        .one_or_none()
    )
    # Hash even when there is no row, so that a miss and a wrong token take the same time.
    presented = token_hash(token or "")
    if row is None or not token or not hmac.compare_digest(bytes(row["token_hash"]), presented):
        raise TicketNotFound()
    return dict(row)


def duplicate_of(
    conn: Conn, category: str, lon: float, lat: float, at: dt.datetime, radius_m: float, window: dt.timedelta
) -> int | None:
    """The open incident a new report of ``category`` at (lon, lat) WGS-84 duplicates, by the intake's
    rule (same category, within ``radius_m`` and ``window`` of its report time), nearest first."""
    dy = radius_m / 110_000.0 * 1.1
    dx = dy / max(math.cos(math.radians(lat)), 0.01)
    found = conn.execute(
        sa.text(
            "SELECT o.id FROM incidents o "  # noqa: S608 - only constants are formatted in
            "WHERE o.geom && ST_MakeEnvelope(:lon - :dx, :lat - :dy, :lon + :dx, :lat + :dy, 4326) "
            f"AND {is_open('o')} AND o.category = :category AND o.reported_at BETWEEN :t0 AND :t1 "
            "AND ST_DWithin(o.geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :r) "
            "ORDER BY ST_Distance(o.geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography), o.id "
            "LIMIT 1"
        ),
        {
            "lon": lon,
            "lat": lat,
            "dx": dx,
            "dy": dy,
            "category": category,
            "t0": at - window,
            "t1": at + window,
            "r": radius_m,
        },
    ).scalar_one_or_none()
    return None if found is None else int(found)


def note_merged_report(conn: Conn, incident_id: int, ticket: str, now: dt.datetime) -> None:
    """Tell the incident's handlers, in its history, that one more resident reported it."""
    conn.execute(
        sa.text(
            "INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note) "
            "SELECT id, :now, 'resident', 'resident_report', status, status, :note FROM incidents WHERE id = :id"
        ),
        {"id": incident_id, "now": now, "note": f"another resident reported the same matter (ticket {ticket})"},
    )


# --- what a resident may see ------------------------------------------------------------------


def unit_names(conn: Conn, codes: list[str]) -> dict[str, str]:
    """Names of the areas in force with these codes, in one query."""
    return dict(
        conn.execute(
            sa.text(f"SELECT code, name FROM areas WHERE code = ANY(:codes) AND {is_current()}"),  # noqa: S608
            {"codes": sorted(set(codes))},
        ).all()
    )


def unit_codes(incident: dict[str, Any]) -> list[str]:
    return [c for c in (incident.get("village_code"), incident.get("town_code")) if c]


# The current lead of each incident: its latest lead dispatch that was not declined or withdrawn
# (an offer, an accepted one, or the one that handled it), as gis.incidents.reopen reads it. A unit
# holder is named by the unit; a person by the unit or, without one, the area of the posting that
# serves the incident (in force today first): a resident is never told a staff member's name.
_HOLDER_UNITS = sa.text(
    f"""
    WITH lead AS (
        SELECT DISTINCT ON (a.incident_id) a.incident_id, a.person_id, a.org_unit_id,
               ARRAY[i.town_code, i.village_code, i.grid_code, i.micro_grid_code, i.station_code, i.beat_code]
                   AS codes
        FROM incident_assignments a JOIN incidents i ON i.id = a.incident_id
        WHERE a.incident_id = ANY(:ids) AND a.role = 'lead' AND a.kind = 'dispatch'
          AND a.state IN ('offered', 'accepted', 'done')
        ORDER BY a.incident_id, a.offered_at DESC, a.id DESC)
    SELECT l.incident_id, coalesce(ou.name, served.name) AS name
    FROM lead l
    LEFT JOIN org_units ou ON ou.id = l.org_unit_id
    LEFT JOIN LATERAL (
        SELECT coalesce(pu.name, ar.name) AS name
        FROM postings po
        LEFT JOIN org_units pu ON pu.id = po.org_unit_id
        LEFT JOIN areas ar ON ar.code = po.area_code AND {is_current("ar")}
        WHERE po.person_id = l.person_id AND coalesce(pu.name, ar.name) IS NOT NULL
        ORDER BY (po.layer = 'county' OR po.area_code = ANY(l.codes)) DESC,
                 (po.starts_on <= :today AND (po.ends_on IS NULL OR po.ends_on >= :today)) DESC, po.id DESC
        LIMIT 1
    ) served ON l.person_id IS NOT NULL
    """  # noqa: S608 - only constants are formatted in
)


def holder_units(conn: Conn, incident_ids: list[int]) -> dict[int, str]:
    """The name of the unit (or served area) holding each incident's lead, in one query;
    incidents nobody holds are left out."""
    if not incident_ids:
        return {}
    today = dt.datetime.now(COUNTY_TZ).date()
    rows = conn.execute(_HOLDER_UNITS, {"ids": sorted(set(incident_ids)), "today": today}).all()
    return {int(i): str(name) for i, name in rows if name}


def handling_unit(
    conn: Conn,
    incident_id: int,
    incident: dict[str, Any],
    lang: str = "zh",
    *,
    names: dict[str, str] | None = None,
    holders: dict[int, str] | None = None,
) -> str | None:
    """Which unit handles the matter, as a resident may be told: the unit holding the incident's
    current lead assignment (for a person: their unit or the area they serve), else the village
    (社区/村) and town of the incident's assignment; never a person. ``names`` (``unit_names``)
    and ``holders`` (``holder_units``): already read for many incidents at once."""
    if holders is None:
        holders = holder_units(conn, [incident_id])
    if incident_id in holders:
        return holders[incident_id]
    codes = unit_codes(incident)
    if not codes:
        return "县社会治理中心" if lang != "en" else "county social governance centre"
    if names is None:
        names = unit_names(conn, codes)
    parts = [names[c] for c in reversed(codes) if names.get(c)]
    return " ".join(parts) or None


# The steps a resident is shown, per status reached; events of other kinds (notes, reassignments,
# other residents' reports, the dispatch steps that leave the status as it is: offers, acceptances,
# summonses, reminders) are not shown, except the first arrival on the scene, in words of its own.
STEP_TEXT: dict[str, tuple[str, str]] = {
    "accepted": ("已立案，安排处理", "accepted for handling"),
    "rejected": ("不予立案", "not taken up"),
    "dispatched": ("已派遣至{unit}", "dispatched to {unit}"),
    "in_progress": ("{unit}正在处理", "being handled by {unit}"),
    "handled": ("{unit}已处理完成", "handled by {unit}"),
    "verified": ("处理结果已核查", "the result was checked"),
    "closed": ("已办结", "closed"),
}
ON_SCENE_TEXT = ("工作人员已到达现场", "staff arrived on the scene")


def timeline(
    conn: Conn, ticket: dict[str, Any], incident: dict[str, Any], lang: str, unit: str | None = None
) -> list[dict[str, Any]]:
    """The masked timeline: when this resident's report was received, how the matter moved and who
    (which unit) handles it, how it ended. No staff names, notes or phone numbers, and nothing of
    other residents' reports. ``unit``: the handling unit when the caller has already read it
    (``handling_unit``), so that the tracking page reads it once."""
    en = lang == "en"
    if unit is None:
        unit = handling_unit(conn, incident["id"], incident, lang)
    unit = unit or ("the responsible unit" if en else "责任单位")
    merged_zh = "，已并入同一事项一并处理" if ticket["merged"] else ""
    merged_en = "; merged with the same matter already being handled" if ticket["merged"] else ""
    steps: list[dict[str, Any]] = [
        {
            "at": ticket["created_at"],
            "step": "received",
            "text": ("report received" + merged_en) if en else ("已收到您的反映" + merged_zh),
        }
    ]
    rows = conn.execute(
        sa.text(
            "SELECT at, action, from_status, to_status, note FROM incident_events WHERE incident_id = :id "
            "AND action <> 'report' AND action <> 'resident_report' ORDER BY at, id"
        ),
        {"id": incident["id"]},
    ).all()
    arrived = False
    for at, action, from_status, to_status, note in rows:
        if action == "reopen":
            text = ("reopened after a dissatisfied rating", "因评价不满意，重新办理")
        elif action == "escalate":
            # The level reached is the last word of the system's note ("grid → village[: note]").
            found = _LEVEL_REACHED.search(note or "")
            level = found.group(1) if found else incident.get("escalation_level") or "town"
            label = rules.ESCALATION_LEVELS.get(level, ("上级", "a higher level"))
            text = (f"escalated to {label[1]}", f"已提级至{label[0]}")
        elif action == "arrive" and not arrived:
            arrived = True
            text = (ON_SCENE_TEXT[1], ON_SCENE_TEXT[0])
        elif to_status in STEP_TEXT and from_status != to_status:
            zh, en_text = STEP_TEXT[to_status]
            text = (en_text.format(unit=unit), zh.format(unit=unit))
        else:
            continue
        step = {"reopen": "reopen", "escalate": "escalate", "arrive": "on_scene"}.get(action, to_status)
        steps.append({"at": at, "step": step, "text": text[0] if en else text[1]})
    return steps


def ticket_ratings(conn: Conn, ticket_id: int) -> dict[str, Any] | None:
    row = (
        conn.execute(
            sa.text("SELECT rating, created_at, reopened FROM public_ratings WHERE ticket_id = :t"), {"t": ticket_id}
        )
        .mappings()
        .one_or_none()
    )
    return dict(row) if row else None
