"""The web dashboard under /dashboard: server-rendered pages over the same services as the API.

`install(app)` adds its routes when DASHBOARD_ENABLED (the default); with it off, /dashboard is a 404
like any unknown route. Modules: `auth.py` (login check, signed session cookie, CSRF, login rate limit),
`access.py` (what each route checks first), `pages.py` (Now, a trade, History and its CSV, Performance),
`controls.py` (actions with a confirmation step), `session_routes.py` (login, logout, static files),
`reads.py` and `stats.py` (closed trades and their figures), `charts.py` (SVG), `forms.py` (input
checks), `render.py` (Jinja2). Templates and static files are package data (templates/, static/).
"""

from __future__ import annotations

from fastapi import FastAPI

from hit_server.dashboard import controls, pages, session_routes
from hit_server.dashboard.auth import DashboardAuth
from hit_server.settings import Settings


def install(app: FastAPI, settings: Settings) -> None:
    if not settings.dashboard_enabled:
        return
    app.state.dashboard_auth = DashboardAuth(settings)
    app.include_router(session_routes.router)
    app.include_router(pages.router)
    app.include_router(controls.router)
