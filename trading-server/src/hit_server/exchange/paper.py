"""Where the server's exchange comes from: BloFin (demo/live), a standalone simulator (any mode with
BLOFIN_BASE_URL), or, in paper mode by default, the simulator in-process.

Paper mode runs `hit_server.blofin_sim` inside the server behind the very same `BloFinClient`
(reached through `inprocess.InProcessHttp`: httpx requests handed to the simulator's ASGI app
without a socket) with credentials generated at start, so paper trades go
through the same signing, envelopes, error mapping and at-most-once logic as real ones. Prices come
from the simulator's own seeded random walk (PAPER_PRICE_SOURCE=model), or follow BloFin's public
tickers (PAPER_PRICE_SOURCE=blofin, no keys needed), falling back to the model with a warning while
BloFin cannot be reached.

The paper exchange's account (cash, positions, orders, stops, fills) is kept in
DATA_DIR/paper_exchange.json (`blofin_sim/persist.py`): restored at start, saved within a fraction of a
second of every change and at shutdown, so a restart finds every paper trade where it was. A file that
cannot be used stops the start with a message saying what to do (`SavedStateError`); a missing one
starts the paper exchange afresh, and the lifespan then ends the journal's open paper trades
(`paper_reset.py`), which no longer exist anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from hit_server.blofin_sim import SimConfig, Simulator, create_app, persist
from hit_server.blofin_sim.autosave import AutoSave
from hit_server.exchange.blofin_auth import BloFinAuth, Credentials
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.inprocess import InProcessHttp
from hit_server.exchange.ratelimit import RateLimiter
from hit_server.settings import BLOFIN_URLS, Settings
from hit_shared.models import TradingMode

log = logging.getLogger(__name__)

SIM_BASE_URL = "http://paper-exchange"
TICKERS_PATH = "/api/v1/market/tickers"
FOLLOW_INTERVAL_S = 5.0
STATE_FILE = "paper_exchange.json"


@dataclass(frozen=True)
class Exchange:
    """What the lifespan opened: the client, and in paper mode the simulator app it talks to.
    `paper_reset`: the paper exchange started empty because no saved account was found, so the
    journal's open paper trades are gone (the lifespan ends them)."""

    client: BloFinClient
    sim_app: FastAPI | None = None
    paper_reset: bool = False


def state_path(settings: Settings) -> Path:
    """Where the paper exchange's account is saved."""
    return settings.data_dir / STATE_FILE


def check_saved_state(settings: Settings) -> None:
    """Raise SavedStateError now if the server's own paper exchange has a saved account that cannot be
    used (the program checks before serving, so its message is what the user reads, not a traceback
    from the lifespan, which refuses it again)."""
    if settings.trading_mode is TradingMode.PAPER and settings.exchange_url is None:
        persist.load(Simulator(SimConfig(api_key="", api_secret="", passphrase="")), state_path(settings))


def generated_credentials() -> Credentials:
    return Credentials(
        api_key=secrets.token_hex(16),
        api_secret=SecretStr(secrets.token_hex(32)),
        passphrase=SecretStr(secrets.token_hex(12)),
    )


def configured_credentials(settings: Settings) -> Credentials:
    return Credentials(
        api_key=settings.blofin_api_key.get_secret_value(),
        api_secret=settings.blofin_api_secret,
        passphrase=settings.blofin_passphrase,
    )


def build_simulator(settings: Settings, credentials: Credentials) -> FastAPI:
    walk = settings.paper_price_walk and settings.paper_price_source == "model"
    config = SimConfig(
        api_key=credentials.api_key,
        api_secret=credentials.api_secret.get_secret_value(),
        passphrase=credentials.passphrase.get_secret_value(),
        balance=settings.paper_balance,
        seed=settings.paper_seed,
        price_walk=walk,
        rate_limit_per_min=0,  # in-process: BloFin's per-IP limits don't apply to the paper exchange
        trade_limit_per_10s=0,
    )
    return create_app(config)


