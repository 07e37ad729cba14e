"""Keeping the demo's year ending now: ``gridmap demo`` and ``gridmap seed jiashan`` on a database
seeded earlier add only the incidents reported since, instead of leaving the maps' default window
(the last 7 days) empty.

Where the demo stands is read from the audit log, which every load and top-up writes to anyway
(``demo.load`` / ``demo.topup`` rows carry ``seed``, ``per_year`` and ``until``): no table of its
own. A demo loaded before ``until`` was recorded ends at its newest demo incident.

A top-up over ``(until, end]`` is the same generator's year ending at ``end`` (same seed, same
yearly volume, so the same densities and rhythm), cut to the window: deterministic given seed and
window, and bounded by one year however long the database slept. Its incidents go in through the
product's bulk import (validated, assigned, deduplicated on ``(source, external_id)``, their
numbers carrying on from the stored ones). The demo's incidents still open at ``until`` move on
along their cycle as the generator would have them at ``end``, unless someone has worked on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from demo.jiashan.incidents import _ID_PREFIX, INCIDENT_STATUSES, _statuses
from demo.jiashan.load import DEMO_AUTHOR, Progress, demo_now, incident_columns
from demo.jiashan.looptimes import fill_loop_times
from gis.bulk import ImportOptions, import_frame
from gis.core import audit
from gis.incidents.rules import LOCAL_TZ

MAX_GAP = pd.Timedelta(days=365)
# Shorter gaps are left for the next top-up (nothing is lost: it starts where the last one ended),
# so that restarting the demo does not rebuild the generator for a handful of incidents.
MIN_GAP = pd.Timedelta(minutes=15)
DEMO_ID_PATTERN = "^(" + "|".join(_ID_PREFIX.values()) + ")[0-9]{8}$"
_LOCK = 0x67726964  # "grid": one top-up at a time, so two starting demos do not both add the window
_AGE_STREAM = 9  # demo.jiashan.dataset uses 1..8 for its stages


@dataclass(frozen=True)
class DemoState:
    seed: int
    per_year: int
    until: pd.Timestamp


@dataclass
class TopUpReport:
    start: pd.Timestamp
    end: pd.Timestamp
    inserted: int = 0
    advanced: int = 0  # open demo incidents moved along their cycle
    timings: dict[str, float] = field(default_factory=dict)


def demo_state(conn: Connection) -> DemoState | None:
    """The seed, yearly volume and end instant of the demo in the database; None when there is no
    demo, or when boundaries other than the demo's have been published (a real deployment)."""
    others = conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM generations WHERE author <> :d)"), {"d": DEMO_AUTHOR})
    if others.scalar() or not conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM generations)")).scalar():
        return None
    row = conn.execute(
        sa.text(
            "SELECT detail FROM audit_log WHERE actor = :d AND action IN ('demo.load', 'demo.topup') "
            "ORDER BY id DESC LIMIT 1"
        ),
        {"d": DEMO_AUTHOR},
    ).first()
    if row is None or "seed" not in row.detail:
        return None
    detail = row.detail
    per_year = int(detail.get("per_year", detail.get("incidents", 0)))
    until = detail.get("until")
    if until is None:
        newest = conn.execute(
            sa.text("SELECT max(reported_at) FROM incidents WHERE external_id ~ :p"), {"p": DEMO_ID_PATTERN}
        ).scalar()
        if newest is None:
            return None
        return DemoState(int(detail["seed"]), per_year, pd.Timestamp(newest).tz_convert(LOCAL_TZ))
    return DemoState(int(detail["seed"]), per_year, pd.Timestamp(until).tz_convert(LOCAL_TZ))


