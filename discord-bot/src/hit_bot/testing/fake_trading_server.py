"""A fake trading server with behaviour, for the bot's tests and demos (not the real one: no exchange).

It implements the bot-facing part of docs/api.md on 127.0.0.1: POST /api/v1/signals with real
idempotency (201 the first time, 200 with the stored answer on a replay, 409 for the same id with another
body), the X-API-Key check (constant time), /health, /api/v1/stats, /api/v1/halt, /api/v1/resume and
GET /api/v1/events?after=, and the trades with the actions on them (`fake_trades.py`). Faults are
injected per request: `fail_next`, `throttle_next`, `hang_next`.

Decisions: halted -> rejected; posted_at older than `max_signal_age_seconds` -> rejected; a symbol in
`reject_symbols` -> rejected, in `fail_symbols` -> failed; anything else -> placed with size 1.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from hit_bot.testing.fake_trades import FakeTradeBook
from hit_shared.models import (
    HaltRequest,
    HaltState,
    HealthResponse,
    OrderInfo,
    OrderRole,
    StatsResponse,
    TradeResponse,
    TradeSignal,
    TradeStatus,
    TradingMode,
    as_jsonable,
)

JSON = dict[str, Any]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(), status=status, content_type="application/json", headers=headers
    )


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"error": {"code": code, "message": message}}, status, headers)


@dataclass
class _Fault:
    kind: str  # "status" | "throttle" | "hang"
    status: int = 503
    code: str = "injected_fault"
    retry_after: float = 0.0
    seconds: float | None = None


class FakeTradingServer:
    """Start with `await server.start()`; `url` is then its base URL. Records every signal attempt."""

    def __init__(
        self,
        api_key: str,
        *,
        mode: TradingMode = TradingMode.PAPER,
        max_signal_age_seconds: int | None = 300,
        events_enabled: bool = True,
    ) -> None:
        self.api_key = api_key
        self.mode = mode
        self.max_signal_age_seconds = max_signal_age_seconds
        self.events_enabled = events_enabled
        self.reject_symbols: set[str] = set()
        self.fail_symbols: set[str] = set()
        self.signal_attempts: list[JSON] = []  # every POST /signals body that reached the handler
        self.trades: dict[str, tuple[JSON, TradeResponse]] = {}
        self.requests: list[tuple[str, str]] = []
        self.events: list[JSON] = []
        self.halt_state = HaltState(halted=False)
        self.replayed = 0
        self.book = FakeTradeBook()
        self.action_keys: list[
            str | None
        ] = []  # the Idempotency-Key of every action attempt, faulted ones too
        self.port = 0
        self._faults: deque[_Fault] = deque()
        self._closing = asyncio.Event()
        self._started = datetime.now(UTC)
        self._runner: web.AppRunner | None = None

    # ---- lifecycle --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/health", self._health)
        app.router.add_post("/api/v1/signals", self._signal)
        app.router.add_get("/api/v1/signals/{signal_id}", self._get_signal)
        app.router.add_get("/api/v1/stats", self._stats)
        app.router.add_post("/api/v1/halt", self._halt)
        app.router.add_post("/api/v1/resume", self._resume)
        app.router.add_get("/api/v1/events", self._events)
        self.book.routes(app)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTradingServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- fault injection and events ---------------------------------------------------------------

    def fail_next(self, count: int, status: int = 503, code: str = "injected_fault") -> None:
        """The next requests are answered `status` with the error `code` (as the real server's 503s
        name what failed, e.g. exchange_auth_failed)."""
        self._faults.extend(_Fault("status", status=status, code=code) for _ in range(count))

    def throttle_next(self, count: int, retry_after: float = 0.05) -> None:
        self._faults.extend(_Fault("throttle", retry_after=retry_after) for _ in range(count))

    def hang_next(self, count: int, seconds: float | None = None) -> None:
        """The next requests get no answer for `seconds` (None: until the server stops)."""
        self._faults.extend(_Fault("hang", seconds=seconds) for _ in range(count))

    def clear_faults(self) -> None:
        self._faults.clear()

    def add_event(self, type_: str, message: str, signal_id: str | None = None) -> int:
        event_id = len(self.events) + 1
        self.events.append(
            {
                "id": event_id,
                "type": type_,
                "signal_id": signal_id,
                "message": message,
                "created_at": datetime.now(UTC).isoformat(),
            }
        )
        return event_id

    @property
    def placed(self) -> list[TradeResponse]:
        return [r for _, r in self.trades.values() if r.status is TradeStatus.PLACED]

    # ---- plumbing ---------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        if request.method == "POST" and request.path.startswith("/api/v1/trades/"):
            self.action_keys.append(request.headers.get("Idempotency-Key"))
        if self._faults:
            fault = self._faults.popleft()
            if fault.kind == "hang":
                try:
                    await asyncio.wait_for(self._closing.wait(), fault.seconds)
                except TimeoutError:
                    pass
                return _error(503, "hung", "the fake server hung on purpose")
            if fault.kind == "throttle":
                return _error(
                    429, "too_many_requests", "slow down", headers={"Retry-After": f"{fault.retry_after:g}"}
                )
            return _error(fault.status, fault.code, "the fake server failed on purpose")
        if request.path.startswith("/api/"):
            given = request.headers.get("X-API-Key", "")
            if not secrets.compare_digest(given.encode(), self.api_key.encode()):
                return _error(401, "unauthorized", "missing or wrong X-API-Key")
        response: web.StreamResponse = await handler(request)
        return response

    # ---- routes -----------------------------------------------------------------------------------

    async def _signal(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
            signal = TradeSignal.model_validate(body)
        except (ValueError, ValidationError) as exc:
            return _error(422, "invalid_signal", f"the signal is malformed: {str(exc).splitlines()[0]}")
        self.signal_attempts.append(body)
        canonical = as_jsonable(signal)
        known = self.trades.get(signal.signal_id)
        if known is not None:
            if known[0] != canonical:
                return _error(
                    409,
                    "signal_conflict",
                    f"signal {signal.signal_id} was already received with a different body",
                )
            self.replayed += 1
            return _json(as_jsonable(known[1]), 200)
        response = self._decide(signal)
        self.trades[signal.signal_id] = (canonical, response)
        if response.status is TradeStatus.PLACED:
            self.book.placed(signal, response)
        return _json(as_jsonable(response), 201)

    def _decide(self, signal: TradeSignal) -> TradeResponse:
        now = datetime.now(UTC)
        common: dict[str, Any] = {
            "signal_id": signal.signal_id,
            "mode": self.mode,
            "symbol": signal.symbol,
            "side": signal.side,
            "leverage": signal.leverage or 10,
            "created_at": now,
        }
        reason = self._refusal(signal, now)
        if reason:
            return TradeResponse(status=TradeStatus.REJECTED, reason=reason, **common)
        if signal.symbol in self.fail_symbols:
            return TradeResponse(status=TradeStatus.FAILED, reason="the exchange refused the order", **common)
        size = Decimal(1)
        base = signal.signal_id.replace(":", "")[-20:]
        orders = [
            OrderInfo(
                role=OrderRole.ENTRY,
                client_order_id=f"{base}e",
                type="limit" if signal.entries else "market",
                price=signal.entries[0] if signal.entries else None,
                size=size,
                state="live",
                order_id="1",
            )
        ]
        orders.append(
            OrderInfo(
                role=OrderRole.STOP_LOSS,
                client_order_id=f"{base}s",
                type="trigger",
                trigger_price=signal.stop_loss,
                size=size,
                state="live",
                order_id="2",
            )
        )
        orders += [
            OrderInfo(
                role=OrderRole.TAKE_PROFIT,
                client_order_id=f"{base}t{i}",
                type="trigger",
                trigger_price=tp,
                size=size,
                state="live",
                order_id=str(3 + i),
            )
            for i, tp in enumerate(signal.take_profits)
        ]
        return TradeResponse(status=TradeStatus.PLACED, size=size, orders=tuple(orders), **common)

    def _refusal(self, signal: TradeSignal, now: datetime) -> str | None:
        if self.halt_state.halted:
            return f"trading is halted ({self.halt_state.reason})"
        limit = self.max_signal_age_seconds
        if limit is not None and signal.posted_at and now - signal.posted_at > timedelta(seconds=limit):
            return f"the signal is older than {limit} s"
        if signal.symbol in self.reject_symbols:
            return f"the risk rules refuse {signal.symbol}"
        return None

    async def _get_signal(self, request: web.Request) -> web.Response:
        known = self.trades.get(request.match_info["signal_id"])
        if known is None:
            return _error(404, "not_found", "no such signal")
        return _json(as_jsonable(known[1]))

    async def _health(self, request: web.Request) -> web.Response:
        health = HealthResponse(
            status="ok",
            mode=self.mode,
            exchange="reachable",
            halted=self.halt_state.halted,
            version="fake",
            max_signal_age_seconds=self.max_signal_age_seconds,
        )
        return _json(as_jsonable(health))

    async def _stats(self, request: web.Request) -> web.Response:
        statuses = [r.status for _, r in self.trades.values()]
        stats = StatsResponse(
            signals_received=len(statuses),
            placed=statuses.count(TradeStatus.PLACED),
            rejected=statuses.count(TradeStatus.REJECTED),
            failed=statuses.count(TradeStatus.FAILED),
            replayed=self.replayed,
            open_positions=statuses.count(TradeStatus.PLACED),
            closed_trades=0,
            wins=0,
            losses=0,
            realized_pnl=Decimal(0),
            uptime_seconds=(datetime.now(UTC) - self._started).total_seconds(),
            mode=self.mode,
            halted=self.halt_state.halted,
        )
        return _json(as_jsonable(stats))

    async def _halt(self, request: web.Request) -> web.Response:
        try:
            halt = HaltRequest.model_validate_json(await request.read() or b"{}")
        except ValidationError:
            return _error(422, "invalid_halt", "the halt request is malformed")
        self.halt_state = HaltState(halted=True, reason=halt.reason, since=datetime.now(UTC))
        return _json(as_jsonable(self.halt_state))

    async def _resume(self, request: web.Request) -> web.Response:
        self.halt_state = HaltState(halted=False)
        return _json(as_jsonable(self.halt_state))

    async def _events(self, request: web.Request) -> web.Response:
        if not self.events_enabled:
            return _error(404, "not_found", "no event feed")
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            return _error(422, "invalid_after", "after must be an integer event id")
        return _json({"events": [e for e in self.events if e["id"] > after]})
