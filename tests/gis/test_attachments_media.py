"""The content side of attachments (gis.files): type by magic bytes, EXIF read, metadata stripped
losslessly, the content-addressed store, the streaming spool's limits."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gis.files import media
from gis.files.errors import TooLarge, Truncated, Unsupported
from gis.files.spool import Spool
from gis.files.storage import DiskStorage
from gis.files.strip import strip_metadata
from tests.gis.attachment_samples import MAKER, heic, jpeg, pdf, png


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (jpeg(), "image/jpeg"),
        (png(), "image/png"),
        (pdf(), "application/pdf"),
        (heic(), "image/heic"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"PK\x03\x04rest", "application/zip"),
        ("巡查记录: 一切正常\n".encode(), "text/plain"),
        (bytes(range(256))[:64], "application/octet-stream"),
    ],
)
def test_type_is_read_from_content(data: bytes, expected: str) -> None:
    assert media.detect(data[: media.HEAD]) == expected


def test_a_text_file_named_jpg_is_refused_naming_its_type(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_text("not a photo at all\n")
    with pytest.raises(Unsupported) as info:
        media.detect_file(path)
    assert info.value.detected == "text/plain" and info.value.status == 415
    assert "text/plain" in str(info.value)


def test_exif_position_and_time_are_read(tmp_path: Path) -> None:
    path = tmp_path / "a"
    path.write_bytes(jpeg(120.905, 30.832, "2026:11:30 09:15:00"))
    thumb = io.BytesIO()
    found = media.examine(path, "image/jpeg", thumb)
    assert found.lon == pytest.approx(120.905, abs=1e-6) and found.lat == pytest.approx(30.832, abs=1e-6)
    assert found.taken_at is not None and found.taken_at.isoformat() == "2026-11-30T09:15:00+08:00"
    assert (found.width, found.height) == (640, 480)
    small = Image.open(io.BytesIO(thumb.getvalue()))
    assert small.format == "JPEG" and max(small.size) == media.THUMBNAIL_PX and not small.getexif()


def test_southern_western_and_missing_positions(tmp_path: Path) -> None:
    path = tmp_path / "a"
    path.write_bytes(jpeg(-70.5, -33.25))
    found = media.examine(path, "image/jpeg", decode=False)
    assert found.lon == pytest.approx(-70.5, abs=1e-6) and found.lat == pytest.approx(-33.25, abs=1e-6)
    path.write_bytes(jpeg(None, None, when=None))
    found = media.examine(path, "image/jpeg", decode=False)
    assert (found.lon, found.lat, found.taken_at) == (None, None, None)


def test_a_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    data = jpeg()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(Truncated):
        media.examine(path, "image/jpeg", io.BytesIO())
    with pytest.raises(Truncated), path.open("rb") as src:
        strip_metadata("image/jpeg", src, io.BytesIO())


def test_a_truncated_pdf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.pdf"
    path.write_bytes(pdf()[:-20])
    with pytest.raises(Truncated, match="EOF"):
        media.examine(path, "application/pdf")
    path.write_bytes(pdf())
    assert media.examine(path, "application/pdf") == media.Examined()


def test_heic_is_converted_to_jpeg_keeping_exif(tmp_path: Path) -> None:
    path = tmp_path / "a.heic"
    path.write_bytes(heic(120.91, 30.84))
    out = io.BytesIO()
    media.convert_heif(path, out)
    assert media.detect(out.getvalue()[:64]) == "image/jpeg"
    converted = tmp_path / "a.jpg"
    converted.write_bytes(out.getvalue())
    found = media.examine(converted, "image/jpeg")
    assert found.lon == pytest.approx(120.91, abs=1e-6) and (found.width, found.height) == (320, 240)


def test_jpeg_stripping_keeps_the_picture_byte_for_byte_and_drops_trailing_data() -> None:
    original = jpeg(120.905, 30.832) + b"TRAILER-WITH-" + MAKER.encode()  # like a phone's appended data
    out = io.BytesIO()
    assert strip_metadata("image/jpeg", io.BytesIO(original), out)
    stripped = out.getvalue()
    assert MAKER.encode() not in stripped and MAKER.encode() in original
    a, b = Image.open(io.BytesIO(original)), Image.open(io.BytesIO(stripped))
    assert not b.getexif() and np.array_equal(np.asarray(a), np.asarray(b))
    assert stripped.endswith(b"\xff\xd9")


def test_progressive_jpeg_with_xmp_is_stripped_losslessly() -> None:
    buf = io.BytesIO()
    im = Image.open(io.BytesIO(jpeg(120.9, 30.8)))
    xmp = b"<x:xmpmeta><exif:GPSLatitude>30,48N</exif:GPSLatitude></x:xmpmeta>"
    im.save(buf, "JPEG", progressive=True, exif=im.getexif(), xmp=xmp, comment=b"shot by " + MAKER.encode())
    original = buf.getvalue()
    out = io.BytesIO()
    strip_metadata("image/jpeg", io.BytesIO(original), out)
    stripped = out.getvalue()
    assert b"GPSLatitude" in original and b"GPSLatitude" not in stripped and MAKER.encode() not in stripped
    decoded = Image.open(io.BytesIO(stripped))
    assert decoded.info.get("progressive") and np.array_equal(np.asarray(decoded), np.asarray(Image.open(buf)))


def test_stripping_keeps_only_the_orientation() -> None:
    original = jpeg(120.905, 30.832, orientation=6)
    out = io.BytesIO()
    strip_metadata("image/jpeg", io.BytesIO(original), out, orientation=6)
    exif = Image.open(io.BytesIO(out.getvalue())).getexif()
    assert dict(exif) == {0x0112: 6} and not exif.get_ifd(0x8825)


def test_png_stripping_drops_exif_and_keeps_pixels() -> None:
    original = png()
    out = io.BytesIO()
    strip_metadata("image/png", io.BytesIO(original), out)
    a, b = Image.open(io.BytesIO(original)), Image.open(io.BytesIO(out.getvalue()))
    assert a.getexif().get_ifd(0x8825) and not b.getexif()
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_store_is_content_addressed(tmp_path: Path) -> None:
    store = DiskStorage(tmp_path)
    data = jpeg()
    key = store.put(io.BytesIO(data))
    assert key == hashlib.sha256(data).hexdigest() and store.exists(key)
    assert store.put(io.BytesIO(data)) == key  # the same bytes again: one object
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1
    with store.open(key) as f:
        assert f.read() == data
    assert store.delete(key) and not store.exists(key) and not store.delete(key)
    with pytest.raises(ValueError, match="not a storage key"):
        store.open("../../etc/passwd")


def test_spool_limits(tmp_path: Path) -> None:
    with pytest.raises(TooLarge, match="1,000 bytes"):
        Spool(tmp_path, 1000, declared=1001)  # refused before reading
    spool = Spool(tmp_path, 1000)
    spool.write(b"x" * 600)
    with pytest.raises(TooLarge) as info:
        spool.write(b"x" * 600)
    assert info.value.status == 413
    spool.discard()
    short = Spool(tmp_path, 1000, declared=500)
    short.write(b"x" * 100)
    with pytest.raises(Truncated, match="100 of the 500 bytes"):
        short.finish()
    short.discard()
    whole = Spool(tmp_path, 1000, declared=3)
    whole.write(b"abc")
    assert whole.finish() == hashlib.sha256(b"abc").hexdigest()
    whole.discard()
    assert not list(tmp_path.iterdir())


def test_migration_copies_agree_with_the_vocabulary() -> None:
    import importlib.util

    from gis.core.vocab import ATTACHMENT_MEDIA_TYPES, ATTACHMENT_OWNER_KINDS
    from gis.files.owners import OWNERS

    path = Path(__file__).resolve().parents[2] / "gis/migrations/versions/0020_attachments.py"
    spec = importlib.util.spec_from_file_location("m0020", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.OWNER_KINDS == ATTACHMENT_OWNER_KINDS and module.MEDIA_TYPES == ATTACHMENT_MEDIA_TYPES
    assert set(OWNERS) <= set(ATTACHMENT_OWNER_KINDS) and all(o.kind == k for k, o in OWNERS.items())
