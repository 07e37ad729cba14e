"""Response shapes of the lookup, grid and beat endpoints (documentation and validation)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["inside", "snapped", "outside_jurisdiction"]


class UnitRef(BaseModel):
    code: str = Field(examples=["33042100100100101"])
    name: str = Field(examples=["魏塘街道东门村第1网格"])


class StaffOut(BaseModel):
    """One member of the team serving a place: a posting in force today (gis.people.roster)."""

    role: str = Field(
        description="grid_leader 网格长, grid_worker 专职网格员, part_time_worker 兼职网格员, aux_police 网格辅警, "
        "community_police 社区民警, chief_grid_leader 总网格长, micro_grid_leader 微网格长, liaison_cadre 包联干部, "
        "beat_officer 警格民警, station_officer 派出所民警",
        examples=["grid_leader"],
    )
    name: str = Field(description="masked (surname only) for roles below dispatcher", examples=["张**"])
    phone: str | None = Field(description="masked (138****5678) for roles below dispatcher", examples=["138****5678"])
    layer: str | None = Field(None, description="layer of the area the person is posted to", examples=["village"])
    area_code: str | None = Field(None, description="code of the area the person is posted to")


class PointIn(BaseModel):
    lon: float
    lat: float
    crs: Literal["wgs84", "gcj02", "bd09"]


class GeocodeMatchOut(BaseModel):
    address_id: int | None = Field(description="the standard address; null for a place known by its position only")
    full_text: str = Field(examples=["浙江省嘉兴市嘉善县魏塘街道中山路128号3幢"])
    lon: float = Field(description="WGS-84")
    lat: float = Field(description="WGS-84")
    score: float = Field(ge=0, le=1, description="confidence that this is the place meant, at `precision`")
    precision: Literal["room", "building", "house", "place", "group", "road", "village"] = Field(
        description="the finest part of the query that was found (a missing room falls back to its building); "
        "road, village: only the road or village was found, and the score stays below the threshold; group: a "
        "village group (组), one micro-grid; place: a point of interest's own position"
    )
    found: str = Field("", description="what was found at `precision`, normalised (魏塘街道中山路 for a road)")
    place: str | None = Field(None, description="the point of interest the query named (POST /places/import)")


class AddressOut(BaseModel):
    query: str
    normalized: str = Field(description="the query after normalisation (prefix, full-width, numerals, 栋→幢 ...)")
    method: Literal["exact", "fuzzy", "place", "none"]
    match: GeocodeMatchOut | None
    candidates: list[GeocodeMatchOut] = Field(description="up to 5 distinct places, best first")


class LookupOut(BaseModel):
    """Which units cover a point, and who serves its grid."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "input": {"lon": 120.9153, "lat": 30.8365, "crs": "gcj02"},
                "lon": 120.91059,
                "lat": 30.83898,
                "status": "inside",
                "snap_distance_m": None,
                "generation": 3,
                "county": {"code": "330421", "name": "嘉善县"},
                "town": {"code": "330421001", "name": "魏塘街道"},
                "village": {"code": "330421001001", "name": "东门村"},
                "grid": {"code": "330421001001001", "name": "东门村第1网格"},
                "micro_grid": {"code": "33042100100100101", "name": "东门村第1网格-1微网格"},
                "station": {"code": "330421P01", "name": "魏塘派出所"},
                "beat": {"code": "330421P0101", "name": "东门警格"},
                "staff": [
                    {"role": "grid_leader", "name": "王**", "phone": "139****0001"},
                    {"role": "grid_worker", "name": "李**", "phone": "139****0002"},
                    {"role": "aux_police", "name": "赵**", "phone": "139****0003"},
                ],
                "hint": None,
                "address": None,
            }
        }
    )
    input: PointIn | None = Field(None, description="the coordinates as sent (absent for address lookups)")
    lon: float = Field(description="the point in WGS-84")
    lat: float = Field(description="the point in WGS-84")
    status: Status = Field(
        description="inside; snapped (just outside, within the snap tolerance, to the nearest unit); "
        "outside_jurisdiction (no unit)"
    )
    snap_distance_m: float | None = Field(description="distance to the unit snapped to, metres")
    generation: int | None = Field(description="the boundary generation (版本) used")
    county: UnitRef | None
    town: UnitRef | None
    village: UnitRef | None
    grid: UnitRef | None
    micro_grid: UnitRef | None
    station: UnitRef | None = Field(description="police station (派出所)")
    beat: UnitRef | None = Field(description="police beat (警格)")
    staff: list[StaffOut] = Field(description="the grid's staff, in role order")
    hint: str | None = Field(None, description="set when e.g. lon and lat look swapped")
    address: AddressOut | None = Field(None, description="the address match, for address lookups")


class NotFoundOut(BaseModel):
    detail: str
    error: str
    address: AddressOut | None = None


class ItemError(BaseModel):
    field: str = Field(description="the item's field at fault: lon, lat, crs, address, or item")
    message: str


class BatchItemOut(BaseModel):
    index: int = Field(description="position in the input, from 0")
    ok: bool
    error: ItemError | None = None
    result: LookupOut | None = None
    candidates: list[GeocodeMatchOut] | None = Field(None, description="for addresses without a confident match")


class BatchOut(BaseModel):
    count: int
    ok: int
    failed: int
    results: list[BatchItemOut] = Field(description="one per input item, in input order")


class OverlapOut(BaseModel):
    code: str
    name: str
    shared_area_m2: float = Field(description="area shared, in m² (EPSG:4549)")


class BeatOverlapOut(OverlapOut):
    pct_of_grid: float = Field(description="share of the grid's area inside this beat, %")
    pct_of_beat: float = Field(description="share of the beat's area inside this grid, %")
    station: UnitRef | None


class IncidentCounts(BaseModel):
    open: int = Field(description="not closed or rejected")
    pending: int = Field(description="waiting for handling (reported, accepted, dispatched, in_progress)")
    overdue: int = Field(description="pending and past the deadline (handled/verified are never overdue)")
    escalated: int = Field(description="open and escalated above the grid")
    total_30d: int = Field(description="reported in the last 30 days")


class MicroGridOut(BaseModel):
    code: str
    name: str
    households: int | None
    staff: list[StaffOut] = Field(default_factory=list, description="the micro-grid leader (微网格长) and workers")


class GridOut(BaseModel):
    code: str
    name: str
    generation: int
    county: UnitRef | None
    town: UnitRef | None
    village: UnitRef | None
    households: int | None = Field(description="households on record for the grid")
    households_counted: int = Field(description="households summed over the buildings assigned to the grid")
    staff: list[StaffOut]
    micro_grids: list[MicroGridOut]
    beats: list[BeatOverlapOut] = Field(description="police beats overlapping the grid, largest share first")
    incidents: IncidentCounts


class StaffBriefOut(BaseModel):
    role: str
    name: str
    phone: str | None


class GridOverlapOut(OverlapOut):
    pct_of_beat: float = Field(description="share of the beat's area inside this grid, %")
    pct_of_grid: float = Field(description="share of the grid's area inside this beat, %")
    aux_police: list[StaffBriefOut] = Field(description="the grid's auxiliary police (网格辅警): the 网格+警格 pairing")


class BeatOut(BaseModel):
    code: str
    name: str
    generation: int
    station: UnitRef | None
    staff: list[StaffOut] = Field(default_factory=list, description="the beat officer and the station's staff")
    grids: list[GridOverlapOut] = Field(description="grids the beat overlaps, largest share first")
    incidents: IncidentCounts
