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
# The rectification loop (gis.fieldwork.hazards): open → notified (the order served) → rectifying →
# submitted (the party says it is done) → re-inspected: pass → rectified, fail → rectifying with a
# new deadline; overdue is set by the deadline job (gis.fieldwork.overdue).
HAZARD_STATUSES = ("open", "notified", "rectifying", "submitted", "rectified", "overdue")
# A rectified hazard is done; every other one is still someone's work.
HAZARD_FINAL_STATUSES = ("rectified",)
# The responsible party's deadline runs only for these (a submitted hazard waits for the inspector).
HAZARD_PENDING_STATUSES = ("open", "notified", "rectifying")
HAZARD_SEVERITIES = ("low", "medium", "high")
# Hazard categories (labels in gis.bulk.specs.HAZARD_CATEGORIES); the last five came with the
# rental-safety checklist (migration 0018).
HAZARD_CATEGORIES = (
    "private_wiring",
    "ebike_fly_line",
    "blocked_escape",
    "illegal_ebike_parking",
    "gas",
    "other",
    "fire_equipment",
    "kitchen_bedroom",
    "overcrowding",
    "tenant_registration",
    "responsibility_letter",
)
HAZARD_PARTIES = ("landlord", "tenant", "business")
HAZARD_SOURCES = ("import", "inspection", "report", "incident")
# Checklist kinds (gis.fieldwork.checklists): 出租房屋安全, 消防, 安全生产, 沿街商铺, 企业.
CHECKLIST_KINDS = ("rental_safety", "fire", "production_safety", "street_shop", "enterprise")
INSPECTION_RESULTS = ("pass", "fail", "na")
# A building's risk from its latest inspection; the days to the next one are in ``risk_intervals``.
RISK_LEVELS = ("low", "medium", "high")
ESCALATION_LEVELS = ("grid", "village", "town", "county")
NOT_ESCALATED = ESCALATION_LEVELS[0]
# Waiting for handling: the deadline runs only for these (see the module docstring).
PENDING_STATUSES = ("reported", "accepted", "dispatched", "in_progress")
# Handled, verified or closed: the handler's part is done (the maps' "done" count).
DONE_STATUSES = ("handled", "verified", "closed")
# Hot-spot analysis (gis.analysis): the units it runs over; the Getis-Ord Gi* classes (hot or cold at the
# highest confidence passed after the FDR correction, hottest first); the emerging-hot-spot classes over weeks.
ANALYSIS_LAYERS = ("grid", "micro_grid")
HOTSPOT_CLASSES = ("hot_99", "hot_95", "hot_90", "not_significant", "cold_90", "cold_95", "cold_99")
EMERGING_CLASSES = ("new", "intensifying", "persistent", "diminishing", "sporadic", "none")

# API key roles, lowest first; a role may do what every role below it may.
ROLES = ("viewer", "reporter", "dispatcher", "planner", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}

# Attachments (gis.files): the records a file may be attached to as evidence, and the media types
# kept (by content; HEIC/HEIF photos are converted to JPEG on upload). Migration 0020 holds copies.
ATTACHMENT_OWNER_KINDS = ("incident", "inspection", "hazard", "visit")
ATTACHMENT_MEDIA_TYPES = ("image/jpeg", "image/png", "application/pdf")

# PostgreSQL NOTIFY channels.
BOUNDARIES_CHANNEL = "gridmap_boundaries"  # a generation was published; payload {"generation": id}
EVENTS_CHANNEL = "gridmap_events"  # migrations 0015-0028 notified it of new events; since 0028 readers poll
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
# Places (points of interest) people name instead of an address; gis.spatial.places. Migration
# 0027 holds a frozen copy in its check constraint. Chinese labels are accepted on import.
PLACE_KINDS = ("compound", "market", "school", "hospital", "office", "shop", "park", "station", "factory", "other")
PLACE_KIND_LABELS = {
    "compound": "小区",
    "market": "市场",
    "school": "学校",
    "hospital": "医院",
    "office": "机关",
    "shop": "商店",
    "park": "公园",
    "station": "车站",
    "factory": "企业",
    "other": "其他",
}
ORG_UNIT_KINDS = ("county_centre", "town_centre", "village_station", "police_station", "department")
PERSON_STATUSES = ("active", "left")

# Outbound delivery (gis.outbound): the delivery log's statuses. ``failed`` is a failed attempt with
# retries left; ``gave_up`` is final after the last attempt.
DELIVERY_STATUSES = ("pending", "delivered", "failed", "gave_up")
# The event types of the incident event log as pushed (gis.work.events.event_type); a webhook
# subscribes to these, to log actions (``accept``, ``escalate`` ...) or to target statuses.
EVENT_TYPES = ("incident.created", "incident.status", "incident.escalated", "incident.overdue")
# The incident history's actions (incident_events.action) other than the workflow's verbs and
# statuses (gis.incidents.rules.ACTIONS, STATUSES): intake's report, escalation, the dispatch steps
# (gis.dispatch: offer, accept, decline, on scene, summons, supervision and its reply, reminder,
# an offer expired), a reopening (gis.incidents.reopen) and a resident's merged report
# (gis.channels.tickets). Dispatch steps leave the status as it is (from_status = to_status).
EVENT_ACTIONS = (
    "report",
    "escalate",
    "dispatch",
    "accept",
    "decline",
    "arrive",
    "summon",
    "supervise",
    "reply",
    "remind",
    "expire",
    "reopen",
    "resident_report",
)
# Hotline systems with adapters (gis.hotlines); their incidents carry source ``hotline_<code>``.
HOTLINE_CODES = ("12345", "110")
# Dispatch (gis.dispatch): who holds an incident. An assignment is the lead or a co-handler, of a
# person or an organisation unit; a summons (吹哨报到) calls a department to report in by a deadline.
ASSIGNMENT_ROLES = ("lead", "co")
ASSIGNMENT_KINDS = ("dispatch", "summon")
# offered -> accepted / declined (with a reason) -> done; withdrawn: replaced by a re-dispatch, or
# the offer expired unaccepted and the incident went up a level.
ASSIGNMENT_STATES = ("offered", "accepted", "declined", "done", "withdrawn")
ACTIVE_ASSIGNMENT_STATES = ("offered", "accepted")
# What a routing rule points at: the on-duty posting of the incident's grid or beat, the centre
# responsible for its village, town or the county, or a fixed organisation unit (by code).
ROUTING_TARGETS = (
    "grid_worker",
    "aux_police",
    "beat_officer",
    "village_centre",
    "town_centre",
    "county_centre",
    "org_unit",
)
# How a lead rule chooses among several on-duty holders of its target: ``first`` (the smallest
# person id: the plain roster order) or ``nearest`` (the one whose recent patrol position is
# nearest the incident; no recent position: as ``first``). Only the person targets have a choice.
ROUTING_PICKS = ("first", "nearest")
PERSON_TARGETS = ("grid_worker", "aux_police", "beat_officer")
# Sources whose reporter may verify and close their own incident (reporting stays separate from
# handling; a grid worker's own patrol finds are often closed by them on the spot, so a deployment
# may list grid_patrol here).
SELF_CLOSE_SOURCES: tuple[str, ...] = ()
