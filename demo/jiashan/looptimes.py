"""The loop's timestamps of the demo's generated incidents (accepted, dispatched, on scene,
handled, verified; the level at which it closed), so that the KPIs (gis.analysis.kpis) have a
year of history to show. Live incidents get theirs from the dispatch and the workflow; these are
only written for generated rows: the ones whose history holds no event at all.

The times follow the status each incident has reached: acceptance within minutes, dispatch soon
after, arrival within the hour, handling and verification in the later part of the time it took
to close (or of the time since it was reported, for open ones). Most incidents close at grid
level; a few were escalated to the village, the town or the county (about 99% settled at town
level or below, as Jiashan reports). Deterministic: the spreads are drawn from the incident id.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Statuses that imply each step was taken (the loop's order, gis.core.vocab).
_AFTER_ACCEPT = "('accepted', 'dispatched', 'in_progress', 'handled', 'verified', 'closed')"
_AFTER_DISPATCH = "('dispatched', 'in_progress', 'handled', 'verified', 'closed')"
_AFTER_ARRIVE = "('in_progress', 'handled', 'verified', 'closed')"
_AFTER_HANDLE = "('handled', 'verified', 'closed')"
_AFTER_VERIFY = "('verified', 'closed')"

_FILL = sa.text(f"""
    WITH r AS (
        SELECT i.id, i.status, i.reported_at,
               greatest(coalesce(i.closed_at, now()) - i.reported_at, interval '10 minutes') AS span,
               ((i.id * 2654435761) % 1000) / 1000.0 AS u1,
               ((i.id * 40503 + 17) % 997) / 997.0 AS u2,
               ((i.id * 69069 + 5) % 991) / 991.0 AS u3
        FROM incidents i
        WHERE i.status IN {_AFTER_ACCEPT} AND (i.accepted_at IS NULL
              OR (i.status IN {_AFTER_HANDLE} AND i.handled_at IS NULL)
              OR (i.status IN {_AFTER_VERIFY} AND i.verified_at IS NULL)
              OR (i.status = 'closed' AND i.closed_level IS NULL))
          AND NOT EXISTS (SELECT 1 FROM incident_events e WHERE e.incident_id = i.id)
    ), t AS (
        SELECT r.*,
               r.reported_at + least(interval '1 minute' * (1 + 29 * u1), span * 0.05) AS acc,
               least(interval '1 minute' * (0.5 + 5 * u2), span * 0.03) AS to_dispatch,
               least(interval '1 minute' * (5 + 55 * u3), span * 0.2) AS to_scene,
               CASE WHEN u1 < 0.90 THEN 'grid' WHEN u1 < 0.965 THEN 'village'
                    WHEN u1 < 0.993 THEN 'town' ELSE 'county' END AS level
        FROM r
    )
    UPDATE incidents i SET
        accepted_at = coalesce(i.accepted_at, t.acc),
        dispatched_at = CASE WHEN t.status IN {_AFTER_DISPATCH}
                             THEN coalesce(i.dispatched_at, t.acc + t.to_dispatch) ELSE i.dispatched_at END,
        on_scene_at = CASE WHEN t.status IN {_AFTER_ARRIVE}
                           THEN coalesce(i.on_scene_at, t.acc + t.to_dispatch + t.to_scene) ELSE i.on_scene_at END,
        handled_at = CASE WHEN t.status IN {_AFTER_HANDLE}
                          THEN coalesce(i.handled_at, t.reported_at + t.span * (0.6 + 0.25 * t.u2))
                          ELSE i.handled_at END,
        verified_at = CASE WHEN t.status IN {_AFTER_VERIFY}
                           THEN coalesce(i.verified_at, t.reported_at + t.span * (0.88 + 0.1 * t.u3))
                           ELSE i.verified_at END,
        closed_level = CASE WHEN t.status = 'closed' THEN coalesce(i.closed_level, t.level) ELSE i.closed_level END,
        escalation_level = CASE WHEN t.status = 'closed' AND i.closed_level IS NULL THEN t.level
                                ELSE i.escalation_level END,
        escalated_at = CASE WHEN t.status = 'closed' AND i.closed_level IS NULL AND t.level <> 'grid'
                            THEN coalesce(i.escalated_at, t.reported_at + t.span * 0.5) ELSE i.escalated_at END
    FROM t WHERE i.id = t.id
    """)  # noqa: S608 - only constants are formatted in


def fill_loop_times(conn: Connection) -> int:
    """Give the generated incidents the timestamps their status implies; returns how many rows
    changed. Rows with any event (live ones) are left alone, so running it again changes nothing."""
    return int(conn.execute(_FILL).rowcount or 0)


def _unit(keys: pd.Series, salt: str) -> npt.NDArray[np.float64]:
    """A deterministic uniform [0, 1) per key (the same incident always draws the same)."""
    hashed = pd.util.hash_pandas_object(keys.astype(str) + salt, index=False).to_numpy(np.uint64)
    return (hashed % np.uint64(1_000_003)).astype(np.float64) / 1_000_003.0


def loop_columns(incidents: pd.DataFrame, reference: pd.Timestamp) -> pd.DataFrame:
    """The loop's timestamps and closing level of generated incidents, as import columns (the same
    rule as ``fill_loop_times``, computed before the COPY so that seeding stays one bulk load):
    accepted_at, dispatched_at, on_scene_at, handled_at, verified_at, closed_level; and
    escalation_level / escalated_at of the incidents that closed above the grid."""
    status = incidents["status"].to_numpy(dtype=object)
    step = np.array([_ORDER.get(s, -1) for s in status])
    reported = pd.to_datetime(incidents["reported_at"], utc=True)
    closed = pd.to_datetime(incidents["closed_at"], utc=True)
    span = (closed.fillna(reference.tz_convert("UTC")) - reported).clip(lower=pd.Timedelta(minutes=10))
    key = incidents["source"].astype(str) + incidents["external_id"].astype(str)
    u1, u2, u3 = _unit(key, "a"), _unit(key, "b"), _unit(key, "c")
    minute = pd.Timedelta(minutes=1)
    acc = reported + np.minimum(minute * (1 + 29 * u1), span * 0.05)
    to_dispatch = np.minimum(minute * (0.5 + 5 * u2), span * 0.03)
    to_scene = np.minimum(minute * (5 + 55 * u3), span * 0.2)
    level = np.select([u1 < 0.90, u1 < 0.965, u1 < 0.993], ["grid", "village", "town"], "county").astype(object)
    is_closed = status == "closed"
    out = pd.DataFrame(index=incidents.index)
    out["accepted_at"] = acc.where(step >= _ORDER["accepted"])
    out["dispatched_at"] = (acc + to_dispatch).where(step >= _ORDER["dispatched"])
    out["on_scene_at"] = (acc + to_dispatch + to_scene).where(step >= _ORDER["in_progress"])
    out["handled_at"] = (reported + span * (0.6 + 0.25 * u2)).where(step >= _ORDER["handled"])
    out["verified_at"] = (reported + span * (0.88 + 0.1 * u3)).where(step >= _ORDER["verified"])
    out["closed_level"] = pd.Series(level, index=incidents.index).where(is_closed)
    escalated = is_closed & (level != "grid")
    out["escalation_level"] = np.where(escalated, level, "grid")
    out["escalated_at"] = (reported + span * 0.5).where(escalated)
    return out


# The loop's order of the statuses that are steps of it (rejected leaves the loop: no steps).
_ORDER = {s: n for n, s in enumerate(("accepted", "dispatched", "in_progress", "handled", "verified", "closed"))}
_ORDER["reported"] = -1
