"""The Jinja2 environment (templates in this package, autoescaped) and the formats the pages use."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from hit_server import clock

_env = Environment(
    loader=PackageLoader("hit_server.dashboard", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def money(value: Decimal | None, places: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:,.{places}f}"


def number(value: Decimal | None) -> str:
    """A price or size as a person writes it: no exponent, no trailing zeros (145.500 -> 145.5)."""
    if value is None:
        return "–"
    return format(value.normalize(), "f") if value.is_finite() else str(value)


def when(value: datetime | None) -> str:
    if value is None:
        return "–"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def age(value: datetime | None) -> str:
    if value is None:
        return "–"
    seconds = max(int((clock.utcnow() - value).total_seconds()), 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def sign(value: Decimal | None) -> str:
    """The CSS class of an amount: up, down or flat."""
    if value is None or value == 0:
        return "flat"
    return "up" if value > 0 else "down"


_env.filters.update(money=money, number=number, when=when, age=age, sign=sign)


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A rendered page; `request.state.session` (when logged in) gives the CSRF token to the forms."""
    session = getattr(request.state, "session", None)
    settings = getattr(request.app.state, "settings", None)
    html = _env.get_template(template).render(
        session=session, csrf=session.csrf if session else "", path=request.url.path,
        fleet_on=bool(getattr(settings, "fleet", False)), **context,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


SECURITY_HEADERS = {
    # no inline script, no third-party anything; the pages can't be framed
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
