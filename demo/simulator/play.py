"""The simulator's tick: everything due up to ``now`` happens, through the product's functions.

Time: the database gets wall-clock times (``now``: the API, the worker's deadline jobs and the
command centre live in real time); the simulated clock runs ``speed`` times faster from the start
(``sim = start + (now - start) x speed``) and sets the rhythm's hour. Every delay below is drawn
in simulated seconds and waited for as ``delay / speed`` of wall time; the intake's acceptance
windows and handling deadlines are scaled the same way (the settings given to intake), so an
offer left alone expires, and a late incident goes overdue, at the simulated pace.

Decisions are drawn from the seed and a stable key (the report's number, the holder, the step),
never from database ids, and each tick reads what is due from the database: the same seed, clock
and database give the same day, and a simulator restarted (or a database restarted under it)
carries on from what is stored.
"""

from __future__ import annotations

import datetime as dt
import logging
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from demo.simulator import steps
from demo.simulator.cast import Cast
from demo.simulator.mix import DEMO_PER_DAY, draw_reports
from gis.core.settings import Settings, get_settings
from gis.core.vocab import COUNTY_TZ
from gis.incidents import rules
from gis.spatial.areas import Conn

log = logging.getLogger("gridmap.simulate")
PREFIX = "SIM"  # external ids of the simulator's reports: SIM00000001...
Begin = Callable[[], AbstractContextManager[Conn]]


@dataclass
class SimConfig:
    speed: float = 60.0  # simulated seconds per wall second
    per_day: float = DEMO_PER_DAY  # reports a day on average (the demo's year / 365)
    seed: int = 7
    max_reports: int = 40  # per tick: more wait for the next tick (at most 10 ticks' worth)
    max_steps: int = 80  # holder and centre steps per tick
    min_window_s: float = 5.0  # the shortest acceptance window in wall seconds (ticks must fit in it)
    play_worker: bool = False  # run the due deadline jobs' bodies here (tests, no `gridmap worker`)


@dataclass
class Tally:
    reports: int = 0
    steps: dict[str, int] = field(default_factory=dict)

    def add(self, what: str) -> None:
        self.steps[what] = self.steps.get(what, 0) + 1


def fate(seed: int, key: str) -> np.random.Generator:
    """The random stream of one decision: the seed and a stable key."""
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


