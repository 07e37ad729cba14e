"""Fixed vocabularies of the data model (layers, statuses, roles), with no heavy imports.

They live apart from ``gis.core.models`` (which re-exports them) so that code needing only a name list,
such as the CLI's help texts and the map data queries, does not load GeoAlchemy2 and the ORM.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

SRID = 4326

# The county's clock: what a time without an offset means, everywhere (see gis.core.timeparse).
COUNTY_TZ = ZoneInfo("Asia/Shanghai")

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
ESCALATION_LEVELS = ("grid", "village", "town", "county")
ROLES = ("viewer", "reporter", "dispatcher", "planner", "admin")
