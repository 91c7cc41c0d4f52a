"""What every trader's action on a trade shares (`actions.py` has the rules they keep): the answers
that refuse, the action at work (`Ctx`), and the steps several actions take (the trade's position, its
resting orders cancelled, its targets placed again over what it holds, the trade saved)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from hit_server import clock
from hit_server.api.http_errors import ApiError
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_errors import BloFinError, NotFound
from hit_server.exchange.blofin_models import (
    Position,
)
from hit_server.journal.journal import Journal, OrderRecord
from hit_server.journal.trade_actions import ActionRecord, ActionStore
from hit_server.journal.trade_book import Trade, TradeBook
from hit_server.lifecycle.passes import Lifecycle
from hit_server.lifecycle.take_profits import new_batch
from hit_server.lifecycle.trade_view import TradeViews, trade_view
from hit_server.lifecycle.trade_work import OPEN_ORDER, REPLACED, WATCHED, Work, not_accepted
from hit_server.settings import Settings
from hit_shared.models import OrderRole
from hit_shared.trade_actions import (
    TradeActionResult,
)
from hit_shared.trades import TradeView

log = logging.getLogger(__name__)

RESTING = (*WATCHED, "pending")  # a target not hit, not cancelled: it rests, or waits to be sent
NOT_SENT_YET = ("pending",)  # journaled, never sent: cancelled by not sending it
CANCELLED = ("canceled", "partially_canceled", REPLACED)  # taken off the exchange before it filled in full
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



class AlreadyDone(Exception):
    """This very action already did its work (found on a retry after a crash): its answer."""

    def __init__(self, result: TradeActionResult) -> None:
        super().__init__(result.message)
        self.result = result



@dataclass(frozen=True)
class StopAcknowledged:
    """A TP/SL order the exchange acknowledged, its lookup not showing it yet."""

    tpsl_id: str



@dataclass(frozen=True)
class TargetsPlaced:
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



class ActionKit:
    """The collaborators of the actions and the steps they share; `TradeControls` (actions.py) is the
    class a server builds."""

    client: BloFinClient
    journal: Journal
    lifecycle: Lifecycle
    book: TradeBook
    settings: Settings
    store: ActionStore
    views: TradeViews

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

    async def _not_taken(self, ctx: Ctx, exc: BloFinError) -> None:
        """The exchange provably did not take the order (a 429): a retry sends afresh."""
        if not_accepted(exc):
            await self.store.record_order(ctx.row.key, None)

    async def _finish(self, ctx: Ctx) -> None:
        """The position is flat: the monitor's own pass over the trade finishes it now, if the exchange's
        history shows the close already (else its next passes do)."""
        await self._save(ctx)
        await self.lifecycle.sync_trade(ctx.trade, await self.lifecycle.snapshot(), ctx.work.records)

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
        """Cancel one order by its clientOrderId; True when it is cancelled (its state then as the
        exchange shows it, or `state`), also when it was already: an earlier attempt of this action that
        died before journaling it (simulation seed 7: a partial close's re-split of the targets then found
        none to re-place, and the position was left without targets). An order no longer resting because
        it filled is left as journaled for the monitor's pass (which reports the fill), or marked not sent
        when the exchange never had it."""
        try:
            await self.client.cancel_order(work.symbol, client_order_id=record.client_order_id)
        except NotFound:
            order = await self.client.order_detail(work.symbol, client_order_id=record.client_order_id)
            if order is None and record.state in ("sending", "unknown"):
                record.state = "not_sent"
                work.touch(record)
            if order is None or order.state not in ("canceled", "partially_canceled"):
                return False
        else:
            order = await self.client.order_detail(work.symbol, client_order_id=record.client_order_id)
        if state is None:
            state = order.state if order is not None and order.state == "partially_canceled" else "canceled"
        record.state = state
        if order is not None:
            record.order_id = order.order_id
        work.touch(record)
        return True

    async def _replace_targets(
        self, ctx: Ctx, new: list[tuple[int, Decimal]] | None, *, resumed: bool = False
    ) -> tuple[int, TargetsPlaced]:
        """Cancel the targets not hit and place a batch over the position held now, at the `new` prices
        (numbered as given) or, when None, at the prices of the targets cancelled (re-split after a partial
        close). (cancelled, what became of the new batch). A target the exchange did not accept now (busy,
        limiting us) stays "pending", its intent journaled: the position monitor sends it again at its
        next pass, as it does its own (`take_profits.py`).

        `resumed`: an earlier attempt of this action was cut off (a crash) after its close, so it may have
        cancelled targets already; the latest target of each number that is cancelled, not hit, is
        re-split too, whoever journaled its cancellation since (that attempt, or the monitor's pass that
        found it cancelled on the exchange). Without this, a crash there left the rest of the position
        without targets for good (the simulation: seed 47 with three accounts, seed 7 shifted)."""
        work = ctx.work
        kept = _cancelled_targets(work) if resumed and new is None else {}
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
            return cancelled, TargetsPlaced()
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
            return cancelled, TargetsPlaced()
        await self.lifecycle.targets.send_batch(work, batch)
        return cancelled, TargetsPlaced(  # "unknown": sent, looked up by the monitor
            placed=sum(1 for r in batch if r.state in ("live", "unknown")),
            waiting=sum(1 for r in batch if r.state == "pending"),
            refused=sum(1 for r in batch if r.state == "failed"),
        )


def _cancelled_targets(work: Work) -> dict[int, Decimal]:
    """The price of each target number whose latest order is cancelled, not hit (see `_replace_targets`)."""
    latest = {record.seq: record for record in work.of(OrderRole.TAKE_PROFIT)}
    return {
        seq: record.price for seq, record in latest.items()
        if record.state in CANCELLED and record.price is not None
    }
