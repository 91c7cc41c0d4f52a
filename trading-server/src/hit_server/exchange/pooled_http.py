"""BloFin over sockets for a fleet worker: aiohttp's connection pool behind `BloFinRest`.

`PooledHttp.request` is the `HttpRequester` a fleet worker (`fleet/worker.py`) hands its accounts'
clients: the same call as `httpx.AsyncClient.request` for the part `BloFinRest` uses, and the same
failures (it raises httpx's transport errors, so `BloFinRest._send` stays the one place that decides
what a failure means for an order).

Why not the `httpx.AsyncClient` the single-account server sends through: a worker has tens of requests
in flight at once (32 jobs, each account's reads), and httpx's connection pool does work proportional
to its connections for every request it hands out. Measured on this 2-core machine against a local
server (`POST` of a small JSON body, the answer read and parsed), the client's CPU per request was:

    in flight at once        1        4        32
    httpx 0.28, 64 conns   0.61 ms  0.70 ms  2.47 ms
    aiohttp 3.14           0.17 ms  0.11 ms  0.12 ms

At two requests per account-signal that was ~5 ms of the ~27 ms of CPU a 1,000-account fan-out spent
per account (issue #19). The single-account server has a few requests in flight, where the difference
is a fraction of a millisecond against a network round trip, and its tests drive it through httpx
transports; it stays on httpx.

Signing: a request signed by `BloFinAuth` is signed over the exact target it is sent with (the
percent-encoded path and the `urlencode`d query, as `inprocess.InProcessHttp` does), and that target
goes out unchanged (yarl's `encoded=True`: nothing re-quoted after signing).

Failures, as `BloFinRest` reads them:
- `httpx.ConnectError` / `httpx.ConnectTimeout`: no connection was made, so nothing was sent;
- `httpx.ReadError`: the connection broke after the request may have left (the caller looks the
  order up, never resends);
- a reply that takes too long is cut by `BloFinRest`'s own timeout (and by the session's, set to the same).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import aiohttp
import httpx
from yarl import URL

from hit_server.exchange.blofin_auth import BloFinAuth
from hit_server.exchange.blofin_rest import Reply


class PooledHttp:
    """Sends to `base_url` (BloFin's REST root) over at most `connections` kept-alive connections,
    from `local_address` when given (the egress IP a group's keys are bound to)."""

    def __init__(
        self, base_url: str, *, timeout: float, connections: int, local_address: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.connections = connections
        self.local_address = local_address
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"PooledHttp({self.base_url!r}, from {self.local_address or 'any address'})"

    def _opened(self) -> aiohttp.ClientSession:
        # made on first use: aiohttp wants its session made inside the event loop it runs in
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.connections,
                local_addr=(self.local_address, 0) if self.local_address else None,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                cookie_jar=aiohttp.DummyCookieJar(),  # one worker, many accounts: nothing shared
            )
        return self._session

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
            raise TypeError(f"PooledHttp signs with BloFinAuth only, not {type(auth).__name__}")
        query = urlencode(params) if params else ""
        path = quote(url)  # percent-encoded as it goes out (BloFin's paths need none)
        target = f"{path}?{query}" if query else path
        sent = dict(headers or {})
        if auth is not None:
            sent.update(auth.headers_for(method, target, (content or b"").decode()))
        try:
            async with self._opened().request(
                method, URL(self.base_url + target, encoded=True), data=content, headers=sent
            ) as response:
                body = await response.read()
                return Reply(response.status, response.headers, body)
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(f"{type(exc).__name__}: {exc}") from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
