"""county_code on every point row: the first step to many counties in one deployment (issue #20)

Generations get ``county_code`` (NULL = any county): a generation of one county replaces only
that county's units. Incidents, hazards, buildings, addresses and visits get ``county_code varchar(6) NOT NULL``: the
county of the row's town (or police station), filled here for existing rows and by the assignment
trigger from now on. A row outside every county gets the home county (the first of
``GRIDMAP_COUNTIES``, written into ``gridmap_home_county()``; see gis/core/counties.py), so the
column can serve as a partition or shard key. A second trigger keeps it in step when a writer sets
the unit columns without moving the point (reassignment after a publish). Bulk import, which
switches the triggers off, writes the column itself.

The assignment functions now pin ``search_path = public``: on postgres_fdw shards the remote
session's search_path is pg_catalog.

Revision ID: 0032
Revises: 0030
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

from gis.core.counties import COUNTY_TABLES, home_county, home_county_function_sql

revision = "0032"
down_revision = "0030"
branch_labels = None
depends_on = None

SQL = Path(__file__).resolve().parents[2] / "sql" / "assign.sql"

# Where a county filter is used: listings and KPIs by time, the others by county alone.
_INDEXES = {
    "incidents": ("county_code", "reported_at", "id"),
    "hazards": ("county_code", "found_at"),
    "buildings": ("county_code",),
    "addresses": ("county_code",),
    "visits": ("county_code", "at"),
}

# The row trigger as it was before this revision (assign.sql at 0030), for the downgrade.
_PREVIOUS_ROW_TRIGGER = """
CREATE OR REPLACE FUNCTION gridmap_assign_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    at timestamptz := now();
BEGIN
    IF TG_TABLE_NAME = 'incidents' THEN
        IF NEW.status = ANY (gridmap_final_statuses('incidents')) THEN
            at := coalesce(NEW.closed_at, NEW.reported_at);
        END IF;
    ELSIF TG_TABLE_NAME = 'hazards' THEN
        IF NEW.status = ANY (gridmap_final_statuses('hazards')) THEN
            at := coalesce(NEW.rectified_at, NEW.found_at);
        END IF;
    END IF;
    a := gridmap_assign(NEW.geom, at);
    NEW.town_code := a.town_code;
    NEW.village_code := a.village_code;
    NEW.grid_code := a.grid_code;
    NEW.micro_grid_code := a.micro_grid_code;
    NEW.station_code := a.station_code;
    NEW.beat_code := a.beat_code;
    NEW.generation_id := a.generation_id;
    NEW.assign_status := a.assign_status;
    NEW.snap_distance_m := a.snap_distance_m;
    RETURN NEW;
END
$$;
"""


def upgrade() -> None:
    op.execute(home_county_function_sql(home_county()))
    # A generation of one county replaces only that county's units (boundaries/generations.py).
    op.execute("ALTER TABLE generations ADD COLUMN county_code varchar(6) CHECK (county_code ~ '^[0-9]{6}$')")
    op.execute(
        "COMMENT ON COLUMN generations.county_code IS "
        "'the county whose units it replaced; NULL = any county (migration 0032)'"
    )
    for table, columns in _INDEXES.items():
        op.execute(f"ALTER TABLE {table} ADD COLUMN county_code varchar(6)")
        op.execute(
            f"UPDATE {table} SET county_code = "  # noqa: S608 - table names are constants
            "coalesce(left(town_code, 6), left(station_code, 6), gridmap_home_county())"
        )
        op.execute(f"ALTER TABLE {table} ALTER COLUMN county_code SET DEFAULT gridmap_home_county()")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN county_code SET NOT NULL")
        op.create_index(f"ix_{table}_county", table, list(columns))
    # assign.sql is all CREATE OR REPLACE: applying the current file again is safe.
    op.execute(SQL.read_text())
    for table in COUNTY_TABLES:
        op.execute(
            f"CREATE TRIGGER trg_{table}_county BEFORE UPDATE OF town_code, station_code ON {table} "
            "FOR EACH ROW WHEN (current_setting('gridmap.bulk', true) IS DISTINCT FROM 'on') "
            "EXECUTE FUNCTION gridmap_county_row()"
        )


def downgrade() -> None:
    for table in COUNTY_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_county ON {table}")
    op.execute("DROP FUNCTION IF EXISTS gridmap_county_row()")
    op.execute(_PREVIOUS_ROW_TRIGGER)
    op.execute("ALTER FUNCTION gridmap_assign(geometry, timestamptz) RESET search_path")
    for table in _INDEXES:
        op.drop_index(f"ix_{table}_county", table_name=table)
        op.execute(f"ALTER TABLE {table} DROP COLUMN county_code")
    op.execute("DROP FUNCTION IF EXISTS gridmap_home_county()")
    op.execute("ALTER TABLE generations DROP COLUMN county_code")
