"""The error of bad incident input (intake bodies, filters): light to import, so that the filter
(gis.incidents.filter) shares it without loading the intake's coordinate stack."""

from __future__ import annotations

from typing import Any


class IncidentInputError(ValueError):
    """Bad intake input; ``field`` names the offending field, ``extra`` carries hints (candidates)."""

    def __init__(self, field: str, reason: str, **extra: Any) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.extra = extra
