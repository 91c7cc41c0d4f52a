"""Margin, P&L and fee arithmetic of a USDT-margined linear perpetual, in contracts.

Notional = |contracts| x contractValue x price. Initial margin = notional / leverage (cross at the mark
price, isolated at the entry price). Fees: taker 0.06 %, maker 0.02 % of the fill's notional, paid from
the cash balance. Realised P&L = closed contracts x contractValue x (exit - entry), sign by direction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from hit_server.exchange.instruments import Instrument

from .models import OrderParams, SimOrder, SimPosition

TAKER_FEE = Decimal("0.0006")
MAKER_FEE = Decimal("0.0002")
MAINTENANCE_RATE = Decimal("0.004")


@dataclass(frozen=True)
class FillResult:
    pnl: Decimal
    fee: Decimal
    closed: bool  # the fill brought the position to zero (or through it)


def sign(side: str) -> int:
    return 1 if side == "buy" else -1


def notional(inst: Instrument, contracts: Decimal, price: Decimal) -> Decimal:
    return abs(contracts) * inst.contract_value * price


def unrealized_pnl(inst: Instrument, pos: SimPosition, mark: Decimal) -> Decimal:
    return pos.size * inst.contract_value * (mark - pos.average_price)


def position_margin(inst: Instrument, pos: SimPosition, mark: Decimal) -> Decimal:
    price = mark if pos.margin_mode == "cross" else pos.average_price
    return notional(inst, pos.size, price) / pos.leverage


def opening_size(params: OrderParams | SimOrder, pos: SimPosition | None) -> Decimal:
    """The part of an order (what is left of it, if partly filled) that would open or add to a
    position (the rest closes the current one)."""
    if params.reduce_only:
        return Decimal(0)
    size = params.size - params.filled_size if isinstance(params, SimOrder) else params.size
    held = pos.size if pos else Decimal(0)
    if held == 0 or (held > 0) == (params.side == "buy"):
        return size
    return max(Decimal(0), size - abs(held))


def apply_fill(
    inst: Instrument, pos: SimPosition, side: str, qty: Decimal, price: Decimal, fee_rate: Decimal
) -> FillResult:
    """Move `pos` by a fill of `qty` contracts at `price`; returns the realised P&L and the fee."""
    fee = notional(inst, qty, price) * fee_rate
    signed = qty * sign(side)
    pnl = Decimal(0)
    closed = False
    if pos.size == 0 or (pos.size > 0) == (signed > 0):
        total = abs(pos.size) + qty
        pos.average_price = (abs(pos.size) * pos.average_price + qty * price) / total
        pos.size += signed
    else:
        closing = min(qty, abs(pos.size))
        direction = 1 if pos.size > 0 else -1
        pnl = closing * inst.contract_value * (price - pos.average_price) * direction
        pos.closed_size += closing
        pos.close_amount += closing * price
        pos.size += signed
        if pos.size == 0 or (pos.size > 0) != (direction > 0):
            closed = True
            if pos.size != 0:
                pos.average_price = price
    pos.realized_pnl += pnl
    pos.fees += fee
    pos.max_size = max(pos.max_size, abs(pos.size))
    return FillResult(pnl=pnl, fee=fee, closed=closed)


@dataclass(frozen=True)
class AccountSummary:
    """The USDT futures account: equity = cash + unrealised P&L; available = equity - margin in use."""

    cash: Decimal
    equity: Decimal
    unrealized_pnl: Decimal
    position_margin: Decimal
    order_frozen: Decimal
    isolated_equity: Decimal
    isolated_upl: Decimal

    @property
    def frozen(self) -> Decimal:
        return self.position_margin + self.order_frozen

    @property
    def available(self) -> Decimal:
        return max(Decimal(0), self.equity - self.frozen)


def summarize(
    cash: Decimal,
    instruments: Mapping[str, Instrument],
    prices: Mapping[str, Decimal],
    positions: Mapping[str, SimPosition],
    open_orders: Iterable[SimOrder],
) -> AccountSummary:
    upl = margin = frozen = iso_eq = iso_upl = Decimal(0)
    for pos in positions.values():
        inst, mark = instruments[pos.inst_id], prices[pos.inst_id]
        pnl = unrealized_pnl(inst, pos, mark)
        pos_margin = position_margin(inst, pos, mark)
        upl += pnl
        margin += pos_margin
        if pos.margin_mode == "isolated":
            iso_upl += pnl
            iso_eq += pos_margin + pnl
    for order in open_orders:
        if order.price is not None:
            opening = opening_size(order, positions.get(order.inst_id))
            frozen += notional(instruments[order.inst_id], opening, order.price) / order.leverage
    return AccountSummary(cash, cash + upl, upl, margin, frozen, iso_eq, iso_upl)
