"""Replacing a trade's targets (POST /api/v1/trades/{signal_id}/targets); the rules it keeps are in
`actions.py`."""

from __future__ import annotations

from decimal import Decimal

from hit_server import clock
from hit_server.lifecycle.action_kit import (
    MAX_TARGET_NUMBER,
    ActionKit,
    Ctx,
    Refusal,
)
from hit_shared.models import fmt
from hit_shared.trade_actions import (
    ActionOutcome,
    TargetsRequest,
    TradeAction,
    TradeActionResult,
)

# A targets action sends no order of its own, so its row's order column marks instead that the
# replacement has begun: from then on a retry under the same key finishes it.
REPLACING_TARGETS = "replacing-targets"


class TargetActions(ActionKit):
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
        # An earlier attempt of this action may have cancelled targets before it was cut off (a crash, an
        # unclear answer): its retry finishes the replacement as asked, even if the price has passed a new
        # target since (that target then fills at once, as it would have had the replacement been done),
        # rather than refuse and leave the position short of the targets it had.
        resumed = ctx.row.client_order_id == REPLACING_TARGETS
        mark = await self.client.mark_price(ctx.symbol)
        prices: list[Decimal] = []
        for asked in request.targets:
            price = inst.round_price(asked)
            passed = (price <= mark) if trade.is_long else (price >= mark)
            if price <= 0 or (passed and not resumed):
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
        if not resumed:  # before the first target is cancelled (see `resumed` above)
            await self.store.record_order(ctx.row.key, REPLACING_TARGETS)
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
