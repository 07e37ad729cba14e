"""Attaching a received upload to its owner: type by content, HEIC to JPEG, EXIF read and compared
with the claimed position, the metadata-free copy and the thumbnail (made once per content), the
files into the store and the row into the table.

The caller (the API) has already streamed the body into a ``Spool`` and checked the owner's scope
(``gis.files.owners.locate``, which also gives the owner's own position: the claim when the
uploader names none).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gis.files import media, records
from gis.files.records import NewAttachment
from gis.files.storage import CHUNK, Storage
from gis.files.strip import strip_metadata
from gis.spatial.areas import Conn
from gis.spatial.crs import metres_between


@dataclass(frozen=True)
class Upload:
    """A received file (``path``, ``sha256`` of its bytes) and what the request said about it."""

    path: Path
    sha256: str
    size: int
    original_name: str | None
    claimed: tuple[float, float] | None  # lon, lat in WGS-84


@dataclass(frozen=True)
class Uploader:
    name: str
    account_id: int | None = None
    person_id: int | None = None


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _put_path(storage: Storage, path: Path) -> str:
    with path.open("rb") as f:
        return storage.put(f)


def _put_spooled(storage: Storage, spooled: IO[bytes]) -> str:
    spooled.seek(0)
    return storage.put(spooled)


def _spooled() -> Any:
    # Derived copies are at most the upload's size; past 1 MiB they go to a temporary file.
    return tempfile.SpooledTemporaryFile(max_size=1 << 20)


def attach(
    conn: Conn,
    storage: Storage,
    kind: str,
    owner_id: int,
    upload: Upload,
    uploader: Uploader,
    far_m: float,
    work_dir: Path,
) -> tuple[dict[str, Any], bool]:
    """Store ``upload`` as an attachment of (``kind``, ``owner_id``): (row, created). Unsupported,
    Truncated or TooLarge (gis.files.errors) when the content is refused; nothing is stored then."""
    media_type = media.detect_file(upload.path)
    path, sha256, size, converted_from = upload.path, upload.sha256, upload.size, None
    converted: Path | None = None
    try:
        if media_type in media.HEIF_TYPES:
            with tempfile.NamedTemporaryFile(dir=work_dir, prefix="heic-", suffix=".jpg", delete=False) as out:
                converted = Path(out.name)
                media.convert_heif(upload.path, out)
            path, converted_from, media_type = converted, media_type, "image/jpeg"
            sha256, size = _hash_file(path), path.stat().st_size
        prior = records.derived_of(conn, sha256)
        if prior is not None and storage.exists(prior[0]) and (prior[1] is None or storage.exists(prior[1])):
            # The same bytes were checked and their copies made before: reuse them.
            examined = media.examine(path, media_type, decode=False)
            public_key, thumbnail_key = prior[0], prior[1]
        else:
            public_key, thumbnail_key, examined = _derive(storage, path, media_type)
        key = _put_path(storage, path)
    finally:
        if converted is not None:
            converted.unlink(missing_ok=True)
    distance = None
    if upload.claimed is not None and examined.lon is not None and examined.lat is not None:
        distance = float(metres_between(examined.lon, examined.lat, upload.claimed[0], upload.claimed[1]))
    new = NewAttachment(
        owner_kind=kind,
        owner_id=owner_id,
        sha256=key,
        media_type=media_type,
        converted_from=converted_from,
        size_bytes=size,
        original_name=upload.original_name,
        width=examined.width,
        height=examined.height,
        uploaded_by=uploader.name,
        uploaded_by_account=uploader.account_id,
        uploaded_by_person=uploader.person_id,
        exif_lon=examined.lon,
        exif_lat=examined.lat,
        exif_taken_at=examined.taken_at,
        claimed_lon=upload.claimed[0] if upload.claimed else None,
        claimed_lat=upload.claimed[1] if upload.claimed else None,
        distance_m=distance,
        flagged_far=distance is not None and distance > far_m,
        public_key=public_key,
        thumbnail_key=thumbnail_key,
    )
    return records.insert(conn, new)


def _derive(storage: Storage, path: Path, media_type: str) -> tuple[str, str | None, media.Examined]:
    """Check the content whole, and store its metadata-free copy and its thumbnail:
    (public_key, thumbnail_key, examined)."""
    is_image = media_type != "application/pdf"
    with _spooled() as thumb:
        examined = media.examine(path, media_type, thumb if is_image else None)
        thumbnail_key = _put_spooled(storage, thumb) if is_image else None
    with _spooled() as public, path.open("rb") as src:
        if strip_metadata(media_type, src, public, examined.orientation):
            public_key = _put_spooled(storage, public)
        else:
            public_key = _put_path(storage, path)  # nothing to strip: the original itself
    return public_key, thumbnail_key, examined


def attach_bytes(
    conn: Conn,
    storage: Storage,
    kind: str,
    owner_id: int,
    content: bytes,
    uploader: Uploader,
    *,
    original_name: str | None = None,
    claimed: tuple[float, float] | None = None,
    far_m: float = 200.0,
    work_dir: Path,
) -> tuple[dict[str, Any], bool]:
    """``attach`` for content already in memory (small files from other channels, e.g. residents'
    report photos): written to a temporary file first, since every check reads files."""
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=work_dir, prefix="bytes-") as f:
        f.write(content)
        f.flush()
        upload = Upload(Path(f.name), hashlib.sha256(content).hexdigest(), len(content), original_name, claimed)
        return attach(conn, storage, kind, owner_id, upload, uploader, far_m, work_dir)
