"""Point lookup: which county, town, village, grid, micro-grid, station and beat cover a point,
and who serves it (the team: gis.people.roster), answered from memory.

``LookupService`` holds, per boundary generation, the ``gis.spatial.assign`` STRtrees (the same edge rule
as the database trigger) and a dictionary of unit names, plus the team postings of every unit (``TeamBook``). Published
generations never change, so their trees and names stay valid; what changes is which generation
is in force (publishing) and the staff. Both are reloaded after ``invalidate()``, which the
``gis.core.notify`` listener calls on every ``NOTIFY gridmap_boundaries`` and on every (re)connect.
While no listener is connected, the generation list and staff are re-read every
``stale_after_s`` seconds instead, so a lost listener costs freshness by seconds, not forever.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from threading import Lock
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
import sqlalchemy as sa

from gis.people.roster import TeamBook
from gis.spatial.areas import IN_GENERATION, Conn
from gis.spatial.assign import ADMIN_CHAIN, Assigner, AssignerCache, Assignment
from gis.spatial.crs import InputCRS, to_wgs84
from gis.spatial.lookupinput import LookupInputError, parse_point, range_error

MAX_CACHED_GENERATIONS = 8
UNIT_LAYERS = ("county", "town", "village", "grid", "micro_grid", "station", "beat")


@dataclass
class Directory:
    """Names of every unit in one generation, and the county row."""

    generation: int
    names: dict[tuple[str, str], str]
    county: dict[str, str] | None

    @classmethod
    def from_db(cls, conn: Conn, generation: int) -> Directory:
        rows = conn.execute(
            sa.text(f"SELECT layer, code, name FROM areas WHERE {IN_GENERATION} ORDER BY layer, code"),  # noqa: S608
            {"g": generation},
        ).all()
        names = {(r.layer, r.code): r.name for r in rows}
        county = next(({"code": r.code, "name": r.name} for r in rows if r.layer == "county"), None)
        return cls(generation, names, county)

    def county_of(self, *codes: object) -> dict[str, str] | None:
        """The county of the first unit code given (its first six digits), as stored; the one
        county row when none is named (a deployment of one county with no county outline)."""
        for code in codes:
            if code:
                key = ("county", str(code)[:6])
                if key in self.names:
                    return {"code": key[1], "name": self.names[key]}
        return self.county

    def unit(self, layer: str, code: object) -> dict[str, str] | None:
        if code is None:
            return None
        text = str(code)
        return {"code": text, "name": self.names.get((layer, text), text)}


class LookupService:
    """In-process answers to "which units cover this point"; thread-safe; see the module docstring."""

    def __init__(
        self,
        snap_tolerance_m: float = 50.0,
        stale_after_s: float = 5.0,
        on_loaded: Callable[[], object] | None = None,
    ):
        self.snap_tolerance_m = snap_tolerance_m
        self.stale_after_s = stale_after_s
        # Called after a generation's trees or names were loaded (rare: start-up, publishing);
        # the API uses it to take the new long-lived objects out of the collector's passes.
        self.on_loaded = on_loaded
        self.listening = False
        self.invalidations = 0
        self._assigners = AssignerCache(snap_tolerance_m)
        self._directories: dict[int, Directory] = {}
        self._loaded_assigners: set[int] = set()
        self._generations: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None = None
        self._staff: TeamBook | None = None
        self._loaded_at = 0.0
        self._epoch = 0
        self._lock = Lock()

    # --- cache control ---------------------------------------------------------------------

    def invalidate(self, payload: str | None = None) -> None:
        """Forget what may have changed: the generation list and the staff. Trees and names of a
        published generation never change, so they stay. Called by the NOTIFY listener;
        ``payload`` is informational."""
        with self._lock:
            self._epoch += 1
            self.invalidations += 1
            self._generations = None
            self._staff = None

    def _fresh(self) -> bool:
        return self.listening or time.monotonic() - self._loaded_at < self.stale_after_s

    def _load_shared(self, conn: Conn) -> tuple[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]], TeamBook]:
        gens, staff = self._generations, self._staff
        if gens is not None and staff is not None and self._fresh() and staff.fresh:
            return gens, staff
        epoch = self._epoch
        rows = conn.execute(
            sa.text(
                "SELECT id, extract(epoch FROM published_at) AS ts FROM generations "
                "WHERE published_at IS NOT NULL ORDER BY published_at, id"
            )
        ).all()
        ids = np.array([r.id for r in rows], dtype=np.int64)
        times = np.array([float(r.ts) for r in rows], dtype=np.float64)
        gens = (ids, times)
        staff = TeamBook.from_db(conn)
        with self._lock:
            # A NOTIFY that arrived while we were reading means what we read may be stale: use it
            # for this request but do not keep it.
            if epoch == self._epoch:
                self._generations, self._staff, self._loaded_at = gens, staff, time.monotonic()
        return gens, staff

    # --- generations -----------------------------------------------------------------------

    def generation_at(self, conn: Conn, at: dt.datetime | None = None) -> int | None:
        """The generation in force at ``at`` (now when None): the same rule as SQL
        ``gridmap_generation_at`` (largest id published by then, else the earliest published)."""
        gens, _ = self._load_shared(conn)
        return _generation_in(gens, at)

    def assigner(self, conn: Conn, generation: int) -> Assigner:
        if generation not in self._loaded_assigners:
            self._make_room(generation)
        assigner = self._assigners.get(conn, generation)
        if generation not in self._loaded_assigners:
            with self._lock:
                first = generation not in self._loaded_assigners
                self._loaded_assigners.add(generation)
            if first:
                self._loaded()
        return assigner

    def _make_room(self, incoming: int) -> None:
        """Keep at most MAX_CACHED_GENERATIONS in memory (``as_of`` lookups can ask for any):
        forget the one loaded longest ago, never the one in force nor the one being loaded."""
        gens = self._generations
        current = _generation_in(gens, None) if gens is not None else None
        with self._lock:
            loaded = list(self._directories)  # in the order they were loaded
            if len(loaded) < MAX_CACHED_GENERATIONS:
                return
            victim = next((g for g in loaded if g not in (incoming, current)), None)
            if victim is None:
                return
            del self._directories[victim]
            self._loaded_assigners.discard(victim)
        self._assigners.drop(victim)

    def loaded_generations(self) -> list[int]:
        """Generations whose trees and names are in memory."""
        return sorted(set(self._directories) & self._loaded_assigners)

    def ready(self, at: dt.datetime | None = None) -> bool:
        """Whether a lookup at ``at`` can be answered without the database (so an async caller
        can answer inline, and move only the loading to a thread)."""
        gens = self._generations
        if gens is None or self._staff is None or not self._fresh() or not self._staff.fresh:
            return False
        generation = _generation_in(gens, at)
        return generation is None or (generation in self._directories and generation in self._loaded_assigners)

    def warm(self, conn: Conn, at: dt.datetime | None = None) -> None:
        """Load everything a lookup at ``at`` needs."""
        generation = self.generation_at(conn, at)
        if generation is not None:
            self.assigner(conn, generation)
            self.directory(conn, generation)

    def directory(self, conn: Conn, generation: int) -> Directory:
        found = self._directories.get(generation)
        if found is None:
            loaded = Directory.from_db(conn, generation)
            with self._lock:
                # Threads that missed together all read it; the first one stored is kept.
                found = self._directories.setdefault(generation, loaded)
            if found is loaded:
                self._loaded()
        return found

    def _loaded(self) -> None:
        if self.on_loaded is not None:
            self.on_loaded()

    # --- answers ---------------------------------------------------------------------------

    def lookup(
        self,
        conn: Conn,
        lon: Sequence[float] | npt.ArrayLike,
        lat: Sequence[float] | npt.ArrayLike,
        *,
        at: dt.datetime | None = None,
        sees_personal_data: bool = False,
    ) -> list[dict[str, Any]]:
        """One answer per WGS-84 point, in order, under the generation in force at ``at``."""
        lon_a = np.asarray(lon, dtype=np.float64)
        lat_a = np.asarray(lat, dtype=np.float64)
        generation = self.generation_at(conn, at)
        if generation is None:
            return [_no_boundaries(float(x), float(y)) for x, y in zip(lon_a, lat_a, strict=True)]
        assignment = self.assigner(conn, generation).assign(lon_a, lat_a)
        names = self.directory(conn, generation)
        _, staff = self._load_shared(conn)
        return [
            _answer(assignment, i, float(lon_a[i]), float(lat_a[i]), names, staff, sees_personal_data)
            for i in range(len(lon_a))
        ]

    def lookup_one(
        self,
        conn: Conn,
        lon: float,
        lat: float,
        crs: InputCRS | str = InputCRS.wgs84,
        *,
        at: dt.datetime | None = None,
        sees_personal_data: bool = False,
    ) -> dict[str, Any]:
        """Validate, convert to WGS-84 and look up one point; raises ``LookupInputError``."""
        lon, lat, parsed = parse_point(lon, lat, crs)
        self.check_range(conn, lon, lat, at=at)
        x, y = (lon, lat) if parsed is InputCRS.wgs84 else to_wgs84(lon, lat, parsed)
        answer = self.lookup_point(conn, x, y, at=at, sees_personal_data=sees_personal_data)
        answer["input"] = {"lon": lon, "lat": lat, "crs": parsed.value}
        if answer["status"] == "outside_jurisdiction" and self.covers(conn, lat, lon, at=at):
            answer["hint"] = f"lon and lat look swapped: lon={lat}, lat={lon} lies in the county"
        return answer

    def lookup_point(
        self, conn: Conn, lon: float, lat: float, *, at: dt.datetime | None = None, sees_personal_data: bool = False
    ) -> dict[str, Any]:
        """``lookup`` of one WGS-84 point, the same answer at a sixth of the cost (no arrays)."""
        answer = self._lookup_covered(conn, lon, lat, at, sees_personal_data)
        if answer is None:
            answer = self.lookup(conn, [lon], [lat], at=at, sees_personal_data=sees_personal_data)[0]
        return answer

    def _lookup_covered(
        self, conn: Conn, lon: float, lat: float, at: dt.datetime | None, sees: bool
    ) -> dict[str, Any] | None:
        """One point covered by a unit of every searched layer, without the vectorised machinery
        (which costs ~100 us for a single point); None when it needs snapping or there are no
        boundaries, for ``lookup`` to handle. Same trees and rule as ``Assigner.assign``: the
        finest covering layer, the smallest code (trees are ordered by code, so the least index)."""
        generation = self.generation_at(conn, at)
        if generation is None:
            return None
        assigner = self.assigner(conn, generation)
        point = shapely.Point(lon, lat)
        codes: dict[str, Any] = dict.fromkeys(ADMIN_CHAIN)
        found = None
        for pos, layer in enumerate(ADMIN_CHAIN):
            index = assigner.layers[layer]
            hits = index.tree.query(point, predicate="intersects") if len(index) else ()
            if len(hits):
                found = (pos, str(index.codes[int(min(hits))]))
                break
        beats = assigner.beats.tree.query(point, predicate="intersects") if len(assigner.beats) else ()
        if found is None or not len(beats):
            return None
        pos, first = found
        code: str | None = first
        for layer in ADMIN_CHAIN[pos:]:
            codes[layer] = code
            code = assigner.layers[layer].parent_of.get(code)
        beat = int(min(beats))
        _, staff = self._load_shared(conn)
        names = self.directory(conn, generation)
        grid = codes["grid"]
        station, beat_code = assigner.beats.parents[beat], assigner.beats.codes[beat]
        team = {**codes, "beat": beat_code, "station": station}
        return {
            "lon": round(lon, 7),
            "lat": round(lat, 7),
            "status": "inside",
            "snap_distance_m": None,
            "generation": generation,
            "county": names.county_of(codes["town"], station),
            "town": names.unit("town", codes["town"]),
            "village": names.unit("village", codes["village"]),
            "grid": names.unit("grid", grid),
            "micro_grid": names.unit("micro_grid", codes["micro_grid"]),
            "station": names.unit("station", station),
            "beat": names.unit("beat", beat_code),
            "staff": staff.of(team, sees),
        }

    def check_range(self, conn: Conn, lon: float, lat: float, *, at: dt.datetime | None = None) -> None:
        """Raise ``LookupInputError`` for an out-of-range point, with a hint when lon/lat are swapped."""
        error = range_error(lon, lat)
        if error is None:
            return
        if range_error(lat, lon) is None and self.covers(conn, lat, lon, at=at):
            raise LookupInputError(
                error.param, f"{error.reason}; lon and lat look swapped: lon={lat}, lat={lon} lies in the county"
            )
        raise error

    def covers(self, conn: Conn, lon: float, lat: float, *, at: dt.datetime | None = None) -> bool:
        """Whether a WGS-84 point lies in (or snaps to) the county."""
        if range_error(lon, lat) is not None:
            return False
        generation = self.generation_at(conn, at)
        if generation is None:
            return False
        status = self.assigner(conn, generation).assign([lon], [lat]).assign_status[0]
        return bool(status != "outside_jurisdiction")

    def staff_of(self, conn: Conn, grid_code: str, sees_personal_data: bool) -> list[dict[str, Any]]:
        _, staff = self._load_shared(conn)
        return staff.of_grid(grid_code, sees_personal_data)


def _generation_in(gens: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]], at: dt.datetime | None) -> int | None:
    ids, times = gens
    if not len(ids):
        return None
    t = time.time() if at is None else at.timestamp()
    upto = bisect.bisect_right(times, t)
    return int(ids[:upto].max()) if upto else int(ids.min())


def _no_boundaries(lon: float, lat: float) -> dict[str, Any]:
    return {
        "lon": lon,
        "lat": lat,
        "status": "outside_jurisdiction",
        "snap_distance_m": None,
        "generation": None,
        **dict.fromkeys(UNIT_LAYERS),
        "staff": [],
    }


def _answer(
    a: Assignment, i: int, lon: float, lat: float, names: Directory, staff: TeamBook, sees: bool
) -> dict[str, Any]:
    status = str(a.assign_status[i])
    snap = float(a.snap_distance_m[i])
    grid = a.grid_code[i]
    team = {
        "grid": grid,
        "micro_grid": a.micro_grid_code[i],
        "village": a.village_code[i],
        "beat": a.beat_code[i],
        "station": a.station_code[i],
    }
    return {
        "lon": round(lon, 7),
        "lat": round(lat, 7),
        "status": status,
        "snap_distance_m": None if math.isnan(snap) else round(snap, 1),
        "generation": int(a.generation_id[i]),
        "county": names.county_of(a.town_code[i], a.station_code[i]) if status != "outside_jurisdiction" else None,
        "town": names.unit("town", a.town_code[i]),
        "village": names.unit("village", a.village_code[i]),
        "grid": names.unit("grid", grid),
        "micro_grid": names.unit("micro_grid", a.micro_grid_code[i]),
        "station": names.unit("station", a.station_code[i]),
        "beat": names.unit("beat", a.beat_code[i]),
        "staff": staff.of(team, sees),
    }
