"""How a closed trade ended and what it made, as the exchange computed it (the journal never does
its own arithmetic: it records BloFin's figures, so the two always agree).

- P&L and fees: the trade's closed positions in positions-history, found by the position ids the
  monitor saw while the trade was open, or, when it never saw one (the server was down for the whole
  trade), by the instrument's positions opened after the signal was received (one trade per symbol
  at a time, so those are this trade's).
- The reason: the order that closed the position, from the order history: a fired stop (`sl`), a
  liquidation or auto-deleveraging, the last of our targets, a close at market the server sent because
  a stop could not be kept (`closed_for_safety`), or anything else (a close by hand; `passes.py` tells a
  close by the kill switch from one by hand: `halt`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_history import ClosedPosition, positions_history
from hit_server.exchange.blofin_models import Order
from hit_server.lifecycle.trade_work import Work
from hit_server.trading import ids
from hit_shared.models import OrderRole

CLOCK_SLACK_MS = 5_000
LIQUIDATION = ("full_liquidation", "partial_liquidation", "adl")


@dataclass(frozen=True)
class Exit:
    kind: str  # "stop", "breakeven_stop", "targets", "liquidation", "closed_for_safety", "halt", "manual"
    realized_pnl: Decimal  # net of every fee
    fee: Decimal
    exit_price: Decimal | None

    @property
    def reason(self) -> str:
        return {
            "stop": "stopped out",
            "breakeven_stop": "stopped out at breakeven",
            "targets": "last target hit",
            "liquidation": "liquidated",
            "closed_for_safety": "closed at market because its stop could not be kept",
            "halt": "closed at market by the halt",
        }.get(self.kind, "closed on the exchange")


def _mine(rows: list[ClosedPosition], position_ids: list[str], opened_ms: int) -> list[ClosedPosition]:
    if position_ids:
        return [r for r in rows if r.position_id in position_ids]
    return [r for r in rows if r.create_time >= opened_ms - CLOCK_SLACK_MS]


async def exit_of(client: BloFinClient, work: Work) -> Exit | None:
    """The trade's exit, or None while the exchange's history does not show its closed position yet.
    Both histories are read at once (one round trip, not two: issue #18)."""
    trade = work.trade
    opened_ms = int(trade.opened_at.timestamp() * 1000)
    closed, orders = await asyncio.gather(
        positions_history(client, trade.symbol), client.order_history(trade.symbol)
    )
    rows = _mine(closed, trade.position_ids, opened_ms)
    if not rows:
        return None
    pnl = sum((r.realized_pnl for r in rows), Decimal(0))
    fee = sum((r.fee for r in rows), Decimal(0))
    last = max(rows, key=lambda r: r.update_time)
    return Exit(_kind(work, orders, opened_ms), pnl, fee, last.close_average_price or None)


def _kind(work: Work, orders: list[Order], opened_ms: int) -> str:
    targets = [
        r for r in work.of(OrderRole.TAKE_PROFIT) if r.state not in ("pending", "not_sent", "failed")
    ]
    ours = {r.client_order_id for r in targets if r.client_order_id}
    history = [
        o for o in orders
        if o.reduce_only and o.filled_size > 0 and o.update_time >= opened_ms - CLOCK_SLACK_MS
    ]
    if not history:
        return "manual"
    closing = max(history, key=lambda o: (o.update_time, int(o.order_id) if o.order_id.isdigit() else 0))
    if closing.order_category == "sl":
        return "breakeven_stop" if work.trade.at_breakeven else "stop"
    if closing.order_category in LIQUIDATION:
        return "liquidation"
    if closing.client_order_id in ours:
        return "targets"
    if ids.is_close_of(work.signal_id, closing.client_order_id):
        return "closed_for_safety"
    return "manual"
