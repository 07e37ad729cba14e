"""What an uploaded file is, read from its content: the type by magic bytes (never the name), the
EXIF position and time, its soundness (a cut-short file is refused), HEIC/HEIF converted to JPEG,
and the thumbnail.

Pillow reads JPEG and PNG and writes the thumbnails; pillow-heif (libheif) adds HEIC/HEIF, the
format iPhones and many Android phones save photos in, which browsers and the command centre's
screens cannot show: it is converted to JPEG on upload, keeping its EXIF. A JPEG is decoded in
draft mode (libjpeg scales by 1/2..1/8 while decoding), so a thumbnail of a large photo costs a
fraction of a full decode in time and memory; the decode still reads every byte, which is what
finds a truncated file.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pillow_heif
from PIL import Image, ImageOps

from gis.core.vocab import ATTACHMENT_MEDIA_TYPES, COUNTY_TZ
from gis.files.errors import TooLarge, Truncated, Unsupported

pillow_heif.register_heif_opener()

HEIF_TYPES = ("image/heic", "image/heif")
ACCEPTED = (*ATTACHMENT_MEDIA_TYPES, *HEIF_TYPES)
THUMBNAIL_PX = 320  # the longer side of a thumbnail
THUMBNAIL_QUALITY = 80
CONVERTED_QUALITY = 92  # HEIC -> JPEG: visually lossless for evidence photos
MAX_PIXELS = 120_000_000  # a decompression-bomb guard: far above any phone camera (50 MP)
PDF_TAIL = 2048  # "%%EOF" must be within the last bytes of a complete PDF
HEAD = 64

_HEIF_BRANDS = {b"heic": "image/heic", b"heix": "image/heic", b"heim": "image/heic", b"heis": "image/heic"}
_HEIF_BRANDS |= {b"hevc": "image/heic", b"hevx": "image/heic", b"mif1": "image/heif", b"msf1": "image/heif"}
# Other formats, named in a 415 so the uploader knows what was sent.
_OTHER_MAGIC = (
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"Rar!", "application/vnd.rar"),
    (b"7z\xbc\xaf", "application/x-7z-compressed"),
    (b"\xd0\xcf\x11\xe0", "application/msword"),
    (b"<?xml", "application/xml"),
    (b"{", "application/json"),
)

# EXIF tags (TIFF/EXIF 2.3): the IFDs and the fields read.
_GPS_IFD, _EXIF_IFD = 0x8825, 0x8769
_ORIENTATION, _DATETIME = 0x0112, 0x0132
_DATETIME_ORIGINAL, _DATETIME_DIGITIZED, _OFFSET_ORIGINAL = 0x9003, 0x9004, 0x9011


def detect(head: bytes) -> str:
    """The media type of a file whose first bytes are ``head``."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        size = int.from_bytes(head[:4], "big")
        brands = [head[8:12]] + [head[i : i + 4] for i in range(16, min(size, len(head)) - 3, 4)]
        for brand in brands:
            if brand in _HEIF_BRANDS:
                return _HEIF_BRANDS[brand]
        return "image/avif" if head[8:12] in (b"avif", b"avis") else "video/mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, name in _OTHER_MAGIC:
        if head.startswith(magic):
            return name
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the end of the head is still text.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return "application/octet-stream"
    return "text/plain" if all(c.isprintable() or c in "\r\n\t" for c in text) else "application/octet-stream"


def detect_file(path: Path) -> str:
    """The accepted media type of the file at ``path`` (Unsupported naming what it is otherwise)."""
    with path.open("rb") as f:
        kind = detect(f.read(HEAD))
    if kind not in ACCEPTED:
        raise Unsupported(kind, ACCEPTED)
    return kind


@dataclass(frozen=True)
class Examined:
    """What was read from an image (all None for a PDF)."""

    width: int | None = None
    height: int | None = None
    lon: float | None = None
    lat: float | None = None
    taken_at: dt.datetime | None = None
    orientation: int | None = None


