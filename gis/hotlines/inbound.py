"""A hotline's ticket in its own field names -> an incident (idempotent by the ticket number).

Each system names its fields in its own way (pinyin initials, as their interfaces do). ``FIELDS``
translates them to intake's names; other fields of the ticket are ignored. Errors name the
hotline's field, not ours, so its operators can find what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.core.settings import Settings
from gis.hotlines.config import check_code, mapped_category
from gis.incidents.errors import IncidentInputError
from gis.incidents.intake import create_incident
from gis.incidents.scoped import create_incident_in_scope
from gis.people.scope import Scope

# Their field -> intake's field, per system.
FIELDS: dict[str, dict[str, str]] = {
    "12345": {
        "gdbh": "external_id",  # 工单编号, the ticket number
        "wtfl": "category",  # 问题分类 (their code, see hotline_category_map)
        "sqnr": "description",  # 诉求内容
        "sfdz": "address",  # 事发地址
        "jd": "lon",  # 经度
        "wd": "lat",  # 纬度
        "zblx": "crs",  # 坐标类型: wgs84, gcj02, bd09
        "ldrxm": "reporter_name",  # 来电人姓名
        "lddh": "reporter_phone",  # 来电号码
        "ldsj": "reported_at",  # 来电时间
    },
    "110": {
        "jjdbh": "external_id",  # 接警单编号
        "bjlb": "category",  # 报警类别
        "bjnr": "description",  # 报警内容
        "sfdd": "address",  # 事发地点
        "jd": "lon",
        "wd": "lat",
        "zblx": "crs",
        "bjrxm": "reporter_name",  # 报警人姓名
        "bjdh": "reporter_phone",  # 报警电话
        "bjsj": "reported_at",  # 报警时间
    },
}


class HotlineInputError(ValueError):
    """Bad ticket input; ``field`` is the hotline's own field name."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.value, self.reason = field, value, reason


class HotlineOff(PermissionError):
    pass


def their_field(code: str, ours: str) -> str:
    """The hotline's name of intake's field ``ours`` (ours when it has none)."""
    return next((theirs for theirs, mine in FIELDS[code].items() if mine == ours), ours)


def translate(conn: Session, code: str, ticket: Mapping[str, Any]) -> dict[str, Any]:
    """The intake body of a ticket: fields renamed, the category mapped, the source set."""
    fields = FIELDS[code]
    data: dict[str, Any] = {ours: ticket[theirs] for theirs, ours in fields.items() if ticket.get(theirs) is not None}
    ticket_field = their_field(code, "external_id")
    ticket_no = data.get("external_id")
    if isinstance(ticket_no, int) and not isinstance(ticket_no, bool):
        data["external_id"] = ticket_no = str(ticket_no)  # numeric ticket numbers are ids too
    if not isinstance(ticket_no, str) or not ticket_no.strip():
        raise HotlineInputError(ticket_field, ticket_no, "the ticket number is required (it makes a resend safe)")
    category_field = their_field(code, "category")
    theirs = data.get("category")
    if isinstance(theirs, int) and not isinstance(theirs, bool):
        theirs = str(theirs)
    if not isinstance(theirs, str) or not theirs.strip():
        raise HotlineInputError(category_field, theirs, "the category code is required")
    category = mapped_category(conn, code, theirs.strip())
    if category is None:
        raise HotlineInputError(
            category_field,
            theirs,
            f"category {theirs!r} of hotline {code} is not mapped to a gridmap category; "
            f"an admin maps it with PUT /hotlines/{code}/categories/{theirs.strip()}",
        )
    data["category"] = category
    data["source"] = f"hotline_{code}"
    return data


def take_ticket(
    session: Session, code: str, ticket: Mapping[str, Any], actor: str, scope: Scope, settings: Settings
) -> tuple[dict[str, Any], bool]:
    """Store a hotline ticket as an incident: (incident, created); a resend returns the first."""
    check_code(code)
    active = session.execute(sa.text("SELECT active FROM hotline_systems WHERE code = :c"), {"c": code}).scalar()
    if not active:
        raise HotlineOff(f"hotline {code} is switched off")
    data = translate(session, code, ticket)
    try:
        if scope.whole:
            return create_incident(session, data, actor, None, settings)
        return create_incident_in_scope(session, scope, data, actor, None, settings)
    except IncidentInputError as exc:
        value = ticket.get(their_field(code, exc.field))
        raise HotlineInputError(their_field(code, exc.field), value, exc.reason) from None
