"""The bot's client for the trading server's HTTP API (docs/api.md).

One shared `httpx.AsyncClient`; every call retries with exponential backoff and jitter on connection
errors, timeouts, 5xx and 429 (honouring Retry-After), never on another 4xx, and gives up after a total
deadline. A signal is sent with the same signal_id and the same bytes on every attempt, so the server's
idempotency makes retries safe (at most once).

Errors (raised by every call except `submit`, which returns a `SubmitOutcome` instead)::

    TradingServerError            base: show `str(exc)` to the user, it holds no secret
    +-- ServerUnreachable         no answer within the deadline: try again later
    +-- ServerRefused             a 4xx the server meant (bad key, bad body, conflict): fix the request
    |   +-- FeatureMissing        404 on an optional route (e.g. /events): the server has no such feature
    |   +-- TradeNotFound         404 for one trade: no trade has this id
    +-- BadServerAnswer           the answer did not match the contract: a version mismatch, report it
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.alias_generators import to_camel
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay

from hit_shared.models import (
    ErrorResponse,
    HaltRequest,
    HaltState,
    HealthResponse,
    StatsResponse,
    TradeResponse,
    TradeSignal,
)
from hit_shared.trade_actions import IDEMPOTENCY_KEY_HEADER, TradeAction, TradeActionResult
from hit_shared.trades import AccountResponse, PnlPeriod, PnlResponse, TradeDetail, TradesPage, TradeState

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_SECONDS = 60.0
# 503s that say the exchange account itself refuses (a wrong or revoked key, a key without the trade
# permission or off its IP whitelist, an account in hedge mode): they last until a person acts, so they
# are shown at once with the server's message instead of being retried for the whole deadline and
# reported as an unreachable server.
LASTING_503_CODES = frozenset({"exchange_auth_failed", "exchange_permission_denied", "exchange_hedge_mode"})
_M = TypeVar("_M", bound=BaseModel)


class TradingServerError(Exception):
    """Base of every trading-server failure; its text is meant for people and holds no secret."""


class ServerUnreachable(TradingServerError):
    """No usable answer before the deadline (connection refused, timeouts, 5xx, 429). Try again later."""


class ServerRefused(TradingServerError):
    """The server answered a 4xx (or a lasting 503, `LASTING_503_CODES`) on purpose; retrying the same
    request will not help."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message


class FeatureMissing(ServerRefused):
    """404 on an optional route: the server does not offer it (yet). Callers treat it as 'nothing'."""


class TradeNotFound(ServerRefused):
    """404 for one trade (GET /api/v1/trades/{id} or an action on it): no trade has this id."""


class BadServerAnswer(TradingServerError):
    """A 2xx whose body is not what the contract says: the bot and server disagree on the API."""


class _Retryable(Exception):
    """An attempt failed in a way worth retrying; `retry_after` is the server's wish, if it said one."""

    def __init__(self, description: str, retry_after: float | None = None) -> None:
        super().__init__(description)
        self.retry_after = retry_after


# ---- submit outcomes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivered:
    """The server answered the signal (placed, rejected or failed: see `response.status`)."""

    response: TradeResponse
    replayed: bool  # True when the server had seen this signal_id before (HTTP 200)


@dataclass(frozen=True, slots=True)
class Refused:
    """The server refused the request itself (401 bad key, 409 conflict, 422 bad body)."""

    status_code: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Unreachable:
    """No answer within the deadline: the signal may or may not have been received."""

    reason: str


SubmitOutcome = Delivered | Refused | Unreachable


class ServerEvent(BaseModel):
    """One item of GET /api/v1/events: something the trader should hear about (a fill, a stop hit)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int
    type: str = "event"
    signal_id: str | None = None
    message: str = ""
    created_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _text_is_message(cls, data: Any) -> Any:
        """Accept `text` for `message`: the server's event feed is young, be liberal in what we read."""
        if isinstance(data, dict) and "message" not in data and isinstance(data.get("text"), str):
            return {**data, "message": data["text"]}
        return data


class _EventPage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    events: tuple[ServerEvent, ...] = ()


