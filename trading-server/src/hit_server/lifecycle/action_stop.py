"""Moving a trade's stop (POST /api/v1/trades/{signal_id}/stop): the new stop placed and confirmed
live before the old ones are cancelled; the rules it keeps are in `actions.py`."""

from __future__ import annotations

import contextlib
import logging
from decimal import Decimal
from typing import cast

from hit_server import clock
from hit_server.exchange.blofin_errors import BloFinError, NotFound, OrderOutcomeUnknown
from hit_server.exchange.blofin_models import (
    MARKET_PRICE,
    WHOLE_POSITION,
    OrderSide,
    Position,
    TpslOrder,
    TpslRequest,
)
from hit_server.journal.journal import OrderRecord, journal_fresh_order
from hit_server.lifecycle.action_kit import (
    ActionKit,
    Ctx,
    OutcomeUnknown,
    Refusal,
    StopAcknowledged,
)
from hit_server.lifecycle.stops import tightens
from hit_server.lifecycle.trade_work import REPLACED, stop_id
from hit_server.trading import ids
from hit_shared.models import OrderRole, fmt
from hit_shared.trade_actions import (
    ActionOutcome,
    StopRequest,
    TradeAction,
    TradeActionResult,
)

log = logging.getLogger(__name__)


class StopActions(ActionKit):
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
        live = earlier is not None and earlier.state == "live"
        placed: TpslOrder | StopAcknowledged | None = earlier if live else None
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
    ) -> TpslOrder | StopAcknowledged:
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
            return StopAcknowledged(ack.tpsl_id)
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
