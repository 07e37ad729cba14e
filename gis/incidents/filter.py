"""Which incidents a reader means: ONE filter object with ONE SQL builder.

Listing, statistics, grid and beat details, the map data (heat, points, grid figures), tiles,
exports, escalation and the CLI all select incidents through ``IncidentFilter.where``, so a filter
(and the words open, pending, overdue, escalated: ``gis.core.vocab``) means the same everywhere.
A new filter field is added here once.

The caller's scope (``gis.people.scope``) is part of the filter (``scope``; the API's
``api.params.incident_filter`` puts it in), so every reader of incidents keeps inside it without
a second predicate of its own. It is not a query parameter: ``query`` leaves it out.

Values are checked when the filter is made: a bad one raises ``FilterError`` naming the field and
the value (the API answers 422). Every field narrows the selection; an empty tuple or None leaves
it open.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gis.core import predicates as p
from gis.core.timeparse import TimeValueError, check_window
from gis.core.vocab import ASSIGN_STATUSES, ASSIGNED_LAYERS, ASSIGNMENT_STATES, COUNTY_TZ, INCIDENT_STATUSES
from gis.incidents import rules
from gis.incidents.errors import IncidentInputError
from gis.people.scope import WHOLE_COUNTY, Scope

_CODE = re.compile(r"^[0-9A-Za-z_\-]{1,32}$")
Codes = tuple[str, ...]
BBox = tuple[float, float, float, float]


class FilterError(IncidentInputError):
    """A filter value is unusable; ``field`` and ``value`` name it. An ``IncidentInputError``, so
    the API answers 422 with ``loc`` naming the field, as for intake errors."""

    def __init__(self, field: str, value: object, reason: str, *, message: str | None = None) -> None:
        super().__init__(field, f"{str(value)[:60]!r} {reason}" if message is None else message)
        if message is not None:
            self.args = (message,)  # the window rule's message names both ends itself
        self.value = value


def _known(field: str, accepted: Iterable[str]) -> Any:
    known = tuple(accepted)

    def check(value: str) -> None:
        if value not in known:
            raise FilterError(field, value, f"is not one of {', '.join(known)}")

    return check


def _area_code(field: str) -> Any:
    def check(value: str) -> None:
        if not _CODE.match(value):
            raise FilterError(field, value, "is not an area code (letters, digits, _ and -; at most 32)")

    return check


def _assignee(value: str) -> None:
    """A person's id (digits) or an organisation unit's code."""
    if not _CODE.match(value) or (value.isdigit() and len(value) > 18):
        raise FilterError("assignee", value, "is not a person id or an organisation unit code")


def _county(value: str) -> None:
    # A county of this deployment (GRIDMAP_COUNTIES): another code would silently select nothing.
    from gis.core.counties import CountyError, check_county

    try:
        check_county(value)
    except CountyError as exc:
        raise FilterError("county", value, str(exc).removeprefix(f"county {value!r} ")) from None


_CHECKS = {
    "county": _county,
    **{layer: _area_code(layer) for layer in ASSIGNED_LAYERS},
    "category": _known("category", rules.CATEGORIES),
    "source": _known("source", rules.SOURCES),
    "status": _known("status", INCIDENT_STATUSES),
    "risk_group": _known("risk_group", rules.RISK_GROUPS),
    "assign_status": _known("assign_status", ASSIGN_STATUSES),
    "assignee": _assignee,
    "assignment_state": _known("assignment_state", ASSIGNMENT_STATES),
}


def parse_bbox(text: str, field: str = "bbox") -> BBox:
    """``minlon,minlat,maxlon,maxlat`` in WGS-84."""
    parts = text.split(",")
    if len(parts) != 4:
        raise FilterError(field, text, "must be four numbers: minlon,minlat,maxlon,maxlat")
    try:
        minlon, minlat, maxlon, maxlat = (float(v.strip()) for v in parts)
    except ValueError:
        raise FilterError(field, text, "must be four numbers: minlon,minlat,maxlon,maxlat") from None
    return minlon, minlat, maxlon, maxlat


def _check_bbox(box: BBox) -> BBox:
    minlon, minlat, maxlon, maxlat = (float(v) for v in box)
    limits = {"minlon": (minlon, 180), "maxlon": (maxlon, 180), "minlat": (minlat, 90), "maxlat": (maxlat, 90)}
    for name, (value, limit) in limits.items():
        if not abs(value) <= limit:  # also refuses NaN
            raise FilterError("bbox", box, f"{name}={value} is out of range [-{limit}, {limit}]")
    if minlon >= maxlon or minlat >= maxlat:
        raise FilterError("bbox", box, "min must be below max for lon and lat")
    return minlon, minlat, maxlon, maxlat


@dataclass(frozen=True)
class IncidentFilter:
    """What a reader selects. Area codes match the incident's assignment at any level (town,
    village, grid, micro-grid) and in the police overlay (station, beat); several values of one
    field are alternatives. ``start``/``end`` bound ``reported_at`` (start inclusive, end
    exclusive; aware datetimes). ``open_only``/``pending``/``overdue``/``escalated``: True keeps
    only those, False only the others, None (``open_only``: False) does not filter. ``window`` only
    remembers how the map pages chose start/end (today, 7d, ...) for their forms."""

    county: Codes = ()  # county_code: one of the deployment's counties (issue #20)
    town: Codes = ()
    village: Codes = ()
    grid: Codes = ()
    micro_grid: Codes = ()
    station: Codes = ()
    beat: Codes = ()
    category: Codes = ()
    source: Codes = ()
    status: Codes = ()
    risk_group: Codes = ()
    assign_status: Codes = ()
    assignee: Codes = ()  # held (any assignment state) by a person id or an org unit code
    assignment_state: Codes = ()  # with an assignment in one of these states (gis.dispatch)
    open_only: bool = False
    pending: bool | None = None
    overdue: bool | None = None
    escalated: bool | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    bbox: BBox | None = None
    window: str | None = None
    scope: Scope = WHOLE_COUNTY

    def __post_init__(self) -> None:
        for field, check in _CHECKS.items():
            raw = getattr(self, field)
            values = (raw,) if isinstance(raw, str) else tuple(raw or ())
            for value in values:
                if not isinstance(value, str):
                    raise FilterError(field, value, "is not text")
                check(value)
            object.__setattr__(self, field, tuple(dict.fromkeys(values)))
        for field in ("start", "end"):
            when = getattr(self, field)
            if when is not None and (not isinstance(when, dt.datetime) or when.tzinfo is None):
                raise FilterError(field, when, "must be a datetime with a time zone")
        try:
            check_window(self.start, self.end)
        except TimeValueError as exc:  # the one window rule (gis.core.timeparse), naming both ends
            raise FilterError("start", self.start, "", message=exc.message) from None
        if self.bbox is not None:
            object.__setattr__(self, "bbox", _check_bbox(self.bbox))

    def replace(self, **changes: Any) -> IncidentFilter:
        return dataclasses.replace(self, **changes)

    def unscoped(self) -> bool:
        """Whether nothing but the scope narrows the selection (a scoped caller's "everything")."""
        return self.replace(scope=WHOLE_COUNTY) == IncidentFilter()

    def current(self) -> IncidentFilter:
        """The same filter without the report window: for the current backlog (open, pending,
        overdue, escalated), which includes an incident reported last month and still open."""
        return self.replace(start=None, end=None, window=None)

    def query(self) -> dict[str, str]:
        """The filter as URL query parameters, as ``api.params.incident_filter`` reads them back
        (what the map pages' forms and data URLs carry). A map window stays a window; a custom one
        is written as the pages' ``from``/``to`` dates (county time, ``to`` inclusive)."""
        out: dict[str, str] = {}
        if self.window and self.window != "custom":
            out["window"] = self.window
        elif self.window == "custom" and self.start is not None and self.end is not None:
            out["window"] = "custom"
            out["from"] = self.start.astimezone(COUNTY_TZ).date().isoformat()
            out["to"] = (self.end.astimezone(COUNTY_TZ) - dt.timedelta(microseconds=1)).date().isoformat()
        else:
            out |= {k: getattr(self, k).isoformat() for k in ("start", "end") if getattr(self, k) is not None}
        for field in _CHECKS:
            if getattr(self, field):
                out[field] = ",".join(getattr(self, field))
        for field in ("pending", "overdue", "escalated"):
            if getattr(self, field) is not None:
                out[field] = str(getattr(self, field)).lower()
        if self.open_only:
            out["open"] = "true"
        if self.bbox is not None:
            out["bbox"] = ",".join(str(v) for v in self.bbox)
        return out

    def _assignment_where(self, alias: str, prefix: str, params: dict[str, Any]) -> str:
        """Held by one of ``assignee`` (and/or) with an assignment in one of ``assignment_state``:
        both conditions on the same assignment."""
        conds = [f"a.incident_id = {alias or 'incidents'}.id"]
        if self.assignee:
            units = f"SELECT ou.id FROM org_units ou WHERE ou.code = ANY(:{prefix}assignee_codes)"  # noqa: S608
            conds.append(f"(a.person_id = ANY(:{prefix}assignee_ids) OR a.org_unit_id IN ({units}))")
            params[f"{prefix}assignee_ids"] = [int(v) for v in self.assignee if v.isdigit()]
            params[f"{prefix}assignee_codes"] = [v for v in self.assignee if not v.isdigit()]
        if self.assignment_state:
            conds.append(f"a.state = ANY(:{prefix}assignment_state)")
            params[f"{prefix}assignment_state"] = list(self.assignment_state)
        return f"EXISTS (SELECT 1 FROM incident_assignments a WHERE {' AND '.join(conds)})"  # noqa: S608

    def where(self, alias: str = "i", *, now: str | None = None, prefix: str = "f_") -> tuple[str, dict[str, Any]]:
        """A WHERE condition (without WHERE; ``TRUE`` when nothing filters) and its parameters.

        ``alias`` is the incidents table's alias (``""`` for none); ``now`` names a bound
        parameter the caller supplies for "now" (overdue), else the statement's ``now()``;
        parameters are named ``<prefix><field>`` so that they do not collide with the caller's."""
        a = f"{alias}." if alias else ""
        conds: list[str] = []
        params: dict[str, Any] = {}
        for field in ("county", *ASSIGNED_LAYERS, "category", "source", "status", "assign_status"):
            values = getattr(self, field)
            if values:
                column = f"{field}_code" if field in ("county", *ASSIGNED_LAYERS) else field
                conds.append(f"{a}{column} = ANY(:{prefix}{field})")
                params[f"{prefix}{field}"] = list(values)
        if self.risk_group:
            conds.append(f"{a}category = ANY(:{prefix}risk_group)")
            groups = self.risk_group
            params[f"{prefix}risk_group"] = [c.code for c in rules.CATEGORIES.values() if c.risk_group in groups]
        if self.assignee or self.assignment_state:
            conds.append(self._assignment_where(alias, prefix, params))
        if self.open_only:
            conds.append(p.is_open(alias))
        for flag, predicate in (
            (self.pending, p.is_pending(alias)),
            (self.overdue, p.is_overdue(alias, now)),
            (self.escalated, p.is_escalated(alias)),
        ):
            if flag is not None:
                conds.append(predicate if flag else f"NOT {predicate}")
        if self.start is not None:
            conds.append(f"{a}reported_at >= :{prefix}start")
            params[f"{prefix}start"] = self.start
        if self.end is not None:
            conds.append(f"{a}reported_at < :{prefix}end")
            params[f"{prefix}end"] = self.end
        if not self.scope.whole:
            cond, scope_params = self.scope.where(alias, prefix=f"{prefix}scope_")
            conds.append(cond)
            params.update(scope_params)
        if self.bbox is not None:
            conds.append(
                f"{a}geom && ST_MakeEnvelope(:{prefix}minlon, :{prefix}minlat, :{prefix}maxlon, :{prefix}maxlat, 4326)"
            )
            names = (f"{prefix}{k}" for k in ("minlon", "minlat", "maxlon", "maxlat"))
            params.update(zip(names, self.bbox, strict=True))
        return (" AND ".join(conds) or "TRUE"), params