@asynccontextmanager
async def open_exchange(settings: Settings, *, sim_app: FastAPI | None = None) -> AsyncIterator[Exchange]:
    """The exchange for these settings, closed on exit. In paper mode `sim_app` (a simulator built by the
    caller, e.g. one that outlives a server restart in a test) replaces the one built here."""
    url = settings.exchange_url
    if settings.trading_mode is TradingMode.PAPER and url is None:
        async with _paper(settings, sim_app) as exchange:
            yield exchange
        return
    assert url is not None  # noqa: S101 - demo/live always have a URL (settings.BLOFIN_URLS)
    credentials = configured_credentials(settings)
    async with httpx.AsyncClient(base_url=url, timeout=settings.exchange_timeout_seconds) as http:
        client = BloFinClient(
            http, BloFinAuth(credentials), request_timeout=settings.exchange_timeout_seconds
        )
        yield Exchange(client)


@asynccontextmanager
async def _paper(settings: Settings, sim_app: FastAPI | None) -> AsyncIterator[Exchange]:
    saver: AutoSave | None = None
    reset = False
    if sim_app is None:  # the server's own paper exchange, kept in DATA_DIR
        credentials = generated_credentials()
        sim_app = build_simulator(settings, credentials)
        saver, restored = await _keep_saved(sim_app, state_path(settings))
        reset = not restored
    else:  # the caller's simulator (tests), which the caller keeps
        config = sim_app.state.sim_state.config
        credentials = Credentials(config.api_key, SecretStr(config.api_secret), SecretStr(config.passphrase))
    client = BloFinClient(
        InProcessHttp(sim_app, SIM_BASE_URL),
        BloFinAuth(credentials),
        request_timeout=settings.exchange_timeout_seconds,
        rate_limiter=RateLimiter.unlimited(),
    )
    follower: asyncio.Task[None] | None = None
    if settings.paper_price_source == "blofin":
        follower = asyncio.create_task(follow_prices(sim_app, BLOFIN_URLS[TradingMode.LIVE]))
    try:
        yield Exchange(client, sim_app, paper_reset=reset)
    finally:
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        if saver is not None:
            await sim_app.state.sim_state.stop_walk()  # nothing moves after the last save
            await saver.close()


async def _keep_saved(sim_app: FastAPI, path: Path) -> tuple[AutoSave, bool]:
    """Restore the account saved at `path` (SavedStateError if it cannot be used) and keep it saved;
    the saver, and whether there was an account to restore."""
    sim = sim_app.state.sim
    path.parent.mkdir(parents=True, exist_ok=True)
    restored = persist.load(sim, path)
    if restored:
        log.info("Paper exchange restored from %s: %d open position(s), %d resting order(s), cash %s USDT",
                 path, len(sim.positions), len(sim.open_orders()), sim.cash)
    else:
        log.info("Paper exchange starts afresh (no saved state at %s)", path)
    saver = AutoSave(sim, path)
    await saver.start()
    return saver, restored


async def follow_prices(
    sim_app: FastAPI,
    base_url: str,
    *,
    interval_s: float = FOLLOW_INTERVAL_S,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """Copy BloFin's public last prices into the simulator; step the model while BloFin is unreachable."""
    state = sim_app.state.sim_state
    reachable: bool | None = None
    async with httpx.AsyncClient(base_url=base_url, timeout=5.0, transport=transport) as http:
        while True:
            try:
                reply = await http.get(TICKERS_PATH)
                reply.raise_for_status()
                rows = reply.json().get("data") or []
                moved = apply_tickers(state.sim, rows)
                if reachable is not True:
                    log.info("Paper prices follow BloFin's public tickers (%d instruments)", moved)
                reachable = True
            except (httpx.HTTPError, ValueError, AttributeError):
                if reachable is not False:
                    log.warning("BloFin's tickers are unreachable: paper prices fall back to the model")
                reachable = False
                state.walk.step()
            await asyncio.sleep(interval_s)


def apply_tickers(sim: object, rows: list[object]) -> int:
    """Set the simulator's price of every instrument it knows from BloFin ticker rows."""
    known = getattr(sim, "instruments", {})
    moved = 0
    for row in rows:
        if not isinstance(row, dict) or row.get("instId") not in known:
            continue
        try:
            price = Decimal(str(row.get("last")))
        except InvalidOperation:
            continue
        if price.is_finite() and price > 0:
            sim.set_price(row["instId"], known[row["instId"]].round_price(price))  # type: ignore[attr-defined]
            moved += 1
    return moved
