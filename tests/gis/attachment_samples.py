"""Sample files for the attachment tests, made here: photos with and without EXIF GPS, a PNG, a HEIC
(pillow-heif writes one), a PDF."""

from __future__ import annotations

import io

from PIL import Image, TiffImagePlugin

MAKER = "TestPhone-9000"  # a device name written into EXIF, to look for in stripped copies


def _dms(value: float) -> tuple[TiffImagePlugin.IFDRational, ...]:
    d = int(value)
    m = int((value - d) * 60)
    s = (value - d - m / 60) * 3600
    return (
        TiffImagePlugin.IFDRational(d, 1),
        TiffImagePlugin.IFDRational(m, 1),
        TiffImagePlugin.IFDRational(round(s * 10000), 10000),
    )


def exif_with(
    lon: float | None = None, lat: float | None = None, when: str | None = None, orientation: int = 1
) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = MAKER
    if orientation != 1:
        exif[0x0112] = orientation
    if lon is not None and lat is not None:
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2] = ("N" if lat >= 0 else "S"), _dms(abs(lat))
        gps[3], gps[4] = ("E" if lon >= 0 else "W"), _dms(abs(lon))
    if when is not None:
        exif.get_ifd(0x8769)[0x9003] = when
    return exif


def picture(size: tuple[int, int] = (640, 480), seed: int = 60) -> Image.Image:
    # Noise, so the JPEG is not trivially small and every size of test file is possible.
    return Image.effect_noise(size, seed).convert("RGB")


def jpeg(
    lon: float | None = None,
    lat: float | None = None,
    when: str | None = "2026:11:30 09:15:00",
    size: tuple[int, int] = (640, 480),
    orientation: int = 1,
    quality: int = 85,
    seed: int = 60,
) -> bytes:
    buf = io.BytesIO()
    picture(size, seed).save(buf, "JPEG", exif=exif_with(lon, lat, when, orientation), quality=quality)
    return buf.getvalue()


def png(size: tuple[int, int] = (300, 200)) -> bytes:
    buf = io.BytesIO()
    im = Image.new("RGBA", size, (20, 120, 200, 128))
    im.save(buf, "PNG", exif=exif_with(120.9, 30.8))
    return buf.getvalue()


def heic(lon: float | None = None, lat: float | None = None) -> bytes:
    import pillow_heif  # noqa: F401 (registers the HEIF writer)

    buf = io.BytesIO()
    picture((320, 240)).save(buf, "HEIF", exif=exif_with(lon, lat, "2026:11:30 10:00:00"))
    return buf.getvalue()


def pdf() -> bytes:
    """A minimal one-page PDF, as scanners and phones send rectification notices."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
