"""The wire layer under `BloFinClient`: one request, its envelope, its errors, its retries.

Everything that turns an httpx request into BloFin data or a `BloFinError` lives here, and only here:
- bodies are compact JSON sent as the very bytes `BloFinAuth` signs;
- every request waits for the rate limiter, then runs under `asyncio.timeout(request_timeout)`, which
  behaves the same over a socket and in-process (`inprocess.InProcessHttp` ignores httpx timeouts);
- `code != "0"` is an error even with HTTP 200, and list items carry their own `code`;
- a clock-skew refusal (152405) measures BloFin's clock, corrects `auth.offset_ms` and resends once;
- `read()` retries retryable errors with bounded exponential backoff and jitter (`RetryPolicy.run`, on
  tenacity); `write()` retries only errors that prove the write was not carried out.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base, wait_exponential, wait_random

from hit_server.exchange.blofin_auth import BloFinAuth
from hit_server.exchange.blofin_errors import (
    BloFinError,
    ClockSkewError,
    ExchangeUnavailable,
    RateLimited,
    error_class_for,
    error_for,
    error_for_http_status,
)
from hit_server.exchange.ratelimit import RateLimiter

log = logging.getLogger(__name__)

T = TypeVar("T")
Params = dict[str, str]
Body = dict[str, Any] | list[dict[str, Any]]
SERVER_TIME_PATH = "/api/v1/public/time"


@dataclass(frozen=True)
class RetryPolicy:
    """How requests are retried: at most `attempts` tries within `max_total` seconds.

    Waits grow as initial, 2x, 4x ... up to `max_wait`, plus up to `jitter` seconds at random, and
    never less than the Retry-After an error carries (a 429's). Which errors are retried is the
    caller's predicate: `read` retries any retryable error, `write` only those that prove the write
    was not carried out, so a write whose outcome is unclear is raised at once, for the lookup.

    `sleep` and `clock` are injectable so tests need not wait. `clock` defaults to the running event
    loop's, the one `asyncio.sleep` and `asyncio.timeout` use: `time.monotonic` in production, virtual
    time in the whole-system simulation, where the budget is then spent as it would be for real.
    """

    attempts: int = 4
    initial_wait: float = 0.25
    max_wait: float = 3.0
    jitter: float = 0.25
    max_total: float = 10.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)
    clock: Callable[[], float] | None = None

    async def run(self, call: Callable[[], Awaitable[T]], retry_if: Callable[[BaseException], bool]) -> T:
        """`call()` until it returns, or until it fails with an error `retry_if` refuses, or after
        `attempts` tries, or once `max_total` seconds have passed: then its last error is raised."""
        clock = self.clock or asyncio.get_running_loop().time
        retrying = AsyncRetrying(
            retry=retry_if_exception(retry_if),
            stop=stop_after_attempt(self.attempts) | _BudgetSpent(clock, self.max_total),
            wait=_Backoff(self),
            sleep=self.sleep,
            before_sleep=_log_failed_attempt,
            reraise=True,
        )

        async def attempt() -> T:  # tenacity awaits coroutine functions only; `call` may be a lambda
            return await call()

        result: T = await retrying(attempt)
        return result


class _BudgetSpent(stop_base):
    """Stop retrying once `max_total` seconds have passed on `clock` since this object was made (just
    before the first try). Tenacity's own `stop_after_delay` reads `time.monotonic`, not an injected clock."""

    def __init__(self, clock: Callable[[], float], max_total: float) -> None:
        self._clock = clock
        self._deadline = clock() + max_total

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._clock() >= self._deadline


class _Backoff(wait_base):
    """Exponential wait plus jitter, or the error's Retry-After when that is longer."""

    def __init__(self, policy: RetryPolicy) -> None:
        exponential = wait_exponential(multiplier=policy.initial_wait, max=policy.max_wait)
        self._backoff = exponential + wait_random(0, policy.jitter)

    def __call__(self, retry_state: RetryCallState) -> float:
        return max(self._backoff(retry_state), _retry_after_of(_failure(retry_state)))


def _failure(retry_state: RetryCallState) -> BaseException | None:
    outcome = retry_state.outcome
    return outcome.exception() if outcome is not None else None


def _retry_after_of(exc: BaseException | None) -> float:
    """The seconds the exchange asked us to wait, 0 if it did not say. Read from any error that carries
    `retry_after` (today `RateLimited`, from a 429's header or a rate-limit code's reply)."""
    retry_after = getattr(exc, "retry_after", None)
    return float(retry_after) if retry_after else 0.0


def _log_failed_attempt(retry_state: RetryCallState) -> None:
    log.warning(
        "BloFin request failed (attempt %d): %r; retrying", retry_state.attempt_number, _failure(retry_state)
    )


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, BloFinError) and exc.retryable


