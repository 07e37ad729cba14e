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
