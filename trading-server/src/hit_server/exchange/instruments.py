"""An instrument's trading rules and the precision arithmetic that follows from them.

BloFin sizes orders in contracts: base quantity = contracts x contractValue. A size must be a
multiple of lotSize and at least minSize; a price must be a multiple of tickSize. Sizes are always
rounded *down* (never more risk than asked); a size that rounds below minSize is refused, never
rounded up (rule 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Any, Literal

PriceRounding = Literal["nearest", "down", "up"]
_ROUNDING = {"nearest": ROUND_HALF_UP, "down": ROUND_DOWN, "up": ROUND_UP}


def plain(value: Decimal) -> str:
    """A decimal as BloFin writes it: `0.000000001`, never `1E-9`."""
    return format(value, "f")


@dataclass(frozen=True, slots=True)
class Instrument:
    inst_id: str
    base_currency: str
    quote_currency: str
    contract_value: Decimal
    lot_size: Decimal
    min_size: Decimal
    tick_size: Decimal
    max_leverage: int
    max_limit_size: Decimal
    max_market_size: Decimal
    state: str = "live"

    @property
    def is_live(self) -> bool:
        return self.state == "live"

    @classmethod
    def from_blofin(cls, row: dict[str, Any]) -> Instrument:
        """Build from one row of GET /api/v1/market/instruments (values are strings there)."""
        return cls(
            inst_id=str(row["instId"]),
            base_currency=str(row.get("baseCurrency", "")),
            quote_currency=str(row.get("quoteCurrency", "")),
            contract_value=Decimal(str(row["contractValue"])),
            lot_size=Decimal(str(row["lotSize"])),
            min_size=Decimal(str(row["minSize"])),
            tick_size=Decimal(str(row["tickSize"])),
            max_leverage=int(Decimal(str(row.get("maxLeverage", "1")))),
            max_limit_size=Decimal(str(row.get("maxLimitSize") or "1e12")),
            max_market_size=Decimal(str(row.get("maxMarketSize") or "1e12")),
            state=str(row.get("state", "live")),
        )

    def to_blofin(self) -> dict[str, str]:
        """The row as BloFin's instruments endpoint returns it (plain decimals, never `1E-9`)."""
        return {
            "instId": self.inst_id,
            "baseCurrency": self.base_currency,
            "quoteCurrency": self.quote_currency,
            "contractValue": plain(self.contract_value),
            "listTime": "1597026383085",
            "expireTime": "0",
            "maxLeverage": str(self.max_leverage),
            "minSize": plain(self.min_size),
            "lotSize": plain(self.lot_size),
            "tickSize": plain(self.tick_size),
            "instType": "SWAP",
            "contractType": "linear",
            "maxLimitSize": plain(self.max_limit_size),
            "maxMarketSize": plain(self.max_market_size),
            "state": self.state,
            "settleCurrency": self.quote_currency,
        }

    def round_size_down(self, contracts: Decimal) -> Decimal:
        """Contracts rounded down to a multiple of lotSize (may be zero)."""
        if contracts <= 0:
            return Decimal(0)
        lots = (contracts / self.lot_size).to_integral_value(rounding=ROUND_DOWN)
        return (lots * self.lot_size).quantize(self.lot_size)

    def contracts_for_base(self, base_quantity: Decimal) -> Decimal:
        """A base-currency quantity (e.g. BTC) as contracts, rounded down to lotSize."""
        return self.round_size_down(base_quantity / self.contract_value)

    def base_for_contracts(self, contracts: Decimal) -> Decimal:
        return contracts * self.contract_value

    def size_problem(self, contracts: Decimal, *, market: bool) -> str | None:
        """Why BloFin would refuse this size, as a sentence; None when it is acceptable."""
        if contracts < self.min_size:
            return (
                f"size {contracts} contracts of {self.inst_id} is under the minimum of {self.min_size}"
            )
        if contracts % self.lot_size != 0:
            return f"size {contracts} is not a multiple of the lot size {self.lot_size} of {self.inst_id}"
        limit = self.max_market_size if market else self.max_limit_size
        if contracts > limit:
            return f"size {contracts} exceeds the maximum {limit} contracts per order of {self.inst_id}"
        return None

    def round_price(self, price: Decimal, how: PriceRounding = "nearest") -> Decimal:
        """A price on the tick grid: nearest by default; "down"/"up" when the side matters."""
        ticks = (price / self.tick_size).to_integral_value(rounding=_ROUNDING[how])
        return (ticks * self.tick_size).quantize(self.tick_size)

    def is_on_tick(self, price: Decimal) -> bool:
        return price % self.tick_size == 0
