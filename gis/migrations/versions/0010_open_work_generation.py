"""open work follows the generation in force; ended records keep the generation of their time

Until now the trigger assigned every incident under the generation in force at its reported time,
while publish, verify and the bulk importer assigned open incidents under the generation in force
now: a back-dated open incident landed in a grid no longer in force. The trigger now follows the
one rule of gis/spatial/genrule.py, for incidents and hazards alike. The open incidents the old
trigger placed under an earlier generation are reassigned here (only rows whose units change are
written), so that ``gridmap verify`` right after the upgrade agrees with every row. Hazards were
always assigned under the generation in force, which the rule keeps for rectified ones too.

``gridmap_final_statuses`` is generated from gis/core/vocab.py (the one home of the status sets);
tests/gis/test_genrule.py checks that the database function and the vocabulary agree.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

from gis.spatial.genrule import final_statuses_function_sql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SQL = Path(__file__).resolve().parents[2] / "sql" / "assign.sql"

# The trigger function as revision 0009 left it (incidents at their reported time, all else now).
PREVIOUS_ROW_TRIGGER = """
CREATE OR REPLACE FUNCTION gridmap_assign_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    at timestamptz := now();
BEGIN
    IF TG_TABLE_NAME = 'incidents' THEN
        at := NEW.reported_at;
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


# Open incidents not under the generation in force (the old trigger's back-dated ones, and rows a
# publish left in place, whose units are unchanged and are not written).
_REASSIGN_OPEN = """
WITH fix AS (
    SELECT i.id, a.* FROM incidents i, LATERAL gridmap_assign(i.geom, now()) a
    WHERE i.status <> ALL (gridmap_final_statuses('incidents'))
      AND i.generation_id IS DISTINCT FROM gridmap_generation_at(now()))
UPDATE incidents t SET town_code = f.town_code, village_code = f.village_code, grid_code = f.grid_code,
    micro_grid_code = f.micro_grid_code, station_code = f.station_code, beat_code = f.beat_code,
    generation_id = f.generation_id, assign_status = f.assign_status, snap_distance_m = f.snap_distance_m
FROM fix f
WHERE t.id = f.id AND (t.town_code, t.village_code, t.grid_code, t.micro_grid_code, t.station_code, t.beat_code,
                       t.assign_status)
      IS DISTINCT FROM (f.town_code, f.village_code, f.grid_code, f.micro_grid_code, f.station_code, f.beat_code,
                        f.assign_status)
"""


def upgrade() -> None:
    op.execute(final_statuses_function_sql())
    # assign.sql is all CREATE OR REPLACE: applying the current file again is safe.
    op.execute(SQL.read_text())
    op.execute(_REASSIGN_OPEN)


def downgrade() -> None:
    op.execute(PREVIOUS_ROW_TRIGGER)
    op.execute("DROP FUNCTION IF EXISTS gridmap_final_statuses(text)")
