"""What a person and a posting must look like: roles, the layers each role is posted to, which
roles have one holder per area, and the forms of phone numbers, ID card numbers and dates.

One checker for the API, the file import and the demo, so that every way in gives the same answer
naming the same field. The vocabularies themselves live in gis.core.vocab.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from gis.core.vocab import COUNTY_TZ, LAYERS, ORG_UNIT_KINDS, PERSON_STATUSES, POSTING_ROLES

ROLE_LABELS: dict[str, str] = {
    "grid_leader": "网格长",
    "grid_worker": "专职网格员",
    "part_time_worker": "兼职网格员",
    "aux_police": "网格辅警",
    "community_police": "社区民警",
    "chief_grid_leader": "总网格长",
    "micro_grid_leader": "微网格长",
    "liaison_cadre": "包联干部",
    "beat_officer": "警格民警",
    "station_officer": "派出所民警",
    "department_staff": "部门人员",
    "command_staff": "指挥中心人员",
}
LAYER_LABELS = {
    "county": "县",
    "town": "镇街道",
    "village": "村社区",
    "grid": "网格",
    "micro_grid": "微网格",
    "station": "派出所",
    "beat": "警格",
}
STATUS_LABELS = {"active": "在岗", "left": "离岗"}
KIND_LABELS = {
    "county_centre": "县社会治理中心",
    "town_centre": "镇街道综合信息指挥室",
    "village_station": "村社区工作站",
    "police_station": "派出所",
    "department": "部门",
}
# The layers each role may be posted to.
ROLE_LAYERS: dict[str, tuple[str, ...]] = {
    "grid_leader": ("grid",),
    "grid_worker": ("grid",),
    "part_time_worker": ("grid", "micro_grid"),
    "aux_police": ("grid",),
    "community_police": ("village", "grid"),
    "chief_grid_leader": ("village",),
    "micro_grid_leader": ("micro_grid",),
    "liaison_cadre": ("village", "grid"),
    "beat_officer": ("beat",),
    "station_officer": ("station", "beat"),
    "department_staff": LAYERS,
    "command_staff": ("county", "town", "village"),
}
# One holder per area at a time (the exclusion constraint of migration 0011 backs this).
EXCLUSIVE_ROLES = frozenset({"grid_leader", "beat_officer", "chief_grid_leader", "micro_grid_leader"})
# Roles shown as the team of a place; department and command staff are reached through their units.
TEAM_ROLES = tuple(r for r in POSTING_ROLES if r not in ("department_staff", "command_staff"))
TEAM_ORDER = {r: i for i, r in enumerate(POSTING_ROLES)}

PHONE_RE = re.compile(r"1[3-9]\d{9}|0\d{2,3}-?\d{7,8}")
ID_CARD_RE = re.compile(r"\d{17}[\dX]")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_DATE_RE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?")


class PeopleInputError(ValueError):
    """A value that cannot be stored; ``field`` names it (name, phone, id_card, role, area_code ...)."""

    def __init__(self, field: str, value: object, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


def county_today() -> dt.date:
    return dt.datetime.now(COUNTY_TZ).date()


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        if value != value:  # NaN: an empty cell
            return None
        if value.is_integer():
            value = int(value)
    text = str(value).strip()
    return text or None


def check_name(value: object) -> str:
    text = _text(value)
    if text is None:
        raise PeopleInputError("name", value, "is required")
    if len(text) > 50:
        raise PeopleInputError("name", value, "is longer than 50 characters")
    return text


def check_phone(value: object) -> str | None:
    """A mainland mobile (11 digits, 1[3-9]...) or landline (0573-84123456) number; spaces dropped."""
    text = _text(value)
    if text is None:
        return None
    text = re.sub(r"[\s()（）]", "", text)
    if text.startswith("+86"):
        text = text[3:]
    if not PHONE_RE.fullmatch(text):
        raise PeopleInputError("phone", value, f"{value!r} is not a phone number (13912345678 or 0573-84123456)")
    return text


def id_card_check_char(first17: str) -> str:
    """The GB 11643 (ISO 7064 MOD 11-2) check character of the first 17 digits."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def check_id_card(value: object) -> str | None:
    """An 18-character resident ID card number with a valid birth date and check character."""
    text = _text(value)
    if text is None:
        return None
    text = text.upper()
    if not ID_CARD_RE.fullmatch(text):
        raise PeopleInputError("id_card", value, "an ID card number has 17 digits and a digit or X")
    try:
        dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise PeopleInputError("id_card", value, f"birth date {text[6:14]} does not exist") from None
    if id_card_check_char(text[:17]) != text[17]:
        raise PeopleInputError("id_card", value, "the check character (last) does not match: mistyped number")
    return text


def check_status(value: object) -> str:
    text = _text(value)
    if text is None:
        return "active"
    for code, label in STATUS_LABELS.items():
        if text.lower() == code or text == label:
            return code
    raise PeopleInputError("status", value, f"expected one of {', '.join(PERSON_STATUSES)} (在岗/离岗)")


def _coded(field: str, value: object, labels: dict[str, str], required: bool = True) -> str | None:
    text = _text(value)
    if text is None:
        if required:
            raise PeopleInputError(field, value, "is required")
        return None
    for code, label in labels.items():
        if text.lower() == code or text == label:
            return code
    raise PeopleInputError(field, value, f"unknown {field} {text!r}; expected one of {', '.join(labels)}")


def check_role(value: object) -> str:
    return _coded("role", value, ROLE_LABELS) or ""


def check_layer(value: object, required: bool = True) -> str | None:
    return _coded("layer", value, LAYER_LABELS, required)


def check_kind(value: object) -> str:
    return _coded("kind", value, {k: KIND_LABELS[k] for k in ORG_UNIT_KINDS}) or ""


def check_role_layer(role: str, layer: str) -> None:
    if layer not in ROLE_LAYERS[role]:
        raise PeopleInputError(
            "layer", layer, f"a {role} is posted to a {' or '.join(ROLE_LAYERS[role])}, not a {layer}"
        )


def check_date(field: str, value: object, required: bool = False) -> dt.date | None:
    """A date: ISO (2024-05-01), 2024/5/1, 2024年5月1日, or a spreadsheet date cell."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = _text(value)
    if text is None:
        if required:
            raise PeopleInputError(field, value, "is required")
        return None
    match = _DATE_RE.fullmatch(text.split(" ")[0].split("T")[0])
    if match:
        try:
            return dt.date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            pass
    raise PeopleInputError(field, value, f"{text!r} is not a date (2024-05-01)")


def check_period(starts_on: dt.date | None, ends_on: dt.date | None) -> None:
    if starts_on is not None and ends_on is not None and ends_on < starts_on:
        raise PeopleInputError("ends_on", ends_on.isoformat(), f"ends before it starts ({starts_on.isoformat()})")


def overlaps(a_start: dt.date, a_end: dt.date | None, b_start: dt.date, b_end: dt.date | None) -> bool:
    """Whether two closed date ranges (None = open end) share a day."""
    return (b_end is None or a_start <= b_end) and (a_end is None or b_start <= a_end)


def in_force(starts_on: dt.date, ends_on: dt.date | None, on: dt.date) -> bool:
    return starts_on <= on and (ends_on is None or on <= ends_on)


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}
