"""The fixed vocabulary of the data model, with no heavy imports: one definition of each name.

Every module reads its statuses, layers, roles, time zone and channel names from here (``gis.core.models``
re-exports some for the ORM); the SQL forms of the status sets are in ``gis.core.predicates``. They live
apart from the ORM so that code needing only a name list, such as the CLI's help texts and the map data
queries, does not load GeoAlchemy2.

Incident statuses and their sets (the words mean the same in every output: listing, statistics, grid
and beat details, maps, exports):

* **final** (``FINAL_STATUSES``): closed (结案) and rejected (不予立案); nothing happens to them any more.
* **open** (``OPEN_STATUSES``): not final. Handled and verified incidents are open: the loop still has to
  check and close them.
* **pending** (``PENDING_STATUSES``): waiting for handling: reported, accepted, dispatched, in_progress.
  The handling deadline (处置时限) runs only for these.
* **overdue**: pending AND ``deadline_at`` before now. A handled or verified incident is never overdue:
  the handler has done their part, whatever the deadline said.
* **escalated**: ``escalation_level`` is not ``grid`` (提级 happened, by hand or because a deadline
  passed). Escalation gives the incident the next level's deadline, so an escalated incident is overdue
  again only if it misses that one too. Maps show escalated incidents with their own marker and legend
  entry, never counted as overdue.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

SRID = 4326

# The county's clock (China Standard Time): what a time without an offset means, everywhere (see
# gis.core.timeparse), and where day/week/month boundaries fall.
COUNTY_TZ = ZoneInfo("Asia/Shanghai")
COUNTY_TZ_NAME = COUNTY_TZ.key

# Layers of the boundary table; order = nesting, the administrative hierarchy then the police overlay.
LAYERS = ("county", "town", "village", "grid", "micro_grid", "station", "beat")
# The layer each layer nests in (None: the top). Police beats form their own tree under the county.
PARENT_LAYER: dict[str, str | None] = {
    "county": None,
    "town": "county",
    "village": "town",
    "grid": "village",
    "micro_grid": "grid",
    "station": "county",
    "beat": "station",
}
# The layer nesting in each (the county's child is the town; stations hang under it too, as a second tree).
CHILD_LAYER: dict[str, str] = {"town": "village", "village": "grid", "grid": "micro_grid", "station": "beat"}
# A point's administrative units, smallest first: the order in which assignment fills them.
ADMIN_CHAIN = ("micro_grid", "grid", "village", "town")
# The layers every point row (incident, building, address, hazard) is assigned to, as ``<layer>_code``.
ASSIGNED_LAYERS = ("town", "village", "grid", "micro_grid", "station", "beat")
ASSIGN_STATUSES = ("inside", "snapped", "outside_jurisdiction")
# The assignment every point row carries (incidents, buildings, addresses, hazards).
ASSIGN_COLUMNS = (
    *(f"{layer}_code" for layer in ASSIGNED_LAYERS),
    "generation_id",
    "assign_status",
    "snap_distance_m",
)
# Field work (gis.fieldwork): kinds of household visit (走访: routine, night visit, care for the
# vulnerable, follow-up of an earlier finding) and the four-knows checks (四知) a visit records.
VISIT_KINDS = ("routine", "night", "care", "follow_up")
FOUR_KNOWS = ("people", "family", "address", "situation")

# Incident statuses in the order of the closed loop (labels in gis.incidents.rules.STATUSES).
INCIDENT_STATUSES = ("reported", "accepted", "rejected", "dispatched", "in_progress", "handled", "verified", "closed")
# Incidents that have ended (closed, or not accepted); every other status is open work.
FINAL_STATUSES = ("rejected", "closed")
OPEN_STATUSES = tuple(s for s in INCIDENT_STATUSES if s not in FINAL_STATUSES)
HAZARD_STATUSES = ("open", "rectifying", "rectified", "overdue")
# A rectified hazard is done; open, rectifying and overdue ones are still someone's work.
HAZARD_FINAL_STATUSES = ("rectified",)
ESCALATION_LEVELS = ("grid", "village", "town", "county")
NOT_ESCALATED = ESCALATION_LEVELS[0]
# Waiting for handling: the deadline runs only for these (see the module docstring).
PENDING_STATUSES = ("reported", "accepted", "dispatched", "in_progress")
# Handled, verified or closed: the handler's part is done (the maps' "done" count).
DONE_STATUSES = ("handled", "verified", "closed")

# API key roles, lowest first; a role may do what every role below it may.
ROLES = ("viewer", "reporter", "dispatcher", "planner", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}

# PostgreSQL NOTIFY channels.
BOUNDARIES_CHANNEL = "gridmap_boundaries"  # a generation was published; payload {"generation": id}
EVENTS_CHANNEL = "gridmap_events"  # incident events were committed; payload: the largest new event id
# Posting roles of people (gis.people): who serves an area, in the order a team is listed.
POSTING_ROLES = (
    "grid_leader",  # 网格长
    "grid_worker",  # 专职网格员
    "part_time_worker",  # 兼职网格员
    "aux_police",  # 网格辅警
    "community_police",  # 社区民警
    "chief_grid_leader",  # 总网格长 (of a village)
    "micro_grid_leader",  # 微网格长
    "liaison_cadre",  # 包联干部
    "beat_officer",  # 警格民警
    "station_officer",  # 派出所民警
    "department_staff",  # 部门人员 (market supervision, emergency management, ...)
    "command_staff",  # 指挥室/社会治理中心人员
)
# Organisation units (gis.people.orgunits) and what each is responsible for.
ORG_UNIT_KINDS = ("county_centre", "town_centre", "village_station", "police_station", "department")
PERSON_STATUSES = ("active", "left")
