"""Every order a TradePlan may send, with its derived clientOrderId: what the journal records (state
"sending", "attached" or "pending") before the first order leaves (see `service.py`)."""

from __future__ import annotations

from hit_server.journal.journal import OrderRecord
from hit_server.risk.engine import TradePlan
from hit_server.trading import ids
from hit_shared.models import OrderRole, Side, TradeSignal


def sides(side: Side) -> tuple[str, str]:
    """(opening side, closing side) of a trade."""
    return ("buy", "sell") if side is Side.LONG else ("sell", "buy")


def plan_orders(signal: TradeSignal, plan: TradePlan) -> list[OrderRecord]:
    """Every order the plan may send, with its derived clientOrderId, ready to be journaled."""
    open_side, close_side = sides(signal.side)
    sid, symbol = signal.signal_id, signal.symbol
    records = [
        OrderRecord(
            client_order_id=ids.entry_id(sid, n),
            role=OrderRole.ENTRY,
            seq=n,
            symbol=symbol,
            side=open_side,
            order_type="market" if entry.price is None else "limit",
            size=entry.size,
            price=entry.price,
        )
        for n, entry in enumerate(plan.entries, start=1)
    ]
    records.append(
        OrderRecord(
            client_order_id=ids.stop_id(sid),
            role=OrderRole.STOP_LOSS,
            seq=1,
            symbol=symbol,
            side=close_side,
            order_type="attached",
            size=plan.size,
            trigger_price=plan.stop_loss,
            state="attached",
        )
    )
    records.extend(
        OrderRecord(
            client_order_id=ids.take_profit_id(sid, n),
            role=OrderRole.TAKE_PROFIT,
            seq=n,
            symbol=symbol,
            side=close_side,
            order_type="limit",
            size=tp.size,
            price=tp.price,
            state="pending",
        )
        for n, tp in enumerate(plan.take_profits, start=1)
    )
    return records
