"""What the simulator's WebSockets (`/ws/private`, `/ws/public`) share: one accepted socket with a bounded
push queue drained by its own writer task, an idle watchdog, and hand-over from engine threads.

The engine calls its listeners synchronously inside its own calls, so a hub only enqueues: a connection
whose queue overflows is closed (1013, "slow consumer") rather than blocking the engine, and its client
must reconnect, as it would after any loss. A call from another thread (a test driving `app.state.sim`
directly) is handed to the connection's loop with call_soon_threadsafe (`on_loop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

log = logging.getLogger(__name__)


def invalid(text: str) -> dict[str, str]:
    """BloFin's answer to a request it can't take (bad op, channel, instrument or arguments)."""
    return {"event": "error", "code": "60012", "msg": f"Invalid request: {text[:512]}"}


@dataclass(frozen=True)
class Close:
    """The writer's last item: send a close frame with this code and reason."""

    code: int
    reason: str


class HubLimits(Protocol):
    """Read at each use, so a test may change them on a running hub."""

    idle_timeout_s: float
    queue_size: int


class Connection(ABC):
    """One accepted socket: a reader that hands each text frame to `handle`, a writer that drains the
    queue, a watchdog that closes it after `idle_timeout_s` without a frame either way."""

    name = "ws"  # for log lines

    def __init__(self, ws: WebSocket, limits: HubLimits) -> None:
        self.ws = ws
        self.limits = limits
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[str | Close] = asyncio.Queue(maxsize=limits.queue_size)
        self.closing = False
        self.last_activity = self.loop.time()

    @abstractmethod
    def handle(self, text: str) -> None:
        """One text frame from the client (each kind of connection answers it its own way)."""

    # ---- outbound --------------------------------------------------------------------------------
    def on_loop(self, callback: Callable[..., None], *args: Any) -> None:
        """Run `callback(*args)` on the connection's loop: now when called there, else soon."""
        try:
            here = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            here = False
        if here:
            callback(*args)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the connection is gone
                self.loop.call_soon_threadsafe(callback, *args)

    def push(self, item: str | dict[str, Any]) -> None:
        if self.closing:
            return
        text = item if isinstance(item, str) else json.dumps(item, separators=(",", ":"))
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("%s: push queue full, closing a slow consumer", self.name)
            self.close_soon(1013, "slow consumer: push queue overflow", discard=True)

    def close_soon(self, code: int, reason: str, *, discard: bool = False) -> None:
        """Close after what is queued (or at once, dropping it, with `discard`)."""
        if self.closing:
            return
        self.closing = True
        while discard and not self.queue.empty():
            self.queue.get_nowait()
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(Close(code, reason))

    # ---- tasks -----------------------------------------------------------------------------------
    async def serve(self, *extra: Coroutine[Any, Any, None]) -> None:
        """Until the client leaves or the writer closes the socket; `extra` run beside, then cancelled."""
        reader = asyncio.create_task(self._read())
        writer = asyncio.create_task(self._write())
        others = [asyncio.create_task(self._watch()), *(asyncio.create_task(c) for c in extra)]
        try:
            await asyncio.wait([reader, writer], return_when=asyncio.FIRST_COMPLETED)
        finally:
            tasks = [reader, writer, *others]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                self.last_activity = self.loop.time()
                text = message.get("text")
                if text is None:
                    self.push(invalid("binary frame"))
                else:
                    self.handle(text)

    async def _write(self) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            while True:
                item = await self.queue.get()
                if isinstance(item, Close):
                    if self.ws.application_state == WebSocketState.CONNECTED:
                        await self.ws.close(item.code, item.reason)
                    return
                await self.ws.send_text(item)
                self.last_activity = self.loop.time()

    async def _watch(self) -> None:
        while not self.closing:
            timeout = self.limits.idle_timeout_s
            idle = self.loop.time() - self.last_activity
            if idle > timeout:
                self.close_soon(1000, f"idle for more than {timeout:g} s", discard=True)
                return
            await asyncio.sleep(max(timeout - idle, 0.01))
