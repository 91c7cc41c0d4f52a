"""Checks a careful trader makes before taking a signal that the prices alone do not show.

- The instrument must be a crypto coin: gold, silver, oil, forex pairs and stock indices are refused
  (a channel's `GOLD buy 4062` would otherwise become a `GOLD-USDT` order on a token of that name).
- The prices must fit the coin's scale: `ADA long 4415` is a price written without its decimal point
  (ADA trades below a few dollars). The scales are broad bands around where each well-known coin has
  traded, wide enough to hold years of moves; a coin not listed is not checked.
- A breakout entry (`LONG BTC above 60500 (breakout)`) needs a stop-entry order, which the bot does not
  place: refused, never a limit order that would fill at once.
- A target written twice: side by side it is one level (merged); apart, likely a typo (refused, in the
  server's words).
- A leverage whose value cannot be read (`Leverage: 1OO x`) makes the message unreadable, never a
  trade without the leverage it asked for.
"""

from __future__ import annotations

import re
from decimal import Decimal

from hit_bot.parsing.formats import Prices
from hit_bot.parsing.scan import labels
from hit_shared.models import Side, fmt

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


# `3300,3400`: a decimal comma with four decimals, or two prices without a blank? Neither reading is safe.
_AMBIGUOUS_COMMA = re.compile(r"(?<![0-9.,])[1-9][0-9]{2,},[0-9]{4,}(?![0-9,])")


def ambiguous_number_problem(clean: str) -> str | None:
    """A number that reads as one price or as two (`3300,3400`); `clean` is normalised with its
    commentary kept (the commas as written)."""
    found = _AMBIGUOUS_COMMA.search(clean)
    if found is None:
        return None
    one, two = found.group(0).split(",")
    return (
        f"{found.group(0)} can be read as one price ({one}.{two}) or as two ({one} and {two}): "
        f"write {one}.{two}, or {one}, {two} with a blank"
    )


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


# `(breakout)`, `break above`, `on breakout`: the entry is a level to cross, not a price to wait for.
_BREAKOUT = re.compile(
    r"(?<![A-Z])(?:BREAK[ -]?(?:OUT|DOWN)S?|BREAK(?:S|ING)?[ ]+(?:ABOVE|BELOW|OUT|DOWN|THROUGH)"
    r"|ON[ ]+(?:A[ ]+|THE[ ]+)?BREAK)(?![A-Z])"
)
_CROSSED = {Side.LONG: ("ABOVE", "OVER"), Side.SHORT: ("BELOW", "UNDER")}


def entry_order_problem(side: Side, prices: Prices, clean: str) -> str | None:
    """A breakout entry (`LONG BTC above 60500 (breakout)`) needs a stop-entry order, which fires once the
    price crosses the level; read as a limit it would fill at once on the wrong side of the level. A zone
    (`Enter above: 0.1642 - 0.1645`) is a range to buy in, and stays a limit.

    `clean` is the message normalised with its commentary kept (`(breakout)` is a remark after a price)."""
    breakout = _BREAKOUT.search(_outside_stops(clean))
    crossed = prices.trigger in _CROSSED[side] and len(set(prices.entries)) == 1
    if not (breakout or crossed) or prices.market:
        return None
    level = f" at {fmt(prices.entries[0])}" if prices.entries else ""
    return (
        f"its entry is a breakout{level} (an order that waits for the price to cross a level): stop-entry "
        "orders are not supported, and a limit order there would fill at once; post a plain entry price"
    )


def merged_targets(targets: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
    """`Target 3: 0.473`, `Target 4: 0.473`: the same level given twice in a row (a channel splitting its
    size) is one target. A repeat further apart is left for equal_targets to refuse."""
    return tuple(price for at, price in enumerate(targets) if at == 0 or price != targets[at - 1])


# A stop's own words: its qualifier, its price and a remark in brackets right after it.
_STOP_WORDS = re.compile(r"[^0-9\n]*[0-9][0-9.,]*K?(?:[ ]?\([^()\n]*\))?")


def _outside_stops(clean: str) -> str:
    """The text without each stop's own words: `SL: daily close below 3.10 (breakdown)` describes the
    stop, not the entry; anything after the stop's price and remark still counts."""
    header, found = labels(clean)
    kept = [header]
    for label in found:
        if label.kind == "stop":
            kept += [" ", _STOP_WORDS.sub(" ", label.region, count=1)]
        else:
            kept += [label.text, label.region]
    return "".join(kept)


def equal_targets(targets: tuple[Decimal, ...]) -> str | None:
    """A price written twice among targets that are not side by side (`TP1 62000 TP2 63000 TP3 62000`) is
    likely a typo. The server refuses it too (hit_server.risk.engine); the parser says it first, in the
    same words, so the user is told at once."""
    for later, price in enumerate(targets[1:], start=2):
        first = targets.index(price) + 1
        if first < later:
            return (
                f"TP{first} and TP{later} are both {fmt(price)}: a target written twice is likely a typo; "
                "send each target once"
            )
    return None
