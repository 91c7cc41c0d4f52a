"""A trader's actions on one open trade: close it (all or a part), cancel its unfilled entries, move its
stop, replace its targets (POST /api/v1/trades/{signal_id}/close, /cancel, /stop, /targets).

This module is the frame every action goes through (its Idempotency-Key, the trade's lease, the trade
brought up to date, the answer stored); the actions themselves are in `action_close.py` (close, partial
close, cancel), `action_stop.py` and `action_targets.py`, and the steps they share in `action_kit.py`.

One actor at a time changes a trade. An action works under the trade's lease (`journal/trade_lease.py`,
under a holder of its own, so the position monitor of this process is kept out too), waiting for it a
bounded time (a pass holds it for one trade's work) and answering "busy, retry" when it can't be had.
Under the lease it first brings the trade up to date with the monitor's own pass over it
(`Lifecycle.sync_trade`: fills, targets hit, a close found), then acts, then saves the trade, which moves
its version on, so a pass that read the trade before the action drops its view (`TradeMovedOn`). The
monitor keeps what the action leaves (the stop covering the position, the trade's end and its P&L).

Rules that protect money:
- At most once. Each action is journaled under its Idempotency-Key before anything is sent
  (`journal/trade_actions.py`); the clientOrderId of its close at market is derived from the signal_id
  and the action's number (`ids.action_close_id`), a new stop takes the monitor's next stop id
  (`s<k>`, reserved in the journal), and either is written on the action's row before it is sent. A retry
  or a restart looks that order up first; an unclear outcome answers 503 and is resolved by the next
  retry's lookup, never by sending another order.
- Never naked. A close sends a reduce-only market order or BloFin's close-position (neither can open a
  position the other way, whatever target fills meanwhile); the stops stay until the position is flat,
  and after a partial close the stop is checked to cover what is left (`StopKeeper.cover`). A stop is
  moved by placing the new one, confirming it, and only then cancelling the old ones; if the new one
  can't be placed the old one stays, and the answer says so.
- A full close cancels the trade's resting entries and targets first (an entry can't fill after the close,
  and no target's fill comes after it in the order history), then closes; the monitor finishes the trade,
  which reads as closed by hand (exit `manual`: the closing order is the action's `x<n>`, neither a target
  nor a close for safety; `pnl.py`).
- Sizes on the lot grid, rounded down; a part under minSize, or a rest under minSize, is refused.
- Only when it applies: a stop only ever moves towards the market (as the stop policy: `stops.tightens`)
  and stays on the protective side of the mark price; targets lie on the profit side of the mark. A part of
  the position is closed, or its targets replaced, only once no entry of it rests (the targets are then
  split over a position that can't grow).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, cast

from pydantic import BaseModel

from hit_server import clock
from hit_server.api.http_errors import error_body
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.journal.db import SignalRow
from hit_server.journal.journal import EventRecord, Journal
from hit_server.journal.trade_actions import ActionRecord, ActionStore
from hit_server.journal.trade_book import OPEN, TradeBook, TradeMovedOn, values_of
from hit_server.journal.trade_lease import TradeLeases
from hit_server.lifecycle.action_close import CloseActions
from hit_server.lifecycle.action_kit import (
    CANCELLED_BY_HAND,
    AlreadyDone,
    Ctx,
    KeyMissing,
    KeyReused,
    Refusal,
    TradeBusy,
)
from hit_server.lifecycle.action_stop import StopActions
from hit_server.lifecycle.action_targets import TargetActions
from hit_server.lifecycle.passes import Lifecycle
from hit_server.lifecycle.trade_view import TradeViews
from hit_server.lifecycle.trade_work import Work
from hit_server.settings import Settings
from hit_server.trading.signal_locks import SignalLocks
from hit_shared.models import fmt
from hit_shared.trade_actions import (
    IDEMPOTENCY_KEY_HEADER,
    ActionOutcome,
    CancelRequest,
    CloseRequest,
    StopRequest,
    TargetsRequest,
    TradeAction,
    TradeActionResult,
)

log = logging.getLogger(__name__)

LEASE_WAIT_S = 10.0  # how long an action waits for the trade's lease (a pass holds it for one trade)
LEASE_POLL_S = 0.05


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    replayed: bool



def fingerprint(signal_id: str, action: TradeAction, request: BaseModel) -> str:
    """The request an Idempotency-Key was first used for: the trade, the action and its body with
    decimals normalised (`0.5` and `0.50` are one request)."""
    body = request.model_dump(mode="python")
    text = json.dumps(
        {"signal_id": signal_id, "action": action.value, "body": body},
        sort_keys=True,
        default=_plain,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()



def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    raise TypeError(f"not JSON: {type(value).__name__}")



class TradeControls(CloseActions, StopActions, TargetActions):
    """The actions of one running server (its service's journal and exchange, its monitor's lifecycle)."""

    def __init__(
        self,
        client: BloFinClient,
        journal: Journal,
        lifecycle: Lifecycle,
        settings: Settings,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.client = client
        self.journal = journal
        self.lifecycle = lifecycle
        self.book: TradeBook = lifecycle.book
        self.settings = settings
        self.store = ActionStore(journal.db)
        self.views = TradeViews(journal.db)
        self.wake = wake
        self.lease_wait_s = LEASE_WAIT_S
        self._keys = SignalLocks()  # one request per Idempotency-Key at a time in this process

    async def act(self, action: TradeAction, signal_id: str, key: str | None, request: BaseModel) -> Answer:
        if not key:
            raise KeyMissing(
                f"Send an {IDEMPOTENCY_KEY_HEADER} header (any unique text up to 128 characters, e.g. a "
                "UUID): a retry with the same key then acts once and answers the same."
            )
        digest = fingerprint(signal_id, action, request)
        async with self._keys.hold(key):
            row = await self.store.claim(key, signal_id, action.value, digest)
            self._same_request(row, digest)
            if row.done:
                return _replay(row)
            async with self._lease(signal_id):
                row = await self.store.get(key) or row  # another process may have finished it meanwhile
                if row.done:
                    return _replay(row)
                return await self._run(row, action, request)

    @staticmethod
    def _same_request(row: ActionRecord, digest: str) -> None:
        if row.fingerprint != digest:
            raise KeyReused(
                f"This {IDEMPOTENCY_KEY_HEADER} was already used for another request ({row.kind} on trade "
                f"'{row.signal_id}'); use a new key for a new request."
            )

    @contextlib.asynccontextmanager
    async def _lease(self, signal_id: str) -> AsyncIterator[None]:
        """The trade's lease, under a holder of this action's own; TradeBusy after `lease_wait_s`."""
        leases = TradeLeases(self.journal.db, holder=f"action-{uuid.uuid4().hex}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lease_wait_s
        while not await leases.take(signal_id):
            if loop.time() >= deadline:
                raise TradeBusy(
                    f"Trade '{signal_id}' is being worked on right now (by the position monitor or another "
                    "action); retry in a moment with the same Idempotency-Key."
                )
            await asyncio.sleep(LEASE_POLL_S)
        try:
            yield
        finally:
            await leases.give_back(signal_id)

    async def _run(self, row: ActionRecord, action: TradeAction, request: BaseModel) -> Answer:
        events: list[EventRecord] = []
        try:
            result = await self._carry_out(row, action, request, events)
        except Refusal as refusal:
            status, body = refusal.status, error_body(refusal.code, refusal.message)
        except TradeMovedOn as exc:
            raise TradeBusy(
                f"Trade '{row.signal_id}' was changed by another process meanwhile; retry in a moment with "
                "the same Idempotency-Key."
            ) from exc
        else:
            status, body = 200, result.model_dump(mode="json")
        # each event names the request it answers: a bot's key names its source (discord-follow-<message>)
        events = [replace(e, data={**e.data, "key": row.key}) for e in events]
        stored = await self.store.finish(row.key, status, body, events)
        self.wake()
        return Answer(stored.status_code or status, stored.answer or body, replayed=stored.answer != body)

    async def _carry_out(
        self, row: ActionRecord, action: TradeAction, request: BaseModel, events: list[EventRecord]
    ) -> TradeActionResult:
        signal = await self.journal.get_signal(row.signal_id)
        try:
            ctx = await self._open(row, action, signal)
        except Refusal as refusal:
            if signal is not None and refusal.status != 404:
                events.append(
                    _action_event(
                        signal.symbol,
                        signal.side,
                        row.signal_id,
                        action,
                        f"{action.value} refused: {refusal.message}",
                        outcome="refused",
                        code=refusal.code,
                    )
                )
            raise
        except AlreadyDone as done:
            assert signal is not None  # noqa: S101 - only a trade that exists was done
            result = done.result
            events.append(
                _action_event(
                    signal.symbol,
                    signal.side,
                    row.signal_id,
                    action,
                    result.message,
                    outcome=result.outcome.value,
                    client_order_id=result.client_order_id,
                )
            )
            return result
        trade, work = ctx.trade, ctx.work
        before = values_of(trade)
        try:
            result = await self._dispatch(ctx, action, request)
        except Refusal as refusal:
            events.append(
                _action_event(
                    ctx.symbol,
                    ctx.side,
                    ctx.sid,
                    action,
                    f"{action.value} refused: {refusal.message}",
                    outcome="refused",
                    code=refusal.code,
                )
            )
            raise
        finally:
            if work.changed or work.events or values_of(trade) != before:
                await self._save(ctx)
        events.append(
            _action_event(
                ctx.symbol,
                ctx.side,
                ctx.sid,
                action,
                result.message,
                outcome=result.outcome.value,
                client_order_id=result.client_order_id,
            )
        )
        return result.model_copy(update={"trade": await self._view(ctx.sid)})

    async def _dispatch(self, ctx: Ctx, action: TradeAction, request: BaseModel) -> TradeActionResult:
        if action is TradeAction.CLOSE:
            return await self._close(ctx, cast(CloseRequest, request))
        if action is TradeAction.CANCEL:
            return await self._cancel(ctx, cast(CancelRequest, request))
        if action is TradeAction.STOP:
            return await self._stop(ctx, cast(StopRequest, request))
        return await self._targets(ctx, cast(TargetsRequest, request))

    async def _open(self, row: ActionRecord, action: TradeAction, signal: SignalRow | None) -> Ctx:
        """The trade brought up to date by a pass of the monitor over it (under this action's lease), or
        a Refusal when there is no open trade to act on (`AlreadyDone` when this very action ended it)."""
        sid = row.signal_id
        if signal is None:
            raise Refusal(404, "not_found", f"No trade with id '{sid}'.")
        if signal.status == "rejected":
            raise Refusal(
                404, "not_found", f"Signal '{sid}' was rejected, so it is no trade: {signal.reason}"
            )
        if signal.state != "answered":
            raise TradeBusy(
                f"Trade '{sid}' is still being placed; retry in a moment with the same Idempotency-Key."
            )
        if signal.status == "failed":
            raise Refusal(
                409,
                "trade_not_open",
                f"Trade '{sid}' failed when it was placed, so nothing of it "
                f"is open to {action.value}: {signal.reason}",
            )
        trade = next((t for t in await self.book.open_trades() if t.signal_id == sid), None)
        records = (await self.book.orders_of([sid]))[sid]
        if trade is not None:
            await self.lifecycle.sync_trade(trade, await self.lifecycle.snapshot(), records)
        if trade is None or trade.state != OPEN:
            raise await self._over(sid, signal.symbol, action, row)
        instrument = await self.client.instrument(trade.symbol)
        return Ctx(row, Work(trade, records, instrument, self.settings.margin_mode))

    async def _over(self, sid: str, symbol: str, action: TradeAction, row: ActionRecord) -> Exception:
        """Why an action can't apply to a trade that is over; or, when this very action ended it (a retry
        after a crash between its work and its answer), the answer it would have given."""
        view = await self._view(sid)
        if row.client_order_id and action in (TradeAction.CLOSE, TradeAction.CANCEL):
            order = await self.client.order_detail(symbol, client_order_id=row.client_order_id)
            if order is not None and order.filled_size > 0:
                return AlreadyDone(
                    TradeActionResult(
                        action=action,
                        signal_id=sid,
                        client_order_id=row.client_order_id,
                        outcome=ActionOutcome.CLOSED
                        if action is TradeAction.CLOSE
                        else ActionOutcome.CANCELLED,
                        message=f"closed {fmt(order.filled_size)} contracts at market",
                        closed_size=order.filled_size,
                        trade=view,
                        at=clock.utcnow(),
                    )
                )
        if action is TradeAction.CANCEL and view is not None and view.reason == CANCELLED_BY_HAND:
            return AlreadyDone(
                TradeActionResult(
                    action=action,
                    signal_id=sid,
                    outcome=ActionOutcome.CANCELLED,
                    trade=view,
                    at=clock.utcnow(),
                    message="the unfilled entries were cancelled; nothing was opened",
                )
            )
        state = view.state.value if view is not None else "over"
        how = f" ({view.reason})" if view is not None and view.reason else ""
        return Refusal(
            409,
            "trade_not_open",
            f"Trade '{sid}' is already {state}{how}: there is nothing left to {action.value}.",
        )


def _action_event(
    symbol: str, side: str, signal_id: str, action: TradeAction, message: str, **data: Any
) -> EventRecord:
    """The event of an action's outcome (`manual_close`, `manual_cancel`, `manual_stop`, `manual_targets`)."""
    return EventRecord(
        type=f"manual_{action.value}",
        message=f"{symbol} {side}: {message}",
        signal_id=signal_id,
        symbol=symbol,
        data={"action": action.value, **{k: v for k, v in data.items() if v is not None}},
    )



def _replay(row: ActionRecord) -> Answer:
    assert row.answer is not None and row.status_code is not None  # noqa: S101 - a done row holds its answer
    return Answer(row.status_code, row.answer, replayed=True)

