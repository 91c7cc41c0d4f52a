"""An ASGI app called in this process as if over HTTP: the wire to the paper exchange.

`InProcessHttp.request` takes the part of `httpx.AsyncClient.request` that `BloFinRest` uses, builds
the very same `httpx.Request` (so the URL, its encoded query and the body are httpx's own), lets the
same `httpx.Auth` sign it, hands it to the app as one ASGI call and returns an `httpx.Response`.
What it leaves out is the client's general machinery (base-URL merging, cookies, redirects, event
hooks, the transport and response streaming), none of which an in-process call needs: a request
costs tens of microseconds of overhead instead of a few hundred. As with `httpx.ASGITransport`, an
exception raised by the app reaches the caller (the simulator raises `httpx.RemoteProtocolError` to
drop a reply, as a closed socket would).

Only single-step auth flows are supported (sign, send): `BloFinAuth` is one.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import httpx
from starlette.types import ASGIApp

CLIENT = ("127.0.0.1", 123)


class InProcessHttp:
    """Calls `app` for requests to `base_url` (e.g. "http://paper-exchange")."""

    def __init__(self, app: ASGIApp, base_url: str) -> None:
        self.app = app
        self.base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"InProcessHttp({self.base_url!r})"

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        request = httpx.Request(method, self.base_url + url, params=params, content=content, headers=headers)
        if auth is not None:
            request = next(auth.sync_auth_flow(request))
        return await self.send(request)

    async def send(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": CLIENT,
            "root_path": "",
        }
        received = False
        complete = asyncio.Event()
        status = 500
        reply_headers: list[tuple[bytes, bytes]] = []
        parts: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal received
            if received:  # the whole body was sent: the client only goes away, once it has the reply
                await complete.wait()
                return {"type": "http.disconnect"}
            received = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            nonlocal status, reply_headers
            if message["type"] == "http.response.start":
                status = int(message["status"])
                reply_headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    complete.set()

        await self.app(scope, receive, send)
        return httpx.Response(status, headers=reply_headers, content=b"".join(parts), request=request)
