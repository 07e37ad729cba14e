"""The Starlette app that serves the local assets with long-lived caching."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from maps.offline.catalog import _UNVERSIONED_CACHE, _VERSIONED_CACHE, INSTALL_HINT, JS_URL_REWRITES, OfflineAssetError
from maps.offline.inline import _media_type, rewrite_css_for_serving, rewrite_js_for_serving
from maps.offline.installed import locate


def static_files_app() -> Starlette:
    """ASGI app answering ``<served name>`` paths; mount it at ``/static/vendor``.

    Versioned names get a year of immutable caching. A missing file is a 404
    whose body names the fix; a name outside the mapped set is a 404 too.
    """

    async def serve(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            path = locate(name)
        except OfflineAssetError as exc:
            return PlainTextResponse(str(exc), status_code=404)
        if not path.is_file():
            return PlainTextResponse(f"{name} is not installed on this server; {INSTALL_HINT}", status_code=404)
        cache = _UNVERSIONED_CACHE if name.startswith("gridmap/") else _VERSIONED_CACHE
        headers = {"Cache-Control": cache}
        media_type = _media_type(path.name)
        if path.suffix == ".css":
            text = path.read_text(encoding="utf-8")
            rewritten = rewrite_css_for_serving(text, name)
            if rewritten != text:
                return Response(rewritten, media_type=media_type, headers=headers)
        if name in JS_URL_REWRITES:
            code = rewrite_js_for_serving(path.read_text(encoding="utf-8"), name)
            return Response(code, media_type=media_type, headers=headers)
        return FileResponse(path, media_type=media_type, headers=headers)

    return Starlette(routes=[Route("/{name:path}", serve, methods=["GET", "HEAD"])])