def _not_carried_out(exc: BaseException) -> bool:
    """Errors that prove a write was refused before it took effect, so sending it again is safe."""
    if isinstance(exc, ExchangeUnavailable):
        return not exc.request_sent
    return isinstance(exc, RateLimited)


def compact_json(body: Body) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _retry_after(response: HttpReply) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _first_failed_item(data: Any) -> dict[str, Any] | None:
    items = data if isinstance(data, list) else [data]
    for item in items:
        if isinstance(item, dict) and str(item.get("code") or "0") != "0":
            return item
    return None


def raise_for_items(data: Any) -> None:
    """Raise the error of the first item whose own `code` is not "0" (place/cancel replies)."""
    item = _first_failed_item(data)
    if item is not None:
        raise error_for(str(item["code"]), str(item.get("msg") or ""))


BATCH_CODES = ("0", "1", "2")  # all succeeded, all failed, partly succeeded: each item says which


def parse_envelope(response: HttpReply, what: str, *, items: bool = False) -> Any:
    """BloFin's `data`, or the error the reply stands for.

    A non-200 reply is judged by its BloFin code when the table knows it, else by its HTTP status
    (a gateway's 503 or 504 body may carry a code of its own that is no BloFin code). With `items`
    (batch writes), a top-level 0, 1 or 2 with a list `data` is returned as it is: the caller reads
    each item's own code.
    """
    try:
        payload = response.json()
    except ValueError:
        payload = None
    code = str(payload.get("code")) if isinstance(payload, dict) and "code" in payload else None
    if response.status_code != 200 and error_class_for(code or "0") is BloFinError:
        raise error_for_http_status(
            response.status_code, f"BloFin answered HTTP {response.status_code} to {what}",
            retry_after=_retry_after(response),
        )
    if code is None or not isinstance(payload, dict):
        raise ExchangeUnavailable(f"BloFin sent an unreadable reply to {what}", code="unreadable")
    if items and code in BATCH_CODES and isinstance(payload.get("data"), list):
        return payload["data"]
    if code != "0":
        item = _first_failed_item(payload.get("data"))
        if item is not None:
            code, message = str(item["code"]), str(item.get("msg") or "")
        else:
            message = str(payload.get("msg") or "")
        error = error_for(code, message)
        if isinstance(error, RateLimited):
            error.retry_after = _retry_after(response)
        raise error
    return payload.get("data")


