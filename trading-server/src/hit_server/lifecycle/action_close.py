"""Closing a trade at market, all of it or a part, and cancelling its unfilled entries (POST
/api/v1/trades/{signal_id}/close and /cancel); the rules they keep are in `actions.py`."""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from hit_server import clock
from hit_server.exchange.blofin_errors import BloFinError, OrderOutcomeUnknown
from hit_server.exchange.blofin_models import (
    Order,
    OrderRequest,
    OrderSide,
)
from hit_server.journal.trade_book import ENDED
from hit_server.lifecycle.action_kit import (
    CANCELLED_BY_HAND,
    ActionKit,
    Ctx,
    OutcomeUnknown,
    Refusal,
)
from hit_server.trading import ids
from hit_shared.models import fmt
from hit_shared.trade_actions import (
    ActionOutcome,
    CancelRequest,
    CloseRequest,
    TradeAction,
    TradeActionResult,
)


class CloseActions(ActionKit):
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
        cancelled, targets = await self._replace_targets(ctx, None, resumed=sent is not None)
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
