"""All configuration in one place, read from the environment with the ``GRIDMAP_`` prefix.

Values are validated when first read; a bad value stops the program with one line that names
the variable and what is wrong with it (see ``load_settings``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SettingsError(RuntimeError):
    """A configuration value is unusable; the message names the variable and the fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", env_file=".env", extra="ignore")

    # An empty value means: run our own PostgreSQL cluster under ``var_dir``.
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of an existing PostGIS database; unset = the embedded local cluster",
    )
    read_database_url: str | None = Field(
        default=None,
        description="URL for reads that tolerate a little lag (tiles), e.g. a standby's; unset = the local "
        "formation's standbys when `gridmap db up --replicas` made one, else the main URL",
    )
    var_dir: Path = Field(default=PROJECT_ROOT / "var", description="where the local cluster and artifacts live")
    pg_port: int = Field(default=55432, ge=1024, le=65535, description="port of the local cluster")
    pg_database: str = Field(default="gridmap", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # `gridmap db up --replicas N`: a pg_auto_failover formation (gis.core.replicas) instead of the single cluster.
    failover_port: int = Field(
        default=55440, ge=1024, le=65000, description="port of the formation's monitor; its nodes take the next ones"
    )
    failover_detect_ms: int = Field(
        default=3000, ge=500, le=600_000, description="how long a primary may fail health checks before a failover"
    )
    shards: str | None = Field(
        default=None,
        description="sharding by county (gis.shards.config): JSON with the coordinator URL, shard URLs and county -> "
        "shard; unset = one node",
    )
    # Connections a process keeps (opened only as concurrency needs them). Beyond it SQLAlchemy
    # opens overflow connections and closes each on return: at 200 reports/s with answers slowed by
    # 500 open streams, a pool of 10 opened and closed a backend many times a second, and the
    # backends' start-up took the CPU the push needed (bench_events --demo, p99 2.4 s -> 0.5 s at 40).
    pool_size: int = Field(default=32, ge=1, le=200)
    # The counties this deployment runs (six-digit division codes); the first is the home county:
    # rows outside every county's boundaries are counted in it (county_code, migration 0032).
    counties: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["330421"],
        description="county codes this deployment serves, comma-separated, e.g. 330421,330402; the first is "
        "the home county of rows outside every county",
    )
    pool_max_overflow: int = Field(default=10, ge=0, le=200)

    auth_enabled: bool = Field(default=True, description="require API keys (disable only on closed test benches)")
    open_coordinate_lookups: bool = Field(default=False, description="coordinate lookups need no key (intranet)")
    rate_limit_per_minute: int = Field(default=6000, ge=0, description="requests per key per minute; 0 = unlimited")
    rate_limit_store: Literal["file", "database"] = Field(
        default="file",
        description="where rate-limit counts live: file = shared by the API processes of one machine (microseconds); "
        "database = by API replicas on any machine (a statement a request)",
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    freeze_heap: bool = Field(
        default=True, description="keep start-up objects and loaded boundaries out of collector passes (api.heap)"
    )

    # Assignment: points this close outside every grid are snapped to the nearest one (GPS error).
    snap_tolerance_m: float = Field(default=50.0, ge=0, le=5000)
    # Address lookups: a fuzzy match scoring below this is not presented as a match (404 + candidates).
    geocode_min_score: float = Field(
        default=0.75, gt=0, le=1, description="least confidence (0-1] for an address match to be returned"
    )
    duplicate_radius_m: float = Field(default=150.0, ge=0, le=10000)
    duplicate_window_hours: float = Field(default=3.0, ge=0, le=720)
    deadline_hours: dict[str, float] = Field(
        default_factory=dict,
        description='handling deadline per incident category in hours, overriding the defaults, e.g. {"fire": 2}',
    )
    # Public channels (gis.channels): residents' reports per device and per IP a minute (the
    # key-less surface's abuse limits; an intranet NAT puts many phones behind one IP), photos.
    public_reports_per_device_minute: int = Field(default=3, ge=0, description="resident reports per device a minute")
    public_reports_per_ip_minute: int = Field(default=30, ge=0, description="resident reports per IP address a minute")
    public_reads_per_ip_minute: int = Field(default=120, ge=0, description="ticket look-ups per IP address a minute")
    public_photo_max_mb: float = Field(default=5.0, gt=0, le=50, description="largest photo of a resident's report")
    # Dispatch (gis.dispatch): how long a holder has to accept an offer before it goes a level up.
    accept_within_s: float = Field(
        default=900.0, gt=0, le=7 * 86400, description="seconds a holder has to accept an offer (then: escalation)"
    )
    accept_within_110_s: float = Field(
        default=60.0, gt=0, le=7 * 86400, description="the same for 110 reports (pushed within a minute)"
    )
    # A routing rule choosing the ``nearest`` holder reads positions of patrols this recent.
    position_recent_s: float = Field(
        default=900.0, gt=0, le=86400, description="age of a patrol GPS point still taken as where a person is"
    )
    # The job queue (gis.work, `gridmap worker`): deadline jobs fire within about the poll interval.
    worker_concurrency: int = Field(default=4, ge=1, le=64, description="jobs one `gridmap worker` runs at a time")
    job_poll_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="how often a worker looks for jobs whose time has come"
    )
    job_heartbeat_s: float = Field(default=5.0, gt=0, le=600, description="how often a worker reports it is alive")
    job_stalled_after_s: float = Field(
        default=30.0, gt=0, le=3600, description="a worker silent this long is dead: its running jobs are retried"
    )

    # Outbound webhooks and hotline callbacks (gis.outbound): a receiver gets this long per attempt,
    # and this many attempts, the k-th retry after webhook_backoff_base_s ** k seconds.
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=60, description="seconds a receiver has to answer")
    webhook_max_attempts: int = Field(default=8, ge=1, le=30, description="attempts before a delivery gives up")
    webhook_backoff_base_s: int = Field(
        default=3, ge=1, le=10, description="exponential back-off base: retry k waits base**k seconds"
    )
    webhook_log_days: int = Field(
        default=30, ge=1, le=3650, description="days the delivery log keeps finished deliveries"
    )

    # Maps: above this many points the heat layer is aggregated on the server.
    heat_point_threshold: int = Field(default=50_000, ge=1)
    tile_url: str | None = Field(default=None, description="base map tile URL template; unset = plain background")
    tile_attribution: str = ""
    tile_crs: Literal["wgs84", "gcj02"] = Field(default="wgs84", description="gcj02 for Amap-style tiles")
    realtime_interval_ms: int = Field(default=10_000, ge=1000)

    # Boundary planning (boundaries/findings.py Rules, api/routers/boundaries.py).
    boundary_upload_max_mb: float = Field(default=100.0, gt=0, le=4096, description="largest boundary upload accepted")
    max_body_mb: float = Field(
        default=16.0, gt=0, le=4096, description="largest request body of other endpoints (JSON, CSV): 413 above"
    )
    # Attachments (gis.files): photos and files kept as evidence.
    attachments_dir: Path | None = Field(
        default=None, description="folder of the attachment store (content-addressed); unset = <var_dir>/attachments"
    )
    attachment_max_mb: float = Field(default=25.0, gt=0, le=1024, description="largest attachment accepted: 413 above")
    attachment_far_m: float = Field(
        default=200.0,
        gt=0,
        le=100_000,
        description="a photo taken farther than this from the claimed position is flagged",
    )
    boundary_sliver_m2: float = Field(default=100.0, ge=0, description="polygons or gaps smaller than this are slivers")
    grid_households_min: int = Field(default=300, ge=0, description="fewest households a grid should hold")
    grid_households_max: int = Field(default=500, ge=0, description="most households a grid should hold")
    micro_grid_households_min: int = Field(default=50, ge=0, description="fewest households a micro-grid should hold")
    micro_grid_households_max: int = Field(default=80, ge=0, description="most households a micro-grid should hold")
    visit_quota: int = Field(default=10, ge=0, le=1000, description="household visits a grid worker should make a day")
    patrol_max_speed_kmh: float = Field(
        default=150.0, gt=0, le=2000, description="a GPS point reached faster than this from the last one is flagged"
    )
    patrol_cover_m: float = Field(
        default=50.0, gt=0, le=1000, description="a building within this of a patrol track is covered"
    )

    @field_validator("database_url", "read_database_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        # Imported only when a URL is configured: the CLI reads settings for commands that never
        # touch SQLAlchemy.
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value.strip())
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({exc}); expected postgresql+psycopg://user:pw@host:5432/db") from exc
        if not url.drivername.startswith("postgresql"):
            raise ValueError(f"driver {url.drivername!r} is not PostgreSQL; gridmap needs PostgreSQL with PostGIS")
        if url.drivername in ("postgresql", "postgres"):
            # psycopg 3 is the driver we install; plain postgresql:// would look for psycopg2.
            url = url.set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)

    @field_validator("counties", mode="before")
    @classmethod
    def _check_counties(cls, value: object) -> list[str]:
        items = value.split(",") if isinstance(value, str) else list(value or [])  # type: ignore[call-overload]
        codes = list(dict.fromkeys(str(c).strip() for c in items if str(c).strip()))
        for code in codes:
            if len(code) != 6 or not code.isdigit():
                raise ValueError(f"county code {code!r} is not six digits (e.g. 330421)")
        if not codes:
            raise ValueError("at least one county code is needed, e.g. 330421")
        return codes

    @field_validator("deadline_hours")
    @classmethod
    def _check_deadlines(cls, value: dict[str, float]) -> dict[str, float]:
        from gis.incidents.rules import check_deadline_overrides

        return check_deadline_overrides(value)

    @property
    def attachment_root(self) -> Path:
        return self.attachments_dir or self.var_dir / "attachments"

    @property
    def uses_local_cluster(self) -> bool:
        return self.database_url is None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "?"
        parts.append(f"GRIDMAP_{field.upper()}: {err['msg']}")
    return "; ".join(parts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(f"bad configuration: {_describe(exc)}") from None
