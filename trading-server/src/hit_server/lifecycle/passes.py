"""Following each placed trade to its end, one pass at a time (the position monitor calls `sync_all`).

A pass reads the account once (positions, resting orders, live TP/SL orders) and, for every open
trade of the journal, compares what the journal believes with what the exchange shows, then acts:
1. orders the journal holds as open are refreshed (an order no longer resting is looked up by its
   clientOrderId): new entry fills and filled targets become events;
2. with a position of its own: take profits are placed for the contracts filled and not yet covered
   (`take_profits.py`), the stop is kept covering the whole position and moved by the stop policy
   (`stops.py`), and entries still resting after ENTRY_TIMEOUT_MINUTES are cancelled;
3. flat after fills: the trade is over; every order of it still resting is cancelled and the exit,
   its reason, the realised P&L and fees are read from the exchange (`pnl.py`);
4. flat before any fill: the entries are cancelled when the price reaches the stop or they expire.
A position on the symbol that is not the trade's (the other side, or another position than the one
it followed) is never closed or re-stopped by it: the trade's own position is gone, and the trade
ends (`_gone`). Each trade's work is isolated: one that fails is logged, reported once and retried
at the next pass, and the others go on (`_sync_isolated`).
The truth is always re-read from the exchange, so a pass that follows a lost WebSocket, a crash or a
restart misses nothing: it finds the orders' final states and reports each change once (what was
reported is kept in the `trades` table).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from hit_server import clock
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_errors import BloFinError, NotFound, OrderOutcomeUnknown
from hit_server.exchange.blofin_models import Order, Position
from hit_server.exchange.mirror import AccountMirror
from hit_server.journal.journal import HALT_CLOSE_EVENT, EventRecord, Journal, OrderRecord
from hit_server.journal.trade_book import CLOSED, ENDED, Trade, TradeBook, TradeMovedOn, values_of
from hit_server.lifecycle.pnl import Exit, exit_of
from hit_server.lifecycle.stops import StopKeeper
from hit_server.lifecycle.take_profits import TargetKeeper
from hit_server.lifecycle.trade_work import NOT_SENT, OPEN_ORDER, WATCHED, Snapshot, Work, close_id
from hit_server.settings import Settings
from hit_shared.models import OrderRole, fmt

log = logging.getLogger(__name__)


class Lifecycle:
    def __init__(
        self, client: BloFinClient, journal: Journal, book: TradeBook, settings: Settings,
        mirror: AccountMirror | None = None,
    ) -> None:
        self.client = client
        self.mirror = mirror
        self.journal = journal
        self.book = book
        self.settings = settings
        self.stops = StopKeeper(
            client, journal.add_or_update_orders, journal.reserve_order, settings.stop_policy
        )
        self.targets = TargetKeeper(client, journal.add_or_update_orders, journal.orders_of)
        self.entry_timeout = timedelta(minutes=settings.entry_timeout_minutes)
        self.passes = 0
        self.foreign_reported: set[str] = set()  # positions not ours, logged once each
        self.failing: dict[str, str] = {}  # signal_id -> the failure last reported for it
        self._one_pass_at_a_time = asyncio.Lock()

    async def snapshot(self, *, reread: bool = False) -> Snapshot:
        """The account now: from the account mirror when it is live (no request: the stream keeps it
        current), else, or when asked to `reread`, from three REST reads."""
        mirror = self.mirror
        if mirror is not None and mirror.live and not reread:
            positions = {p.inst_id: p for p in mirror.positions()}
            orders = {o.client_order_id: o for o in mirror.open_orders() if o.client_order_id}
            return Snapshot(positions, orders, mirror.live_tpsl(), ended=mirror.closed_orders(),
                            streamed=True)
        # positions first: a fill after this read shows up as extra coverage, never as a missing stop
        positions = {p.inst_id: p for p in await self.client.positions()}
        orders = {o.client_order_id: o for o in await self.client.pending_orders() if o.client_order_id}
        return Snapshot(positions, orders, await self.client.pending_tpsl())

    async def sync_all(self, *, reread: bool = False) -> int:
        """One pass over every open trade; the number of trades looked at. Passes of one process never
        overlap (the monitor's own, a reconciliation asked for meanwhile): the trade lease is the
        process's, so it can't keep two passes of one process apart (found by the simulation, seed
        10: two overlapping passes sent one target twice)."""
        async with self._one_pass_at_a_time:
            return await self._sync_all(reread)

    async def _sync_all(self, reread: bool) -> int:
        self.passes += 1
        trades = await self.book.open_trades()
        if not trades:
            self.failing.clear()
            return 0
        snap = await self.snapshot(reread=reread)
        orders = await self.book.orders_of([t.signal_id for t in trades])
        for trade in trades:
            await self._sync_isolated(trade, snap, orders[trade.signal_id])
            # Let waiting requests in between trades: with the journal and the paper exchange in
            # this process nothing else in a pass suspends, and a pass over many trades would hold
            # new signals back for its whole length.
            await asyncio.sleep(0)
        for signal_id in self.failing.keys() - {t.signal_id for t in trades}:
            del self.failing[signal_id]
        return len(trades)

    async def _sync_isolated(self, trade: Trade, snap: Snapshot, records: list[OrderRecord]) -> None:
        """One trade's work, whose failure never ends the pass for the others (rule 2 holds for them:
        their stops are still repaired). An exchange that is busy or unreachable postpones the trade
        to the next pass; anything else is logged with its traceback and reported once as an event
        until it clears. Either way the trade is tried again at the next pass. Cancellation (the
        server stopping) is not an Exception and goes through."""
        try:
            async with self._working_on(trade) as ours:
                if ours:
                    await self.sync_trade(trade, snap, records, give_back_lease=True)
                else:
                    await self.guard_stop(trade, snap, records)
        except TradeMovedOn:
            log.info("Trade %s: another process moved it on first; read afresh next pass", trade.signal_id)
            return
        except BloFinError as exc:
            if exc.retryable or isinstance(exc, OrderOutcomeUnknown):
                log.warning("Trade %s: pass postponed (%s)", trade.signal_id, type(exc).__name__)
            else:
                await self._failed(trade, exc)
            return
        except Exception as exc:
            await self._failed(trade, exc)
            return
        if self.failing.pop(trade.signal_id, None) is not None:
            log.info("Trade %s: its pass works again", trade.signal_id)

    @contextlib.asynccontextmanager
    async def _working_on(self, trade: Trade) -> AsyncIterator[bool]:
        """Whether this process may work on the trade in this pass: it holds the trade's lease
        (`trade_lease.py`) and nobody saved the trade since this pass read it. The pass's snapshot of
        the exchange and its read of the journal are then no older than the last work on the trade,
        so nothing is undone on the exchange from a stale view (found by the simulation, seed 170: a
        second process's pass, reading the trade before the first process saw its entry fill, took
        the trade for one that never filled and cancelled its targets)."""
        if not await self.book.lease_unless_moved_on(trade):
            log.debug("Trade %s: another process is working on it", trade.signal_id)
            yield False
            return
        try:
            yield True
        finally:
            await self.book.leases.give_back(trade.signal_id)

    async def guard_stop(self, trade: Trade, snap: Snapshot, records: list[OrderRecord]) -> None:
        """Rule 2 waits for no lease: while another process works on the trade (or its lease lapses
        after that process died), this one still restores the stop of a position left without one.
        Placing a stop is the one thing done from a view that may be stale: at worst a second stop
        covers the position; nothing is cancelled, and the trade's record is left to the lease holder."""
        position = snap.positions.get(trade.symbol)
        if position is None or position.positions == 0:
            return
        _first_sight(trade, records)
        work = Work(trade, records, await self.client.instrument(trade.symbol), self.settings.margin_mode)
        if not _owns(work, position):
            return
        try:
            await self.stops.cover(work, snap, position)
        finally:
            if work.changed:
                await self.journal.add_or_update_orders(trade.signal_id, list(work.changed.values()))
            if work.events:
                await self.journal.add_events(work.events)
            for event in work.events:
                log.info("Trade %s: %s", trade.signal_id, event.message)

    async def _failed(self, trade: Trade, exc: Exception) -> None:
        """Log (with the traceback) and report a trade's failure, once per distinct failure: a trade
        failing the same way at every pass would otherwise flood the log and the event feed."""
        what = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}"[:200]
        if self.failing.get(trade.signal_id) == what:
            log.debug("Trade %s: its pass failed again (%s)", trade.signal_id, what)
            return
        log.error("Trade %s: its pass failed; the other trades go on, this one is retried at every "
                  "pass", trade.signal_id, exc_info=exc)
        self.failing[trade.signal_id] = what
        event = EventRecord(
            type="trade_pass_failed", signal_id=trade.signal_id, symbol=trade.symbol,
            message=f"{trade.symbol} {trade.side}: the position monitor could not work on this trade "
                    f"({what}); it tries again at every pass",
            data={"error": type(exc).__name__},
        )
        try:
            await self.journal.add_events([event])
        except Exception:
            log.exception("Trade %s: the failure could not be recorded as an event", trade.signal_id)

    async def sync_trade(
        self, trade: Trade, snap: Snapshot, records: list[OrderRecord], *, give_back_lease: bool = False
    ) -> None:
        """The trade's work in a pass, under its lease; `give_back_lease`: the lease is given back with
        the trade's save, when there is one (a pass's work on the trade ends there)."""
        _first_sight(trade, records)
        work = Work(trade, records, await self.client.instrument(trade.symbol), self.settings.margin_mode)
        before = values_of(trade)
        try:
            await self._advance(work, snap)
        finally:
            if work.changed:
                await self.journal.add_or_update_orders(trade.signal_id, list(work.changed.values()))
            if work.changed or work.events or values_of(trade) != before:
                # every change moves the version on
                await self.book.save(trade, work.events, give_back=give_back_lease)
            for event in work.events:
                log.info("Trade %s: %s", trade.signal_id, event.message)

    async def _advance(self, work: Work, snap: Snapshot) -> None:
        await self._refresh(work, snap)
        position = snap.positions.get(work.symbol)
        if position is not None and position.positions != 0 and not _owns(work, position):
            if work.trade.filled > 0 or work.trade.position_ids:
                await self._gone(work, position)
                return
            position = None  # nothing of this trade filled yet: its entries are all it has
        if position is not None and position.positions != 0:
            if position.position_id and position.position_id not in work.trade.position_ids:
                work.trade.position_ids.append(position.position_id)
            await self.targets.place(work, abs(position.positions))
            await self.stops.keep(work, snap, position)
            if self._expired(work.trade):
                await self._cancel_entries(work, "entries_expired", "unfilled entries expired")
        elif work.trade.filled > 0:
            await self._close(work)
        else:
            await self._before_entry(work)

    # -- 1. orders -------------------------------------------------------------------------------

    async def _refresh(self, work: Work, snap: Snapshot) -> None:
        for record in list(work.records):
            if not self._watched(work, record):
                continue
            order = snap.orders.get(record.client_order_id) or snap.ended.get(record.client_order_id)
            if order is None and snap.streamed:
                continue  # not pushed yet (see Snapshot): the pass its push wakes looks at it
            if order is None:
                order = await self.client.order_detail(work.symbol, client_order_id=record.client_order_id)
            if order is None:
                if record.state in ("sending", "unknown"):
                    record.state = "not_sent"
                    work.touch(record)
                continue
            self._apply(work, record, order)

    @staticmethod
    def _watched(work: Work, record: OrderRecord) -> bool:
        if record.role == OrderRole.ENTRY:
            unseen = record.client_order_id not in work.trade.fills and record.state not in (
                *NOT_SENT, "failed", "canceled")
            return record.state in WATCHED or unseen
        return record.role == OrderRole.TAKE_PROFIT and record.state in WATCHED

    def _apply(self, work: Work, record: OrderRecord, order: Order) -> None:
        trade = work.trade
        if record.role == OrderRole.ENTRY:
            before = trade.fills.get(record.client_order_id, Decimal(0))
            trade.fills[record.client_order_id] = order.filled_size
            if order.filled_size > before:
                work.entry_filled_now = True
                price = order.average_price or order.price or Decimal(0)
                how = "filled" if order.state == "filled" else "partly filled"
                work.event("entry_filled", f"entry {record.seq} {how}: {fmt(order.filled_size)} contracts at "
                           f"{fmt(price)}", entry=record.seq, size=order.filled_size, price=price)
        elif order.state == "filled" and record.seq not in trade.targets_hit:
            trade.targets_hit.append(record.seq)
            price = order.average_price or order.price or Decimal(0)
            work.event("take_profit_hit", f"TP{record.seq} hit at {fmt(price)} ({fmt(order.filled_size)} "
                       "contracts)", target=record.seq, price=price, size=order.filled_size)
        if (record.state, record.order_id) != (order.state, order.order_id):
            record.state, record.order_id = order.state, order.order_id
            work.touch(record)

    # -- 3. closed -----------------------------------------------------------------------------------

    async def _close(self, work: Work) -> None:
        if await self._holds(work.symbol):
            return  # a fill between the reads: next pass
        entries_rested = any(r.state in OPEN_ORDER for r in work.of(OrderRole.ENTRY))
        await self._cancel_leftovers(work)
        # Only an entry can open a position again (targets and stops reduce only); the read is for one
        # that filled while it was being cancelled, so it goes to the exchange itself, not the mirror.
        if entries_rested and await self.client.positions(work.symbol):
            # an entry filled while its siblings were being cancelled: that position is a leftover too
            work.trade.stop_moves += 1
            await self.client.close_position(
                work.symbol, work.margin_mode, client_order_id=close_id(work.signal_id, work.trade.stop_moves)
            )
            return
        found = await self._exit(work)
        if found is None:
            log.info("Trade %s: closed, waiting for the exchange's position history", work.signal_id)
            return
        self._closed(work, found)

    async def _exit(self, work: Work) -> Exit | None:
        """The trade's exit as the exchange shows it (`pnl.exit_of`); a close by none of our orders is
        the kill switch's when the halt journaled that it was closing this trade (`halt_close`)."""
        found = await exit_of(self.client, work)
        if found is not None and found.kind == "manual" and await self.journal.has_event(
            work.signal_id, HALT_CLOSE_EVENT
        ):
            return replace(found, kind="halt")
        return found

    @staticmethod
    def _closed(work: Work, found: Exit) -> None:
        trade = work.trade
        trade.state, trade.exit_reason = CLOSED, found.reason
        trade.realized_pnl, trade.fee = found.realized_pnl, found.fee
        at = f" at {fmt(found.exit_price)}" if found.exit_price else ""
        if found.kind in ("stop", "breakeven_stop"):
            work.event("stopped_out", f"{found.reason}{at}", price=found.exit_price or Decimal(0))
        work.event("closed", f"closed ({found.reason}){at}: realised P&L {fmt(found.realized_pnl)} USDT, "
                   f"fees {fmt(found.fee)} USDT", reason=found.kind, realized_pnl=found.realized_pnl,
                   fee=found.fee)

    async def _gone(self, work: Work, other: Position) -> None:
        """The symbol's position is not this trade's (`_owns`), so the trade's own is gone: it ended
        as its closed position in the exchange's history says, or, when the history does not know it
        (an exchange that kept nothing, as a restarted paper exchange), it is ended saying its
        position was not found. The other position is never closed or re-stopped by this trade, and
        no stop on the symbol is touched; only this trade's own entries and targets are cancelled."""
        await self._cancel_own_orders(work)
        found = await self._exit(work)
        if found is not None:
            self._closed(work, found)
            return
        trade = work.trade
        trade.state, trade.entries_done = ENDED, True
        trade.exit_reason = "its position was not found on the exchange"
        side = "long" if other.positions > 0 else "short"
        work.event("position_not_found", f"its position was not found on the exchange; the {side} "
                   f"position on {work.symbol} is not this trade's and is left alone; the trade is ended "
                   "without a result", other_position_id=other.position_id)
        log.warning("Trade %s: its position is gone; the %s position on %s (id %s) is not its own",
                    work.signal_id, side, work.symbol, other.position_id or "?")

    async def _holds(self, symbol: str) -> bool:
        """Whether the account holds a position on `symbol`: the live mirror's word, else a REST read."""
        if self.mirror is not None and self.mirror.live:
            return bool(self.mirror.positions(symbol))
        return bool(await self.client.positions(symbol))

    async def _cancel_own_orders(self, work: Work) -> None:
        """Cancel the trade's resting entries and targets, all at once; targets never sent are not sent
        any more."""
        resting = []
        for record in work.records:
            if record.role in (OrderRole.ENTRY, OrderRole.TAKE_PROFIT) and record.state in OPEN_ORDER:
                resting.append(record)
            elif record.state == "pending":
                record.state = "not_sent"
                work.touch(record)
        results = await asyncio.gather(*(self._cancel(work, r) for r in resting), return_exceptions=True)
        for result in results:  # every cancel has had its answer; the first failure fails the step
            if isinstance(result, BaseException):
                raise result

    async def _cancel_leftovers(self, work: Work) -> None:
        await self._cancel_own_orders(work)
        mirror = self.mirror
        stops = mirror.live_tpsl(work.symbol) if mirror is not None and mirror.live else \
            await self.client.pending_tpsl(work.symbol)
        for stop in stops:
            if stop.side == work.close_side and stop.state == "live":
                with contextlib.suppress(NotFound):
                    await self.client.cancel_tpsl(work.symbol, tpsl_id=stop.tpsl_id)
        for record in work.of(OrderRole.STOP_LOSS):
            if record.state in ("live", "attached", "sending"):
                record.state = "canceled"
                work.touch(record)

    async def _cancel(self, work: Work, record: OrderRecord) -> None:
        try:
            await self.client.cancel_order(work.symbol, client_order_id=record.client_order_id)
            record.state = "canceled"
            work.touch(record)
        except NotFound:
            order = await self.client.order_detail(work.symbol, client_order_id=record.client_order_id)
            if order is not None:
                self._apply(work, record, order)

    # -- 4. before any fill ----------------------------------------------------------------------------

    def _expired(self, trade: Trade) -> bool:
        return not trade.entries_done and clock.utcnow() >= trade.opened_at + self.entry_timeout

    async def _before_entry(self, work: Work) -> None:
        trade = work.trade
        resting = [r for r in work.of(OrderRole.ENTRY) if r.state in OPEN_ORDER]
        if not resting:
            await self._end(work, "entries_cancelled", "no entry is left on the exchange and none filled")
            return
        mark = await self.client.mark_price(trade.symbol)
        if (mark <= trade.stop_price) if trade.is_long else (mark >= trade.stop_price):
            kind = "entries_cancelled"
            why = f"the price reached the stop {fmt(trade.stop_price)} before any entry filled"
        elif self._expired(trade):
            kind = "entries_expired"
            why = f"no entry filled within {self.settings.entry_timeout_minutes:g} minutes"
        else:
            return
        await self._cancel_entries(work, None, why)
        if trade.filled == 0:
            await self._end(work, kind, why)

    async def _end(self, work: Work, kind: str, why: str) -> None:
        await self._cancel_leftovers(work)
        trade = work.trade
        trade.state, trade.entries_done, trade.exit_reason = ENDED, True, why
        work.event(kind, f"entries cancelled: {why}; nothing was opened")

    async def _cancel_entries(self, work: Work, kind: str | None, why: str) -> None:
        work.trade.entries_done = True
        resting = [r for r in work.of(OrderRole.ENTRY) if r.state in OPEN_ORDER]
        for record in resting:
            await self._cancel(work, record)
        cancelled = sum(1 for r in resting if r.state in ("canceled", "partially_canceled"))
        if kind and cancelled:
            work.event(kind, f"{why}: {cancelled} unfilled entr{'y' if cancelled == 1 else 'ies'} cancelled; "
                       f"the filled {fmt(work.trade.filled)} contracts go on", cancelled=cancelled)


def _first_sight(trade: Trade, records: list[OrderRecord]) -> None:
    if trade.stop_price == 0:  # a trade seen the first time: the stop as journaled (on the tick grid)
        trade.stop_price = _stop_of(records) or Decimal(str(trade.body["stop_loss"]))


def _stop_of(records: list[OrderRecord]) -> Decimal | None:
    stops = [r for r in records if r.role == OrderRole.STOP_LOSS and r.trigger_price is not None]
    return stops[0].trigger_price if stops else None


def _owns(work: Work, position: Position) -> bool:
    """Whether the symbol's position is this trade's: on its side, and the one it has followed. A
    trade that has seen its position knows its id, so another id is another position, unless an
    entry of this trade filled during this pass and opened it (the trade's own position went flat
    and a later rung of its ladder opened a new one)."""
    if (position.positions > 0) != work.trade.is_long:
        return False
    seen = work.trade.position_ids
    if not position.position_id or not seen or position.position_id in seen:
        return True
    return work.entry_filled_now
