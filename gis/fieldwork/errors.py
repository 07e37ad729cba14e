"""The errors of field-work input and reads (light to import: the API maps them to 422 and 404)."""

from __future__ import annotations


class FieldworkInputError(ValueError):
    """Bad field-work input. ``field`` names the offending field with its row or point index
    (``visits[3].kind``, ``points[12].t``); ``value`` is what was given."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


class FieldworkNotFound(LookupError):
    """A referenced row does not exist or lies outside the caller's scope (the same answer, so a
    scoped key learns nothing about rows outside its areas). ``field`` names the reference."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class FieldworkForbidden(PermissionError):
    """The caller may not act for that person."""
