"""The pieces one pass of the position monitor shares: what the exchange showed at the start of the
pass (`Snapshot`), the trade being worked on with its orders and the events it produced (`Work`), and
the clientOrderIds the monitor derives for the orders it adds to a trade.

Ids (rule 1: derived from the signal_id, so a restart names the same order and finds it instead of
sending another): `<prefix>t<n>b<k>` take profit n of fill batch k, `<prefix>s<k>` the k-th stop the
monitor placed, `<prefix>c<k>` a close at market by the monitor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hit_server.exchange.blofin_errors import BloFinError, ExchangeUnavailable, RateLimited
from hit_server.exchange.blofin_models import MarginMode, Order, Position, TpslOrder
from hit_server.exchange.instruments import Instrument
from hit_server.journal.journal import EventRecord, OrderRecord
from hit_server.journal.trade_book import Trade
from hit_server.trading import ids
from hit_shared.models import OrderRole, fmt

OPEN_ORDER = ("live", "partially_filled")
WATCHED = (*OPEN_ORDER, "sending", "unknown")
NOT_SENT = ("pending", "not_sent")
REPLACED = "replaced"  # cancelled by a trader's action that placed others instead (lifecycle/actions.py)


batch_tp_id = ids.batch_take_profit_id
stop_id = ids.monitor_stop_id
close_id = ids.monitor_close_id


@dataclass(frozen=True)
class Snapshot:
    """The account at the start of a pass: positions by instId (net mode), resting orders by
    clientOrderId, live TP/SL orders and, from the account mirror (`streamed`), the orders it saw end,
    by clientOrderId, which then need no lookup. In a streamed snapshot an order that is neither resting
    nor seen to end has not been pushed yet (its push crosses the answer that placed it): it is left to
    the pass its push wakes, not looked up."""

    positions: dict[str, Position]
    orders: dict[str, Order]
    tpsl: list[TpslOrder]
    ended: dict[str, Order] = field(default_factory=dict)
    streamed: bool = False

    def stops(self, work: Work) -> list[TpslOrder]:
        """The live TP/SL orders that protect this trade's position (see `protects`)."""
        return [t for t in self.tpsl if protects(t, work)]


def protects(order: TpslOrder, work: Work) -> bool:
    """Whether a TP/SL order counts as the trade's stop (`is_protective_stop`)."""
    return is_protective_stop(order, work.symbol, work.trade.is_long, work.trade.stop_price,
                              work.instrument.tick_size)


def is_protective_stop(order: TpslOrder, symbol: str, is_long: bool, level: Decimal, tick: Decimal) -> bool:
    """Whether a TP/SL order protects a position the way the signal asked: live, on the symbol and the
    closing side, with a stop-loss trigger no worse than the trade's stop `level` (one tick of slack for
    a level rounded on the grid). A take-profit-only order, a stop on the other side, or a stop a
    trader left far beyond the trade's level does not (rule 2 counts the trade's stop, not any stop);
    a tighter one does. A level not known yet (0): any stop of the closing side counts."""
    trigger = order.sl_trigger_price
    close_side = "sell" if is_long else "buy"
    if order.inst_id != symbol or order.side != close_side or order.state != "live" or trigger is None:
        return False
    if level <= 0:
        return True
    return trigger >= level - tick if is_long else trigger <= level + tick


def covered(stops: list[TpslOrder], held: Decimal) -> Decimal:
    """Contracts these stops close when they fire (-1 = the whole position)."""
    total = Decimal(0)
    for stop in stops:
        if stop.size < 0:
            return held
        total += stop.size
    return total


def not_accepted(exc: BloFinError) -> bool:
    """Whether a refused write provably had no effect and may be sent again as it is, same
    clientOrderId: a rate limit (429) or a connection that never opened. Any other retryable error
    leaves the outcome unclear (look the order up); a non-retryable one is a definitive refusal."""
    if isinstance(exc, ExchangeUnavailable):
        return not exc.request_sent
    return isinstance(exc, RateLimited)


@dataclass
class Work:
    trade: Trade
    records: list[OrderRecord]
    instrument: Instrument
    margin_mode: MarginMode
    events: list[EventRecord] = field(default_factory=list)
    changed: dict[str, OrderRecord] = field(default_factory=dict)
    entry_filled_now: bool = False  # an entry of this trade filled more during this pass

    @property
    def symbol(self) -> str:
        return self.trade.symbol

    @property
    def signal_id(self) -> str:
        return self.trade.signal_id

    @property
    def close_side(self) -> str:
        return "sell" if self.trade.is_long else "buy"

    def of(self, role: OrderRole) -> list[OrderRecord]:
        return [r for r in self.records if r.role == role]

    def touch(self, record: OrderRecord) -> None:
        """Remember that this order's state changed (it is journaled at the end of the pass)."""
        if record not in self.records:
            self.records.append(record)
        self.changed[record.client_order_id] = record

    def event(self, kind: str, message: str, **data: Any) -> None:
        text = f"{self.symbol} {self.trade.side}: {message}"
        self.events.append(EventRecord(
            type=kind, message=text, signal_id=self.signal_id, symbol=self.symbol,
            data={k: fmt(v) if isinstance(v, Decimal) else v for k, v in data.items()},
        ))
