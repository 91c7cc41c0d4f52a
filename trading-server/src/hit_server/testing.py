"""A paper-mode server for tests, demos and benchmarks: `running_server(settings)` starts the app's
lifespan (journal, in-process simulator, service) and hands back an httpx client bound to it, plus
handles on the simulator to move prices and inject faults.

`paper_settings` never reads `trading-server/.env`, freezes the model prices (tests move them) and
uses a known API key.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import httpx
import uvicorn
from fastapi import FastAPI

from hit_server.exchange.exchange_check import ExchangeState
from hit_server.lifecycle.monitor import PositionMonitor
from hit_server.server import create_app
from hit_server.settings import Settings
from hit_server.trading.service import TradingService

TEST_API_KEY = "test-key-for-the-hit-trading-server-0001"
BASE_URL = "http://hit-server.test"


def paper_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "trading_mode": "paper",
        "api_keys": TEST_API_KEY,
        "data_dir": data_dir,
        "database_url": f"sqlite:///{data_dir / 'journal.db'}",
        "paper_price_walk": False,
        "paper_price_source": "model",
        "paper_balance": Decimal(10000),
        "blofin_base_url": "",
        "blofin_api_key": "",
        "blofin_api_secret": "",
        "blofin_passphrase": "",
        "rate_limit_per_minute": 100_000,
        "max_open_positions": 50,
        "exchange_timeout_seconds": 2.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class RunningServer:
    app: FastAPI
    http: httpx.AsyncClient  # authenticated with TEST_API_KEY (or the settings' first key)
    sim_http: httpx.AsyncClient  # the in-process simulator's control API (/sim/...)

    @property
    def service(self) -> TradingService:
        service: TradingService = self.app.state.service
        return service

    @property
    def monitor(self) -> PositionMonitor:
        monitor: PositionMonitor = self.app.state.monitor
        return monitor

    @property
    def sim(self) -> Any:
        """The simulator engine (orders_by_client_id, positions, set_price ...)."""
        return self.app.state.sim_app.state.sim

    async def set_price(self, inst_id: str, price: Decimal | str) -> None:
        reply = await self.sim_http.post("/sim/price", json={"instId": inst_id, "price": str(price)})
        reply.raise_for_status()

    async def fault(self, **spec: Any) -> None:
        reply = await self.sim_http.post("/sim/faults", json=spec)
        reply.raise_for_status()


@asynccontextmanager
async def running_server(
    settings: Settings, *, api_key: str | None = None, sim_app: FastAPI | None = None
) -> AsyncIterator[RunningServer]:
    """The app with its lifespan running, in-process (httpx.ASGITransport); paper mode only."""
    app = create_app(settings, sim_app=sim_app)
    key = api_key if api_key is not None else app.state.api_keys[0]
    async with app.router.lifespan_context(app):
        # The account mirror's seed is read in the background at start: wait for it, so that a test's
        # first signal takes the same path every time and its counted faults meet the test's requests.
        service = app.state.service
        if app.state.monitor.feed is not None and service.exchange_check.state is ExchangeState.REACHABLE:
            await wait_until(lambda: service.mirror.live, "the account mirror seeded")
        transport = httpx.ASGITransport(app=app)
        sim_transport = httpx.ASGITransport(app=app.state.sim_app)
        async with (
            httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers={"X-API-Key": key}) as http,
            httpx.AsyncClient(transport=sim_transport, base_url="http://paper-exchange") as sim_http,
        ):
            yield RunningServer(app, http, sim_http)


def signal_body(signal_id: str, **fields: Any) -> dict[str, Any]:
    """A market long on BTC-USDT with a stop and three targets (near the model's 60,000), as JSON;
    `fields` override any key."""
    body: dict[str, Any] = {
        "signal_id": signal_id,
        "side": "long",
        "symbol": "BTC-USDT",
        "entries": [],
        "stop_loss": "58000",
        "take_profits": ["62000", "64000", "66000"],
    }
    body.update(fields)
    return body


async def place_signal(server: RunningServer, body: dict[str, Any]) -> dict[str, Any]:
    """POST a signal that must be placed (201, status "placed"); the answer's JSON."""
    reply = await server.http.post("/api/v1/signals", json=body)
    assert reply.status_code == 201, reply.text  # noqa: S101 - a test helper
    answer: dict[str, Any] = reply.json()
    assert answer["status"] == "placed", answer  # noqa: S101 - a test helper
    return answer


# -- a real server process, for benchmarks and end-to-end runs -------------------------------------------

# Settings of either service that the caller's environment must not leak into a measured process.
SERVICE_ENV_PREFIXES = (
    "TRADING_", "BLOFIN_", "API_KEYS", "DATABASE_URL", "DATA_DIR", "PAPER_", "LOG_", "PORT", "HOST", "MAX_",
    "RATE_LIMIT", "DISCORD_", "STATE_DIR", "ALLOWED_", "ADMIN_", "NOTIFY_",
)


def libpq_conninfo(url: str) -> str:
    """A PostgreSQL SQLAlchemy URL (postgresql+asyncpg://...) as a libpq connection string, for tests that
    talk to the database directly with psycopg."""
    from psycopg.conninfo import make_conninfo
    from sqlalchemy import make_url

    parts = make_url(url)
    return make_conninfo(host=parts.host, port=parts.port, user=parts.username, password=parts.password,
                         dbname=parts.database)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any HIT setting, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(SERVICE_ENV_PREFIXES)}
    env.update(values)
    return env


