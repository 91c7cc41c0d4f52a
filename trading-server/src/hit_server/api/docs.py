"""The API's documentation pages, /docs (Swagger UI) and /redoc, with their scripts and styles served by
the server itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they stay blank on a machine without
internet access (a locked-down VPS, a laptop offline). The files come from the `fastapi-offline`
package (Swagger UI 5 and ReDoc 2 builds, MIT) and are served under ASSETS_URL; the pages are FastAPI's
own, built by `get_swagger_ui_html` / `get_redoc_html` pointed at them, as FastAPI documents for
self-hosting these assets. The app must be created with `docs_url=None, redoc_url=None`; then
`install(app)`. The pages and their files need no API key, like /openapi.json.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
ASSETS_DIR = Path(fastapi_offline.__file__).with_name("static")
SWAGGER_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
REDOC_URL = "/redoc"

router = APIRouter(include_in_schema=False)


def _root(request: Request) -> str:
    """The prefix a proxy serves the app under (empty when none)."""
    return str(request.scope.get("root_path", ""))


def _asset(request: Request, name: str) -> str:
    return f"{_root(request)}{ASSETS_URL}/{name}"


@router.get(SWAGGER_URL)
async def swagger_ui(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    return get_swagger_ui_html(
        openapi_url=f"{_root(request)}{app.openapi_url}",
        title=f"{app.title} - Swagger UI",
        oauth2_redirect_url=f"{_root(request)}{OAUTH2_REDIRECT_URL}",
        init_oauth=app.swagger_ui_init_oauth,
        swagger_js_url=_asset(request, "swagger-ui-bundle.js"),
        swagger_css_url=_asset(request, "swagger-ui.css"),
        swagger_favicon_url=_asset(request, "favicon.png"),
        swagger_ui_parameters=app.swagger_ui_parameters,
    )


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_redirect() -> HTMLResponse:
    """What FastAPI serves beside /docs by default (Swagger UI's OAuth2 flows return here)."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC_URL)
async def redoc(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    return get_redoc_html(
        openapi_url=f"{_root(request)}{app.openapi_url}",
        title=f"{app.title} - ReDoc",
        redoc_js_url=_asset(request, "redoc.standalone.js"),
        redoc_favicon_url=_asset(request, "favicon.png"),
        with_google_fonts=False,  # the fonts too would come from the internet
    )


def install(app: FastAPI) -> None:
    """Serve the pages and their files; build the app with docs_url=None, redoc_url=None."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    app.include_router(router)
