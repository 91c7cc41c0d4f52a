"""The simulator (or any ASGI app) served by uvicorn on a free 127.0.0.1 port, in the running loop.

WebSockets need a real socket (httpx.ASGITransport carries none), so tests and demos of the private
WebSocket use this:

    async with serve_sim(make_config()) as served:     # or serve_loopback(any_app)
        stream = PrivateStream(served.ws_url(), served.auth, on_event=...)
        await served.control("/sim/price", {"instId": "BTC-USDT", "price": "56000"})
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from hit_server.exchange.blofin_auth import BloFinAuth

from .app import create_app
from .config import SimConfig
from .engine import Simulator
from .testing import make_auth
from .ws import PrivateWsHub, hub_of


@dataclass(frozen=True)
class Loopback:
    port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, path: str = "/ws/private") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


@asynccontextmanager
async def serve_loopback(app: Any, *, start_timeout: float = 10.0) -> AsyncIterator[Loopback]:
    """Serve `app` until the block ends; raises RuntimeError when uvicorn does not start in time."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    # no proxy headers: the client's address is the socket's peer (the simulator's per-IP limits key
    # on it; uvicorn would otherwise take an X-Forwarded-For sent from 127.0.0.1 for the client)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1,
                            proxy_headers=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + start_timeout
        while not server.started:
            if task.done() or loop.time() > deadline:
                raise RuntimeError("uvicorn did not start on 127.0.0.1")
            await asyncio.sleep(0.01)
        yield Loopback(port)
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, 10)
        finally:
            sock.close()


@dataclass(frozen=True)
class ServedSim:
    """A simulator app on a loopback port, with handles on its engine, its WebSocket hub and its key."""

    app: Any
    loopback: Loopback

    @property
    def sim(self) -> Simulator:
        sim: Simulator = self.app.state.sim
        return sim

    @property
    def hub(self) -> PrivateWsHub:
        return hub_of(self.app)

    @property
    def auth(self) -> BloFinAuth:
        """A fresh signer for the simulator's own credentials."""
        return make_auth(self.app.state.sim_state.config)

    @property
    def http_url(self) -> str:
        return self.loopback.http_url

    def ws_url(self, path: str = "/ws/private") -> str:
        return self.loopback.ws_url(path)

    async def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST to the unsigned control API (`/sim/price`, `/sim/ws/drop`, ...); raises on a non-2xx."""
        async with httpx.AsyncClient(base_url=self.http_url, timeout=5) as http:
            reply = await http.post(path, json=body or {})
            reply.raise_for_status()
            return reply.json()


@asynccontextmanager
async def serve_sim(config: SimConfig) -> AsyncIterator[ServedSim]:
    app = create_app(config)
    async with serve_loopback(app) as loopback:
        yield ServedSim(app, loopback)