class Simulator:
    def __init__(self, begin: Begin, config: SimConfig, start: dt.datetime, settings: Settings | None = None) -> None:
        self.begin = begin
        self.cfg = config
        self.start = start
        self.last_sim = start
        self.rng = np.random.default_rng(config.seed)
        self.cast = Cast()
        self.tally = Tally()
        self.backlog: list[tuple[str, str]] = []
        self.next_number: int | None = None
        self.floor = 0
        base = settings or get_settings()
        speed = config.speed
        window = {
            "accept_within_s": max(base.accept_within_s / speed, config.min_window_s),
            "accept_within_110_s": max(base.accept_within_110_s / speed, config.min_window_s),
            "deadline_hours": {c: rules.deadline_hours(c, base.deadline_hours) / speed for c in rules.CATEGORIES},
        }
        self.settings = base.model_copy(update=window)

    # --- clocks ----------------------------------------------------------------------------
    def sim_time(self, now: dt.datetime) -> dt.datetime:
        return self.start + (now - self.start) * self.cfg.speed

    def wall(self, sim_seconds: float) -> dt.timedelta:
        return dt.timedelta(seconds=sim_seconds / self.cfg.speed)

    # --- a tick ----------------------------------------------------------------------------
    def step(self, now: dt.datetime) -> Tally:
        """Do what is due at wall time ``now``: the reports of the simulated interval since the
        last tick, then the holders' and centres' steps that came due."""
        if self.next_number is None:
            with self.begin() as conn:
                self.cast.load_places(conn)
                self.next_number = _stored_max(conn) + 1
                self.floor = _first_id(conn)
        sim_now = self.sim_time(now)
        if sim_now > self.last_sim:
            self.backlog += draw_reports(self.cfg.per_day, self.last_sim, sim_now, self.rng)
            self.last_sim = sim_now
        self.backlog = self.backlog[-10 * self.cfg.max_reports :]
        todo, self.backlog = self.backlog[: self.cfg.max_reports], self.backlog[self.cfg.max_reports :]
        for source, category in todo:
            self._report(now, source, category)
        if self.cfg.play_worker:
            with self.begin() as conn:
                for what in steps.play_worker(conn, now):
                    self.tally.add(what)
        budget = self.cfg.max_steps
        for due in (self._offers, self._leads, self._checks, self._unheld):
            for kind, row in due(now, budget):
                if budget <= 0:
                    break
                budget -= 1
                self._act(kind, row, now)
        return self.tally

    def _report(self, now: dt.datetime, source: str, category: str) -> None:
        from gis.incidents.errors import IncidentInputError
        from gis.incidents.intake import create_incident

        place = self.cast.place(category, self.rng)
        assert self.next_number is not None
        number, self.next_number = self.next_number, self.next_number + 1
        if place is None:
            return
        data = {
            "lon": place.lon,
            "lat": place.lat,
            "category": category,
            "source": source,
            "external_id": f"{PREFIX}{number:08d}",
            "description": f"{rules.CATEGORIES[category].zh}（模拟上报）",
        }
        try:
            with self.begin() as conn:
                actor = self.cast.reporter(conn, source, place.grid_code, now.astimezone(COUNTY_TZ).date())
                create_incident(conn, data, actor, settings=self.settings, now=now)
            self.tally.reports += 1
        except IncidentInputError as exc:  # a jittered point fell outside the county: that report is lost
            log.debug("report %s not taken: %s", data["external_id"], exc)

    # --- what is due -----------------------------------------------------------------------
    def _rows(self, sql: sa.TextClause, limit: int) -> list[dict[str, Any]]:
        with self.begin() as conn:
            params = {"p": f"{PREFIX}%", "limit": limit, "floor": self.floor}
            return [dict(r._mapping) for r in conn.execute(sql, params)]

    def _offers(self, now: dt.datetime, budget: int) -> Iterator[tuple[str, dict[str, Any]]]:
        for row in self._rows(steps.OPEN_OFFERS, 20 * budget):
            plan = steps.offer_plan(self.cfg.seed, row)
            if plan.action != "ignore" and row["offered_at"] + dt.timedelta(seconds=plan.after_s) <= now:
                yield plan.action, row

    def _leads(self, now: dt.datetime, budget: int) -> Iterator[tuple[str, dict[str, Any]]]:
        for row in self._rows(steps.WORKING_LEADS, 20 * budget):
            for action, after in steps.lead_plan(self.cfg.seed, row, self.wall):
                if row["accepted_at"] + after <= now and steps.pending(action, row):
                    yield action, row
                    break

    def _checks(self, now: dt.datetime, budget: int) -> Iterator[tuple[str, dict[str, Any]]]:
        for row in self._rows(steps.TO_CHECK, 20 * budget):
            action, since, after_s = steps.check_plan(self.cfg.seed, row)
            if since is not None and since + self.wall(after_s) <= now:
                yield action, row

    def _unheld(self, now: dt.datetime, budget: int) -> Iterator[tuple[str, dict[str, Any]]]:
        for row in self._rows(steps.UNHELD, budget):
            if row["reported_at"] + self.wall(steps.UNHELD_AFTER_S) <= now:
                yield "redispatch", row

    def _act(self, action: str, row: dict[str, Any], now: dt.datetime) -> None:
        try:
            with self.begin() as conn:
                done = steps.act(conn, self.cast, action, row, now, self.cfg.seed, self.settings, self.wall)
            if done:
                self.tally.add(action)
        except steps.REFUSED as exc:  # the state moved on (the worker expired the offer, ...): skip it
            log.debug("%s on incident %s refused: %s", action, row.get("incident_id"), exc)
            self.tally.add(f"{action} refused")


def _first_id(conn: Conn) -> int:
    """The smallest id of the simulator's incidents (else the next one): the queries start there."""
    got = conn.execute(
        sa.text(
            "SELECT coalesce((SELECT min(id) FROM incidents WHERE external_id ~ '^SIM[0-9]+$'), "
            "(SELECT coalesce(max(id), 0) + 1 FROM incidents))"
        )
    ).scalar()
    return int(got or 0)


def _stored_max(conn: Conn) -> int:
    got = conn.execute(
        sa.text("SELECT max(substr(external_id, 4)::bigint) FROM incidents WHERE external_id ~ '^SIM[0-9]+$'")
    ).scalar()
    return int(got or 0)
