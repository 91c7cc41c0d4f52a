"""Logging in and out of the dashboard, and its static files (CSS and the one small script)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from hit_server.dashboard import forms
from hit_server.dashboard.access import auth_of, problem, session_of
from hit_server.dashboard.auth import COOKIE, COOKIE_PATH
from hit_server.dashboard.render import page

router = APIRouter(prefix="/dashboard", include_in_schema=False)
STATIC = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}


@router.get("/static/{name}")
async def static(request: Request, name: str) -> Response:
    if name not in STATIC:
        return problem(request, 404, "No such file.")
    content = resources.files("hit_server.dashboard").joinpath("static", name).read_bytes()
    return Response(content, media_type=STATIC[name], headers={"Cache-Control": "max-age=300"})


def _next(value: str | None) -> str:
    """Where to go after login: a dashboard path only (never another site)."""
    if value and value.startswith("/dashboard") and "//" not in value and "\\" not in value:
        return value
    return "/dashboard/now"


@router.get("/login")
async def login_form(request: Request) -> Response:
    if session_of(request) is not None:
        return RedirectResponse(_next(request.query_params.get("next")), status_code=303)
    return page(request, "login.html", next=_next(request.query_params.get("next")), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    auth = auth_of(request)
    client = request.client.host if request.client else "unknown"
    if not auth.attempt(client):
        return page(
            request,
            "login.html",
            status=429,
            next="/dashboard/now",
            error="Too many login attempts; wait a minute and try again.",
        )
    try:
        fields = await forms.form(request)
    except forms.BadInput as exc:
        return page(request, "login.html", status=400, next="/dashboard/now", error=str(exc))
    target = _next(fields.get("next"))
    if not auth.accepts(fields.get("password", "")):
        return page(request, "login.html", status=401, next=target, error="Wrong password or API key.")
    cookie, _ = auth.new_session()
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=auth.lifetime_s,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = session_of(request)
    if session is not None:
        try:
            fields = await forms.form(request)
        except forms.BadInput:
            fields = {}
        if not auth_of(request).csrf_ok(session, fields.get("csrf")):
            return problem(request, 403, "This form has expired or was not sent by the dashboard; reload it.")
    response = RedirectResponse("/dashboard/login", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response
