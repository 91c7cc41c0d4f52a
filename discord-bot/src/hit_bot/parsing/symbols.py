"""Direction and instrument: which way the trade goes and on what.

Direction: the words LONG/SHORT/BUY/SELL (also `-ING`) and the arrows 📈/📉/⬆/⬇ (as normalise() marks
them) are strong; a colour
circle (🟢/🔴, often a risk level) or a `Buy zone:` label is weak and counts only when nothing strong
is there.

Symbol, from the surest to the loosest source: an explicit pair with its quote (`BTC-USDT`, `btcusdt`,
`BTC/USDT`, `BTCUSDT.P`, `1000PEPE_USDT`), the value of a `Pair:`/`Coin:` label, a cashtag (`#SOL`,
`$ETH`), then a bare word beside the direction (`LONG BTC`, `BTC LONG`). The quote defaults to USDT;
a `-PERP` / `.P` / `-SWAP` suffix means the USDT perpetual. More than one candidate at the surest
level found is an ambiguity the caller must refuse.
"""

from __future__ import annotations

import re

from hit_bot.parsing.normalise import DOWN_MARK, GREEN_MARK, RED_MARK, UP_MARK
from hit_shared.models import Side

_WORDS = re.compile(r"[A-Z]+")
_LONG_WORDS = frozenset(("LONG", "BUY", "LONGING", "BUYING"))
_SHORT_WORDS = frozenset(("SHORT", "SELL", "SHORTING", "SELLING"))
_ZONE_WORDS = ("ZONE", "RANGE", "AREA", "BETWEEN", "PRICE")
_BUY_SELL = frozenset(("BUY", "BUYING", "SELL", "SELLING"))
_DIRECTION_WORDS = re.compile(r"(?<![A-Z0-9])(?:LONG|SHORT|SELL|BUY)(?:ING)?(?![A-Z0-9])")
# BUY/SELL followed by one of _ZONE_WORDS is an entry label (`Buy zone:`), only a weak direction.
_STRONG_BUY_SELL = re.compile(
    r"(?<![A-Z0-9])(BUY|SELL)(?:ING)?(?![A-Z0-9])(?![ -]?(?:ZONE|RANGE|AREA|BETWEEN|PRICE)(?![A-Z]))"
)
_QUOTE = re.compile(r"(?:USDT|USDC|USD|PERP)(?:\.P|[-.]?PERP(?:ETUAL)?|-?SWAP)?(?![A-Z0-9])")
# The base before a quote: 1 to 20 letters and digits (the whole run), then an optional separator (`-`, `/`,
# `:`, `_`, with a blank on either side) or a blank, right before the quote.
_BASE = re.compile(r"(?<![A-Z0-9])([A-Z0-9]{1,20})(?:[ ]?[-/:_][ ]?|[ ])?\Z")
_QUOTES = {"USDT": "USDT", "USDC": "USDC", "PERP": "USDT"}
# Other names of a coin, as the venue lists it: `XBT` is Bitcoin on some exchanges.
ALIASES = {"XBT": "BTC"}
# Words that give a message its structure: never a coin, even written as a pair (`ENTRY/USDT`). Other words
# of NOT_SYMBOLS are coins when the message writes them as a pair (`HIGH/USDT`, `NOT-USDT`, `PERPUSDT`).
STRUCTURE_WORDS = frozenset(
    """LONG SHORT BUY SELL LONGING SHORTING BUYING SELLING ENTRY ENTRIES ENTER SL TP TPS STOP STOPLOSS
    LOSS TARGET TARGETS TAKE PROFIT LEVERAGE LEV CROSS ISOLATED ISO MARKET CMP NOW AT PRICE PAIR COIN SIDE
    DIRECTION TYPE SIGNAL SIZE RISK MARGIN AMOUNT IN ON FOR THE AND OR TO OF USDT USDC USD BUSD""".split()
)
# A leverage written beside the coin (`X10`, `25X`) is not a coin.
_LEVERAGE_WORD = re.compile(r"X[0-9]{1,4}|[0-9]{1,4}X")
_CASHTAG = re.compile(r"[#$]([0-9]{0,6}[A-Z][A-Z0-9]{0,19})(?![A-Z0-9])")
_BARE_AFTER = re.compile(
    r"(?:\b(?:LONG|SHORT|BUY|SELL)(?:ING)?\b|[\x14\x15])[ ]*(?:ON[ ]+|-[ ]*)?[#$]?"
    r"([0-9]{0,6}[A-Z][A-Z0-9]{1,19})\b"
)
_BARE_BEFORE = re.compile(
    r"(?<![A-Z0-9])[#$]?([0-9]{0,6}[A-Z][A-Z0-9]{1,19})[ ]*(?:\n[ ]*)?"
    r"(?:\b(?:LONG|SHORT|BUY|SELL)\b|[\x14\x15])"
)
_PAIR_LABEL = re.compile(
    r"\b(?:PAIR|COIN|SYMBOL|TICKER|ASSET|TOKEN|CONTRACT|INSTRUMENT)S?(?![A-Z])[ ]?[:=]?[ ]?"
    r"[#$]?([0-9]{0,6}[A-Z][A-Z0-9]{1,19})(?![A-Z0-9])"
)
NOT_SYMBOLS = frozenset(
    """ENTRY ENTRIES ENTER SL TP TPS STOP STOPLOSS LOSS TARGET TARGETS TAKE PROFIT LEVERAGE LEV CROSS
    ISOLATED ISO MARKET CMP NOW AT ZONE POSITION SIGNAL SIGNALS TRADE TRADES SETUP ON IN FOR THE AN IS IT
    TERM TIME SCALP SWING ORDER LIMIT PAIR COIN SIDE DIRECTION TYPE NEW ALERT FUTURES SPOT PERP USDT USDC
    USD BUSD HERE THIS THAT BUY SELL LONG SHORT VIP FREE CALL IDEA SIZE RISK PREMIUM CRYPTO TRADING
    BINANCE BYBIT BLOFIN OKX BITGET MEXC KUCOIN UPDATE NOTE PRICE CURRENT EP GO NOT NO AND OR TO OF MY
    YOUR WE ME UP DOWN HIGH LOW MID BE AS SO IF OPEN CLOSE EXIT MEDIUM SAFE LEVEL LEVELS AREA RANGE BETWEEN
    TOKEN SYMBOL TICKER ASSET CONTRACT INSTRUMENT MARGIN AMOUNT BREAKOUT REMINDER HELLO HI HEY GUYS TEAM
    ATTENTION WARNING QUICK FAST BONUS OK NEXT LAST FINAL ANOTHER TODAY TOMORROW WEEKEND MORNING EVENING
    NIGHT DAY WEEK MONTH CHART ANALYSIS SETUPS I ILL IM IVE ID WE WERE WILL GOING GONNA TIME TRY LETS LET
    PLAN THINK MAYBE COULD WOULD SHOULD JUST STILL ALREADY POTENTIAL POSSIBLE GOOD GREAT NICE BIG SMALL
    STRONG WEAK ALSO THEN BUT ALL ANY SOME AGAIN BACK MORE LESS VERY REALLY HOLD HODL WAIT WAITING READY
    ENTERING ADDING ADD GET GOT HAVE HAS HAD THEY THEM OUR US HE SHE HIS HER WHO WHAT WHEN WHERE WHY HOW
    YES RUNNING ACTIVE VALID OPENED TAKING""".split()
)


