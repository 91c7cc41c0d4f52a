"""The outermost ASGI layer: rate limits and injected faults, applied before FastAPI sees a request.

It sits outside FastAPI so that `drop_reply` can reach the server's own `send`: under uvicorn that is a
bound method of the connection's request cycle, whose transport is closed without a reply; under
httpx.ASGITransport there is no transport, so `httpx.RemoteProtocolError` is raised instead, which is
what an httpx client sees on a real socket.

The limits (`limits.py`) key a request by its client's IP address, the host of the ASGI scope's
`client` (the peer address of the socket under uvicorn: serve the simulator with uvicorn's
`proxy_headers` off, as `python -m hit_server.blofin_sim` does, or a client could pick its IP with an
X-Forwarded-For header), and a trade request by its ACCESS-KEY header.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import MESSAGES, SimError
from .faults import Fault

if TYPE_CHECKING:
    from .app import SimState

log = logging.getLogger(__name__)
TRADE_PREFIX = "/api/v1/trade/"
# where SignedOnly leaves the engine of the account a private request is signed for (`app.account_of`)
ACCOUNT_SCOPE_KEY = "hit.blofin_sim.account"


class SimMiddleware:
    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith("/api/"):
            await self.app(scope, receive, send)
            return
        self.state.start_walk()
        if not self._within_limits(scope, path):
            await _send_json(send, 429, {"code": "429", "msg": MESSAGES["429"]})
            return
        fault = self.state.faults.take(path)
        if fault is None:
            await self.app(scope, receive, send)
            return
        log.info("fault %s on %s", fault.kind, path)
        await self._misbehave(fault, scope, receive, send)

    def _within_limits(self, scope: Scope, path: str) -> bool:
        now = self.state.sim.clock_ms()
        client = scope.get("client") or ("unknown", 0)
        limits = self.state.limits
        if not limits.allow_ip(str(client[0]), now):
            return False
        if path.startswith(TRADE_PREFIX):
            return limits.allow_trade(access_key(scope) or str(client[0]), now)
        return True

    async def _misbehave(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
            await self.app(scope, receive, send)
        elif fault.kind == "timeout":
            await asyncio.sleep(fault.seconds)
            await _send_json(send, 504, {"code": "504", "msg": "Gateway Timeout"})
        elif fault.kind == "http_5xx":
            status = int(fault.code) if fault.code.isdigit() and 500 <= int(fault.code) <= 599 else 503
            await _send_json(send, status, {"code": str(status), "msg": "Service Unavailable"})
        elif fault.kind == "http_429":
            await _send_json(send, 429, {"code": "429", "msg": MESSAGES["429"]})
        elif fault.kind == "error_code":
            code = fault.code or "103013"
            await _send_json(send, 200, {"code": code, "msg": MESSAGES.get(code, "Simulated error")})
        else:
            await self._drop_reply(scope, receive, send)

    async def _drop_reply(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def swallow(message: Message) -> None:
            return None

        await self.app(scope, receive, swallow)
        transport: Any = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is None:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        transport.close()
        await asyncio.sleep(0)


class SignedOnly:
    """Checks the signature of a request to a private endpoint before FastAPI routes it.

    A pure ASGI layer rather than a FastAPI dependency on every private route: same checks, same
    refusals, without the dependency machinery on each call (it goes with `SimApp`'s direct calls,
    which skip FastAPI's dependencies; the figure that keeps both is in `SimApp`'s docstring). It
    reads the body once and hands the very same bytes on to the route."""

    def __init__(self, app: ASGIApp, state: SimState, private_paths: frozenset[str]) -> None:
        self.app = app
        self.state = state
        self.private_paths = private_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in self.private_paths:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            key = self.state.auth.check(str(scope["method"]), raw_target(scope), headers, body)
        except SimError as err:
            await _send_json(send, err.status, {"code": err.code, "msg": err.msg})
            return
        account = self.state.accounts.get(key)
        scope[ACCOUNT_SCOPE_KEY] = self.state.sim if account is None else account.sim
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def access_key(scope: Scope) -> str:
    """The request's ACCESS-KEY header ("" without one)."""
    return next((v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"access-key"), "")


def raw_target(scope: Scope) -> str:
    """The path and query exactly as the client sent them (what BloFin's signature covers)."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1").split("?", 1)[0] if raw else str(scope["path"])
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
    })
    await send({"type": "http.response.body", "body": payload})
