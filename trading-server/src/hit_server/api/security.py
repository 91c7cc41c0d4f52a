"""Who may call the API and how much: the API-key check, the per-key rate limit and the body limit.

- `require_api_key` is the router-level dependency of every /api/v1 route. It compares the given
  key with EVERY configured key using `secrets.compare_digest` (no early exit), so timing reveals
  neither which key nor how much of one matched.
- `KeyRateLimiter` is a token bucket per key (RATE_LIMIT_PER_MINUTE); over it: 429 + Retry-After.
- `BodyLimitMiddleware` answers 413 before a body larger than MAX_BODY_BYTES is read in full.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hit_server.api.http_errors import TooManyRequests, Unauthorized, error_response

API_KEY_HEADER = "X-API-Key"
_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="One of the server's API_KEYS")


def key_matches(given: str, keys: tuple[str, ...]) -> int | None:
    """The index of the configured key equal to `given`, comparing against all of them."""
    found: int | None = None
    given_bytes = given.encode()
    for index, key in enumerate(keys):
        if secrets.compare_digest(given_bytes, key.encode()) and found is None:
            found = index
    return found


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class KeyRateLimiter:
    """A token bucket per caller: `per_minute` requests a minute, bursts up to `per_minute`."""

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def check(self, caller: str) -> None:
        """Take one token for `caller` or raise TooManyRequests with the wait in Retry-After."""
        now = self.clock()
        rate = self.per_minute / 60.0
        bucket = self._buckets.setdefault(caller, _Bucket(float(self.per_minute), now))
        bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) / rate
            raise TooManyRequests(
                f"More than {self.per_minute} requests a minute with this API key; retry later.",
                retry_after=wait,
            )
        bucket.tokens -= 1.0


async def require_api_key(request: Request, given: Annotated[str | None, Depends(_header)]) -> str:
    """Dependency: the caller's identity (a fingerprint of its key), after auth and the rate limit."""
    keys: tuple[str, ...] = request.app.state.api_keys
    if not given:
        raise Unauthorized(f"Missing API key: send it in the {API_KEY_HEADER} header.")
    index = key_matches(given, keys)
    if index is None:
        raise Unauthorized("Invalid API key.")
    caller = hashlib.sha256(keys[index].encode()).hexdigest()[:12]
    limiter: KeyRateLimiter = request.app.state.rate_limiter
    limiter.check(caller)
    return caller


class BodyLimitMiddleware:
    """Refuses (413) a request whose body exceeds `max_bytes`, by header or by counting chunks."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "body_too_large", f"The request body is larger than {self.max_bytes} bytes."
        )
        await response(scope, receive, send)
