"""Direction and instrument: which way the trade goes and on what.

Direction: the words LONG/SHORT/BUY/SELL (also `-ING`) and the arrows 📈/📉/⬆/⬇ are strong; a colour
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

from hit_shared.models import Side

_STRONG = re.compile(
    r"\b(?:(?P<long>LONG|BUY)|(?P<short>SHORT|SELL))(?:ING)?\b(?![ -]?(?:ZONE|RANGE|AREA|BETWEEN|PRICE)\b)"
    r"|(?P<up>📈|⬆)|(?P<down>📉|⬇)"
)
_WEAK = re.compile(
    r"(?P<long>🟢|🟩|\bBUY(?:ING)?[ -]?(?:ZONE|RANGE|AREA))"
    r"|(?P<short>🔴|🟥|\bSELL(?:ING)?[ -]?(?:ZONE|RANGE|AREA))"
)
_PAIR = re.compile(
    r"(?<![A-Z0-9])[#$]?(?P<base>[A-Z0-9]{1,20}?)(?:[ ]?[-/:_][ ]?|[ ])?(?P<quote>USDT|USDC|BUSD|USD|PERP)"
    r"(?:\.P|[-.]?PERP(?:ETUAL)?|-?SWAP)?(?![A-Z0-9])"
)
_CASHTAG = re.compile(r"[#$](?P<base>[0-9]{0,6}[A-Z][A-Z0-9]{0,19})(?![A-Z0-9])")
_BARE_AFTER = re.compile(
    r"(?:\b(?:LONG|SHORT|BUY|SELL)(?:ING)?\b|📈|📉|⬆|⬇)[ ]*(?:ON[ ]+|-[ ]*)?[#$]?"
    r"([0-9]{0,6}[A-Z][A-Z0-9]{1,19})\b"
)
_BARE_BEFORE = re.compile(
    r"(?<![A-Z0-9])[#$]?([0-9]{0,6}[A-Z][A-Z0-9]{1,19})[ ]*(?:\n[ ]*)?(?:\b(?:LONG|SHORT|BUY|SELL)\b|📈|📉)"
)
_WORD = re.compile(r"[#$]?([0-9]{0,6}[A-Z][A-Z0-9]{1,19})(?![A-Z0-9])")
NOT_SYMBOLS = frozenset(
    """ENTRY ENTRIES ENTER SL TP TPS STOP STOPLOSS LOSS TARGET TARGETS TAKE PROFIT LEVERAGE LEV CROSS
    ISOLATED ISO MARKET CMP NOW AT ZONE POSITION SIGNAL SIGNALS TRADE TRADES SETUP ON IN FOR THE AN IS IT
    TERM TIME SCALP SWING ORDER LIMIT PAIR COIN SIDE DIRECTION TYPE NEW ALERT FUTURES SPOT PERP USDT USDC
    USD BUSD HERE THIS THAT BUY SELL LONG SHORT VIP FREE CALL IDEA SIZE RISK PREMIUM CRYPTO TRADING
    BINANCE BYBIT BLOFIN OKX BITGET MEXC KUCOIN UPDATE NOTE PRICE CURRENT EP GO NOT NO AND OR TO OF MY
    YOUR WE ME UP DOWN HIGH LOW MID BE AS SO IF OPEN CLOSE EXIT MEDIUM SAFE LEVEL LEVELS AREA RANGE BETWEEN
    TOKEN SYMBOL TICKER ASSET CONTRACT INSTRUMENT MARGIN AMOUNT""".split()
)


def directions(text: str) -> set[Side]:
    """Every direction the message gives: strong ones if any, else weak ones."""
    found: set[Side] = set()
    for match in _STRONG.finditer(text):
        found.add(Side.LONG if match.lastgroup in ("long", "up") else Side.SHORT)
        if len(found) == 2:
            return found
    if found:
        return found
    for match in _WEAK.finditer(text):
        found.add(Side.LONG if match.lastgroup == "long" else Side.SHORT)
    return found


def _instrument(base: str, quote: str) -> str:
    return f"{base}-{'USDT' if quote == 'PERP' else quote}"


def _usable(base: str) -> bool:
    return base not in NOT_SYMBOLS and not base.isdigit() and len(base) <= 20


def symbols(text: str, pairs: list[str]) -> list[str]:
    """The candidate instruments at the surest level that has any (see the module docstring)."""
    found = [
        _instrument(m["base"], m["quote"]) for m in _PAIR.finditer(text) if _usable(m["base"])
    ]
    if not found:
        for value in pairs:
            word = _WORD.search(value)
            if word and _usable(word.group(1)):
                found.append(f"{word.group(1)}-USDT")
                break
    if not found:
        found = [f"{m['base']}-USDT" for m in _CASHTAG.finditer(text) if _usable(m["base"])]
    if not found:
        for pattern in (_BARE_AFTER, _BARE_BEFORE):
            found = [f"{m.group(1)}-USDT" for m in pattern.finditer(text) if _usable(m.group(1))]
            if found:
                break
    return list(dict.fromkeys(found))