def incidents_between(seed: int, per_year: int, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The generator's incidents reported in ``(start, end]``: its year ending at ``end``, cut."""
    from demo.jiashan.dataset import build_dataset

    year = build_dataset(seed=seed, incidents=per_year, reference=end).incidents
    return year[year["reported_at"] > start].reset_index(drop=True)


def _renumber(conn: Connection, incidents: pd.DataFrame) -> pd.DataFrame:
    """External ids carrying on from the highest stored demo number of each source."""
    stored: dict[str, str] = dict(
        conn.execute(
            sa.text("SELECT source, max(external_id) FROM incidents WHERE external_id ~ :p GROUP BY source"),
            {"p": DEMO_ID_PATTERN},
        ).all()
    )
    out = incidents.copy()
    rank = out.groupby("source").cumcount().to_numpy() + 1
    base = out["source"].map(lambda s: int(stored[s][2:]) if stored.get(s) else 0).to_numpy()
    prefix = out["source"].map(_ID_PREFIX).to_numpy(dtype=object)
    out["external_id"] = prefix + pd.Series(base + rank).astype(str).str.zfill(8).to_numpy(dtype=object)
    return out


def advance_open(conn: Connection, seed: int, start: pd.Timestamp, end: pd.Timestamp) -> int:
    """Move the demo's incidents that were still young (deadline after ``start``) and untouched (no
    workflow event) along their cycle as the generator would have them at ``end``: the closure
    rate of the year holds, and nothing the demo left open at ``start`` is left behind as overdue
    only because time passed. Statuses never go back. Returns how many changed."""
    rows = conn.execute(
        sa.text(
            "SELECT i.id, i.status, extract(epoch FROM i.reported_at)::bigint AS r, "
            "extract(epoch FROM i.deadline_at)::bigint AS d FROM incidents i "
            "WHERE i.status = ANY(:open) AND i.deadline_at > :start AND i.external_id ~ :p "
            "AND NOT EXISTS (SELECT 1 FROM incident_events e WHERE e.incident_id = i.id) ORDER BY i.id"
        ),
        {"open": list(INCIDENT_STATUSES[:-1]), "start": start.to_pydatetime(), "p": DEMO_ID_PATTERN},
    ).all()
    if not rows:
        return 0
    ids = np.array([r.id for r in rows], dtype=np.int64)
    old = np.array([INCIDENT_STATUSES.index(r.status) for r in rows], dtype=np.int64)
    reported = np.array([r.r for r in rows], dtype=np.int64)
    deadline = np.array([r.d for r in rows], dtype=np.int64)
    rng = np.random.default_rng(
        np.random.SeedSequence([seed, _AGE_STREAM, int(start.timestamp()), int(end.timestamp())])
    )
    new, closed_s = _statuses(reported, deadline, int(end.timestamp()), rng)
    # They were open at ``start``: whatever closes them happens after it.
    closed_s = np.maximum(closed_s, int(start.timestamp()) + 60)
    new = np.maximum(new, old)
    closed_idx = len(INCIDENT_STATUSES) - 1
    changed = np.flatnonzero(new != old)
    params = [
        {
            "i": int(ids[k]),
            "s": INCIDENT_STATUSES[new[k]],
            "c": pd.Timestamp(int(closed_s[k]), unit="s", tz="UTC").to_pydatetime() if new[k] == closed_idx else None,
        }
        for k in changed
    ]
    if params:
        conn.execute(sa.text("UPDATE incidents SET status = :s, closed_at = :c WHERE id = :i"), params)
    return len(params)


def top_up(engine: Engine, end: pd.Timestamp | None = None, progress: Progress | None = None) -> TopUpReport | None:
    """Add the demo's incidents reported since it was last seeded, up to ``end`` (default: now).

    None when the database holds no demo to top up (see ``demo_state``). One transaction.
    """
    end = demo_now() if end is None else end
    if end.tzinfo is None:
        raise ValueError(f"end must carry a time zone, got {end}")
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
        state = demo_state(conn)
        if state is None:
            return None
        start = max(state.until, end - MAX_GAP)
        if end - start < MIN_GAP:
            return TopUpReport(start, start)  # the year still ends where it did
        report = TopUpReport(start, end)
        if progress is not None:
            progress("generate", 0, 1)
        frame = _renumber(conn, incidents_between(state.seed, state.per_year, start, end))
        if len(frame):

            def step(stage: str, done: int, total: int) -> None:
                if progress is not None:
                    progress(f"incidents: {stage}", done, total)

            options = ImportOptions(actor=DEMO_AUTHOR, progress=step)
            result = import_frame(conn, "incidents", incident_columns(frame), options, name="jiashan demo top-up")
            report.inserted = result.inserted
        report.advanced = advance_open(conn, state.seed, state.until, end)
        fill_loop_times(conn)  # the new and the advanced rows' timestamps (demo.jiashan.looptimes)
        audit.record(
            conn,
            DEMO_AUTHOR,
            "demo.topup",
            "incidents",
            seed=state.seed,
            per_year=state.per_year,
            since=start.isoformat(),
            until=end.isoformat(),
            incidents=report.inserted,
            advanced=report.advanced,
        )
    return report


__all__ = [
    "MAX_GAP",
    "MIN_GAP",
    "DemoState",
    "TopUpReport",
    "advance_open",
    "demo_state",
    "incidents_between",
    "top_up",
]
