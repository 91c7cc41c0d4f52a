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

from hit_server import ids
from hit_server.blofin_models import MarginMode, Order, Position, TpslOrder
from hit_server.instruments import Instrument
from hit_server.journal import EventRecord, OrderRecord
from hit_server.trade_book import Trade
from hit_shared.models import OrderRole, fmt

OPEN_ORDER = ("live", "partially_filled")
WATCHED = (*OPEN_ORDER, "sending", "unknown")
NOT_SENT = ("pending", "not_sent")


batch_tp_id = ids.batch_take_profit_id
stop_id = ids.monitor_stop_id
close_id = ids.monitor_close_id


@dataclass(frozen=True)
class Snapshot:
    """The account at the start of a pass: positions by instId (net mode), resting orders by
    clientOrderId, and live TP/SL orders."""

    positions: dict[str, Position]
    orders: dict[str, Order]
    tpsl: list[TpslOrder]

    def stops(self, symbol: str, close_side: str) -> list[TpslOrder]:
        return [
            t for t in self.tpsl
            if t.inst_id == symbol and t.side == close_side and t.sl_trigger_price is not None
            and t.state == "live"
        ]


def covered(stops: list[TpslOrder], held: Decimal) -> Decimal:
    """Contracts these stops close when they fire (-1 = the whole position)."""
    total = Decimal(0)
    for stop in stops:
        if stop.size < 0:
            return held
        total += stop.size
    return total


@dataclass
class Work:
    trade: Trade
    records: list[OrderRecord]
    instrument: Instrument
    margin_mode: MarginMode
    events: list[EventRecord] = field(default_factory=list)
    changed: dict[str, OrderRecord] = field(default_factory=dict)

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
