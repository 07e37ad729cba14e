"""The spatial data model. Every geometry is stored in SRID 4326 (WGS-84); metric work transforms on the fly.

Boundaries of all layers share one table, ``areas``, keyed by layer and code and versioned by
boundary generation (``gen_from`` inclusive, ``gen_to`` exclusive, NULL = still in force), so
drafts, validation, publishing and diffs work the same way for every layer and history is never
overwritten. Point records (incidents, buildings, addresses, hazards) carry their assignment:
the codes of the units that contain them, under the generation gis/spatial/genrule.py picks (open
work: the one in force; ended records: the one in force at their time).
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
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

# Defined in gis.core.vocab (light to import); other modules still import them from here.
from gis.core.vocab import (
    ASSIGN_STATUSES,
    ESCALATION_LEVELS,
    INCIDENT_STATUSES,
    LAYERS,
    ORG_UNIT_KINDS,
    PERSON_STATUSES,
    POSTING_ROLES,
    ROLES,
    SRID,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


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


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Generation(Base):
    """A boundary generation (版本): one published change to one or more layers."""

    __tablename__ = "generations"
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    layers: Mapped[str] = mapped_column(Text, nullable=False, comment="comma-separated layers this generation changed")
    note: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    author: Mapped[str] = mapped_column(String(100), nullable=False, server_default="system")
    based_on: Mapped[int | None] = mapped_column(ForeignKey("generations.id"))
    created_at: Mapped[dt.datetime] = _now()
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Area(Base):
    """A boundary polygon of any layer: county, town (镇/街道), village (村/社区), grid (网格),
    micro-grid (微网格), police station (派出所) jurisdiction or police beat (警格)."""

    __tablename__ = "areas"
    __table_args__ = (
        CheckConstraint(f"layer IN ({_in(LAYERS)})", name="layer"),
        CheckConstraint("gen_to IS NULL OR gen_to > gen_from", name="gen_range"),
        CheckConstraint("households IS NULL OR households >= 0", name="households"),
        Index("uq_areas_current_code", "layer", "code", unique=True, postgresql_where=text("gen_to IS NULL")),
        Index("ix_areas_layer_gen", "layer", "gen_from", "gen_to"),
        Index("ix_areas_parent", "layer", "parent_code"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    layer: Mapped[str] = mapped_column(String(16), nullable=False)
    code: Mapped[str] = mapped_column(String(32), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    parent_code: Mapped[str | None] = mapped_column(String(32))
    households: Mapped[int | None] = mapped_column(Integer)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=False)
    gen_from: Mapped[int] = mapped_column(ForeignKey("generations.id"), nullable=False)
    gen_to: Mapped[int | None] = mapped_column(ForeignKey("generations.id"))


class Person(Base):
    """Someone who serves an area (gis.people): their postings say where, as what and when."""

    __tablename__ = "people"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(PERSON_STATUSES)})", name="status"),
        Index("uq_people_id_card", "id_card", unique=True, postgresql_where=text("id_card IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    phone: Mapped[str | None] = mapped_column(String(20))
    id_card: Mapped[str | None] = mapped_column(String(18))
    status: Mapped[str] = mapped_column(String(8), nullable=False, server_default="active")
    created_at: Mapped[dt.datetime] = _now()


class OrgUnit(Base):
    """An organisation unit (county centre 社会治理中心, town centre 综合信息指挥室, village station,
    police station, department) and the area it is responsible for; members are its postings."""

    __tablename__ = "org_units"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_in(ORG_UNIT_KINDS)})", name="kind"),
        CheckConstraint(f"layer IN ({_in(LAYERS)})", name="layer"),
        Index("ix_org_units_area", "layer", "area_code"),
    )
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    layer: Mapped[str] = mapped_column(String(16), nullable=False)
    area_code: Mapped[str] = mapped_column(String(32), nullable=False)
    parent_code: Mapped[str | None] = mapped_column(String(32))
    is_key: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    created_at: Mapped[dt.datetime] = _now()


class Posting(Base):
    """A person's role over an area (any layer) from ``starts_on`` to ``ends_on`` (the last day
    served; NULL = open). History is kept: ending sets the end date. Migration 0011 adds the
    exclusion constraint for roles with one holder per area, and the ``staff`` compatibility view."""

    __tablename__ = "postings"
    __table_args__ = (
        CheckConstraint(f"role IN ({_in(POSTING_ROLES)})", name="role"),
        CheckConstraint(f"layer IN ({_in(LAYERS)})", name="layer"),
        CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name="dates"),
        Index("ix_postings_area", "layer", "area_code"),
        Index("ix_postings_person", "person_id"),
        Index("ix_postings_org_unit", "org_unit_id"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), nullable=False)
    role: Mapped[str] = mapped_column(String(24), nullable=False)
    layer: Mapped[str] = mapped_column(String(16), nullable=False)
    area_code: Mapped[str] = mapped_column(String(32), nullable=False)
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    starts_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    ends_on: Mapped[dt.date | None] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    created_at: Mapped[dt.datetime] = _now()


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
        CheckConstraint("status IN ('open', 'rectifying', 'rectified', 'overdue')", name="status"),
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
                "status IN ('reported', 'accepted', 'dispatched', 'in_progress', 'handled', 'verified')"
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


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[dt.datetime] = _now()
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    target: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))


class Account(Base):
    """Who holds API keys: a person, an organisation unit, or neither (a system); the role and the
    scope (area codes, gis.people.scope; empty = the whole county) of every key of the account."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint(f"role IN ({_in(ROLES)})", name="role"),
        Index("ix_accounts_person", "person_id"),
        Index("ix_accounts_org_unit", "org_unit_id"),
    )
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    scope: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default=text("'{}'::text[]"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    created_at: Mapped[dt.datetime] = _now()
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(f"role IN ({_in(ROLES)})", name="role"),
        Index("ix_api_keys_account", "account_id"),
    )
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False, unique=True)
    key_hash: Mapped[str] = mapped_column(String(128), nullable=False)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    created_at: Mapped[dt.datetime] = _now()
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Draft(Base):
    """A planner's draft (草案) of one layer within a scope, based on a generation."""

    __tablename__ = "drafts"
    __table_args__ = (
        CheckConstraint(f"layer IN ({_in(LAYERS)})", name="layer"),
        CheckConstraint("status IN ('open', 'published', 'discarded')", name="status"),
    )
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    layer: Mapped[str] = mapped_column(String(16), nullable=False)
    scope_code: Mapped[str | None] = mapped_column(String(32))
    base_generation: Mapped[int] = mapped_column(ForeignKey("generations.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, server_default="open")
    author: Mapped[str] = mapped_column(String(100), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    created_at: Mapped[dt.datetime] = _now()
    updated_at: Mapped[dt.datetime] = _now()
    published_generation: Mapped[int | None] = mapped_column(ForeignKey("generations.id"))


class DraftFeature(Base):
    __tablename__ = "draft_features"
    __table_args__ = (Index("uq_draft_features_code", "draft_id", "code", unique=True),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), nullable=False)
    code: Mapped[str] = mapped_column(String(32), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    parent_code: Mapped[str | None] = mapped_column(String(32))
    households: Mapped[int | None] = mapped_column(Integer)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=False)
