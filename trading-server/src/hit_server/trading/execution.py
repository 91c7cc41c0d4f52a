"""Carrying out a TradePlan on the exchange, protecting every fill with a stop (rules 1 and 2).

Order of operations, each step journaled by the caller before it is sent (see `service.py`):
1. leverage, unless it is known to be the plan's on the exchange already (set by this process, or read
   from the account at start: `Executor.learn_leverage`), or it was sent ahead by the service and the
   entry may go before its answer (`execution_run.LeverageOnItsWay`: a raise the plan is covered
   without, or a lowering whose stop lies well inside the held leverage's liquidation); the margin
   mode is set once per process by the service;
2. the entries: one market order, one limit order, or a ladder of limits across a zone; each carries
   the stop ATTACHED (slTriggerPrice, slOrderPrice -1 = market), so no fill exists without it;
3. for what is filled at the time of the answer: the stop is confirmed on the exchange (a pending
   TP/SL covering the position), from the account mirror's pushes when it is live (no lookup: the
   stream shows the fill and the attached stop as they happen), by REST reads otherwise or when the
   pushes don't show it within `Executor.stream_wait_s`; if it is missing, one is placed (order-tpsl); if that
   fails, the position is closed at market and the answer is "failed" saying so (if the close cannot be
   confirmed either, the answer says that and the position monitor resolves it: stop or close);
4. take profits: reduce-only limit orders TP1..TPn with the plan's sizes once the whole size is filled;
   otherwise they are recorded "pending" (a later monitor places them as entries fill).

An entry whose outcome is unknown is looked up by its clientOrderId, never resent. When an entry is
refused after others were placed, the placed ones are cancelled and any position closed, so "failed"
means nothing is left open unless the reason says the server could not confirm it: the signal is then
"unknown" in the journal and the position monitor looks it up at every pass (`reconcile.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from hit_server.exchange.blofin_batch import MAX_BATCH
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_errors import BloFinError, NotFound, OrderOutcomeUnknown
from hit_server.exchange.blofin_models import (
    MARKET_PRICE,
    WHOLE_POSITION,
    Order,
    OrderAck,
    OrderRequest,
    OrderSide,
    OrderType,
    Position,
    TpslOrder,
    TpslRequest,
)
from hit_server.exchange.mirror import AccountMirror
from hit_server.journal.journal import OrderRecord, Reserve, journal_fresh_order
from hit_server.lifecycle.trade_work import is_protective_stop, not_accepted
from hit_server.trading import ids
from hit_server.trading.execution_run import Execution, LeverageOnItsWay, Outcome, failed, placed, unknown
from hit_shared.models import OrderRole, Side, fmt

__all__ = ["Execution", "Executor", "Outcome"]  # Execution and Outcome live in execution_run.py

log = logging.getLogger(__name__)

FILL_WAIT_S = 2.0
STREAM_WAIT_S = 0.5  # how long the pushes may take to show a fill and its stop before REST is asked
LIVE_TPSL = ("live", "effective")
SaveOrders = Callable[[Sequence[OrderRecord]], Awaitable[None]]


def _held(positions: Sequence[Position]) -> Decimal:
    return sum((abs(p.positions) for p in positions), Decimal(0))


@dataclass(frozen=True)
class Holdings:
    """The symbol's positions and, when known from the same view, its live TP/SL orders."""

    positions: list[Position]
    tpsl: list[TpslOrder] | None = None


def _protecting(run: Execution, tpsl: Sequence[TpslOrder]) -> list[TpslOrder]:
    """The TP/SL orders that are the trade's own stop (a trader's stop far away is not)."""
    level, is_long = run.stop.trigger_price or run.plan.stop_loss, run.signal.side == Side.LONG
    return [order for order in tpsl
                if is_protective_stop(order, run.stop.symbol, is_long, level, run.instrument.tick_size)]


def _covered(run: Execution, tpsl: Sequence[TpslOrder], held: Decimal) -> Decimal:
    """Contracts of a position of `held` the trade's stops among `tpsl` close when they fire."""
    covered = Decimal(0)
    for order in _protecting(run, tpsl):
        covered = held if order.size < 0 else covered + order.size
    return covered