def start_paper_server(
    workdir: Path, port: int, keys: list[str], *, log: Path | None = None, **settings: str
) -> subprocess.Popen[bytes]:
    """`python -m hit_server` in paper mode on 127.0.0.1:`port` with a journal in `workdir`, frozen
    model prices, a large balance and no rate limit; `settings` override (e.g. MAX_OPEN_POSITIONS)."""
    env = clean_env(
        TRADING_MODE="paper", API_KEYS=",".join(keys), HOST="127.0.0.1", PORT=str(port),
        DATABASE_URL=f"sqlite:///{workdir / 'journal.db'}", DATA_DIR=str(workdir),
        LOG_DIR=str(workdir / "logs"), PAPER_PRICE_WALK="false", PAPER_BALANCE="1000000",
        MAX_OPEN_POSITIONS="100", RATE_LIMIT_PER_MINUTE="1000000", LOG_LEVEL="WARNING",
    )
    env.update(settings)
    sink = log.open("wb") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "hit_server"], env=env, cwd=workdir, stdout=sink, stderr=subprocess.STDOUT
        )
    finally:
        if log is not None and not isinstance(sink, int):
            sink.close()


async def wait_healthy(http: httpx.AsyncClient, proc: subprocess.Popen[bytes], within: float = 60.0) -> None:
    """Until GET /health answers 200; SystemExit if the process dies or `within` seconds pass."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode} before it was healthy")
        try:
            if (await http.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("the server did not become healthy")


class UvicornThread:
    """An ASGI app served by uvicorn in a background thread on a free 127.0.0.1 port (a context
    manager): the real socket path, for tests and benchmarks that need more than ASGITransport."""

    def __init__(
        self, app: Any, *, lifespan: Literal["on", "off"] = "off", start_within: float = 30.0
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan=lifespan, access_log=False, timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.start_within = start_within

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + self.start_within
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the in-thread uvicorn server did not start on 127.0.0.1")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


# -- waiting on a running server, for lifecycle tests ------------------------------------------------------

EVENT_WAIT_S = 10.0


async def trade_view(server: RunningServer, signal_id: str) -> dict[str, Any]:
    """GET /api/v1/trades/{signal_id}: the trade as the server shows it (asserting it exists)."""
    reply = await server.http.get(f"/api/v1/trades/{signal_id}")
    assert reply.status_code == 200, reply.text  # noqa: S101 - a test helper
    answer: dict[str, Any] = reply.json()
    return answer


async def signal_events(server: RunningServer, signal_id: str) -> list[dict[str, Any]]:
    """The events of the server's feed about one signal, oldest first."""
    reply = await server.http.get("/api/v1/events", params={"limit": 500})
    return [e for e in reply.json()["events"] if e["signal_id"] == signal_id]


async def until_event(
    server: RunningServer, signal_id: str, kind: str, count: int = 1, within: float = EVENT_WAIT_S
) -> list[dict[str, Any]]:
    """The signal's events once `count` of type `kind` are there (AssertionError after `within` s)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await signal_events(server, signal_id)
        if sum(e["type"] == kind for e in found) >= count:
            return found
        assert asyncio.get_running_loop().time() < deadline, f"no {kind} event: {found}"  # noqa: S101
        await asyncio.sleep(0.05)


async def wait_until(condition: Callable[[], bool], what: str, within: float = EVENT_WAIT_S) -> None:
    """Poll `condition` until true (AssertionError naming `what` after `within` s)."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"  # noqa: S101
        await asyncio.sleep(0.05)


async def close_everything(http: httpx.AsyncClient, reason: str, within: float = 180.0) -> float:
    """The kill switch closes every position and its orders, trading resumes, then this waits until the
    server holds no trade open or pending, so every symbol is free again (the benchmarks' rounds). Returns
    the seconds from the halt's answer until then; RuntimeError after `within` seconds."""
    body = {"reason": reason, "cancel_orders": True, "close_positions": True}
    (await http.post("/api/v1/halt", json=body)).raise_for_status()
    halted = time.perf_counter()
    (await http.post("/api/v1/resume")).raise_for_status()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        live = 0
        for state in ("open", "pending"):
            reply = await http.get("/api/v1/trades", params={"state": state, "limit": 1})
            live += reply.json()["total"] if reply.status_code == 200 else 1
        if not live:
            return round(time.perf_counter() - halted, 2)
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the server still held trades open {within:g} s after the kill switch closed them")
