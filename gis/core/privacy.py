"""Masking of personal data (PIPL): phone numbers, ID-card numbers and names of tenants, landlords
and reporters are masked for roles below ``dispatcher`` wherever they leave the service.

Grid staff (grid leaders, grid workers, auxiliary police) follow the same rule, name and phone,
in every output alike (lookups, grid and beat details, map pages): ``mask_staff``. Their contacts
are posted on the grids' public boards, but a bulk read of the whole county's staff list by the
lowest role is still a personal-data export, so one rule for all people keeps it simple."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gis.core.vocab import ROLE_RANK

SEES_PERSONAL_DATA = ROLE_RANK["dispatcher"]

# Field names holding personal data, by kind. Every module that emits such fields uses these names.
PHONE_FIELDS = frozenset({"phone", "landlord_phone", "reporter_phone"})
ID_CARD_FIELDS = frozenset({"id_card", "landlord_id_card"})
NAME_FIELDS = frozenset({"landlord_name", "reporter_name", "tenant_name"})


def role_sees_personal_data(role: str | None) -> bool:
    return role is not None and ROLE_RANK.get(role, -1) >= SEES_PERSONAL_DATA


def mask_phone(value: str | None) -> str | None:
    """138****5678: keeps the carrier prefix and the last four digits."""
    if not value:
        return value
    if len(value) < 7:
        return "*" * len(value)
    return f"{value[:3]}{'*' * (len(value) - 7)}{value[-4:]}"


def mask_id_card(value: str | None) -> str | None:
    """330421********1234: keeps the region code and the last four characters."""
    if not value:
        return value
    if len(value) < 10:
        return "*" * len(value)
    return f"{value[:6]}{'*' * (len(value) - 10)}{value[-4:]}"


def mask_name(value: str | None) -> str | None:
    """张** : keeps the surname only."""
    if not value:
        return value
    return value[0] + "*" * (len(value) - 1)


def mask_staff(person: Mapping[str, Any], sees_personal_data: bool) -> dict[str, Any]:
    """A staff member's entry (role, name, phone ...) with name and phone masked unless seen."""
    out = dict(person)
    if not sees_personal_data:
        out["name"] = mask_name(out.get("name"))
        out["phone"] = mask_phone(out.get("phone"))
    return out


def field_masker(key: str) -> Callable[[str | None], str | None] | None:
    """The masking function for field ``key``, or None when the field holds no personal data."""
    if key in PHONE_FIELDS:
        return mask_phone
    if key in ID_CARD_FIELDS:
        return mask_id_card
    if key in NAME_FIELDS:
        return mask_name
    return None


def mask_record(record: Mapping[str, Any], role: str | None) -> dict[str, Any]:
    """A copy of ``record`` with its personal fields masked unless ``role`` may see them."""
    out = dict(record)
    if role_sees_personal_data(role):
        return out
    for key, value in record.items():
        if isinstance(value, str) and (masker := field_masker(key)) is not None:
            out[key] = masker(value)
    return out


def mask_records(records: Iterable[Mapping[str, Any]], role: str | None) -> list[dict[str, Any]]:
    return [mask_record(r, role) for r in records]
