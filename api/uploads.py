"""Receiving an upload body into a ``gis.files.spool.Spool`` as it streams: a raw body (the file
itself, with its Content-Type) or ``multipart/form-data`` with one file part.

Starlette's ``request.form()`` would spool a multipart file too, but without a size limit per
file and into a second temporary file; parsing the stream here writes the file part straight into
the spool, which enforces the limit as the bytes arrive (413 as soon as it is crossed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from gis.files.errors import Truncated, UploadError
from gis.files.spool import Spool

FILE_FIELD = "file"  # the multipart field holding the file


@dataclass
class _Part:
    """The multipart parser's state: the current part's headers and whether it is the file."""

    spool: Spool
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    headers: dict[bytes, bytes] = field(default_factory=dict)
    writing: bool = False
    files: int = 0
    filename: str | None = None
    ended: bool = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[bytes(self.header_field).lower()] = bytes(self.header_value)
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition"))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self.writing = name == FILE_FIELD and b"filename" in options
        if self.writing:
            self.files += 1
            if self.files > 1:
                raise UploadError(f"send one file per request (field {FILE_FIELD!r} came twice)")
            self.filename = options[b"filename"].decode("utf-8", "replace") or None
        self.headers.clear()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.writing:
            self.spool.write(data[start:end])

    def on_part_end(self) -> None:
        self.writing = False

    def on_end(self) -> None:
        self.ended = True


async def receive(request: Request, spool: Spool) -> str | None:
    """Stream the request's body into ``spool``; the file name a multipart part gave (None for a
    raw body). UploadError (TooLarge, Truncated) when refused."""
    content_type, options = parse_options_header(request.headers.get("content-type"))
    try:
        if content_type == b"multipart/form-data":
            return await _multipart(request, spool, options.get(b"boundary"))
        async for chunk in request.stream():
            spool.write(chunk)
    except ClientDisconnect:
        raise Truncated(f"the upload is truncated: the client went away after {spool.size:,} bytes") from None
    except MultipartParseError as exc:
        raise UploadError(f"the multipart/form-data body is malformed ({exc})") from None
    return None


async def _multipart(request: Request, spool: Spool, boundary: bytes | None) -> str | None:
    if not boundary:
        raise UploadError("a multipart/form-data body needs a boundary in its Content-Type")
    part = _Part(spool)
    callbacks = {
        "on_header_field": part.on_header_field,
        "on_header_value": part.on_header_value,
        "on_header_end": part.on_header_end,
        "on_headers_finished": part.on_headers_finished,
        "on_part_data": part.on_part_data,
        "on_part_end": part.on_part_end,
        "on_end": part.on_end,
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    async for chunk in request.stream():
        parser.write(chunk)
    parser.finalize()
    if part.files == 0:
        raise UploadError(f"the multipart body has no file in field {FILE_FIELD!r}")
    if not part.ended:
        raise Truncated("the upload is truncated: the multipart body has no closing boundary")
    return part.filename
