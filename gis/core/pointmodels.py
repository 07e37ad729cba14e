"""The point tables: buildings, standard addresses, hazards, incidents and incident events.

Point records carry their assignment: the codes of the units that contain them, under the generation
gis/spatial/genrule.py picks (open work: the one in force; ended records: the one in force at their
time). Their tables register on ``gis.core.models.Base``; gis/migrations/env.py imports this module
so that the metadata holds every table.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from gis.core.models import Base, _in, _now
from gis.core.vocab import (
    ASSIGN_STATUSES,
    ESCALATION_LEVELS,
    HAZARD_STATUSES,
    INCIDENT_STATUSES,
    SRID,
)

# Web Mercator position of a point as integer fractions of the world square (x west to east, y
# north to south, both 0 .. 2**MERC_BITS). Tiles group incidents per screen pixel; with the
# position stored, the pixel at zoom z is ``merc >> (MERC_BITS - 8 - z)``, valid up to zoom 22.
# NULL outside the square (|lat| > 85.0511 degrees), which no tile shows. Migration 0007 holds a
# frozen copy of these expressions.
MERC_BITS = 30
_MERC_INSIDE = "abs(ST_Y(geom)) <= 85.0511287798066 AND abs(ST_X(geom)) <= 180"
MERC_X_SQL = f"CASE WHEN {_MERC_INSIDE} THEN floor((ST_X(geom) + 180) / 360 * {2**MERC_BITS})::integer END"
MERC_Y_SQL = (
    f"CASE WHEN {_MERC_INSIDE} THEN "
    f"floor((0.5 - asinh(tan(radians(ST_Y(geom)))) / (2 * pi())) * {2**MERC_BITS})::integer END"
)


class AssignedMixin:
    """Where a point lies: filled by the database (trigger) or the bulk loader, checked by `gridmap verify`."""

    town_code: Mapped[str | None] = mapped_column(String(32))
    village_code: Mapped[str | None] = mapped_column(String(32))
    grid_code: Mapped[str | None] = mapped_column(String(32))
    micro_grid_code: Mapped[str | None] = mapped_column(String(32))
    station_code: Mapped[str | None] = mapped_column(String(32))
    beat_code: Mapped[str | None] = mapped_column(String(32))
    generation_id: Mapped[int | None] = mapped_column(Integer)
    assign_status: Mapped[str | None] = mapped_column(String(24))
    snap_distance_m: Mapped[float | None] = mapped_column(Float)
    # The row's county (migration 0032, gis/core/counties.py): set by the trigger; the home county
    # by default for rows outside every county.
    county_code: Mapped[str] = mapped_column(String(6), nullable=False, server_default=text("gridmap_home_county()"))

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (
            CheckConstraint(
                f"assign_status IS NULL OR assign_status IN ({_in(ASSIGN_STATUSES)})", name="assign_status"
            ),
            Index(f"ix_{name}_grid", "grid_code"),
            Index(f"ix_{name}_village", "village_code"),
            Index(f"ix_{name}_beat", "beat_code"),
            *getattr(cls, "__extra_args__", ()),
        )


class Building(AssignedMixin, Base):
    """A building (建筑/房屋); rental buildings (出租房屋) carry their inspection results."""

    __tablename__ = "buildings"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    floors: Mapped[int | None] = mapped_column(SmallInteger)
    households: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    residents: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    new_residents: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    is_rental: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    landlord_name: Mapped[str | None] = mapped_column(Text)
    landlord_phone: Mapped[str | None] = mapped_column(String(20))
    landlord_id_card: Mapped[str | None] = mapped_column(String(18))
    tenants: Mapped[int | None] = mapped_column(Integer)
    rooms: Mapped[int | None] = mapped_column(Integer)
    escape_window: Mapped[str | None] = mapped_column(String(16))
    ebike_charging: Mapped[str | None] = mapped_column(String(16))
    wiring: Mapped[str | None] = mapped_column(String(16))
    risk_level: Mapped[str | None] = mapped_column(String(8))
    last_inspected_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    attrs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=False)


class Address(AssignedMixin, Base):
    """A standard address (标准地址, the 一标三实 base)."""

    __tablename__ = "addresses"
    __extra_args__ = (
        Index(
            "ix_addresses_normalized_trgm",
            "normalized",
            postgresql_using="gin",
            postgresql_ops={"normalized": "gin_trgm_ops"},
        ),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    full_text: Mapped[str] = mapped_column(Text, nullable=False)
    normalized: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    road: Mapped[str | None] = mapped_column(Text)
    house_no: Mapped[str | None] = mapped_column(String(16))
    building_no: Mapped[str | None] = mapped_column(String(16))
    unit_no: Mapped[str | None] = mapped_column(String(16))
    room_no: Mapped[str | None] = mapped_column(String(16))
    group_no: Mapped[str | None] = mapped_column(String(16))
    precision: Mapped[str] = mapped_column(String(12), nullable=False)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id", ondelete="SET NULL"), index=True)
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=False)


class Hazard(AssignedMixin, Base):
    """A hazard point (隐患点) found on inspection."""

    __tablename__ = "hazards"
    __extra_args__ = (
        CheckConstraint("severity IN ('low', 'medium', 'high')", name="severity"),
        CheckConstraint(f"status IN ({_in(HAZARD_STATUSES)})", name="status"),  # migration 0018
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    severity: Mapped[str] = mapped_column(String(8), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    found_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    rectify_by: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    rectified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id", ondelete="SET NULL"))
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=False)


class Incident(AssignedMixin, Base):
    """An incident (事件) and where it stands in the closed loop (上报→立案→派遣→处置→核查→结案)."""

    __tablename__ = "incidents"
    __extra_args__ = (
        CheckConstraint(f"status IN ({_in(INCIDENT_STATUSES)})", name="status"),
        CheckConstraint(f"escalation_level IN ({_in(ESCALATION_LEVELS)})", name="escalation_level"),
        CheckConstraint("received_crs IN ('wgs84', 'gcj02', 'bd09')", name="received_crs"),
        Index("ix_incidents_town", "town_code", "reported_at", "id"),  # migration 0013: town-scoped listings
        Index(
            "ix_incidents_open_town",
            "town_code",
            "reported_at",
            postgresql_where=text(
                "status::text = ANY (ARRAY['reported'::text, 'accepted'::text, 'dispatched'::text, "
                "'in_progress'::text, 'handled'::text, 'verified'::text])"
            ),
        ),
        Index(
            "uq_incidents_source_external",
            "source",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
        ),
        Index(
            "uq_incidents_idempotency_key",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        # No plain index on reported_at: ix_incidents_time_tiles (migrations 0004/0007) leads with it
        # and serves the same time-window scans (migration 0008).
        Index("ix_incidents_open", "status", "deadline_at", postgresql_where=text("status <> 'closed'")),
        # The duplicate check's index (migration 0009): open incidents by location.
        Index(
            "ix_incidents_open_geom",
            "geom",
            postgresql_using="gist",
            postgresql_where=text(
                "status::text = ANY (ARRAY['reported'::text, 'accepted'::text, 'dispatched'::text, "
                "'in_progress'::text, 'handled'::text, 'verified'::text])"
            ),
        ),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), nullable=False)
    source: Mapped[str] = mapped_column(String(24), nullable=False)
    external_id: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    reported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    received_crs: Mapped[str] = mapped_column(String(8), nullable=False, server_default="wgs84")
    received_lon: Mapped[float | None] = mapped_column(Float)
    received_lat: Mapped[float | None] = mapped_column(Float)
    address_text: Mapped[str | None] = mapped_column(Text)
    address_id: Mapped[int | None] = mapped_column(BigInteger)
    description: Mapped[str | None] = mapped_column(Text)
    reporter_name: Mapped[str | None] = mapped_column(Text)
    reporter_phone: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12), nullable=False, server_default="reported")
    deadline_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    escalation_level: Mapped[str] = mapped_column(String(8), nullable=False, server_default="grid")
    escalated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    possible_duplicate_of: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = _now()
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=False)
    merc_x: Mapped[int | None] = mapped_column(Integer, Computed(MERC_X_SQL, persisted=True))
    merc_y: Mapped[int | None] = mapped_column(Integer, Computed(MERC_Y_SQL, persisted=True))


class IncidentEvent(Base):
    """One step of an incident's history: who moved it from which status to which, when and why."""

    __tablename__ = "incident_events"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False, index=True)
    at: Mapped[dt.datetime] = _now()
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    action: Mapped[str] = mapped_column(String(24), nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str | None] = mapped_column(String(12))
    note: Mapped[str | None] = mapped_column(Text)
