"""The copy of a photo served to roles below dispatcher: the same image without its metadata.

EXIF holds the position a photo was taken at, the time, the phone's make and serial number, and
often a preview image; XMP and IPTC may hold more. The picture data is copied byte for byte
(no re-encoding, so no loss, and the file is read in chunks, never whole): a JPEG keeps its
segments except APP1 (EXIF, XMP), APP13 (IPTC) and comments, a PNG its chunks except eXIf and the
text chunks. Data after the image's end (phones append depth maps and previews, with their own
EXIF) is dropped. A JPEG whose EXIF says it must be rotated keeps that one tag, so it still shows
upright.
"""

from __future__ import annotations

from typing import IO

from PIL import Image

from gis.files.errors import Truncated

CHUNK = 1 << 16
_JPEG_DROP = {0xE1, 0xED, 0xFE}  # APP1 (EXIF, XMP), APP13 (IPTC, Photoshop), COM
_PNG_DROP = {b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Reader:
    """Exact reads from a stream, failing with Truncated at a premature end."""

    def __init__(self, src: IO[bytes]) -> None:
        self.src = src

    def exact(self, n: int) -> bytes:
        data = self.src.read(n)
        if len(data) != n:
            raise Truncated("the image is cut short: it ends inside a segment")
        return data

    def copy(self, n: int, out: IO[bytes] | None) -> None:
        """Copy (or with ``out`` None skip) ``n`` bytes in chunks."""
        while n > 0:
            data = self.exact(min(n, CHUNK))
            if out is not None:
                out.write(data)
            n -= len(data)


def _orientation_segment(orientation: int | None) -> bytes:
    """An APP1 segment holding only the EXIF orientation (empty when upright or unknown)."""
    if orientation is None or orientation == 1:
        return b""
    exif = Image.Exif()
    exif[0x0112] = orientation
    body = exif.tobytes()  # starts with the "Exif\0\0" identifier
    return b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body


def strip_jpeg(src: IO[bytes], out: IO[bytes], orientation: int | None = None) -> None:
    reader = _Reader(src)
    if reader.exact(2) != b"\xff\xd8":
        raise Truncated("not a JPEG stream: no start-of-image marker")
    out.write(b"\xff\xd8")
    out.write(_orientation_segment(orientation))
    while True:
        marker = reader.exact(2)
        while marker[1] == 0xFF:  # fill bytes before a marker
            marker = marker[1:] + reader.exact(1)
        if marker[0] != 0xFF:
            raise Truncated("the JPEG is damaged: a segment does not start with a marker")
        code = marker[1]
        if code == 0xD9:
            out.write(marker)
            return
        raw_length = reader.exact(2)
        length = int.from_bytes(raw_length, "big") - 2
        if length < 0:
            raise Truncated("the JPEG is damaged: a segment has an impossible length")
        if code in _JPEG_DROP:
            reader.copy(length, None)
            continue
        out.write(marker + raw_length)
        reader.copy(length, out)
        if code == 0xDA:  # start of scan: entropy-coded data follows up to the next marker
            _copy_scan(reader, out)


def _copy_scan(reader: _Reader, out: IO[bytes]) -> None:
    """Copy entropy-coded data up to (not including) the next marker other than a restart marker
    or a stuffed 0xFF00, leaving the stream positioned at that marker."""
    src = reader.src
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            raise Truncated("the JPEG is cut short: its image data has no end marker")
        pos = 0
        while True:
            i = chunk.find(b"\xff", pos)
            if i < 0:
                out.write(chunk)
                break
            if i == len(chunk) - 1:  # the byte after 0xFF is in the next chunk
                more = src.read(1)
                if not more:
                    raise Truncated("the JPEG is cut short: its image data has no end marker")
                chunk += more
            nxt = chunk[i + 1]
            if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                pos = i + 1 if nxt == 0xFF else i + 2
                continue
            out.write(chunk[:i])
            # Put the marker and the rest back: seek when the stream can, which files can.
            src.seek(i - len(chunk), 1)
            return


def strip_png(src: IO[bytes], out: IO[bytes]) -> None:
    reader = _Reader(src)
    if reader.exact(8) != _PNG_SIGNATURE:
        raise Truncated("not a PNG stream: no signature")
    out.write(_PNG_SIGNATURE)
    while True:
        header = reader.exact(8)
        length, kind = int.from_bytes(header[:4], "big"), header[4:]
        if kind in _PNG_DROP:
            reader.copy(length + 4, None)  # data and CRC
            continue
        out.write(header)
        reader.copy(length + 4, out)
        if kind == b"IEND":
            return


def strip_metadata(media_type: str, src: IO[bytes], out: IO[bytes], orientation: int | None = None) -> bool:
    """Write the metadata-free copy of ``src`` to ``out``; False (nothing written) when the type
    carries no photo metadata to strip (PDF: served as uploaded)."""
    if media_type == "image/jpeg":
        strip_jpeg(src, out, orientation)
        return True
    if media_type == "image/png":
        strip_png(src, out)
        return True
    return False
