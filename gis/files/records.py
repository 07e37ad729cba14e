"""The attachments table (migration 0020): storing a row, reading one, listing an owner's."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gis.spatial.areas import Conn

COLUMNS = (
    "a.id, a.owner_kind, a.owner_id, a.sha256, a.media_type, a.converted_from, a.size_bytes, a.original_name, "
    "a.width, a.height, a.uploaded_by, a.uploaded_by_account, a.uploaded_by_person, a.uploaded_at, "
    "ST_X(a.exif_geom) AS exif_lon, ST_Y(a.exif_geom) AS exif_lat, a.exif_taken_at, "
    "ST_X(a.claimed_geom) AS claimed_lon, ST_Y(a.claimed_geom) AS claimed_lat, a.distance_m, a.flagged_far, "
    "a.public_key, a.thumbnail_key"
)


@dataclass(frozen=True)
class NewAttachment:
    owner_kind: str
    owner_id: int
    sha256: str
    media_type: str
    converted_from: str | None
    size_bytes: int
    original_name: str | None
    width: int | None
    height: int | None
    uploaded_by: str
    uploaded_by_account: int | None
    uploaded_by_person: int | None
    exif_lon: float | None
    exif_lat: float | None
    exif_taken_at: dt.datetime | None
    claimed_lon: float | None
    claimed_lat: float | None
    distance_m: float | None
    flagged_far: bool
    public_key: str
    thumbnail_key: str | None


def insert(conn: Conn, new: NewAttachment) -> tuple[dict[str, Any], bool]:
    """Store the row; (row, created). The same content already attached to the owner is that row,
    with created False (nothing changes)."""
    values = dict(new.__dict__)
    query = sa.text(
        "INSERT INTO attachments (owner_kind, owner_id, sha256, media_type, converted_from, size_bytes, "
        "original_name, width, height, uploaded_by, uploaded_by_account, uploaded_by_person, exif_geom, "
        "exif_taken_at, claimed_geom, distance_m, flagged_far, public_key, thumbnail_key) VALUES ("
        ":owner_kind, :owner_id, :sha256, :media_type, :converted_from, :size_bytes, :original_name, :width, "
        ":height, :uploaded_by, :uploaded_by_account, :uploaded_by_person, "
        "ST_SetSRID(ST_MakePoint(:exif_lon, :exif_lat), 4326), :exif_taken_at, "
        "ST_SetSRID(ST_MakePoint(:claimed_lon, :claimed_lat), 4326), :distance_m, :flagged_far, :public_key, "
        ":thumbnail_key) ON CONFLICT (owner_kind, owner_id, sha256) DO NOTHING RETURNING id"
    ).bindparams(
        sa.bindparam("exif_lon", type_=sa.Float),
        sa.bindparam("exif_lat", type_=sa.Float),
        sa.bindparam("claimed_lon", type_=sa.Float),
        sa.bindparam("claimed_lat", type_=sa.Float),
    )
    new_id = conn.execute(query, values).scalar_one_or_none()
    if new_id is not None:
        return get(conn, new_id) or {}, True
    existing = conn.execute(
        sa.text("SELECT id FROM attachments WHERE owner_kind = :k AND owner_id = :o AND sha256 = :s"),
        {"k": new.owner_kind, "o": new.owner_id, "s": new.sha256},
    ).scalar_one()
    return get(conn, existing) or {}, False


def get(conn: Conn, attachment_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        sa.text(f"SELECT {COLUMNS} FROM attachments a WHERE a.id = :id"),  # noqa: S608
        {"id": attachment_id},
    ).one_or_none()
    return None if row is None else dict(row._mapping)


def list_for(conn: Conn, kind: str, owner_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """An owner's attachments in upload order (at most ``limit``)."""
    rows = conn.execute(
        sa.text(
            f"SELECT {COLUMNS} FROM attachments a WHERE a.owner_kind = :k AND a.owner_id = :o "  # noqa: S608
            "ORDER BY a.id LIMIT :limit"
        ),
        {"k": kind, "o": owner_id, "limit": limit},
    )
    return [dict(r._mapping) for r in rows]


def derived_of(conn: Conn, sha256: str) -> tuple[str, str | None, int | None, int | None] | None:
    """(public_key, thumbnail_key, width, height) already made for this content, if any."""
    row = conn.execute(
        sa.text(
            "SELECT public_key, thumbnail_key, width, height FROM attachments WHERE sha256 = :s ORDER BY id LIMIT 1"
        ),
        {"s": sha256},
    ).one_or_none()
    return None if row is None else (row.public_key, row.thumbnail_key, row.width, row.height)
