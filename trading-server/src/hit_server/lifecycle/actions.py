"""A trader's actions on one open trade: close it (all or a part), cancel its unfilled entries, move its
stop, replace its targets (POST /api/v1/trades/{signal_id}/close, /cancel, /stop, /targets).

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
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from pydantic import BaseModel

from hit_server import clock
from hit_server.api.http_errors import ApiError, error_body
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_errors import BloFinError, NotFound, OrderOutcomeUnknown
from hit_server.exchange.blofin_models import (
    MARKET_PRICE,
    WHOLE_POSITION,
    Order,
    OrderRequest,
    OrderSide,
    Position,
    TpslOrder,
    TpslRequest,
)
from hit_server.journal.db import SignalRow
from hit_server.journal.journal import EventRecord, Journal, OrderRecord, journal_fresh_order
from hit_server.journal.trade_actions import ActionRecord, ActionStore
from hit_server.journal.trade_book import ENDED, OPEN, Trade, TradeBook, TradeMovedOn, values_of
from hit_server.journal.trade_lease import TradeLeases
from hit_server.lifecycle.passes import Lifecycle
from hit_server.lifecycle.stops import tightens
from hit_server.lifecycle.take_profits import new_batch
from hit_server.lifecycle.trade_view import TradeViews, trade_view
from hit_server.lifecycle.trade_work import OPEN_ORDER, REPLACED, WATCHED, Work, not_accepted, stop_id
from hit_server.settings import Settings
from hit_server.trading import ids
from hit_server.trading.signal_locks import SignalLocks
from hit_shared.models import OrderRole, fmt
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
from hit_shared.trades import TradeView

log = logging.getLogger(__name__)

LEASE_WAIT_S = 10.0  # how long an action waits for the trade's lease (a pass holds it for one trade)
LEASE_POLL_S = 0.05
RESTING = (*WATCHED, "pending")  # a target not hit, not cancelled: it rests, or waits to be sent
NOT_SENT_YET = ("pending",)  # journaled, never sent: cancelled by not sending it
CANCELLED_BY_HAND = "entries cancelled by hand before any filled"
MAX_TARGET_NUMBER = 99  # t<n>b<k>: n has at most two digits (ids.is_ours)


class Refusal(ApiError):
    """A final answer that the action does not apply (stored under its key, like a result)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class TradeBusy(ApiError):
    """Someone else is working on the trade (the position monitor, another action): retry shortly."""

    status = 503
    code = "trade_busy"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "1"})


class OutcomeUnknown(ApiError):
    """An order was sent and the exchange has not confirmed it yet: a retry with the same key looks it
    up (it is never sent again)."""

    status = 503
    code = "outcome_unknown"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "2"})


class KeyMissing(ApiError):
    status = 400
    code = "idempotency_key_missing"


class KeyReused(ApiError):
    status = 409
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    replayed: bool


@dataclass
class Ctx:
    """One action at work: its row, the trade, its orders, and the exchange's rules for its symbol."""

    row: ActionRecord
    work: Work

    @property
    def trade(self) -> Trade:
        return self.work.trade

    @property
    def sid(self) -> str:
        return self.work.signal_id

    @property
    def symbol(self) -> str:
        return self.work.symbol

    @property
    def side(self) -> str:
        return self.work.trade.side


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


