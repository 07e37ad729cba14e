"""Fixed vocabularies of the data model (layers, statuses, roles), with no heavy imports.

They live apart from ``gis.core.models`` (which re-exports them) so that code needing only a name list,
such as the CLI's help texts and the map data queries, does not load GeoAlchemy2 and the ORM.
"""

from __future__ import annotations

SRID = 4326

# Layers of the boundary table; order = nesting for the administrative/grid hierarchy.
LAYERS = ("county", "town", "village", "grid", "micro_grid", "station", "beat")
ASSIGN_STATUSES = ("inside", "snapped", "outside_jurisdiction")
# The assignment every point row carries (incidents, buildings, addresses, hazards).
ASSIGN_COLUMNS = (
    "town_code",
    "village_code",
    "grid_code",
    "micro_grid_code",
    "station_code",
    "beat_code",
    "generation_id",
    "assign_status",
    "snap_distance_m",
)
INCIDENT_STATUSES = ("reported", "accepted", "rejected", "dispatched", "in_progress", "handled", "verified", "closed")
# Incidents that have ended (closed, or not accepted); every other status is open work.
FINAL_STATUSES = ("rejected", "closed")
OPEN_STATUSES = tuple(s for s in INCIDENT_STATUSES if s not in FINAL_STATUSES)
HAZARD_STATUSES = ("open", "rectifying", "rectified", "overdue")
# A rectified hazard is done; open, rectifying and overdue ones are still someone's work.
HAZARD_FINAL_STATUSES = ("rectified",)
ESCALATION_LEVELS = ("grid", "village", "town", "county")
ROLES = ("viewer", "reporter", "dispatcher", "planner", "admin")
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
