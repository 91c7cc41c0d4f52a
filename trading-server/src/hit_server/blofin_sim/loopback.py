"""The simulator (or any ASGI app) served by uvicorn on a free 127.0.0.1 port, in the running loop.

WebSockets need a real socket (httpx.ASGITransport carries none), so tests and demos of the private
WebSocket use this:

    async with serve_loopback(create_app(config)) as served:
        stream = PrivateStream(served.ws_url("/ws/private"), auth, on_event=...)
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn


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
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
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
