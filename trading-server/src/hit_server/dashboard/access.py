"""What every dashboard route needs first: the running service and the visitor's session."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hit_server.dashboard.auth import COOKIE, DashboardAuth, Session
from hit_server.dashboard.render import page
from hit_server.trading.service import TradingService


def auth_of(request: Request) -> DashboardAuth:
    found: DashboardAuth = request.app.state.dashboard_auth
    return found


def session_of(request: Request) -> Session | None:
    session = auth_of(request).session(request.cookies.get(COOKIE))
    request.state.session = session
    return session


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/dashboard/login?next={quote(target, safe='')}", status_code=303)


def service_or_page(request: Request) -> TradingService | Response:
    """The running service, or the page saying the server is starting or stopping (503)."""
    service: TradingService | None = getattr(request.app.state, "service", None)
    if service is None:
        return problem(request, 503, "The server is starting up or shutting down; retry shortly.")
    return service


def problem(request: Request, status: int, message: str) -> Response:
    """An error as a page: one sentence, no trace."""
    return page(request, "problem.html", status=status, message=message, status_code=status)
