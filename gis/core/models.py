"""The spatial data model. Every geometry is stored in SRID 4326 (WGS-84); metric work transforms on the fly.

Boundaries of all layers share one table, ``areas``, keyed by layer and code and versioned by
boundary generation (``gen_from`` inclusive, ``gen_to`` exclusive, NULL = still in force), so
drafts, validation, publishing and diffs work the same way for every layer and history is never
overwritten. The point tables (incidents, buildings, addresses, hazards), which carry their
assignment, are gis/core/pointmodels.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Defined in gis.core.vocab (light to import); other modules still import them from here.
from gis.core.vocab import (
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
    county_code: Mapped[str | None] = mapped_column(
        String(6), comment="the county whose units it replaced; NULL = any county (migration 0032)"
    )


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