class TradeControls:
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

    # -- the frame: key, lease, answer -----------------------------------------------------------

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
        except _Done as done:
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

    # -- the trade, up to date ---------------------------------------------------------------------

    async def _open(self, row: ActionRecord, action: TradeAction, signal: SignalRow | None) -> Ctx:
        """The trade brought up to date by a pass of the monitor over it (under this action's lease), or
        a Refusal when there is no open trade to act on (`_Done` when this very action ended it)."""
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
                return _Done(
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
            return _Done(
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

    async def _save(self, ctx: Ctx) -> None:
        work = ctx.work
        if work.changed:
            await self.journal.add_or_update_orders(ctx.sid, list(work.changed.values()))
        await self.book.save(ctx.trade, work.events)  # moves the version on: a stale pass drops its view
        for event in work.events:
            log.info("Trade %s: %s", ctx.sid, event.message)
        work.changed.clear()
        work.events.clear()

    async def _position(self, ctx: Ctx) -> Position | None:
        """The trade's own position now: on its side, and the one it followed (not a trader's other one)."""
        for position in await self.client.positions(ctx.symbol):
            if position.positions == 0 or (position.positions > 0) != ctx.trade.is_long:
                continue
            seen = ctx.trade.position_ids
            if not position.position_id or not seen or position.position_id in seen:
                return position
        return None

    async def _view(self, sid: str) -> TradeView | None:
        facts = await self.views.reads.one(sid)
        return None if facts is None else trade_view(facts)

    @staticmethod
    def _resting_entries(work: Work) -> list[OrderRecord]:
        return [r for r in work.of(OrderRole.ENTRY) if r.state in (*OPEN_ORDER, "sending", "unknown")]

    # -- close -------------------------------------------------------------------------------------

    async def _close(self, ctx: Ctx, request: CloseRequest) -> TradeActionResult:
        sent = await self._sent_close(ctx)
        if request.fraction < 1 and (sent is not None or not await self._whole(ctx, request.fraction)):
            return await self._close_part(ctx, request.fraction, sent)
        return await self._close_all(ctx, TradeAction.CLOSE, sent)

    async def _whole(self, ctx: Ctx, fraction: Decimal) -> bool:
        """Whether this fraction of the position, on the lot grid, is all of it."""
        position = await self._position(ctx)
        if position is None:
            return True  # nothing to split: the close of everything says why
        held = abs(position.positions)
        return ctx.work.instrument.round_size_down(held * fraction) >= held

    async def _sent_close(self, ctx: Ctx) -> Order | None:
        """This action's close at market if an earlier attempt of it sent one (looked up, never resent:
        see `_unseen`)."""
        cid = ctx.row.client_order_id
        if not cid:
            return None
        order = await self.client.order_detail(ctx.symbol, client_order_id=cid)
        if order is None:
            self._unseen(ctx, "close")
        return order

    def _unseen(self, ctx: Ctx, what: str) -> None:
        """An earlier attempt recorded this action's order (it may have been sent) and a lookup does not
        find it. Lookups lag behind acceptance, so that proves nothing until RECONCILE_GRACE_SECONDS have
        passed since it was recorded (as for the signals' orders, `trading/reconcile.py`): until then the
        answer is "not known yet", and nothing is sent. After it, the order was never carried out, and it
        may be sent (under the same clientOrderId)."""
        grace = self.settings.reconcile_grace_seconds
        if (clock.utcnow() - ctx.row.updated_at).total_seconds() < grace:
            raise OutcomeUnknown(
                f"This action's {what} may have reached the exchange and is not found there yet; retry with "
                f"the same Idempotency-Key to look it up again (for {grace:g} seconds after it was sent it "
                "is only looked up, never sent again)."
            )

    async def _record_close(self, ctx: Ctx) -> str:
        cid = ids.action_close_id(ctx.sid, ctx.row.seq)
        if ctx.row.client_order_id != cid:
            await self.store.record_order(ctx.row.key, cid)  # before it is sent (rule 1)
        return cid

    async def _close_all(self, ctx: Ctx, action: TradeAction, sent: Order | None) -> TradeActionResult:
        """Cancel the resting entries and targets, close the whole position at market, and let the
        monitor's pass finish the trade (its stops go with the position). `sent`: this action's close,
        found on a retry."""
        work = ctx.work
        cid = ids.action_close_id(ctx.sid, ctx.row.seq)
        held = Decimal(0)
        if sent is None:
            position = await self._position(ctx)
            if position is None:
                raise self._nothing_to_close(ctx)
            held = abs(position.positions)
        cancelled = await self._cancel_entries(work)  # first: no entry fills after the close
        cancelled += await self._cancel_targets(work)  # and no target's fill comes after it
        if sent is None:
            await self._record_close(ctx)
            await self._save(ctx)  # the cancels are journaled before the close leaves
            closed = await self._send_close(ctx, cid, held)
        else:
            closed = sent.filled_size
        left = await self._position(ctx)
        if left is None:
            await self._finish(ctx)
        outcome = ActionOutcome.CLOSED if action is TradeAction.CLOSE else ActionOutcome.CANCELLED
        if left is not None:
            message = (
                f"closed {fmt(closed)} contracts at market; {fmt(abs(left.positions))} are still open "
                "(more than the exchange closes in one market order) with their stop: close again"
            )
            outcome = ActionOutcome.PARTLY_CLOSED
        elif closed > 0:
            message = f"closed {fmt(closed)} contracts at market"
        else:
            message = "the position had already closed on the exchange before the close reached it"
        if cancelled:
            message += f"; {cancelled} resting order{'s' if cancelled != 1 else ''} cancelled"
        return TradeActionResult(
            action=action,
            signal_id=ctx.sid,
            outcome=outcome,
            message=message,
            closed_size=closed,
            cancelled_orders=cancelled,
            client_order_id=cid if closed > 0 else None,
            at=clock.utcnow(),
        )

    async def _finish(self, ctx: Ctx) -> None:
        """The position is flat: the monitor's own pass over the trade finishes it now, if the exchange's
        history shows the close already (else its next passes do)."""
        await self._save(ctx)
        await self.lifecycle.sync_trade(ctx.trade, await self.lifecycle.snapshot(), ctx.work.records)

    async def _send_close(self, ctx: Ctx, cid: str, held: Decimal) -> Decimal:
        """BloFin's close-position (reduce-only by nature) under the action's id; the contracts it closed
        (0 when the position was flat before it arrived)."""
        try:
            await self.client.close_position(ctx.symbol, ctx.work.margin_mode, client_order_id=cid)
        except OrderOutcomeUnknown as exc:
            raise OutcomeUnknown(
                "The close was sent but BloFin has not confirmed it yet; retry with the same "
                "Idempotency-Key to learn the outcome (the close is looked up, never sent again)."
            ) from exc
        except BloFinError as exc:
            if exc.retryable:
                await self._not_taken(ctx, exc)
                raise
            if await self._position(ctx) is not None:
                raise Refusal(
                    409,
                    "exchange_refused",
                    f"BloFin refused to close the position: {exc.message}. "
                    "Nothing was closed; the stop stays in place.",
                ) from exc
            return Decimal(0)  # flat already: a target or the stop closed it first
        order = await self.client.order_detail(ctx.symbol, client_order_id=cid)
        return order.filled_size if order is not None and order.filled_size > 0 else held

    async def _not_taken(self, ctx: Ctx, exc: BloFinError) -> None:
        """The exchange provably did not take the order (a 429): a retry sends afresh."""
        if not_accepted(exc):
            await self.store.record_order(ctx.row.key, None)

    def _nothing_to_close(self, ctx: Ctx) -> Refusal:
        if ctx.trade.filled == 0:
            return Refusal(
                409,
                "nothing_to_close",
                f"Nothing of trade '{ctx.sid}' has filled, so there is no "
                "position to close; to cancel its resting entries use POST "
                f"/api/v1/trades/{ctx.sid}/cancel.",
            )
        return Refusal(
            409,
            "nothing_to_close",
            f"The position of trade '{ctx.sid}' is already closed on the "
            "exchange; the position monitor is finishing the trade.",
        )

    async def _close_part(self, ctx: Ctx, fraction: Decimal, sent: Order | None) -> TradeActionResult:
        """Close a part at market (reduce-only), then check the stop covers what is left and split the
        targets not hit over it."""
        work, inst = ctx.work, ctx.work.instrument
        cid = ids.action_close_id(ctx.sid, ctx.row.seq)
        if sent is None:
            position = await self._position(ctx)
            if position is None:
                raise self._nothing_to_close(ctx)
            self._no_resting_entries(ctx, "a part of the position can be closed")
            held = abs(position.positions)
            size = inst.round_size_down(held * fraction)
            self._check_part(ctx, held, size, fraction)
            await self._record_close(ctx)
            closed = await self._send_part(ctx, cid, size)
        else:
            closed = sent.filled_size
        left = await self._position(ctx)
        if left is None:  # what was left closed meanwhile (a target, the stop): the trade is over
            await self._finish(ctx)
            return TradeActionResult(
                action=TradeAction.CLOSE,
                signal_id=ctx.sid,
                outcome=ActionOutcome.CLOSED,
                closed_size=closed,
                message=f"closed {fmt(closed)} contracts at market; nothing is left open",
                client_order_id=cid,
                at=clock.utcnow(),
            )
        await self.lifecycle.stops.cover(work, await self.lifecycle.snapshot(), left)  # never naked
        cancelled, targets = await self._replace_targets(ctx, None)
        message = (
            f"closed {fmt(closed)} contracts at market; {fmt(abs(left.positions))} stay open, the stop "
            f"covering all of them{targets.note()}"
        )
        return TradeActionResult(
            action=TradeAction.CLOSE,
            signal_id=ctx.sid,
            outcome=ActionOutcome.PARTLY_CLOSED,
            message=message,
            closed_size=closed,
            cancelled_orders=cancelled,
            client_order_id=cid,
            at=clock.utcnow(),
        )

    def _check_part(self, ctx: Ctx, held: Decimal, size: Decimal, fraction: Decimal) -> None:
        inst = ctx.work.instrument
        grid = f"on the lot grid ({fmt(inst.lot_size)})"
        part = f"{fmt(fraction * 100)}% of {fmt(held)} contracts is {fmt(size)} {grid}"
        if size < inst.min_size:
            raise Refusal(
                422,
                "size_refused",
                f"{part}, under the minimum order size of {fmt(inst.min_size)} "
                f"contracts of {ctx.symbol}: close a larger part.",
            )
        if held - size < inst.min_size:
            raise Refusal(
                422,
                "size_refused",
                f"{part}, which would leave {fmt(held - size)} contracts, under "
                f"the minimum order size of {fmt(inst.min_size)}: close all of it (fraction 1) or "
                "a smaller part.",
            )
        if size > inst.max_market_size:
            raise Refusal(
                422,
                "size_refused",
                f"{part}, more than the {fmt(inst.max_market_size)} contracts "
                "BloFin takes in one market order: close a smaller part.",
            )

    async def _send_part(self, ctx: Ctx, cid: str, size: Decimal) -> Decimal:
        request = OrderRequest(
            inst_id=ctx.symbol,
            side=cast(OrderSide, ctx.work.close_side),
            order_type="market",
            size=size,
            margin_mode=ctx.work.margin_mode,
            client_order_id=cid,
            reduce_only=True,
        )
        try:
            await self.client.place_order(request)
        except OrderOutcomeUnknown as exc:
            raise OutcomeUnknown(
                "The partial close was sent but BloFin has not confirmed it yet; retry with the same "
                "Idempotency-Key to learn the outcome (it is looked up, never sent again)."
            ) from exc
        except BloFinError as exc:
            if exc.retryable:
                await self._not_taken(ctx, exc)
                raise
            raise Refusal(
                409,
                "exchange_refused",
                f"BloFin refused the partial close: {exc.message}. Nothing was closed.",
            ) from exc
        order = await self.client.order_detail(ctx.symbol, client_order_id=cid)
        return order.filled_size if order is not None and order.filled_size > 0 else size

    def _no_resting_entries(self, ctx: Ctx, what: str) -> None:
        resting = self._resting_entries(ctx.work)
        if resting:
            raise Refusal(
                409,
                "entries_resting",
                f"{len(resting)} entr{'y' if len(resting) == 1 else 'ies'} of "
                f"trade '{ctx.sid}' still rest on the exchange; {what} once they have filled or been "
                f"cancelled (POST /api/v1/trades/{ctx.sid}/cancel).",
            )

    # -- cancel ------------------------------------------------------------------------------------

    async def _cancel(self, ctx: Ctx, request: CancelRequest) -> TradeActionResult:
        """Cancel the unfilled entries: a trade with nothing filled ends; one with a fill goes on, or is
        closed when `close_filled` asks for it."""
        work, trade = ctx.work, ctx.trade
        if ctx.row.client_order_id:  # an earlier attempt of this action was closing the position
            return await self._close_all(ctx, TradeAction.CANCEL, await self._sent_close(ctx))
        cancelled = await self._cancel_entries(work)
        position = await self._position(ctx)
        if position is None and trade.filled == 0:
            cancelled += await self._cancel_targets(work)
            trade.state, trade.entries_done, trade.exit_reason = ENDED, True, CANCELLED_BY_HAND
            work.event(
                "entries_cancelled",
                f"entries cancelled by hand: {cancelled} order"
                f"{'s' if cancelled != 1 else ''} cancelled; nothing was opened",
                cancelled=cancelled,
            )
            return TradeActionResult(
                action=TradeAction.CANCEL,
                signal_id=ctx.sid,
                outcome=ActionOutcome.CANCELLED,
                cancelled_orders=cancelled,
                at=clock.utcnow(),
                message=f"cancelled {cancelled} unfilled entr{'y' if cancelled == 1 else 'ies'}; nothing had "
                "filled, so the trade is over",
            )
        if request.close_filled and position is not None:
            result = await self._close_all(ctx, TradeAction.CANCEL, None)
            return result.model_copy(update={"cancelled_orders": result.cancelled_orders + cancelled})
        if not cancelled:
            if position is None:
                raise self._nothing_to_close(ctx)
            raise Refusal(
                409,
                "nothing_to_cancel",
                f"Every entry of trade '{ctx.sid}' has filled: nothing is "
                'left to cancel. To close the position send {"close_filled": true}, or POST '
                f"/api/v1/trades/{ctx.sid}/close.",
            )
        held = fmt(abs(position.positions)) if position is not None else fmt(trade.filled)
        return TradeActionResult(
            action=TradeAction.CANCEL,
            signal_id=ctx.sid,
            outcome=ActionOutcome.ENTRIES_CANCELLED,
            cancelled_orders=cancelled,
            at=clock.utcnow(),
            message=f"cancelled {cancelled} unfilled entr{'y' if cancelled == 1 else 'ies'}; the {held} "
            "contracts filled stay open with their stop and targets (close_filled closes them too)",
        )

    async def _cancel_entries(self, work: Work) -> int:
        """Cancel the entries still resting; the number cancelled. An entry that filled meanwhile is left
        to the monitor's pass, which reports its fill."""
        count = 0
        for record in self._resting_entries(work):
            work.trade.entries_done = True
            if await self._cancel_order(work, record):
                count += 1
        return count

    async def _cancel_targets(self, work: Work) -> int:
        """Cancel the targets still resting (the number cancelled); those never sent are not sent any more."""
        count = 0
        for record in work.of(OrderRole.TAKE_PROFIT):
            if record.state in NOT_SENT_YET:
                record.state = "not_sent"
                work.touch(record)
            elif record.state in WATCHED and await self._cancel_order(work, record, REPLACED):
                count += 1
        return count

    async def _cancel_order(self, work: Work, record: OrderRecord, state: str | None = None) -> bool:
        """Cancel one order by its clientOrderId; True when it was cancelled (its state then as the
        exchange shows it, or `state`). An order no longer resting is left as journaled for the monitor's
        pass (which reports a fill), or marked not sent when the exchange never had it."""
        try:
            await self.client.cancel_order(work.symbol, client_order_id=record.client_order_id)
        except NotFound:
            order = await self.client.order_detail(work.symbol, client_order_id=record.client_order_id)
            if order is None and record.state in ("sending", "unknown"):
                record.state = "not_sent"
                work.touch(record)
            return False
        order = await self.client.order_detail(work.symbol, client_order_id=record.client_order_id)
        if state is None:
            state = order.state if order is not None and order.state == "partially_canceled" else "canceled"
        record.state = state
        if order is not None:
            record.order_id = order.order_id
        work.touch(record)
        return True

    # -- stop --------------------------------------------------------------------------------------

    async def _stop(self, ctx: Ctx, request: StopRequest) -> TradeActionResult:
        """Place the new stop, confirm it live, then cancel the old ones; the old ones stay if it fails."""
        work, trade = ctx.work, ctx.trade
        position = await self._position(ctx)
        if position is None:
            raise Refusal(
                409,
                "no_position",
                f"Nothing of trade '{ctx.sid}' is open on the exchange, so its stop "
                "can't be moved: while entries rest their stop rides on them; once one fills the stop "
                "can be moved.",
            )
        record = next(
            (r for r in work.of(OrderRole.STOP_LOSS) if r.client_order_id == ctx.row.client_order_id), None
        )
        level = self._stop_level(ctx, request, position)
        earlier: TpslOrder | None = None
        if record is not None:  # an earlier attempt of this action placed it: look it up
            earlier = await self.client.tpsl_detail(ctx.symbol, client_order_id=record.client_order_id)
            if earlier is None:
                self._unseen(ctx, "stop")
        placed: TpslOrder | _Ack | None = earlier if earlier is not None and earlier.state == "live" else None
        if placed is None:
            await self._check_stop(ctx, level, record is None)
            if record is None:
                record = await self._reserve_stop(ctx, abs(position.positions), level)
            placed = await self._place_stop(ctx, record, level, earlier)
        assert record is not None  # noqa: S101 - a live stop of this action was found by its journaled record
        record.order_id, record.state = placed.tpsl_id, "live"
        work.touch(record)
        old_level = trade.stop_price
        trade.stop_price = level
        trade.at_breakeven = request.breakeven or level == work.instrument.round_price(position.average_price)
        await self._save(ctx)  # the new stop is the trade's before any old one is cancelled
        cancelled = await self._cancel_old_stops(ctx, record, level)
        what = "breakeven " if request.breakeven else ""
        message = f"stop moved to {what}{fmt(level)} (from {fmt(old_level)}); the new stop is live"
        if cancelled:
            message += f" and {cancelled} old stop order{'s' if cancelled != 1 else ''} cancelled"
        return TradeActionResult(
            action=TradeAction.STOP,
            signal_id=ctx.sid,
            outcome=ActionOutcome.STOP_MOVED,
            message=message,
            client_order_id=record.client_order_id,
            cancelled_orders=cancelled,
            at=clock.utcnow(),
        )

    def _stop_level(self, ctx: Ctx, request: StopRequest, position: Position) -> Decimal:
        inst = ctx.work.instrument
        if request.breakeven:
            if position.average_price <= 0:
                raise Refusal(
                    409,
                    "stop_refused",
                    "The exchange reports no average entry price for this "
                    "position, so breakeven is not known; give the stop's price instead.",
                )
            return inst.round_price(position.average_price)
        assert request.price is not None  # noqa: S101 - StopRequest holds a price or breakeven
        # on the tick grid away from the market, as the executor rounds a stop (never tighter than asked)
        return inst.round_price(request.price, "down" if ctx.trade.is_long else "up")

    async def _check_stop(self, ctx: Ctx, level: Decimal, first_attempt: bool) -> None:
        trade = ctx.trade
        long = trade.is_long
        if level <= 0:
            raise Refusal(
                422, "stop_refused", "The stop's price rounds to 0 on the tick grid; give a price above 0."
            )
        mark = await self.client.mark_price(ctx.symbol)
        if (level >= mark) if long else (level <= mark):
            where = "below" if long else "above"
            raise Refusal(
                422,
                "stop_refused",
                f"A {trade.side}'s stop must be {where} the mark price "
                f"{fmt(mark)}: a stop at {fmt(level)} would close the position at once.",
            )
        if first_attempt and level == trade.stop_price:
            raise Refusal(409, "stop_unchanged", f"The stop of trade '{ctx.sid}' is already at {fmt(level)}.")
        if first_attempt and not tightens(trade, level):
            where = "above" if long else "below"
            raise Refusal(
                422,
                "stop_refused",
                f"A stop only moves towards the market (the trade's risk was "
                f"sized on its stop): for a {trade.side} the new stop must be {where} the stop in "
                f"force at {fmt(trade.stop_price)}, and {fmt(level)} is not.",
            )

    async def _reserve_stop(self, ctx: Ctx, held: Decimal, level: Decimal) -> OrderRecord:
        """The new stop's intent, journaled under the monitor's next stop id (`s<k>`, reserved so no other
        process takes it) and written on the action's row, before it is sent."""
        work, trade = ctx.work, ctx.trade

        def stop_number(k: int) -> OrderRecord:
            return OrderRecord(
                client_order_id=stop_id(trade.signal_id, k),
                role=OrderRole.STOP_LOSS,
                seq=k + 1,
                symbol=ctx.symbol,
                side=work.close_side,
                order_type="tpsl",
                size=held,
                trigger_price=level,
                state="sending",
            )

        first = max(trade.stop_moves, ids.last_number((r.client_order_id for r in work.records), "stop")) + 1
        record = await journal_fresh_order(self.journal.reserve_order, trade.signal_id, stop_number, first)
        trade.stop_moves = record.seq - 1
        work.touch(record)
        await self.store.record_order(ctx.row.key, record.client_order_id)
        return record

    async def _place_stop(
        self, ctx: Ctx, record: OrderRecord, level: Decimal, earlier: TpslOrder | None
    ) -> TpslOrder | _Ack:
        """Send the stop (a whole-position stop at `level`) and confirm it is live; its TP/SL order."""
        work, trade = ctx.work, ctx.trade
        stays = f"the stop at {fmt(trade.stop_price)} stays in place"
        if earlier is not None:  # this action's stop, found but no longer live (fired or cancelled)
            record.order_id, record.state = earlier.tpsl_id, earlier.state
            work.touch(record)
            raise Refusal(
                409,
                "stop_not_moved",
                f"The new stop at {fmt(level)} is {earlier.state} on the exchange; {stays}.",
            )
        request = TpslRequest(
            inst_id=ctx.symbol,
            side=cast(OrderSide, work.close_side),
            margin_mode=work.margin_mode,
            size=WHOLE_POSITION,
            client_order_id=record.client_order_id,
            sl_trigger_price=level,
            sl_order_price=MARKET_PRICE,
        )
        try:
            ack = await self.client.place_tpsl(request)
        except OrderOutcomeUnknown as exc:
            record.state = "unknown"
            work.touch(record)
            raise OutcomeUnknown(
                f"The new stop at {fmt(level)} was sent but BloFin has not confirmed it yet; "
                f"{stays}. Retry with the same Idempotency-Key to learn the outcome (the stop "
                "is looked up, never sent twice)."
            ) from exc
        except BloFinError as exc:
            record.state = "failed" if not exc.retryable else "not_sent"
            work.touch(record)
            if exc.retryable:
                await self._not_taken(ctx, exc)
                raise
            log.warning("%s: the new stop at %s was refused: %s", ctx.symbol, level, exc.message)
            raise Refusal(
                409,
                "stop_not_moved",
                f"BloFin refused the new stop at {fmt(level)} ({exc.message}); {stays}.",
            ) from exc
        found = None
        with contextlib.suppress(BloFinError):
            found = await self.client.tpsl_detail(ctx.symbol, client_order_id=record.client_order_id)
        if found is not None and found.state != "live":
            return await self._place_stop(ctx, record, level, found)
        if found is None:  # acknowledged; a lookup that lags behind acceptance proves nothing (stops.py)
            return _Ack(ack.tpsl_id)
        return found

    async def _cancel_old_stops(self, ctx: Ctx, record: OrderRecord, level: Decimal) -> int:
        """Cancel the trade's other stops now that the new one is live; a stop tighter than the new level
        (a trader's by hand) is not the action's to undo."""
        work, long = ctx.work, ctx.trade.is_long
        count = 0
        for stop in await self.client.pending_tpsl(ctx.symbol):
            trigger = stop.sl_trigger_price
            if (
                stop.side != work.close_side
                or trigger is None
                or stop.state != "live"
                or stop.client_order_id == record.client_order_id
                or stop.tpsl_id == record.order_id
            ):
                continue
            if (trigger > level) if long else (trigger < level):
                continue
            with contextlib.suppress(NotFound):
                await self.client.cancel_tpsl(ctx.symbol, tpsl_id=stop.tpsl_id)
                count += 1
        for earlier in work.of(OrderRole.STOP_LOSS):
            if earlier is not record and earlier.state in ("live", "attached", "effective"):
                earlier.state = REPLACED
                work.touch(earlier)
        return count

    # -- targets -----------------------------------------------------------------------------------

    async def _targets(self, ctx: Ctx, request: TargetsRequest) -> TradeActionResult:
        """Cancel the targets not hit and split what the trade holds over the new prices."""
        work, trade = ctx.work, ctx.trade
        position = await self._position(ctx)
        if position is None:
            raise Refusal(
                409,
                "no_position",
                f"Nothing of trade '{ctx.sid}' is open on the exchange, so it has no targets to replace yet.",
            )
        self._no_resting_entries(ctx, "its targets can be replaced")
        inst = work.instrument
        mark = await self.client.mark_price(ctx.symbol)
        prices: list[Decimal] = []
        for asked in request.targets:
            price = inst.round_price(asked)
            if price <= 0 or ((price <= mark) if trade.is_long else (price >= mark)):
                where = "above" if trade.is_long else "below"
                raise Refusal(
                    422,
                    "targets_refused",
                    f"A {trade.side}'s targets must be {where} the mark price "
                    f"{fmt(mark)}: a target at {fmt(price)} would fill at once.",
                )
            if price not in prices:
                prices.append(price)
        prices.sort(reverse=not trade.is_long)  # the nearest first, as TP1
        # numbered after the last target hit: the nearest new one is TP1 when none was hit (the stop
        # policy moves the stop to breakeven after TP1), and a number hit is never used again
        first = max(trade.targets_hit, default=0) + 1
        if first + len(prices) - 1 > MAX_TARGET_NUMBER:
            raise Refusal(
                409,
                "targets_refused",
                f"Trade '{ctx.sid}' has had its targets replaced too often "
                f"(target numbers end at {MAX_TARGET_NUMBER}).",
            )
        cancelled, targets = await self._replace_targets(
            ctx, [(first + n, price) for n, price in enumerate(prices)]
        )
        left = await self._position(ctx)
        held = fmt(abs(left.positions)) if left is not None else "0"
        message = (
            f"{cancelled} target{'s' if cancelled != 1 else ''} cancelled; {targets.placed} new target"
            f"{'s' if targets.placed != 1 else ''} at {', '.join(fmt(p) for p in prices)} over the {held} "
            f"contracts held{targets.note(only_failures=True)}"
        )
        return TradeActionResult(
            action=TradeAction.TARGETS,
            signal_id=ctx.sid,
            outcome=ActionOutcome.TARGETS_REPLACED,
            message=message,
            cancelled_orders=cancelled,
            at=clock.utcnow(),
        )

    async def _replace_targets(self, ctx: Ctx, new: list[tuple[int, Decimal]] | None) -> tuple[int, _Placed]:
        """Cancel the targets not hit and place a batch over the position held now, at the `new` prices
        (numbered as given) or, when None, at the prices of the targets cancelled (re-split after a partial
        close). (cancelled, what became of the new batch). A target the exchange did not accept now (busy,
        limiting us) stays "pending", its intent journaled: the position monitor sends it again at its
        next pass, as it does its own (`take_profits.py`)."""
        work = ctx.work
        kept: dict[int, Decimal] = {}
        cancelled = 0
        for record in work.of(OrderRole.TAKE_PROFIT):
            if record.state not in RESTING:
                continue
            if record.state in NOT_SENT_YET:
                record.state = "not_sent"
                work.touch(record)
            elif not await self._cancel_order(work, record, REPLACED):
                if record.state != "not_sent":
                    continue  # it filled meanwhile: the monitor's pass reports the hit
            else:
                cancelled += 1
            if record.price is not None:
                kept.setdefault(record.seq, record.price)
        prices = new if new is not None else sorted(kept.items())
        position = await self._position(ctx)
        if position is None or not prices:
            return cancelled, _Placed()
        planned = [
            OrderRecord(
                client_order_id="",
                role=OrderRole.TAKE_PROFIT,
                seq=seq,
                symbol=ctx.symbol,
                side=work.close_side,
                order_type="limit",
                size=Decimal(0),
                price=price,
            )
            for seq, price in prices
        ]
        batch = new_batch(work, planned, abs(position.positions))
        if not batch:
            return cancelled, _Placed()
        await self.lifecycle.targets.send_batch(work, batch)
        return cancelled, _Placed(  # "unknown": sent, looked up by the monitor
            placed=sum(1 for r in batch if r.state in ("live", "unknown")),
            waiting=sum(1 for r in batch if r.state == "pending"),
            refused=sum(1 for r in batch if r.state == "failed"),
        )


class _Done(Exception):
    """This very action already did its work (found on a retry after a crash): its answer."""

    def __init__(self, result: TradeActionResult) -> None:
        super().__init__(result.message)
        self.result = result


@dataclass(frozen=True)
class _Ack:
    """A TP/SL order the exchange acknowledged, its lookup not showing it yet."""

    tpsl_id: str


@dataclass(frozen=True)
class _Placed:
    """What became of a batch of new targets: placed (or sent, its outcome looked up by the monitor),
    waiting (not accepted now: the monitor sends them again) and refused by the exchange."""

    placed: int = 0
    waiting: int = 0
    refused: int = 0

    def note(self, *, only_failures: bool = False) -> str:
        notes = []
        if self.waiting:
            notes.append(
                f"{self.waiting} target{'s' if self.waiting != 1 else ''} not accepted by the exchange now "
                "(busy): the position monitor sends them again at its next pass"
            )
        if self.refused:
            notes.append(
                f"{self.refused} target{'s' if self.refused != 1 else ''} refused by the exchange (see the "
                "trade's events): send the targets again with POST .../targets"
            )
        if notes:
            return "; " + "; ".join(notes)
        if only_failures or not self.placed:
            return ""
        return f", {self.placed} target{'s' if self.placed != 1 else ''} re-split over them"


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