_COIN_WORD = re.compile(r"[A-Z0-9.]+")
_QUOTE_SUFFIX = re.compile(r"(?:USDT|USDC|USD|PERP)(?:\.P|PERP)?\Z")


def coin_words(text: str, candidates: list[str]) -> frozenset[str]:
    """The words of a message that name its coin, of those `symbols` found: `BTC`, `BTCUSDT`, `XBT`."""
    bases = {candidate.split("-")[0] for candidate in candidates}
    bases |= {alias for alias, coin in ALIASES.items() if coin in bases}
    return frozenset(w for w in _COIN_WORD.findall(text) if _QUOTE_SUFFIX.sub("", w) in bases)


def words(text: str) -> frozenset[str]:
    """The runs of letters of upper-case text."""
    return frozenset(_WORDS.findall(text))


# `Short term:` / `Mid term` / `long-term` are time horizons, not directions.
_HORIZON = re.compile(r"(?<![A-Z])(?:SHORT|LONG|MID|MEDIUM)[ -]?TERM(?![A-Z])")


def directions(text: str) -> tuple[Side, ...]:
    """Every direction the message gives, LONG first: strong ones if any, else weak ones."""
    text = _HORIZON.sub(" ", text)
    found = set(_DIRECTION_WORDS.findall(text))
    if found.isdisjoint(_BUY_SELL) or not any(zone in text for zone in _ZONE_WORDS):
        long_words = not found.isdisjoint(_LONG_WORDS)
        short_words = not found.isdisjoint(_SHORT_WORDS)
    else:  # `Buy zone:` is an entry label: BUY/SELL count only where they are not one
        strong = {m.group(1) for m in _STRONG_BUY_SELL.finditer(text)}
        long_words = any(not w.startswith("BUY") or "BUY" in strong for w in found & _LONG_WORDS)
        short_words = any(not w.startswith("SELL") or "SELL" in strong for w in found & _SHORT_WORDS)
    is_long = long_words or UP_MARK in text
    is_short = short_words or DOWN_MARK in text
    if not (is_long or is_short):
        is_long = GREEN_MARK in text or "BUY" in found or "BUYING" in found
        is_short = RED_MARK in text or "SELL" in found or "SELLING" in found
    return (Side.LONG,) * is_long + (Side.SHORT,) * is_short


