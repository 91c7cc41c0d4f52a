"""An ASGI app called in this process as if over HTTP: the wire to the paper exchange.

`InProcessHttp.request` takes the part of `httpx.AsyncClient.request` that `BloFinRest` uses and hands
the request to the app as one ASGI call: the same method, path, query, body bytes and signed headers
that would cross a socket, so the simulator checks the signature, applies its limits and faults, and
answers with the same envelopes as over HTTP. What it leaves out is the HTTP client (URL objects,
cookies, redirects, connection pool, response streaming), none of which an in-process call needs:
a request costs tens of microseconds of overhead instead of several hundred.

Kept for a figure of bench/server.py (paper mode, concurrency 4; target >= 200 signals/s and p50 <=
15 ms, and p50 there is about 4x the server's CPU per signal): with an `httpx.AsyncClient` over
`httpx.ASGITransport` instead, the server's CPU per signal measured 3.4 -> 4.9 ms (issue #13), a p50
near 19 ms on a quiet machine.

Requests signed by `BloFinAuth` are signed over the exact target string handed to the app (path and
`urlencode`d query). Any other `httpx.Auth` goes through a real `httpx.Request` and its auth flow
(single-step flows only). As with `httpx.ASGITransport`, an exception raised by the app reaches the
caller (the simulator raises `httpx.RemoteProtocolError` to drop a reply, as a closed socket would).
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import httpx
from starlette.types import ASGIApp

from hit_server.exchange.blofin_auth import BloFinAuth
from hit_server.exchange.blofin_rest import Reply

CLIENT = ("127.0.0.1", 123)


class InProcessHttp:
    """Calls `app` for requests to `base_url` (e.g. "http://paper-exchange")."""

    def __init__(self, app: ASGIApp, base_url: str) -> None:
        self.app = app
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self._server = (parts.hostname or "localhost", parts.port or (443 if parts.scheme == "https" else 80))
        self._scheme = parts.scheme or "http"

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
    ) -> Reply:
        if auth is not None and not isinstance(auth, BloFinAuth):
            return await self._via_httpx(method, url, params, content, headers, auth)
        query = urlencode(params) if params else ""
        target = f"{url}?{query}" if query else url
        body = content or b""
        sent = {k.lower(): v for k, v in (headers or {}).items()}
        if isinstance(auth, BloFinAuth):
            sent.update({k.lower(): v for k, v in auth.headers_for(method, target, body.decode()).items()})
        sent.setdefault("host", self._server[0])
        if body:
            sent["content-length"] = str(len(body))
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in sent.items()]
        return await self._call(method, url, query.encode("ascii"), raw, body)

    async def _via_httpx(
        self, method: str, url: str, params: dict[str, str] | None, content: bytes | None,
        headers: dict[str, str] | None, auth: httpx.Auth,
    ) -> Reply:
        request = httpx.Request(method, self.base_url + url, params=params, content=content, headers=headers)
        request = next(auth.sync_auth_flow(request))
        raw = [(k.lower(), v) for k, v in request.headers.raw]
        path = request.url.raw_path.split(b"?")[0].decode("ascii")
        return await self._call(method, path, request.url.query, raw, request.content)

    async def _call(
        self, method: str, raw_path: str, query: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> Reply:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "headers": headers,
            "scheme": self._scheme,
            "path": unquote(raw_path),
            "raw_path": raw_path.encode("ascii"),
            "query_string": query,
            "server": self._server,
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
        return Reply(status, httpx.Headers(reply_headers), b"".join(parts))