class ExchangePosition(BaseModel):
    """One item of GET /api/v1/positions (BloFin's field names): where the mark and the unrealised P&L of
    a trade's position come from. Read liberally: only what the bot shows."""

    model_config = ConfigDict(frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True)

    inst_id: str
    positions: Decimal
    average_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal


class _PositionsPage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    positions: tuple[ExchangePosition, ...] = ()


# ---- helpers ---------------------------------------------------------------------------------------


def _retry_after_seconds(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(when.tzinfo)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """(code, message) of an error answer; a sentence of our own when the body is not the contract's."""
    try:
        detail = ErrorResponse.model_validate_json(response.content).error
    except ValidationError:
        return "http_" + str(response.status_code), f"the trading server answered HTTP {response.status_code}"
    return detail.code, detail.message


class _Backoff:
    """Exponential backoff with full jitter, replaced by Retry-After when the server sends one."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum

    def __call__(self, state: RetryCallState) -> float:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return exc.retry_after
        ceiling = min(self.maximum, self.initial * 2 ** (state.attempt_number - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


class TradingClient:
    """Typed calls to the trading server. The caller owns `http` (one shared AsyncClient)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        api_key: str,
        *,
        deadline: float = 30.0,
        attempt_timeout: float = 10.0,
        initial_backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._headers = {"X-API-Key": api_key, "Accept": "application/json"}
        self.deadline = deadline
        self._attempt_timeout = min(attempt_timeout, deadline)
        self._backoff = _Backoff(initial_backoff, max_backoff)

    # ---- the transport with retries ---------------------------------------------------------------

    async def _attempt(
        self, method: str, path: str, content: bytes | None, extra: dict[str, str] | None = None
    ) -> httpx.Response:
        headers = {**self._headers, **(extra or {})}
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await self._http.request(
                method, self._base + path, content=content, headers=headers, timeout=self._attempt_timeout
            )
        except httpx.TimeoutException as exc:
            raise _Retryable(f"{method} {path} timed out") from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"{method} {path} could not connect ({type(exc).__name__})") from exc
        if response.status_code == 503 and _error_of(response)[0] in LASTING_503_CODES:
            return response
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(
                f"{method} {path} answered HTTP {response.status_code}",
                _retry_after_seconds(response) if response.status_code in (429, 503) else None,
            )
        return response

    async def _send(
        self,
        method: str,
        path: str,
        content: bytes | None = None,
        deadline: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One logical request: retried until it gets a non-retryable answer or the deadline passes.
        Every attempt carries the same bytes and the same `headers` (an action's Idempotency-Key)."""
        deadline = deadline or self.deadline
        last: list[str] = ["no attempt finished"]

        def remember(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            last[0] = str(exc)
            log.warning("trading server attempt %d failed: %s; retrying", state.attempt_number, exc)

        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, _Retryable)),
            wait=self._backoff,
            stop=stop_after_delay(deadline),
            before_sleep=remember,
            reraise=True,
        )
        try:
            async with asyncio.timeout(deadline):
                return await retrying(self._attempt, method, path, content, headers)
        except _Retryable as exc:
            raise ServerUnreachable(
                f"the trading server did not answer within {deadline:g} s (last: {exc})"
            ) from None
        except TimeoutError:
            raise ServerUnreachable(
                f"the trading server did not answer within {deadline:g} s (last: {last[0]})"
            ) from None

    async def _call(
        self,
        method: str,
        path: str,
        model: type[_M],
        body: BaseModel | None = None,
        deadline: float | None = None,
        *,
        headers: dict[str, str] | None = None,
        missing: type[ServerRefused] = FeatureMissing,
    ) -> _M:
        """One request, its answer parsed into `model`; a 404 raises `missing` (the route's meaning of it)."""
        content = body.model_dump_json().encode() if body is not None else None
        response = await self._send(method, path, content, deadline, headers)
        if response.status_code == 404:
            code, message = _error_of(response)
            raise missing(404, code, message)
        if response.status_code >= 400:
            raise ServerRefused(response.status_code, *_error_of(response))
        return _parse(model, response)

    # ---- the API ----------------------------------------------------------------------------------

    async def submit(self, signal: TradeSignal) -> SubmitOutcome:
        """Send a signal; never raises for server trouble. The same bytes go out on every attempt."""
        content = signal.model_dump_json(exclude_none=True).encode()
        try:
            response = await self._send("POST", "/api/v1/signals", content)
        except ServerUnreachable as exc:
            return Unreachable(str(exc))
        if response.status_code in (200, 201):
            try:
                trade = TradeResponse.model_validate_json(response.content)
            except ValidationError:
                return Refused(
                    response.status_code,
                    "bad_answer",
                    "the trading server's answer did not match the API contract",
                )
            return Delivered(trade, replayed=response.status_code == 200)
        return Refused(response.status_code, *_error_of(response))

    async def health(self) -> HealthResponse:
        return await self._call("GET", "/health", HealthResponse)

    async def stats(self) -> StatsResponse:
        return await self._call("GET", "/api/v1/stats", StatsResponse)

    async def halt(self, request: HaltRequest) -> HaltState:
        return await self._call("POST", "/api/v1/halt", HaltState, request)

    async def resume(self) -> HaltState:
        return await self._call("POST", "/api/v1/resume", HaltState)

    async def events(self, after: int | None) -> tuple[ServerEvent, ...]:
        """Events newer than `after`. Raises `FeatureMissing` when the server has no event feed.

        A poll, so a short deadline (one attempt's timeout): the next poll is the retry.
        """
        path = "/api/v1/events" if after is None else f"/api/v1/events?after={int(after)}"
        return (await self._call("GET", path, _EventPage, deadline=self._attempt_timeout)).events

    # ---- trades (issue #15) ----------------------------------------------------------------------------

    async def trades(
        self,
        *,
        state: TradeState | None = None,
        symbol: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> TradesPage:
        """A page of trades, newest first (GET /api/v1/trades)."""
        query: dict[str, str] = {"limit": str(limit), "offset": str(offset)}
        if state is not None:
            query["state"] = state.value
        if symbol is not None:
            query["symbol"] = symbol
        if since is not None:
            query["since"] = since.isoformat()
        return await self._call("GET", "/api/v1/trades?" + urlencode(query), TradesPage)

    async def trade(self, signal_id: str) -> TradeDetail:
        """One trade with its orders and events. Raises `TradeNotFound` when no trade has this id."""
        return await self._call("GET", _trade_path(signal_id), TradeDetail, missing=TradeNotFound)

    async def act(
        self, action: TradeAction, signal_id: str, key: str, body: BaseModel | None = None
    ) -> TradeActionResult:
        """POST /api/v1/trades/{id}/{action} under `Idempotency-Key: key`.

        Every attempt (the retries here, and a later call with the same key) carries the same key and
        body, so the server acts once and answers each the same. Raises `ServerRefused` with the
        server's sentence when it refuses (a wrong-sided stop, a trade already over), `TradeNotFound`.
        """
        return await self._call(
            "POST",
            f"{_trade_path(signal_id)}/{action.value}",
            TradeActionResult,
            body,
            headers={IDEMPOTENCY_KEY_HEADER: key},
            missing=TradeNotFound,
        )

    async def account(self) -> AccountResponse:
        return await self._call("GET", "/api/v1/account", AccountResponse)

    async def pnl(self, period: PnlPeriod, count: int = 7) -> PnlResponse:
        return await self._call("GET", f"/api/v1/pnl?period={period.value}&count={int(count)}", PnlResponse)

    async def positions(self, deadline: float | None = None) -> tuple[ExchangePosition, ...]:
        """The exchange's open positions (for the mark price and unrealised P&L of each trade)."""
        return (await self._call("GET", "/api/v1/positions", _PositionsPage, deadline=deadline)).positions


def _trade_path(signal_id: str) -> str:
    return "/api/v1/trades/" + quote(signal_id, safe=":")


def _parse(model: type[_M], response: httpx.Response) -> _M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError:
        raise BadServerAnswer(
            f"the trading server's answer to {response.request.url.path} did not match the API contract"
        ) from None