def _usable(base: str) -> bool:
    return base not in NOT_SYMBOLS and not base.isdigit() and not _LEVERAGE_WORD.fullmatch(base)


def _pair_name(base: str, written_as_pair: bool) -> str | None:
    """The coin a pair's base names (`XBT` is BTC), or None when the base is not a coin."""
    if base.isdigit() or _LEVERAGE_WORD.fullmatch(base) or base in STRUCTURE_WORDS:
        return None
    if base in NOT_SYMBOLS and not written_as_pair:
        return None
    return ALIASES.get(base, base)


def _base(text: str, at: int) -> tuple[str, bool]:
    """The base of a pair whose quote starts at `at` ("" if none), and whether it is written as a pair:
    glued to the quote or joined by a separator (`HIGHUSDT`, `HIGH/USDT`), not only beside it."""
    base = _BASE.search(text[:at])
    if base is None:
        return "", False
    return base.group(1), not base.group(0)[len(base.group(1)) :].isspace()


def _pairs(text: str) -> list[str]:
    """Explicit pairs: a quote (USDT, USDC, USD, PERP) with a base right before it."""
    found = []
    for quote in _QUOTE.finditer(text):
        base, written_as_pair = _base(text, quote.start())
        name = _pair_name(base, written_as_pair) if base else None
        if name:
            found.append(f"{name}-{_QUOTES.get(quote.group(0)[:4], 'USDT')}")
    return found


_LONE_COIN = re.compile(r"[#$]?([0-9]{0,6}[A-Z][A-Z0-9]{1,9})")


def lone_coin(header: str) -> list[str]:
    """A message that starts with its coin alone, before its first label (`SOL` on a line of its own,
    `BTC giriş: 61000 ...`): the loosest source of a symbol, used when `symbols` finds none."""
    first = header.split()
    if len(first) != 1:
        return []
    coin = _LONE_COIN.fullmatch(first[0])
    if coin is None or not _usable(coin[1]):
        return []
    return [f"{ALIASES.get(coin[1], coin[1])}-USDT"]


def symbols(text: str) -> list[str]:
    """The candidate instruments at the surest level that has any (see the module docstring)."""
    found = _pairs(text)
    for pattern in (_PAIR_LABEL, _CASHTAG, _BARE_AFTER, _BARE_BEFORE):
        if found:
            break
        found = [f"{ALIASES.get(m[1], m[1])}-USDT" for m in pattern.finditer(text) if _usable(m[1])]
    return list(dict.fromkeys(found))


# Capitalised words that are not coins, beside those the signal parser knows (NOT_SYMBOLS).
_NOT_COINS = frozenset(
    """ASAP ATH ATL PNL ROI DCA FOMO FUD GM GN LOL OMG NFA DYOR IMO IMHO TBH RSI EMA SMA MA MACD OB FVG
    BOS UTC CPI FOMC USA EU UK TA PA LTF HTF BE BEP SL TP TPS TGT CMP HALF ALL CLOSE EXIT MOVE STOP NEW
    ENTRY RISK FREE DONE HIT PROFIT PROFITS LOSS CANCEL CANCELLED UPDATE NOTE VIP PS FYI BTW DM TG OK RR
    WIN""".split()
)
_CAPS_WORD = re.compile(r"(?<![A-Za-z0-9$#/_.-])([0-9]{0,6}[A-Z][A-Z0-9]{1,9})(?![A-Za-z0-9_/-])")
_NUMBERED_WORD = re.compile(r"(?:TP|SL|T|X|H|M|D|W)[0-9]+|[0-9]+[XHMDW]")  # TP1, X20, 4H: never a coin


def capitalised_coins(text: str) -> list[str]:
    """Coins written in capitals in a message that is not all capitals (`Close BTC now`, `BTC тейк 1`): the
    loosest source of a symbol, for management messages, which seldom write a pair or a direction."""
    if not any(ch.islower() or (ch.isalpha() and not ch.isascii()) for ch in text):
        return []  # an all-capitals message: every word looks like a ticker
    coins = []
    for word in _CAPS_WORD.findall(text):
        if word in NOT_SYMBOLS or word in STRUCTURE_WORDS or word in _NOT_COINS or word.isdigit():
            continue
        if _NUMBERED_WORD.fullmatch(word):
            continue
        coins.append(f"{word}-USDT")
    return list(dict.fromkeys(coins))
