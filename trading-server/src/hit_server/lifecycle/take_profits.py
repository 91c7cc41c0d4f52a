"""The take profits of an open trade, placed by the position monitor as its entries fill.

- The contracts filled and not yet covered by a target sent are split over TP1..TPn like the plan
  (`risk.split_take_profits`). Targets at one price (equal in the signal, or equal once on the tick
  grid) make one order carrying their shares, numbered by the first of them: every order of a batch
  has its own target number, so its own clientOrderId (`<prefix>t<n>b<k>`, rule 1).
- Targets waiting as "pending" (the plan's own, or ones the exchange did not accept at an earlier
  pass) are sent as they are, same clientOrderIds, when they cover exactly what is uncovered;
  otherwise they are replaced by a batch sized to the fills.
- A target the exchange did not accept this time (a 429, a connection never opened:
  `trade_work.not_accepted`) stays "pending", its intent journaled, and is sent again at the next
  pass for as long as the position is open; the rest of that batch waits with it (they would meet
  the same limit). An unclear outcome is "unknown" and looked up by its clientOrderId at the next
  pass, never resent blindly. Only a definitive refusal is "failed": it is reported, and counted as
  covered, since sending it again would be refused the same way (the stop still covers the whole
  position).
- Once a trader's action replaced a trade's targets (`actions.py`: new targets, or a partial close
  re-splitting them), the arithmetic of fills no longer holds (contracts closed by hand, targets
  cancelled unfilled): what is uncovered is then what the position holds beyond its resting targets,
  and a new batch takes the prices of the latest batch, the trader's.
- The position monitor works on a trade only under the trade's lease (`trade_lease.py`, taken in
  `lifecycle.py`), and targets are placed only when the journal holds no target of the trade that
  this pass has not read: two server processes on one journal (a restart overlapping the old one, a
  second instance) would otherwise derive the same batch ids for batches of different sizes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import cast

from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_errors import BloFinError, OrderOutcomeUnknown
from hit_server.exchange.blofin_models import OrderRequest, OrderSide
from hit_server.journal.journal import OrderRecord
from hit_server.lifecycle.trade_work import NOT_SENT, REPLACED, WATCHED, Work, batch_tp_id, not_accepted
from hit_server.risk.engine import split_take_profits
from hit_server.trading import ids
from hit_shared.models import OrderRole, fmt

log = logging.getLogger(__name__)

SaveOrders = Callable[[str, Sequence[OrderRecord]], Awaitable[None]]
ReadOrders = Callable[[str], Awaitable[list[OrderRecord]]]


class TargetKeeper:
    def __init__(
        self, client: BloFinClient, save_orders: SaveOrders, read_orders: ReadOrders) -> None:
        self.client = client
        self._save = save_orders
        self._read = read_orders

    async def place(self, work: Work, held: Decimal) -> None:
        """Send targets for the filled contracts no target covers yet (the caller holds the trade's lease);
        `held`: the contracts the trade's position holds now."""
        targets = work.of(OrderRole.TAKE_PROFIT)
        if any(r.state == REPLACED for r in targets):  # steered by a trader's action
            resting = sum((r.size for r in targets if r.state in WATCHED), Decimal(0))
            uncovered = work.instrument.round_size_down(held - resting)
        else:
            attempted = sum((r.size for r in targets if r.state not in NOT_SENT), Decimal(0))
            uncovered = work.trade.filled - attempted
        if uncovered <= 0:
            return
        if await self._unseen_targets(work):
            log.info("Trade %s: another process placed targets since this pass read the journal; "
                     "they are taken into account at the next pass", work.signal_id)
            return
        await self._place(work, targets, uncovered)

    async def _unseen_targets(self, work: Work) -> bool:
        """Whether the journal holds targets of this trade that this pass has not read (each target is
        journaled before it is sent, so a process that placed some has journaled them)."""
        known = {r.client_order_id for r in work.records}
        return any(r.role == OrderRole.TAKE_PROFIT and r.client_order_id not in known
                   for r in await self._read(work.signal_id))

    async def _place(self, work: Work, targets: list[OrderRecord], uncovered: Decimal) -> None:
        waiting = sorted((r for r in targets if r.state == "pending"), key=lambda r: r.seq)
        if sum((r.size for r in waiting), Decimal(0)) == uncovered:
            batch = waiting
        else:
            batch = new_batch(work, _plan(work, targets), uncovered)
            if not batch:
                return
            for record in waiting:
                record.state = "not_sent"  # replaced by the batch sized to the fills
                work.touch(record)
        await self.send_batch(work, batch)

    async def send_batch(self, work: Work, batch: list[OrderRecord]) -> list[OrderRecord]:
        """Journal the batch's intent, then send its targets in turn (the caller holds the trade's
        lease); the targets left "pending" because the exchange did not accept them now."""
        for record in batch:
            record.state = "sending"
            work.touch(record)
        await self._save(work.signal_id, batch)  # intent first (rule 1)
        for n, record in enumerate(batch):
            if not await self._send(work, record):
                for later in batch[n + 1:]:
                    later.state = "pending"  # not sent: the exchange is limiting us right now
                return batch[n:]
        return []

    async def _send(self, work: Work, record: OrderRecord) -> bool:
        """Send one target; False when the exchange did not accept it this time (try again later)."""
        request = OrderRequest(
            inst_id=record.symbol, side=cast(OrderSide, record.side), order_type="limit", size=record.size,
            price=record.price, margin_mode=work.margin_mode, client_order_id=record.client_order_id,
            reduce_only=True,
        )
        try:
            ack = await self.client.place_order(request)
        except OrderOutcomeUnknown:
            record.state = "unknown"  # looked up by its clientOrderId next pass, never resent
            return True
        except BloFinError as exc:
            if not_accepted(exc):
                record.state = "pending"
                log.warning("Trade %s: take profit %s not accepted now (%s); sent again at the next pass",
                            work.signal_id, record.seq, type(exc).__name__)
                return False
            if exc.retryable:  # sent, outcome unclear: looked up next pass
                record.state = "unknown"
                return True
            record.state = "failed"
            work.event("take_profit_failed", f"take profit {record.seq} at {fmt(record.price or Decimal(0))} "
                       f"was refused: {exc.message}", target=record.seq)
            return True
        record.order_id, record.state = ack.order_id, "live"
        return True


def _plan(work: Work, targets: list[OrderRecord]) -> list[OrderRecord]:
    """The targets whose prices a new batch follows: the signal's own, or once a trader replaced them,
    those of the latest batch."""
    if any(r.state == REPLACED for r in targets):
        batches = {r.client_order_id: ids.last_number([r.client_order_id], "batch") for r in targets}
        latest = max(batches.values(), default=0)
        if latest:
            return sorted((r for r in targets if batches[r.client_order_id] == latest), key=lambda r: r.seq)
    return sorted(
        (r for r in targets if r.client_order_id == ids.take_profit_id(work.signal_id, r.seq)),
        key=lambda r: r.seq,
    )


def new_batch(work: Work, planned: list[OrderRecord], size: Decimal) -> list[OrderRecord]:
    """Targets for `size` more contracts, split like the plan; one order per price (see the module
    docstring); [] when the size is under minSize (the stop covers it; targets follow the next fill)."""
    first_at: dict[Decimal, int] = {}  # a price on the tick grid -> the first target number at it
    prices: list[Decimal] = []
    for record in planned:
        if record.price is not None:
            price = work.instrument.round_price(record.price)
            first_at.setdefault(price, record.seq)
            prices.append(price)
    try:
        slices = split_take_profits(work.instrument.round_size_down(size), prices, work.instrument)
    except ValueError:
        return []
    sizes: dict[Decimal, Decimal] = {}
    for piece in slices:
        if piece.price is not None:
            sizes[piece.price] = sizes.get(piece.price, Decimal(0)) + piece.size
    # the next batch number, past every batch journaled (a pass that crashed after sending a batch
    # never saved its count: found by the simulation, seed 130, a batch id sent twice at two sizes)
    journaled = ids.last_number((r.client_order_id for r in work.records), "batch")
    work.trade.tp_batches = max(work.trade.tp_batches, journaled) + 1
    return [
        OrderRecord(
            client_order_id=batch_tp_id(work.signal_id, first_at[price], work.trade.tp_batches),
            role=OrderRole.TAKE_PROFIT, seq=first_at[price], symbol=work.symbol, side=work.close_side,
            order_type="limit", size=amount, price=price, state="sending",
        )
        for price, amount in sizes.items()
    ]
