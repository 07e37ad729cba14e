"""Photos of a resident's report, checked by their content, never by the name or type a phone sends.

Pillow opens the bytes and ``verify()`` reads them through: a file that is no JPEG, PNG or WebP
image, a truncated one, or one too large in bytes or pixels (a decompression bomb) is refused,
naming the photo. Accepted photos are stored in ``public_photos`` in the report's transaction.

This is the seam to the generic attachments table (owner kind/id) being built elsewhere: when it
lands, ``store_photos`` writes there with owner ``incident`` and this table goes.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import sqlalchemy as sa
from PIL import Image, UnidentifiedImageError

from gis.channels.errors import PublicInputError
from gis.spatial.areas import Conn

MAX_PHOTOS = 9
MAX_PIXELS = 40_000_000  # a 40-megapixel photo is a phone's largest; above is a bomb, not a photo
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class Photo:
    content: bytes
    mime: str
    width: int
    height: int
    sha256: str


def _refuse(index: int, zh: str, en: str) -> PublicInputError:
    return PublicInputError("photos", f"#{index + 1}", f"第{index + 1}张照片{zh}", f"photo #{index + 1} {en}")


def check_photo(index: int, content: bytes, max_bytes: int) -> Photo:
    if not content:
        raise _refuse(index, "是空文件", "is empty")
    if len(content) > max_bytes:
        mb = max_bytes / 1024 / 1024
        raise _refuse(index, f"超过 {mb:g} MB", f"is {len(content)} bytes; at most {mb:g} MB allowed")
    try:
        with Image.open(io.BytesIO(content)) as image:
            kind, (width, height) = image.format, image.size
            if kind not in FORMATS:
                raise _refuse(index, "不是 JPEG、PNG 或 WebP 图片", f"is {kind}, not a JPEG, PNG or WebP image")
            if width * height > MAX_PIXELS:
                raise _refuse(index, "像素过多", f"has {width}x{height} pixels; at most {MAX_PIXELS} allowed")
            image.verify()  # reads the data through: a truncated or corrupt file fails here
    except PublicInputError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise _refuse(index, "不是有效的图片", "is not a valid image") from None
    return Photo(content, FORMATS[kind], width, height, hashlib.sha256(content).hexdigest())


def check_photos(contents: list[bytes], max_bytes: int) -> list[Photo]:
    if len(contents) > MAX_PHOTOS:
        raise PublicInputError(
            "photos", len(contents), f"最多上传{MAX_PHOTOS}张照片", f"{len(contents)} photos; at most {MAX_PHOTOS}"
        )
    return [check_photo(i, c, max_bytes) for i, c in enumerate(contents)]


def store_photos(conn: Conn, ticket_id: int, photos: list[Photo]) -> None:
    for p in photos:
        conn.execute(
            sa.text(
                "INSERT INTO public_photos (ticket_id, sha256, mime, width, height, content) "
                "VALUES (:t, :s, :m, :w, :h, :c)"
            ),
            {"t": ticket_id, "s": p.sha256, "m": p.mime, "w": p.width, "h": p.height, "c": p.content},
        )


def photo_count(conn: Conn, ticket_id: int) -> int:
    return int(
        conn.execute(sa.text("SELECT count(*) FROM public_photos WHERE ticket_id = :t"), {"t": ticket_id}).scalar_one()
    )
