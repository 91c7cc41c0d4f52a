"""`create_app(settings)`: the trading server's FastAPI app. Nothing is built at import time.

The lifespan owns, in order: the journal's database (tables created at start), the exchange
(the httpx client and the BloFin client; in paper mode the in-process simulator, restored from
DATA_DIR, or started afresh after ending the paper trades that lived on the lost one), the trading
service, which loads the halt and reconciles what a previous run left unresolved before the first
request is served, and the position monitor (`monitor.py`), which follows every open trade to its end.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from hit_server import __version__
from hit_server.accounts import routes as account_routes
from hit_server.api import docs, http_errors, paper_routes, trade_actions, trade_routes
from hit_server.api.routes import api, public
from hit_server.api.security import BodyLimitMiddleware, KeyRateLimiter
from hit_server.dashboard import install as install_dashboard
from hit_server.exchange.market_stream import MarkPrices, public_ws_url
from hit_server.exchange.paper import Exchange, open_exchange
from hit_server.exchange.paper_reset import end_paper_trades
from hit_server.journal import tables as journal_tables  # noqa: F401 - every table, the fleet's too
from hit_server.journal.db import Database
from hit_server.journal.journal import Journal
from hit_server.lifecycle.monitor import open_monitor
from hit_server.settings import Settings, ensure_api_key
from hit_server.trading.service import TradingService
from hit_shared.models import TradingMode

if TYPE_CHECKING:
    from hit_server.fleet.fanout import FanOut

log = logging.getLogger(__name__)

LIVE_BANNER = "*** LIVE TRADING: orders go to BloFin's live exchange with real money ***"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if settings.journal_url.startswith("sqlite") and settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.journal_url)
    try:
        await db.create_schema()
        async with open_exchange(settings, sim_app=app.state.sim_app) as exchange:
            if exchange.paper_reset:  # before reconciliation and the monitor look for them
                await end_paper_trades(db)
            service = TradingService(settings, exchange.client, Journal(db))
            # The account's leverages are read ahead only over a network: in process, a set costs nothing.
            await service.start(read_leverages=exchange.sim_app is None)
            app.state.service = service
            app.state.sim_app = exchange.sim_app
            async with open_marks(settings, exchange, service), \
                    open_monitor(settings, service, exchange) as monitor, \
                    open_fleet(settings, db) as fanout:
                app.state.monitor = monitor
                app.state.fanout = fanout
                log.info(
                    "Trading server ready: mode=%s, journal=%s",
                    settings.trading_mode.value,
                    db.describe(),
                )
                _warn_if_halted(service)
                for hook in app.state.on_started:
                    hook()
                try:
                    yield
                finally:
                    app.state.service = None
                    app.state.monitor = None
                    app.state.fanout = None
                    await service.stop()
    finally:
        await db.dispose()


@asynccontextmanager
async def open_marks(settings: Settings, exchange: Exchange, service: TradingService) -> AsyncIterator[None]:
    """Mark prices from BloFin's public stream for the service (issue #18), when it talks to BloFin (or
    a simulator) over the network; the in-process simulator answers a REST read at no cost.

    With WATCH_ALL_MARKS (the default) every live instrument is watched from the start, read from the
    instruments the service read before serving (the service watches those listed later as it reads
    them again): a signal's first symbol then finds its mark warm, not a REST read away. Otherwise the
    symbols of open trades are watched from the start, and every symbol a signal names from then on."""
    url = settings.exchange_url
    if exchange.sim_app is not None or url is None or not settings.monitor_websocket:
        yield
        return
    marks = MarkPrices(public_ws_url(url))
    marks.watch_all(await service.journal.open_signals())
    if settings.watch_all_marks:
        marks.watch_all(service.live_symbols())
    await marks.start()
    service.marks = marks
    try:
        yield
    finally:
        service.marks = None
        await marks.stop()


@asynccontextmanager
async def open_fleet(settings: Settings, db: Database) -> AsyncIterator[FanOut | None]:
    """The fan-out to the fleet's accounts (issue #19) when FLEET is on; its queue library is imported
    only then."""
    if not settings.fleet:
        yield None
        return
    from hit_server.fleet.fanout import open_fanout

    async with open_fanout(settings, db) as fanout:
        yield fanout


def _warn_if_halted(service: TradingService) -> None:
    """A halt survives a restart (it is in the journal): say so at start, or an operator who reads
    "ready" would wonder why every signal is rejected."""
    halt = service.halted
    if halt.halted:
        since = halt.since.isoformat() if halt.since else "an unknown time"
        log.warning(
            "Trading is HALTED (since %s, reason: %s): new signals are rejected until POST /api/v1/resume",
            since,
            halt.reason,
        )


def create_app(settings: Settings, *, sim_app: FastAPI | None = None) -> FastAPI:
    """The app for these settings; the caller runs it (uvicorn) or drives its lifespan (tests).

    `sim_app`: in paper mode, use this simulator instead of building one (tests that restart the
    server against the same exchange)."""
    settings = ensure_api_key(settings)
    if settings.trading_mode is TradingMode.LIVE:
        for _ in range(3):
            log.warning(LIVE_BANNER)
    app = FastAPI(
        title="HIT trading server",
        version=__version__,
        lifespan=lifespan,
        description="Copies trade signals to BloFin futures at most once, with stop loss and targets.",
        docs_url=None,  # /docs and /redoc are served with local files by api/docs.py (offline too)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.api_keys = settings.key_values()
    app.state.rate_limiter = KeyRateLimiter(settings.rate_limit_per_minute)
    app.state.service = None
    app.state.monitor = None
    app.state.on_started = []  # callables run once the lifespan is up (see __main__)
    app.state.sim_app = sim_app
    http_errors.install(app)
    app.include_router(public)
    app.include_router(api)
    app.include_router(trade_routes.router)  # /api/v1/trades, /account, /pnl
    app.include_router(trade_actions.router)  # /api/v1/trades/{id}/close, /cancel, /stop, /targets
    app.include_router(paper_routes.router)  # /api/v1/paper: answers 404 outside paper mode
    app.include_router(account_routes.router)  # /api/v1/accounts (issue #19)
    docs.install(app)
    install_dashboard(app, settings)  # /dashboard, unless DASHBOARD_ENABLED=false
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app
