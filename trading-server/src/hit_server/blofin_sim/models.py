"""The simulator's mutable state records: orders, TP/SL orders, positions, fills, closed positions."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

Side = Literal["buy", "sell"]
MarginMode = Literal["cross", "isolated"]
OrderType = Literal["market", "limit", "post_only", "fok", "ioc"]
OrderState = Literal["live", "partially_filled", "filled", "canceled", "partially_canceled"]
TpslState = Literal["live", "effective", "canceled", "order_failed"]
ORDER_TYPES: tuple[str, ...] = ("market", "limit", "post_only", "fok", "ioc")
OPEN_STATES: tuple[str, ...] = ("live", "partially_filled")


@dataclass(frozen=True)
class TpslSpec:
    """Trigger and order prices of a take profit and/or stop loss (order price None = market)."""

    tp_trigger: Decimal | None = None
    tp_price: Decimal | None = None
    sl_trigger: Decimal | None = None
    sl_price: Decimal | None = None

    @property
    def empty(self) -> bool:
        return self.tp_trigger is None and self.sl_trigger is None


@dataclass(frozen=True)
class OrderParams:
    """A validated-for-shape place-order request; business rules are checked by the engine."""

    inst_id: str
    side: Side
    order_type: OrderType
    size: Decimal
    margin_mode: MarginMode
    price: Decimal | None = None
    position_side: str = "net"
    reduce_only: bool = False
    client_order_id: str = ""
    tpsl: TpslSpec = field(default_factory=TpslSpec)
    broker_id: str = ""


@dataclass(frozen=True)
class TpslParams:
    inst_id: str
    side: Side
    margin_mode: MarginMode
    size: Decimal | None  # None = the whole position ("-1")
    tpsl: TpslSpec
    position_side: str = "net"
    client_order_id: str = ""
    reduce_only: bool = True
    broker_id: str = ""


@dataclass
class SimOrder:
    order_id: str
    client_order_id: str
    inst_id: str
    side: Side
    order_type: OrderType
    price: Decimal | None
    size: Decimal
    margin_mode: MarginMode
    leverage: int
    reduce_only: bool
    create_time: int
    update_time: int
    seq: int
    position_side: str = "net"
    tpsl: TpslSpec = field(default_factory=TpslSpec)
    state: OrderState = "live"
    filled_size: Decimal = Decimal(0)
    filled_amount: Decimal = Decimal(0)  # sum of fill size x price (in quote per contract value)
    fee: Decimal = Decimal(0)
    pnl: Decimal = Decimal(0)
    category: str = "normal"
    algo_id: str = ""
    cancel_source: str = ""
    broker_id: str = ""

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def average_price(self) -> Decimal | None:
        return self.filled_amount / self.filled_size if self.filled_size else None


@dataclass
class SimTpsl:
    tpsl_id: str
    client_order_id: str
    inst_id: str
    side: Side
    margin_mode: MarginMode
    size: Decimal | None
    spec: TpslSpec
    leverage: int
    create_time: int
    update_time: int
    seq: int
    position_side: str = "net"
    reduce_only: bool = True
    state: TpslState = "live"
    actual_size: Decimal | None = None
    fired: Literal["tp", "sl", ""] = ""
    order_id: str = ""
    cancel_type: str = "not_canceled"
    broker_id: str = ""


@dataclass
class SimPosition:
    position_id: str
    inst_id: str
    margin_mode: MarginMode
    leverage: int
    create_time: int
    update_time: int
    size: Decimal = Decimal(0)  # signed contracts: negative = short
    average_price: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    max_size: Decimal = Decimal(0)
    closed_size: Decimal = Decimal(0)
    close_amount: Decimal = Decimal(0)
    first_side: Side = "buy"


@dataclass(frozen=True)
class Fill:
    trade_id: str
    order_id: str
    inst_id: str
    side: Side
    price: Decimal
    size: Decimal
    pnl: Decimal
    fee: Decimal
    ts: int
    maker: bool


@dataclass(frozen=True)
class ClosedPosition:
    history_id: str
    position: SimPosition
    close_time: int


@dataclass(frozen=True)
class SimEvent:
    """One change a private WebSocket would push: channel `orders`, `orders-algo`, `positions`, `account`."""

    channel: str
    data: dict[str, Any]