class HttpReply(Protocol):
    """A reply as `BloFinRest` reads it: an `httpx.Response`, or a `Reply`."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...  # case-insensitive in both

    def json(self) -> Any: ...


class Reply:
    """A reply read in full: status, headers (case-insensitive) and body, read like an `httpx.Response`.
    What `inprocess.InProcessHttp` and `pooled_http.PooledHttp` answer."""

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def __repr__(self) -> str:
        return f"<Reply [{self.status_code}]>"

    def json(self) -> Any:
        return json.loads(self.content)


class HttpRequester(Protocol):
    """What `BloFinRest` sends through: an `httpx.AsyncClient`, `inprocess.InProcessHttp` or
    `pooled_http.PooledHttp`."""

    async def request(
        self, method: str, url: str, *, params: Params | None = ..., content: bytes | None = ...,
        headers: dict[str, str] | None = ..., auth: httpx.Auth | None = ...,
    ) -> HttpReply: ...


class BloFinRest:
    """Sends requests to BloFin's REST API and turns replies into data or `BloFinError`s."""

    def __init__(
        self,
        http: HttpRequester,
        auth: BloFinAuth,
        *,
        request_timeout: float,
        rate_limiter: RateLimiter,
        retry: RetryPolicy,
    ) -> None:
        self._http = http
        self._auth = auth
        self._timeout = request_timeout
        self._limiter = rate_limiter
        self.retry = retry

    async def request(
        self, method: str, path: str, *, params: Params | None = None, body: Body | None = None,
        private: bool = True, items: bool = False,
    ) -> Any:
        """One request, resent once after correcting the clock if BloFin says it is skewed."""
        try:
            return await self._once(method, path, params, body, private, items)
        except ClockSkewError as exc:
            if not private:
                raise
            offset = await self.server_time_offset_ms()
            log.warning("BloFin refused our timestamp; local clock is %d ms off, corrected", offset)
            self._auth.offset_ms = offset
            try:
                return await self._once(method, path, params, body, private, items)
            except ClockSkewError as again:
                raise again from exc

    async def read(
        self, method: str, path: str, *, params: Params | None = None, body: Body | None = None,
        private: bool = True,
    ) -> Any:
        """`request`, retried on retryable errors; only for requests that are safe to repeat."""
        return await self.retry.run(
            lambda: self.request(method, path, params=params, body=body, private=private), _retryable
        )

    async def write(self, method: str, path: str, *, body: Body, items: bool = False) -> Any:
        """`request`, retried only when the error proves BloFin did not carry it out (429, no
        connection). Any other failure is the caller's to resolve (look the order up). `items`: a
        batch write, whose per-item results come back even when some items failed."""
        return await self.retry.run(
            lambda: self.request(method, path, body=body, items=items), _not_carried_out
        )

    async def server_time_offset_ms(self) -> int:
        """BloFin's clock minus ours (`auth.clock_ms`), in ms, measured over one round trip."""
        before = self._auth.clock_ms()
        response = await self._send("GET", SERVER_TIME_PATH, None, None, private=False)
        after = self._auth.clock_ms()
        server_ms = _server_ms(response)
        if server_ms is None:
            tickers = await self.read("GET", "/api/v1/market/tickers", private=False)
            stamps = [int(row["ts"]) for row in tickers or [] if str(row.get("ts") or "").isdigit()]
            if not stamps:
                raise ExchangeUnavailable("could not read BloFin's clock", code="no server time")
            server_ms = max(stamps)
        return server_ms - (before + after) // 2

    async def _once(
        self, method: str, path: str, params: Params | None, body: Body | None, private: bool,
        items: bool = False,
    ) -> Any:
        response = await self._send(method, path, params, body, private=private)
        return parse_envelope(response, f"{method} {path}", items=items)

    async def _send(
        self, method: str, path: str, params: Params | None, body: Body | None, *, private: bool
    ) -> HttpReply:
        content = compact_json(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else None
        what = f"{method} {path}"
        try:
            async with self._limiter.sending(method, path), asyncio.timeout(self._timeout):
                response = await self._http.request(
                    method, path, params=params, content=content, headers=headers,
                    auth=self._auth if private else None,
                )
        except TimeoutError as exc:
            raise ExchangeUnavailable(
                f"no reply from BloFin within {self._timeout:g} s to {what}", code="timeout"
            ) from exc
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise ExchangeUnavailable(
                f"could not connect to BloFin for {what}: {type(exc).__name__}", code="connect",
                request_sent=False,
            ) from exc
        except httpx.TransportError as exc:
            raise ExchangeUnavailable(
                f"connection to BloFin lost during {what}: {type(exc).__name__}", code="connection lost"
            ) from exc
        log.debug("BloFin %s -> HTTP %d", what, response.status_code)
        return response


def _server_ms(response: HttpReply) -> int | None:
    """The server's time from a /public/time reply, else from its Date header (1 s resolution)."""
    try:
        data = parse_envelope(response, f"GET {SERVER_TIME_PATH}")
        if isinstance(data, dict) and str(data.get("ts") or "").isdigit():
            return int(data["ts"])
    except BloFinError:
        pass
    date = response.headers.get("Date")
    if date:
        try:
            return int(email.utils.parsedate_to_datetime(date).timestamp() * 1000) + 500
        except (TypeError, ValueError):
            return None
    return None
