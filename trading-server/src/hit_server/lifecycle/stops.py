"""The stop of an open trade (rule 2: never naked), kept by the position monitor.

- Coverage: the stops resting on the exchange must close at least the whole position. Entries carry
  their stop attached, which BloFin turns into one TP/SL order per filled entry; when their sum falls
  short (or none is left), one position stop (`size=-1`) at the trade's stop level replaces them.
- Coverage counts only the trade's own protection (`trade_work.protects`): a stop on the closing side
  no worse than the trade's level. A stop a trader left far away is not the trade's stop.
- Policy (STOP_POLICY): `breakeven_after_tp1` moves the stop to the average entry price once TP1 has
  filled; `none` leaves it. A policy is a function of the trade and its position returning the level
  the stop should be at (or None: leave it), so more can follow the same shape. Whatever a policy
  returns, a level of 0 or one that would loosen the stop is never applied (`tightens`).
- Moving = place the new stop, confirm it is live on the exchange, then cancel the old ones: there is
  never a moment without a stop. If the new one can't be placed the old ones stay. A stop tighter
  than the new level (a trader tightened it by hand) is never cancelled.
- A position whose stop can't be restored is closed at market, and the event says so.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import cast

from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_errors import BloFinError, NotFound, OrderOutcomeUnknown
from hit_server.exchange.blofin_models import (
    MARKET_PRICE,
    WHOLE_POSITION,
    OrderSide,
    Position,
    TpslOrder,
    TpslRequest,
)
from hit_server.journal.journal import OrderRecord, Reserve, journal_fresh_order
from hit_server.journal.trade_book import Trade
from hit_server.lifecycle.trade_work import Snapshot, Work, close_id, covered, stop_id
from hit_server.trading import ids
from hit_shared.models import OrderRole, fmt

log = logging.getLogger(__name__)

SaveOrders = Callable[[str, Sequence[OrderRecord]], Awaitable[None]]
StopPolicy = Callable[[Trade, Position, Decimal], Decimal | None]


def breakeven_after_tp1(trade: Trade, position: Position, tick: Decimal) -> Decimal | None:
    """The average entry once TP1 has filled (on the tick grid), else None; None too when the
    exchange reports no usable average (0) or when that level would loosen the stop in force."""
    if trade.at_breakeven or 1 not in trade.targets_hit or position.average_price <= 0:
        return None
    level = (position.average_price / tick).to_integral_value() * tick
    return level if tightens(trade, level) else None


def no_policy(trade: Trade, position: Position, tick: Decimal) -> Decimal | None:
    return None


POLICIES: dict[str, StopPolicy] = {"breakeven_after_tp1": breakeven_after_tp1, "none": no_policy}


class StopKeeper:
    def __init__(self, client: BloFinClient, save_orders: SaveOrders, reserve: Reserve, policy: str) -> None:
        self.client = client
        self._save = save_orders
        self._reserve = reserve
        self.policy = POLICIES[policy]

    async def cover(self, work: Work, snap: Snapshot, position: Position) -> bool:
        """Restore coverage when the stops fall short of the position; True when they did."""
        held = abs(position.positions)
        stops = snap.stops(work)
        if covered(stops, held) >= held:
            return False
        await self._repair(work, stops, held)
        return True

    async def keep(self, work: Work, snap: Snapshot, position: Position) -> None:
        """Restore coverage, then apply the policy."""
        if await self.cover(work, snap, position):
            return
        held = abs(position.positions)
        level = self.policy(work.trade, position, work.instrument.tick_size)
        if level is None or level == work.trade.stop_price:
            return
        if not tightens(work.trade, level):  # whatever the policy: never 0, never a looser stop
            log.warning("%s: stop policy gave %s, which would not tighten the stop %s; not moved",
                        work.symbol, level, work.trade.stop_price)
            return
        if not _below_market(work.trade.is_long, level, position.mark_price):
            log.info("%s: stop move to %s waits (the market is on the wrong side of it)", work.symbol, level)
            return
        current = [t for t in await self.client.pending_tpsl(work.symbol) if _is_stop(t, work)]
        if await self.replace(work, level, current, held):
            work.trade.at_breakeven = True
            work.event("stop_moved", f"stop moved to breakeven at {fmt(level)} after TP1", price=level)

    async def _repair(self, work: Work, stops: list[TpslOrder], held: Decimal) -> None:
        level = work.trade.stop_price
        price_ok = True
        with contextlib.suppress(BloFinError):
            mark = await self.client.mark_price(work.symbol)
            price_ok = _below_market(work.trade.is_long, level, mark)
        if price_ok and await self.replace(work, level, stops, held):
            if stops:
                work.event("stop_repaired", f"the stop covered less than the position; one stop at "
                           f"{fmt(level)} now covers all {fmt(held)} contracts", price=level)
            else:
                work.event("naked_position_repaired", f"the position of {fmt(held)} contracts had no stop "
                           f"on the exchange; a stop at {fmt(level)} was placed", price=level)
            return
        await self.close_for_safety(work)

    async def replace(self, work: Work, level: Decimal, old: list[TpslOrder], held: Decimal) -> bool:
        """Place one whole-position stop at `level`, confirm it, then cancel `old`; False if it failed."""
        trade = work.trade

        def stop_number(k: int) -> OrderRecord:
            return OrderRecord(
                client_order_id=stop_id(trade.signal_id, k), role=OrderRole.STOP_LOSS, seq=k + 1,
                symbol=work.symbol, side=work.close_side, order_type="tpsl", size=held, trigger_price=level,
                state="sending",
            )

        # past every stop journaled (even by a pass that crashed before saving its count), and one no
        # other process is placing at this moment; intent before the order leaves (rule 1)
        first = max(trade.stop_moves, ids.last_number((r.client_order_id for r in work.records), "stop")) + 1
        record = await journal_fresh_order(self._reserve, trade.signal_id, stop_number, first)
        trade.stop_moves = record.seq - 1
        work.touch(record)
        request = TpslRequest(
            inst_id=work.symbol, side=cast(OrderSide, work.close_side), margin_mode=work.margin_mode,
            size=WHOLE_POSITION, client_order_id=record.client_order_id, sl_trigger_price=level,
            sl_order_price=MARKET_PRICE,
        )
        try:
            ack = await self.client.place_tpsl(request)
        except BloFinError as exc:
            record.state = "unknown" if isinstance(exc, OrderOutcomeUnknown) else "failed"
            log.warning("%s: stop at %s could not be placed: %s", work.symbol, level, type(exc).__name__)
            return False
        # The exchange acknowledged the stop. A lookup only tells more when it finds the stop already
        # gone (fired or cancelled); not finding it proves nothing, since BloFin's lookups can lag
        # behind acceptance (taking that for a failure made every pass place one more stop: found by
        # the simulation under lookup lag, seed 65).
        found = None
        with contextlib.suppress(BloFinError):
            found = await self.client.tpsl_detail(work.symbol, client_order_id=record.client_order_id)
        if found is not None and found.state != "live":
            record.order_id, record.state = found.tpsl_id, found.state
            return False
        record.order_id, record.state = ack.tpsl_id, "live"
        for stop in old:
            # a stop tighter than the new level is not the trade's to undo: a trader moved it by hand
            if stop.tpsl_id != ack.tpsl_id and not _tighter(stop, level, trade.is_long):
                with contextlib.suppress(NotFound):
                    await self.client.cancel_tpsl(work.symbol, tpsl_id=stop.tpsl_id)
        for earlier in work.of(OrderRole.STOP_LOSS):
            if earlier is not record and earlier.state in ("live", "attached", "effective"):
                earlier.state = "replaced"
                work.touch(earlier)
        trade.stop_price = level
        return True

    async def close_for_safety(self, work: Work) -> None:
        """Rule 2: a position whose stop can't be restored is closed at market."""
        work.trade.stop_moves += 1  # each close gets its own clientOrderId
        try:
            await self.client.close_position(
                work.symbol, work.margin_mode, client_order_id=close_id(work.signal_id, work.trade.stop_moves)
            )
        except BloFinError as exc:
            log.error("%s: position without a stop could not be closed: %s", work.symbol, type(exc).__name__)
            work.event("closed_for_safety", "the position has no stop and could not be closed; "
                       "close it by hand")
            return
        work.event("closed_for_safety", "the stop could not be restored on the exchange, so the position "
                   "was closed at market")


def tightens(trade: Trade, level: Decimal) -> bool:
    """Whether moving the trade's stop to `level` protects more: a positive price on the profit side
    of the stop in force (above it for a long). A stop is only ever moved towards the market."""
    if level <= 0:
        return False
    if trade.stop_price <= 0:
        return True
    return level > trade.stop_price if trade.is_long else level < trade.stop_price


def _is_stop(order: TpslOrder, work: Work) -> bool:
    return order.side == work.close_side and order.sl_trigger_price is not None and order.state == "live"


def _tighter(stop: TpslOrder, level: Decimal, is_long: bool) -> bool:
    """Whether the stop would close the position before a stop at `level` would."""
    trigger = stop.sl_trigger_price
    return trigger is not None and (trigger > level if is_long else trigger < level)


def _below_market(is_long: bool, level: Decimal, mark: Decimal) -> bool:
    """Whether a stop at `level` is on the protective side of the market (below for a long)."""
    return level < mark if is_long else level > mark
