"""Checks a careful trader makes before taking a signal that the prices alone do not show.

- The instrument must be a crypto coin: gold, silver, oil, forex pairs and stock indices are refused
  (a channel's `GOLD buy 4062` would otherwise become a `GOLD-USDT` order on a token of that name).
- The prices must fit the coin's scale: `ADA long 4415` is a price written without its decimal point
  (ADA trades below a few dollars). The scales are broad bands around where each well-known coin has
  traded, wide enough to hold years of moves; a coin not listed is not checked.
- A leverage whose value cannot be read (`Leverage: 1OO x`) makes the message unreadable, never a
  trade without the leverage it asked for.
"""

from __future__ import annotations

import re
from decimal import Decimal

from hit_bot.parsing.formats import Prices

NOT_CRYPTO = frozenset(
    """GOLD XAU XAG SILVER OIL WTI BRENT USOIL UKOIL NATGAS EUR GBP JPY AUD NZD CAD CHF EURUSD GBPUSD
    USDJPY AUDUSD NZDUSD USDCAD USDCHF EURJPY GBPJPY XAUUSD XAGUSD US30 US100 US500 NAS100 NASDAQ SPX
    SPX500 SP500 DJI DOW DAX GER30 GER40 UK100 JP225 NIKKEI HK50 VIX DXY""".split()
)
# Lowest and highest believable price per coin (USDT), far wider than any year's range.
COIN_SCALES: dict[str, tuple[Decimal, Decimal]] = {
    "BTC": (Decimal(1000), Decimal(10_000_000)),
    "ETH": (Decimal(50), Decimal(500_000)),
    "BNB": (Decimal(10), Decimal(100_000)),
    "SOL": (Decimal(1), Decimal(50_000)),
    "XRP": (Decimal("0.05"), Decimal(500)),
    "ADA": (Decimal("0.01"), Decimal(100)),
    "DOGE": (Decimal("0.001"), Decimal(50)),
    "TRX": (Decimal("0.005"), Decimal(50)),
    "LINK": (Decimal("0.5"), Decimal(5000)),
    "AVAX": (Decimal("0.5"), Decimal(5000)),
    "DOT": (Decimal("0.1"), Decimal(1000)),
    "LTC": (Decimal(5), Decimal(20_000)),
}
_LEVERAGE_VALUE = re.compile(
    r"(?<![A-Z])LEV(?:ERAGE)?(?![A-Z])[ ]?[:=][ ]?(?:(?:CROSS|ISOLATED|ISO)[ ]?)?\(?[ ]?([^ \n)]+)"
)
_CLEAN_LEVERAGE = re.compile(r"X?[0-9]+(?:\.[0-9]+)?X?(?:[-/](?:X?[0-9]+X?)?)?|CROSS|ISOLATED|ISO|[(-]")


def not_crypto_problem(symbol: str) -> str | None:
    base = symbol.split("-")[0]
    if base in NOT_CRYPTO:
        return f"{base} is not a crypto coin (gold, forex and indices are not traded)"
    return None


def scale_problem(symbol: str, prices: Prices) -> str | None:
    """Prices outside the coin's believable band: a missing or misplaced decimal point."""
    band = COIN_SCALES.get(symbol.split("-")[0])
    if band is None:
        return None
    low, high = band
    outside = [p for p in (*prices.entries, *prices.stops, *prices.take_profits) if not low <= p <= high]
    if outside:
        return (
            f"its price {outside[0]} does not fit {symbol} (a missing or misplaced decimal point?); "
            "check it for a typo"
        )
    return None


def leverage_problem(norm: str) -> str | None:
    """`Leverage: 1OO x`: a leverage label whose value is neither a number nor a margin mode."""
    for match in _LEVERAGE_VALUE.finditer(norm):
        value = match.group(1)
        if any(ch.isdigit() for ch in value) and not _CLEAN_LEVERAGE.fullmatch(value):
            return f"its leverage {value} is not a number that can be read"
    return None
