"""The API documentation (/docs, /redoc) and the site icon, loading nothing from outside.

FastAPI's own documentation pages fetch Swagger UI and ReDoc from jsDelivr, ReDoc's fonts from
Google and an icon from fastapi.tiangolo.com; on the county's isolated intranet they are blank.
These routes serve the same pages with the files installed from npm (maps/assets, served under
/static/vendor by api/routers/maps.py) and gridmap's own icon. The app is created with
``docs_url=None, redoc_url=None`` so that these are the only documentation routes.

All of them are public, as FastAPI's were: the OpenAPI document itself is.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, swagger_ui_default_parameters
from fastapi.responses import FileResponse, HTMLResponse

from maps import offline

router = APIRouter(include_in_schema=False)

# Swagger UI would send the document to validator.swagger.io for a badge (in its standalone
# layout); switched off so that no page ever reaches out.
SWAGGER_PARAMETERS = {**swagger_ui_default_parameters, "validatorUrl": None}


def _urls(request: Request) -> tuple[str, str]:
    """(the OpenAPI document's URL, the asset prefix), both under the app's root path."""
    root = request.scope.get("root_path", "").rstrip("/")
    return root + (request.app.openapi_url or "/openapi.json"), root + offline.DEFAULT_PREFIX


@router.get("/docs", name="swagger_ui_html")  # the name tipg links its landing page to
def swagger_ui(request: Request) -> HTMLResponse:
    openapi, prefix = _urls(request)
    return get_swagger_ui_html(
        openapi_url=openapi,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=offline.page_url("swagger-ui-bundle.js", prefix),
        swagger_css_url=offline.page_url("swagger-ui.css", prefix),
        swagger_favicon_url=offline.own_url("favicon.ico", prefix),
        swagger_ui_parameters=SWAGGER_PARAMETERS,
    )


@router.get("/redoc", name="redoc_html")
def redoc(request: Request) -> HTMLResponse:
    openapi, prefix = _urls(request)
    return get_redoc_html(
        openapi_url=openapi,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=offline.page_url("redoc.standalone.js", prefix),
        redoc_favicon_url=offline.own_url("favicon.ico", prefix),
        with_google_fonts=False,
    )


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    """What browsers ask for by default; the pages link the same file under /static/vendor."""
    return FileResponse(
        offline.OWN_ASSETS["favicon.ico"].file,
        media_type="image/x-icon",
        headers={"Cache-Control": "public, max-age=86400"},
    )
