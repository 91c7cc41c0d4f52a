"""What the BloFin client takes and returns: frozen pydantic models, Decimal for every price and size.

Requests validate on construction (a bad request fails here, before anything is signed or sent) and
render themselves as BloFin's JSON body with `to_blofin()`. Replies are parsed by each model's
`from_blofin(row)`, which accepts BloFin's habits: numbers as strings, absent values as `""` or null.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

OrderSide = Literal["buy", "sell"]
OrderType = Literal["market", "limit", "post_only", "fok", "ioc"]
MarginMode = Literal["cross", "isolated"]
PositionSide = Literal["net", "long", "short"]
OrderState = Literal["live", "partially_filled", "filled", "canceled", "partially_canceled"]
TpslState = Literal["live", "effective", "canceled", "order_failed"]

MARKET_PRICE = Decimal(-1)
"""A TP/SL order price of -1 means: execute at market once triggered."""
WHOLE_POSITION = Decimal(-1)
"""A TP/SL size of -1 means: the whole position."""

_CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9_]{1,32}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def wire(value: Decimal) -> str:
    """A Decimal as BloFin expects it: plain digits, never exponent notation."""
    return format(value, "f")


def dec(value: Any) -> Decimal:
    """A BloFin number (usually a string); absent values read as zero."""
    if value is None or value == "":
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


def opt_dec(value: Any) -> Decimal | None:
    """A BloFin number that may be absent (null or "")."""
    if value is None or value == "":
        return None
    return dec(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _bool(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _check_client_order_id(value: str) -> None:
    if not _CLIENT_ORDER_ID.match(value):
        raise ValueError(
            f"client_order_id {value!r} must be 1-32 letters, digits or underscores (BloFin's rule)"
        )


def _check_pair(name: str, trigger: Decimal | None, price: Decimal | None) -> None:
    if price is not None and trigger is None:
        raise ValueError(f"{name}_order_price needs {name}_trigger_price")
    if trigger is not None and trigger <= 0:
        raise ValueError(f"{name}_trigger_price must be positive, got {trigger}")
    if price is not None and price <= 0 and price != MARKET_PRICE:
        raise ValueError(f"{name}_order_price must be positive or -1 (market), got {price}")


def _tpsl_fields(
    tp_trigger: Decimal | None, tp_price: Decimal | None, sl_trigger: Decimal | None, sl_price: Decimal | None
) -> dict[str, str]:
    body: dict[str, str] = {}
    if tp_trigger is not None:
        body["tpTriggerPrice"] = wire(tp_trigger)
        body["tpOrderPrice"] = wire(MARKET_PRICE if tp_price is None else tp_price)
    if sl_trigger is not None:
        body["slTriggerPrice"] = wire(sl_trigger)
        body["slOrderPrice"] = wire(MARKET_PRICE if sl_price is None else sl_price)
    return body


class Ticker(_Frozen):
    inst_id: str
    last: Decimal
    bid: Decimal
    ask: Decimal
    ts: int

    @classmethod
    def from_blofin(cls, row: dict[str, Any]) -> Ticker:
        return cls(
            inst_id=_text(row.get("instId")),
            last=dec(row.get("last")),
            bid=dec(row.get("bidPrice")),
            ask=dec(row.get("askPrice")),
            ts=int(dec(row.get("ts"))),
        )


class Balance(_Frozen):
    """The USDT line of the futures account."""

    currency: str
    total_equity: Decimal
    equity: Decimal
    available: Decimal
    frozen: Decimal

    @classmethod
    def from_blofin(cls, data: dict[str, Any], currency: str = "USDT") -> Balance:
        details = data.get("details") or []
        line: dict[str, Any] = next((d for d in details if d.get("currency") == currency), {})
        return cls(
            currency=currency,
            total_equity=dec(data.get("totalEquity")),
            equity=dec(line.get("equity")),
            available=dec(line.get("available")),
            frozen=dec(line.get("frozen")),
        )


class Position(_Frozen):
    inst_id: str
    position_side: PositionSide
    positions: Decimal = Field(description="signed contracts: negative is short (net mode)")
    available_positions: Decimal
    average_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    leverage: int
    margin_mode: MarginMode
    liquidation_price: Decimal | None
    position_id: str

    @classmethod
    def from_blofin(cls, row: dict[str, Any]) -> Position:
        return cls(
            inst_id=_text(row.get("instId")),
            position_side=row.get("positionSide") or "net",
            positions=dec(row.get("positions")),
            available_positions=dec(row.get("availablePositions")),
            average_price=dec(row.get("averagePrice")),
            mark_price=dec(row.get("markPrice")),
            unrealized_pnl=dec(row.get("unrealizedPnl")),
            leverage=int(dec(row.get("leverage") or 1)),
            margin_mode=row.get("marginMode") or "cross",
            liquidation_price=opt_dec(row.get("liquidationPrice")),
            position_id=_text(row.get("positionId")),
        )


class _PositionWrite(_Frozen):
    """What an order and a TP/SL order share: where, which side, whose id, and the attached TP/SL pair
    (an order price defaults to market, -1, when only the trigger is given)."""

    inst_id: str
    side: OrderSide
    margin_mode: MarginMode
    client_order_id: str
    reduce_only: bool = False
    position_side: PositionSide = "net"
    tp_trigger_price: Decimal | None = None
    tp_order_price: Decimal | None = None
    sl_trigger_price: Decimal | None = None
    sl_order_price: Decimal | None = None

    def _check_common(self) -> None:
        _check_client_order_id(self.client_order_id)
        _check_pair("tp", self.tp_trigger_price, self.tp_order_price)
        _check_pair("sl", self.sl_trigger_price, self.sl_order_price)

    def _body(self, size: Decimal, **fields: str) -> dict[str, str]:
        body = {
            "instId": self.inst_id,
            "marginMode": self.margin_mode,
            "positionSide": self.position_side,
            "side": self.side,
            **fields,
            "size": wire(size),
            "reduceOnly": "true" if self.reduce_only else "false",
            "clientOrderId": self.client_order_id,
        }
        body.update(
            _tpsl_fields(
                self.tp_trigger_price, self.tp_order_price, self.sl_trigger_price, self.sl_order_price
            )
        )
        return body


class OrderRequest(_PositionWrite):
    """An order to place."""

    order_type: OrderType
    size: Decimal = Field(gt=0)
    price: Decimal | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        self._check_common()
        if self.order_type == "market" and self.price is not None:
            raise ValueError("a market order takes no price")
        if self.order_type != "market" and (self.price is None or self.price <= 0):
            raise ValueError(f"a {self.order_type} order needs a positive price")
        return self

    def to_blofin(self) -> dict[str, str]:
        body = self._body(self.size, orderType=self.order_type)
        if self.price is not None:
            body["price"] = wire(self.price)
        return body


class OrderAck(_Frozen):
    order_id: str
    client_order_id: str


class Order(_Frozen):
    order_id: str
    client_order_id: str
    inst_id: str
    side: OrderSide
    order_type: str
    price: Decimal | None
    size: Decimal
    filled_size: Decimal
    average_price: Decimal | None = Field(description="None until something is filled")
    state: OrderState
    reduce_only: bool
    fee: Decimal
    pnl: Decimal
    create_time: int
    update_time: int
    tp_trigger_price: Decimal | None
    sl_trigger_price: Decimal | None
    order_category: str

    @property
    def is_open(self) -> bool:
        return self.state in ("live", "partially_filled")

    @classmethod
    def from_blofin(cls, row: dict[str, Any]) -> Order:
        filled = dec(row.get("filledSize"))
        price = opt_dec(row.get("price"))
        return cls(
            order_id=_text(row.get("orderId")),
            client_order_id=_text(row.get("clientOrderId")),
            inst_id=_text(row.get("instId")),
            side=row["side"],
            order_type=_text(row.get("orderType")),
            price=price if price else None,
            size=dec(row.get("size")),
            filled_size=filled,
            average_price=opt_dec(row.get("averagePrice")) if filled else None,
            state=row["state"],
            reduce_only=_bool(row.get("reduceOnly")),
            fee=dec(row.get("fee")),
            pnl=dec(row.get("pnl")),
            create_time=int(dec(row.get("createTime"))),
            update_time=int(dec(row.get("updateTime"))),
            tp_trigger_price=opt_dec(row.get("tpTriggerPrice")),
            sl_trigger_price=opt_dec(row.get("slTriggerPrice")),
            order_category=_text(row.get("orderCategory")) or "normal",
        )


class TpslRequest(_PositionWrite):
    """A TP and/or SL on an open position. `side` is the closing side; size -1 = whole position."""

    size: Decimal
    reduce_only: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        self._check_common()
        if self.size <= 0 and self.size != WHOLE_POSITION:
            raise ValueError(f"size must be positive or -1 (whole position), got {self.size}")
        if self.tp_trigger_price is None and self.sl_trigger_price is None:
            raise ValueError("a TP/SL order needs tp_trigger_price or sl_trigger_price")
        return self

    def to_blofin(self) -> dict[str, str]:
        return self._body(self.size)


class TpslAck(_Frozen):
    tpsl_id: str
    client_order_id: str


class TpslOrder(_Frozen):
    tpsl_id: str
    client_order_id: str
    inst_id: str
    side: OrderSide
    size: Decimal
    tp_trigger_price: Decimal | None
    sl_trigger_price: Decimal | None
    state: TpslState

    @classmethod
    def from_blofin(cls, row: dict[str, Any]) -> TpslOrder:
        return cls(
            tpsl_id=_text(row.get("tpslId")),
            client_order_id=_text(row.get("clientOrderId")),
            inst_id=_text(row.get("instId")),
            side=row["side"],
            size=dec(row.get("size")),
            tp_trigger_price=opt_dec(row.get("tpTriggerPrice")),
            sl_trigger_price=opt_dec(row.get("slTriggerPrice")),
            state=row["state"],
        )
