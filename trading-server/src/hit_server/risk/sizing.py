"""Sizing for the risk engine: the largest lot-rounded size that every bound allows.

The first estimate divides each budget (risk, notional cap, margin) by its per-contract cost at the
sizing reference price and takes the smallest, rounded down to lotSize. Then the real orders are
built and measured at their own prices (a ladder's rungs are not all at the reference); while one
budget is exceeded the size is cut in proportion and rounded down again. Sizes only ever shrink, so
this ends, and the result is within every budget exactly. Pure, like `risk`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from hit_server.exchange.instruments import Instrument
from hit_server.risk.orders import PlannedOrder, ladder
from hit_shared.models import Side

_MAX_REFITS = 64
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Levels:
    """A signal's prices on the tick grid. `rungs` are the entry prices in fill order; empty = market."""

    side: Side
    mark: Decimal
    rungs: tuple[Decimal, ...]
    stop: Decimal
    targets: tuple[Decimal, ...]
    reference: Decimal


@dataclass(frozen=True, slots=True)
class Sizing:
    size: Decimal  # lot multiple; under min_size means no trade
    raw_contracts: Decimal  # the bound before lot rounding, for the rejection sentence
    min_size: Decimal
    limited_by: str
    entries: tuple[PlannedOrder, ...] = ()
    risk_usd: Decimal = _ZERO
    notional_usd: Decimal = _ZERO
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Budget:
    risk_usd: Decimal
    cap_usd: Decimal
    available: Decimal
    leverage: int
    fee_rate: Decimal  # fraction of notional

    def overshoot(self, risk: Decimal, notional: Decimal) -> tuple[Decimal, str] | None:
        """The factor to shrink by and the bound that needs it, or None when everything fits."""
        worst: tuple[Decimal, str] | None = None
        # margin: notional / leverage + notional * fee <= available, kept exact by multiplying out
        margin_scaled = notional * (1 + self.leverage * self.fee_rate)
        for used, allowed, name in (
            (risk, self.risk_usd, "risk"),
            (notional, self.cap_usd, "max_position_size_usd"),
            (margin_scaled, self.available * self.leverage, "margin"),
        ):
            if used > allowed and (worst is None or allowed / used < worst[0]):
                worst = (allowed / used, name)
        return worst


def _usable(amount: Decimal) -> Decimal:
    """A budget figure, or zero when it is negative or not a number (no budget, so no trade)."""
    return amount if amount.is_finite() and amount > 0 else _ZERO


def show(value: Decimal, places: int) -> str:
    """A number for a sentence: `places` decimals (significant digits under 1), thousands separated."""
    if value == 0 or not value.is_finite():
        return str(value.normalize()) if value.is_finite() else str(value)
    exponent = -places if abs(value) >= 1 else value.adjusted() - places + 1
    return format(value.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_UP).normalize(), ",f")


def _orders(size: Decimal, levels: Levels, inst: Instrument) -> tuple[PlannedOrder, ...]:
    if not levels.rungs:
        return (PlannedOrder(price=None, size=size),)
    return ladder(size, levels.rungs, inst)


def _measure(orders: tuple[PlannedOrder, ...], levels: Levels, cv: Decimal) -> tuple[Decimal, Decimal]:
    risk = notional = _ZERO
    for order in orders:
        price = levels.mark if order.price is None else order.price
        risk += order.size * cv * abs(price - levels.stop)
        notional += order.size * cv * price
    return risk, notional


def _first_estimate(levels: Levels, inst: Instrument, budget: _Budget) -> tuple[Decimal, str]:
    cv = inst.contract_value
    unit_notional = cv * levels.reference
    bounds = [
        (budget.risk_usd / (cv * abs(levels.reference - levels.stop)), "risk"),
        (budget.cap_usd / unit_notional, "max_position_size_usd"),
        (budget.available * budget.leverage / (unit_notional * (1 + budget.leverage * budget.fee_rate)),
         "margin"),
        (min(inst.max_market_size, inst.max_limit_size), "max_order_size"),
    ]
    return min(bounds, key=lambda bound: bound[0])  # min() keeps the first on ties: risk wins


def _note(limited_by: str, budget: _Budget, inst: Instrument, size: Decimal) -> tuple[str, ...]:
    if limited_by == "max_position_size_usd":
        return (f"size capped at {size} contracts by MAX_POSITION_SIZE_USD ({show(budget.cap_usd, 2)} USDT)",)
    if limited_by == "margin":
        return (f"size cut to {size} contracts to fit the {show(budget.available, 2)} USDT available",)
    if limited_by == "max_order_size":
        return (f"size capped at {size} contracts, the largest order {inst.inst_id} accepts",)
    return ()


def fit_size(
    levels: Levels,
    inst: Instrument,
    equity: Decimal,
    available: Decimal,
    risk_percent: Decimal,
    cap_usd: Decimal,
    fee_percent: Decimal,
    leverage: int,
) -> Sizing:
    """The plan's size and entry orders; `size < inst.min_size` means the trade is too small."""
    budget = _Budget(
        risk_usd=_usable(equity) * _usable(risk_percent) / 100,
        cap_usd=_usable(cap_usd),
        available=_usable(available),
        leverage=leverage,
        fee_rate=max(fee_percent, _ZERO) / 100,
    )
    raw, limited_by = _first_estimate(levels, inst, budget)
    size = inst.round_size_down(raw)
    for _ in range(_MAX_REFITS):
        if size < inst.min_size:
            break
        orders = _orders(size, levels, inst)
        risk, notional = _measure(orders, levels, inst.contract_value)
        over = budget.overshoot(risk, notional)
        if over is None:
            return Sizing(
                size=size, raw_contracts=raw, min_size=inst.min_size, limited_by=limited_by,
                entries=orders, risk_usd=risk, notional_usd=notional,
                notes=_note(limited_by, budget, inst, size),
            )
        factor, limited_by = over
        raw = size * factor
        smaller = inst.round_size_down(raw)
        size = smaller if smaller < size else size - inst.lot_size
    if size >= inst.min_size:  # no fit after _MAX_REFITS cuts: refuse rather than guess
        size = _ZERO
    return Sizing(size=size, raw_contracts=raw, min_size=inst.min_size, limited_by=limited_by)