def _degrees(value: Any, ref: Any) -> float | None:
    """Degrees from an EXIF (degrees, minutes, seconds) triple and its N/S/E/W reference."""
    try:
        d, m, s = (float(v) for v in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    deg = d + m / 60 + s / 3600
    if not math.isfinite(deg):
        return None
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    return -deg if str(ref).strip().upper() in ("S", "W") else deg


def _taken_at(exif: Image.Exif) -> dt.datetime | None:
    sub = exif.get_ifd(_EXIF_IFD)
    text = sub.get(_DATETIME_ORIGINAL) or sub.get(_DATETIME_DIGITIZED) or exif.get(_DATETIME)
    if not isinstance(text, str):
        return None
    try:
        local = dt.datetime.strptime(text.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = sub.get(_OFFSET_ORIGINAL)
    if isinstance(offset, str):
        try:
            return dt.datetime.strptime(f"{local.isoformat()}{offset.strip()}", "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            pass
    # Cameras write local time without a zone: the county's.
    return local.replace(tzinfo=COUNTY_TZ)


def read_exif(exif: Image.Exif) -> tuple[float | None, float | None, dt.datetime | None, int | None]:
    """(lon, lat, taken_at, orientation) from EXIF; a missing or impossible position is None."""
    gps: Mapping[int, Any] = exif.get_ifd(_GPS_IFD)
    lat = _degrees(gps.get(2), gps.get(1)) if gps else None
    lon = _degrees(gps.get(4), gps.get(3)) if gps else None
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        lon = lat = None
    orientation = exif.get(_ORIENTATION)
    return lon, lat, _taken_at(exif), orientation if isinstance(orientation, int) else None


def _open(path: Path) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except Image.DecompressionBombError:
            raise TooLarge(MAX_PIXELS, "pixels", "the decompression-bomb guard") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise Truncated(f"the image cannot be read, it is cut short or damaged ({exc})") from None
    if im.width * im.height > MAX_PIXELS:
        raise TooLarge(MAX_PIXELS, "pixels", "the decompression-bomb guard")
    return im


def examine(path: Path, media_type: str, thumbnail: IO[bytes] | None = None, decode: bool = True) -> Examined:
    """Read the EXIF of the image at ``path`` and decode it whole (Truncated when it is cut short),
    writing a JPEG thumbnail to ``thumbnail`` when given. A PDF is checked for its end marker.
    ``decode`` False reads the header only (content already checked under the same hash)."""
    if media_type == "application/pdf":
        _check_pdf(path)
        return Examined()
    with _open(path) as im:
        lon, lat, taken_at, orientation = read_exif(im.getexif())
        width, height = im.size
        if not decode:
            return Examined(width, height, lon, lat, taken_at, orientation)
        if im.format == "JPEG":
            # Decode at the smallest scale (1/2..1/8) still at least the thumbnail's size.
            im.draft("RGB", (THUMBNAIL_PX, THUMBNAIL_PX))
        try:
            im.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise Truncated(f"the image is cut short or damaged ({exc})") from None
        if thumbnail is not None:
            _write_thumbnail(im, thumbnail)
    return Examined(width, height, lon, lat, taken_at, orientation)


def _write_thumbnail(im: Image.Image, out: IO[bytes]) -> None:
    small = ImageOps.exif_transpose(im)  # upright, as the photo was seen
    small.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    if small.mode != "RGB":
        # Transparent PNGs on white, as a page shows them.
        rgba = small.convert("RGBA")
        small = Image.new("RGB", rgba.size, (255, 255, 255))
        small.paste(rgba, mask=rgba.getchannel("A"))
    # No exif= argument: the thumbnail carries no metadata, so every role may see it.
    small.save(out, "JPEG", quality=THUMBNAIL_QUALITY)


def _check_pdf(path: Path) -> None:
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(0, size - PDF_TAIL))
        tail = f.read()
    if b"%%EOF" not in tail:
        raise Truncated("the PDF is cut short: it has no end-of-file marker (%%EOF)")


def convert_heif(path: Path, out: IO[bytes]) -> None:
    """Write the HEIC/HEIF photo at ``path`` to ``out`` as a JPEG, with its EXIF."""
    with _open(path) as im:
        try:
            im.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise Truncated(f"the HEIC/HEIF image is cut short or damaged ({exc})") from None
        exif = im.info.get("exif")
        rgb = im if im.mode == "RGB" else im.convert("RGB")
        extra: dict[str, Any] = {"exif": exif} if exif else {}
        rgb.save(out, "JPEG", quality=CONVERTED_QUALITY, **extra)