class Executor:
    def __init__(
        self, client: BloFinClient, save: Callable[[str, Sequence[OrderRecord]], Awaitable[None]],
        reserve: Reserve, mirror: AccountMirror,
    ) -> None:
        self.client = client
        self.mirror = mirror  # the account as the stream shows it (`exchange/mirror.py`)
        self._save = save  # journals orders (commit) before they are sent
        self._reserve = reserve  # journals an order under a clientOrderId no process has used
        # how long the pushes may take to show an entry settled before REST is asked (a fleet worker,
        # whose IP budget is shared by hundreds of accounts, waits longer rather than read)
        self.stream_wait_s = STREAM_WAIT_S
        # The leverage known to be on the exchange, per symbol and margin mode: what this process set, or
        # read from the account at start (`learn_leverage`); forgotten when the exchange shows another.
        self._leverage: dict[tuple[str, str], int] = {}

    def known_leverage(self, symbol: str, margin_mode: str) -> int | None:
        """The leverage known to be on the exchange for `symbol` in `margin_mode`, or None."""
        return self._leverage.get((symbol, margin_mode))

    def learn_leverage(self, symbol: str, margin_mode: str, leverage: int) -> None:
        """The exchange reported `leverage` on the symbol (the account read at start): remembered unless
        something is known already. What this process set or saw since the read was sent is newer than
        the read's answer, and a read must never undo it."""
        self._leverage.setdefault((symbol, margin_mode), leverage)

    async def set_leverage(self, symbol: str, leverage: int, margin_mode: str) -> None:
        """Set the leverage unless it is known to be exactly this on the exchange already (BloFin refuses
        a change while orders rest on the symbol, even to the same value, and a set is a round trip on
        the signal's path). What was set is remembered until the exchange shows another leverage on the
        symbol (`leverage_seen`); after a failed set nothing is known (it may have been carried out)."""
        key = (symbol, margin_mode)
        if self._leverage.get(key) == leverage:
            return
        try:
            await self.client.set_leverage(symbol, leverage, margin_mode)
        except BloFinError:
            self._leverage.pop(key, None)
            raise
        self._leverage[key] = leverage

    def leverage_seen(self, symbol: str, margin_mode: str, leverage: int) -> bool:
        """The exchange shows `leverage` on the symbol: False (and forgotten, so the next signal sets it
        again) when that is not the leverage known to be there: someone changed it behind our back."""
        remembered = self._leverage.get((symbol, margin_mode))
        if remembered is None or remembered == leverage:
            return True
        del self._leverage[(symbol, margin_mode)]
        log.warning("%s: the exchange shows leverage %sx, not the %sx known; it is set again",
                    symbol, leverage, remembered)
        return False

    async def execute(self, run: Execution) -> Outcome:
        symbol = run.signal.symbol
        on_its_way = run.leverage_on_its_way
        if on_its_way is None:
            try:
                await self.set_leverage(symbol, run.plan.leverage, run.margin_mode)
            except BloFinError as exc:
                for record in run.of(OrderRole.ENTRY):
                    record.state = "not_sent"
                return failed(run, f"the exchange refused leverage {run.plan.leverage}x: {exc.message}")
        problem = await self._place_entries(run)
        if on_its_way is not None:
            await self._leverage_arrived(run, on_its_way)
        if problem is not None:
            return await self._unwind(run, problem)
        filled, holdings = await self._filled(run)
        if filled > 0 and not await self.ensure_stop(run, holdings):
            return await self.close_for_safety(run)
        if holdings is not None:
            await self._heal_leverage(run, holdings)
        if filled >= run.plan.size:
            await self._place_take_profits(run)
        return placed(run, filled)

    async def _leverage_arrived(self, run: Execution, on_its_way: LeverageOnItsWay) -> None:
        """The answer to the leverage set sent with the entry (`LeverageOnItsWay`); a refusal is told:
        the entry went at the leverage the account held, the same size and stop."""
        refused = await on_its_way.answer()
        if refused is None:
            return
        head = (f"{run.signal.symbol}: the exchange refused leverage {on_its_way.leverage}x "
                f"({refused.message}); the entry went at the {on_its_way.held}x the account held: the same "
                f"size and stop, ")
        if on_its_way.is_raise:
            run.event("leverage_not_raised", head + "more margin than planned")
        else:
            run.event("leverage_not_lowered", head + "less margin than planned; its stop lies well inside "
                      "the move that would liquidate it")

    async def _heal_leverage(self, run: Execution, holdings: Holdings) -> None:
        """A position at another leverage than the plan's was changed behind our back: set the plan's
        again now, while only the stop rests on the symbol (BloFin refuses it once the take profits
        rest), so the position is margined as planned and its liquidation stays beyond the stop."""
        symbol = run.signal.symbol
        on_its_way = run.leverage_on_its_way
        for position in holdings.positions:
            if on_its_way is not None and position.leverage == on_its_way.held:
                continue  # read before the plan's leverage, sent with the entry, showed on the position
            if self.leverage_seen(symbol, run.margin_mode, position.leverage):
                continue
            try:
                await self.set_leverage(symbol, run.plan.leverage, run.margin_mode)
            except BloFinError as exc:
                log.error("%s: leverage %sx could not be set again: %s", symbol, run.plan.leverage,
                          exc.message)
                return
            run.event("leverage_restored", f"{symbol}: the exchange held leverage {position.leverage}x, "
                      f"not the {run.plan.leverage}x planned; it was set to {run.plan.leverage}x again")
            return

    # -- entries ---------------------------------------------------------------------------------

    async def _place_entries(self, run: Execution) -> str | None:
        """Send every entry; the first definitive refusal (or unknown outcome) stops the rest."""
        stop = run.plan.stop_loss
        for record in run.of(OrderRole.ENTRY):
            request = OrderRequest(
                inst_id=record.symbol,
                side=cast(OrderSide, record.side),
                order_type=cast(OrderType, record.order_type),
                size=record.size,
                price=record.price,
                margin_mode=run.margin_mode,
                client_order_id=record.client_order_id,
                sl_trigger_price=stop,
                sl_order_price=MARKET_PRICE,
            )
            try:
                ack = await self.client.place_order(request)
            except OrderOutcomeUnknown:
                found = await self._lookup(record)
                if found is None:
                    record.state = "unknown"  # not found is not proof: a lookup can lag (reconcile.py)
                    return "the exchange did not confirm the entry order and it could not be found"
                continue
            except BloFinError as exc:
                record.state = "failed"
                return f"the exchange refused the entry order: {exc.message}"
            record.order_id, record.state = ack.order_id, "live"
        return None

    async def _lookup(self, record: OrderRecord) -> Order | None:
        """The order named by this record's clientOrderId, updating the record; None if unknown."""
        try:
            order = await self.client.order_detail(record.symbol, client_order_id=record.client_order_id)
        except BloFinError:
            return None
        if order is not None:
            record.order_id, record.state = order.order_id, order.state
        return order

    async def _filled(self, run: Execution) -> tuple[Decimal, Holdings | None]:
        """Contracts filled across the entries now, and the symbol's holdings when they were read:
        from the account mirror when it is live and shows every entry, every fill and, for a fill,
        the stop covering it within `stream_wait_s` (no request at all), else from REST (below)."""
        if self.mirror.live:
            seen = await self.mirror.wait_until(lambda: self._settled(run), self.stream_wait_s)
            if seen is not None:
                return seen
            log.info("Signal %s: the stream did not show its entry settled; reading the exchange",
                     run.signal.signal_id)
        return await self._read_filled(run)

    def _settled(self, run: Execution) -> tuple[Decimal, Holdings] | None:
        """From the mirror: the contracts filled and the holdings, once every entry is seen (a market
        entry done), the position holds the fills and, for a fill, a stop of the trade covers it;
        None until then."""
        symbol = run.signal.symbol
        filled = Decimal(0)
        seen: list[tuple[OrderRecord, Order]] = []
        for record in run.of(OrderRole.ENTRY):
            order = self.mirror.order(record.client_order_id)
            if order is None or (record.order_type == "market" and order.is_open):
                return None
            seen.append((record, order))
            filled += order.filled_size
        positions = self.mirror.positions(symbol)
        held = _held(positions)
        stops = self.mirror.live_tpsl(symbol)
        if filled > 0 and (held < filled or _covered(run, stops, held) < held):
            return None
        for record, order in seen:
            record.order_id, record.state = order.order_id, order.state
        return filled, Holdings(positions, stops)

    async def _read_filled(self, run: Execution) -> tuple[Decimal, Holdings | None]:
        """Contracts filled across the entries now, and the symbol's positions when they were read.

        A lone market entry is judged by the position first: the symbol held none when the signal was
        admitted (one trade per symbol, reserved until the answer), so a position of the whole planned
        size is this entry filled, and the same read serves the stop check. Otherwise each entry is
        looked up by its clientOrderId (a market entry is given a moment to fill). The monitor later
        reads every entry's fill from the exchange either way."""
        entries = run.of(OrderRole.ENTRY)
        if len(entries) == 1 and entries[0].order_type == "market" and entries[0].state == "live":
            try:
                positions = await self.client.positions(run.signal.symbol)
            except BloFinError:
                positions = None
            if positions is not None and _held(positions) >= run.plan.size:
                entries[0].state = "filled"
                return run.plan.size, Holdings(positions)
        return await self._filled_by_order(run), None

    async def _filled_by_order(self, run: Execution) -> Decimal:
        deadline = asyncio.get_running_loop().time() + FILL_WAIT_S
        total = Decimal(0)
        for record in run.of(OrderRole.ENTRY):
            while True:
                order = await self._lookup(record)
                if order is None or record.order_type != "market" or order.state == "filled":
                    break
                if asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.05)
            total += order.filled_size if order is not None else Decimal(0)
        return total

    # -- the stop (rule 2) -----------------------------------------------------------------------

    async def ensure_stop(self, run: Execution, holdings: Holdings | None = None) -> bool:
        """True once a stop covering the position is confirmed on the exchange (placing one if needed).
        `holdings`: the symbol's positions (and TP/SL orders), if just read.

        Each stop placed gets a fresh clientOrderId (`ids.stop_attempt_id`, numbered from the journaled
        attempts), so the lookup that follows an unclear answer can only find this attempt's order; and
        an order the exchange reports as cancelled or fired is never taken for a live stop."""
        try:
            if await self._stop_confirmed(run, holdings):
                return True
        except BloFinError as exc:
            log.warning("Could not list TP/SL orders of %s: %s", run.signal.symbol, type(exc).__name__)
        record = await self._next_stop(run)  # its intent journaled before the order leaves (rule 1)
        request = TpslRequest(
            inst_id=record.symbol,
            side=cast(OrderSide, record.side),
            margin_mode=run.margin_mode,
            size=WHOLE_POSITION,
            client_order_id=record.client_order_id,
            sl_trigger_price=record.trigger_price,
            sl_order_price=MARKET_PRICE,
        )
        try:
            ack = await self.client.place_tpsl(request)
        except BloFinError as exc:
            record.state = "unknown" if isinstance(exc, OrderOutcomeUnknown) else "failed"
            log.error("Stop loss for %s could not be placed: %s", record.symbol, type(exc).__name__)
            return False
        record.order_id, record.state = ack.tpsl_id, "live"
        if not await self._still_live(record):
            return False
        run.event(
            "stop_repaired",
            f"{record.symbol}: the stop at {fmt(run.plan.stop_loss)} was missing on "
            "the exchange and has been placed on the position",
        )
        return True

    async def _next_stop(self, run: Execution) -> OrderRecord:
        """A new stop record for the next placement attempt (`sl<k>`, a number no process has used),
        journaled and added to the run's records."""
        family = ids.signal_prefix(run.signal.signal_id) + "sl"
        attempts = sum(
            1 for r in run.of(OrderRole.STOP_LOSS)
            if r.client_order_id.startswith(family) and r.client_order_id[len(family):].isdigit()
        )

        def attempt(k: int) -> OrderRecord:
            return OrderRecord(
                client_order_id=ids.stop_attempt_id(run.signal.signal_id, k), role=OrderRole.STOP_LOSS,
                seq=k, symbol=run.stop.symbol, side=run.stop.side, order_type="tpsl", size=run.stop.size,
                trigger_price=run.stop.trigger_price, state="sending",
            )

        record = await journal_fresh_order(self._reserve, run.signal.signal_id, attempt, attempts + 1)
        run.records.append(record)
        return record

    async def _still_live(self, record: OrderRecord) -> bool:
        """False when the exchange shows this stop cancelled or fired. Not found, or no answer, keeps
        the ack's word: a lookup can lag behind an accepted order, and the id is this attempt's own."""
        try:
            found = await self.client.tpsl_detail(record.symbol, client_order_id=record.client_order_id)
        except BloFinError:
            return True
        if found is None or found.state in LIVE_TPSL:
            return True
        record.state = found.state
        log.error("Stop loss %s for %s is %s, not live", record.client_order_id, record.symbol, found.state)
        return False

    async def _stop_confirmed(self, run: Execution, holdings: Holdings | None) -> bool:
        record = run.stop
        positions = holdings.positions if holdings is not None else await self.client.positions(record.symbol)
        held = _held(positions)
        if held == 0:
            return True  # nothing to protect (yet)
        tpsl = holdings.tpsl if holdings is not None and holdings.tpsl is not None else \
            await self.client.pending_tpsl(record.symbol)
        found = _protecting(run, tpsl)
        if _covered(run, tpsl, held) >= held:
            record.state, record.order_id = "live", ",".join(order.tpsl_id for order in found)
            return True
        return False

    # -- take profits ----------------------------------------------------------------------------

    async def _place_take_profits(self, run: Execution) -> None:
        """Send TP1..TPn in one batch; they were journaled ("pending", with their clientOrderIds) before
        the entry left, so a crash here is resolved by looking them up."""
        records = run.of(OrderRole.TAKE_PROFIT)
        requests = [
            OrderRequest(
                inst_id=record.symbol,
                side=cast(OrderSide, record.side),
                order_type="limit",
                size=record.size,
                price=record.price,
                margin_mode=run.margin_mode,
                client_order_id=record.client_order_id,
                reduce_only=True,
            )
            for record in records
        ]
        results: list[OrderAck | BloFinError] = []
        for start in range(0, len(requests), MAX_BATCH):
            try:
                results += await self.client.place_orders(requests[start : start + MAX_BATCH])
            except BloFinError as exc:  # the whole batch was refused
                results += [exc] * len(requests[start : start + MAX_BATCH])
        for record, result in zip(records, results, strict=True):
            await self._take_profit_result(run, record, result)

    async def _take_profit_result(
        self, run: Execution, record: OrderRecord, result: OrderAck | BloFinError
    ) -> None:
        if isinstance(result, OrderAck):
            record.order_id, record.state = result.order_id, "live"
        elif not_accepted(result):  # a 429: not taken this time; the position monitor sends it again
            record.state = "pending"
        elif isinstance(result, OrderOutcomeUnknown) or result.retryable:
            if await self._lookup(record) is None:
                record.state = "unknown"
        else:
            record.state = "failed"
            run.event(
                "take_profit_failed",
                f"{record.symbol}: take profit {record.seq} at {fmt(record.price or Decimal(0))} "
                f"was refused: {result.message}",
            )

    # -- unwinding (rule: failed means nothing is left open) --------------------------------------

    async def _unwind(self, run: Execution, reason: str) -> Outcome:
        """Cancel what was placed and close any position; "failed" only if that provably worked,
        else "unknown" with a reason that says so (the position monitor keeps resolving it)."""
        entries_gone = await self._cancel_entries(run)
        if await self._flatten(run) and entries_gone:
            return failed(run, reason + "; nothing was left open")
        return unknown(run, reason)

    async def _cancel_entries(self, run: Execution) -> bool:
        """Cancel every entry that may rest; True when none provably rests. An entry whose outcome is
        unknown and that cannot be found stays "unknown": not found is not proof that it never landed."""
        gone = True
        for record in run.of(OrderRole.ENTRY):
            if record.state in ("live", "partially_filled", "unknown"):
                try:
                    await self.client.cancel_order(record.symbol, client_order_id=record.client_order_id)
                    record.state = "canceled"
                except NotFound:
                    await self._lookup(record)
                except BloFinError:
                    gone = False
                if record.state in ("live", "partially_filled", "unknown"):
                    gone = False
            elif record.state == "sending":
                record.state = "not_sent"
        return gone

    async def _flatten(self, run: Execution) -> bool:
        """Close our position on the symbol, if any; True only once the symbol is seen flat (a close
        "found" by its clientOrderId may be an earlier attempt's, so the position is read again)."""
        try:
            positions = await self.client.positions(run.signal.symbol)
            if any(p.positions != 0 for p in positions):
                await self.client.close_position(
                    run.signal.symbol, run.margin_mode, client_order_id=ids.close_id(run.signal.signal_id)
                )
                positions = await self.client.positions(run.signal.symbol)
        except BloFinError as exc:
            log.error("Could not flatten %s: %s", run.signal.symbol, type(exc).__name__)
            return False
        return not any(p.positions != 0 for p in positions)

    async def close_for_safety(self, run: Execution) -> Outcome:
        """Rule 2 when the stop cannot be confirmed: close the position and cancel the entries. The
        answer says what is known: closed, or that the close could not be confirmed either (the
        signal is then "unknown" and the position monitor resolves it: stop or close)."""
        entries_gone = await self._cancel_entries(run)
        flat = await self._flatten(run)
        unconfirmed = "the stop loss could not be confirmed on the exchange"
        if not flat:
            reason = (
                f"{unconfirmed} and closing the position could not be confirmed either; the server keeps "
                "checking the exchange: it will place the stop or close the position, and report it"
            )
            return unknown(run, reason, followed=False)
        reason = f"{unconfirmed}, so the position was closed at market"
        run.event("closed_for_safety", f"{run.signal.symbol}: {reason}")
        if not entries_gone:
            return unknown(run, reason + ", but cancelling its other entries could not be confirmed")
        return failed(run, reason + "; nothing was left open")
