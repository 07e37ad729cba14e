"""A limit on request bodies (GRIDMAP_MAX_BODY_MB), answered with a JSON 413 naming the limit.

Pure ASGI and outermost, so it also covers the fast paths (api.fastpath). A declared
Content-Length over the limit is refused before anything is read; a chunked body is counted as
it arrives and refused when it crosses the limit, before a handler has stored anything (handlers
read their whole body before they write). Starlette's own limiter answers in plain text, which
clients of a JSON API should not have to special-case.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.exceptions import HTTPException

# Boundary uploads (GeoPackage, zipped Shapefile) and attachments (photos, PDFs) have their own
# limits, checked by their routes.
EXEMPT = re.compile(r"^/boundaries/drafts/[^/]+/upload$|^/[a-z_]+/[^/]+/attachments$")
NO_BODY = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int, size: int | None = None) -> None:
        what = f"the request body of {size:,} bytes" if size is not None else "the request body"
        super().__init__(413, f"{what} is over the limit of {limit:,} bytes (GRIDMAP_MAX_BODY_MB)")


class BodyLimit:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in NO_BODY or EXEMPT.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, BodyTooLarge(limit, declared))
            return
        seen = 0
        started = False

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:
            if started:
                raise
            await _refuse(send, exc)


def _content_length(scope: Any) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Any, exc: BodyTooLarge) -> None:
    body = orjson.dumps({"detail": exc.detail})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
