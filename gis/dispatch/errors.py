"""Dispatch's errors: bad input (422 naming the field), a step the assignment's state forbids (409),
and a caller acting on an assignment that is not theirs or dispatching outside their scope (403)."""

from __future__ import annotations

from gis.incidents.errors import IncidentInputError


class DispatchInputError(IncidentInputError):
    """A field of a dispatch request is unusable (unknown person or unit, a holder who does not
    serve the incident's area, a missing reason); the API answers 422 naming the field."""


class DispatchConflict(RuntimeError):
    """The step does not fit the assignment's or the incident's state (accepting twice, declining
    an accepted assignment, dispatching a closed incident); the API answers 409."""


class NotPermitted(PermissionError):
    """The caller holds no such assignment, or the holder lies outside the caller's scope (403)."""
