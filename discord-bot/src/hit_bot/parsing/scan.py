"""One pass over normalised text: where the labels are and which prices each one carries.

A label (`Entry`, `SL`, `TP2`, `Take-Profit Targets:`, `🎯`, `Leverage: 10x`, `Size:`...) owns the text
up to the next label: the rest of its own line, plus the following lines that hold only numbers (the
numbered lines of a Cornix-style block). A line with words ends it, so a trailing `Follow us 24/7`
never becomes a target. Prices that no label owns but that come before the first price label or
beside a leverage are "orphans": the implicit entry of `LONG BTC 60000 SL 58000 TP 65000`.
Labels of things the server decides (`Size`, `Risk`, `Margin`) and unknown `Word:` labels own
nothing, so their numbers are never taken for prices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

# An index after a price label: `TP1`, `T2`, `TP#3`, `Target 1:`, `Take Profit (2)`, `Entry #1`.
_INDEX = (
    r"(?:\#?[0-9]{1,2}(?![0-9.,])|[ ]*\(\#?[0-9]{1,2}\)|[ ]+\#?[0-9]{1,2}(?=[ ]*[:=)])"
    r"|[ ]*\#[0-9]{1,2}(?![0-9.,]))?"
)
_SEP = r"[ ]*(?:[:=]|-(?=[ ]))?"
_LABELS = re.compile(
    r"(?P<target>(?:\b(?:TAKE[ -]?PROFITS?(?:[ ](?:TARGETS?|LEVELS?|PRICES?|ZONES?))?|PROFIT[ ]TARGETS?"
    r"|TARGETS?(?:[ ](?:PRICES?|LEVELS?|ZONES?))?|TGTS?|TPS?|T(?=[0-9]))(?![A-Z])"
    + _INDEX
    + r"|🎯)"
    + _SEP
    + r")"
    r"|(?P<stop>(?:\b(?:STOP[ -]?LOSS(?:ES)?|STOPLOSS|STOP|SL|S/L|INVALIDATION)(?![A-Z])"
    r"(?:[ ](?:TARGETS?|PRICES?|LEVELS?|ZONES?|AT)(?![A-Z]))?" + _INDEX + r"|🛑|⛔)" + _SEP + r")"
    r"|(?P<entry>(?:\b(?:ENTRY[ -]?(?:TARGETS?|ZONES?|PRICES?|RANGE|POINTS?|LEVELS?|AREA|ORDERS?)"
    r"|ENTRIES|ENTRY|ENTER(?:[ ]AT)?|(?:BUY|SELL)(?:ING)?[ ](?:ZONE|RANGE|AREA|PRICE|BETWEEN|AT)"
    r"|OPEN(?:ING)?[ ]PRICE|LIMIT(?:[ ](?:ORDER|PRICE|ENTRY))?|EP)(?![A-Z])"
    + _INDEX
    + r"|@|💰)"
    + _SEP
    + r")"
    r"|(?P<lev>(?:\bLEV(?:ERAGE)?(?![A-Z])\.?[ ]*[:=-]?[ ]*(?:(?:CROSS|ISOLATED|ISO)(?![A-Z])[ ]*)?"
    r"|\b(?:CROSS|ISOLATED|ISO)(?![A-Z])[ ]*[:=]?[ ]*)"
    r"\(?[ ]*X?[ ]*(?P<lev_a>[0-9]{1,4}(?:\.[0-9]+)?)(?![0-9])[ ]*X?(?![A-Z])[ ]*\)?"
    r"|(?<![\w.])(?P<lev_b>[0-9]{1,4}(?:\.[0-9]+)?)X(?![A-Z0-9])|\bX(?P<lev_c>[0-9]{1,4})(?![0-9.A-Z]))"
    r"|(?P<pair>\b(?:PAIR|COIN|SYMBOL|TICKER|ASSET|TOKEN|CONTRACT|INSTRUMENT)S?(?![A-Z])[ ]*[:=]?)"
    r"|(?P<ignore>\b(?:POSITION[ ]SIZE|SIZE|RISK|AMOUNT|QTY|QUANTITY|MARGIN|VOLUME|CAPITAL|ALLOCATION"
    r"|INVEST(?:MENT)?|TIMEFRAME|TF|DURATION|EXCHANGE|PROFIT|PNL|ROI|GAIN|LOSS)(?![A-Z])[ ]*[:=]?)"
    r"|(?P<other>\b[A-Z]{2,20}[ ]?:(?![0-9]))"
)
_NUMBER = re.compile(r"(?<![A-Z0-9.#])(-?)([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(K?)(?![0-9A-Z]|\.[0-9])")
_MARKET = re.compile(r"\b(?:MARKET|CMP|NOW|CURRENT|ASAP|INSTANT|IMMEDIATE(?:LY)?)\b")
_WORD = re.compile(r"[A-Z]{2}")
_EMOJI_LABELS = frozenset("🎯🛑⛔💰")
_THOUSAND = Decimal(1000)
PRICE_KINDS = frozenset(("entry", "stop", "target"))


@dataclass(slots=True)
class Scan:
    """What the labels of one message say, before any format decides what it means."""

    text: str
    entries: list[Decimal] = field(default_factory=list)
    market: bool = False  # an entry label said market / CMP / now
    stops: list[Decimal] = field(default_factory=list)  # the first price of each stop label
    targets: list[Decimal] = field(default_factory=list)
    orphans: list[Decimal] = field(default_factory=list)
    leverages: list[str] = field(default_factory=list)
    pairs: list[str] = field(default_factory=list)  # the text after each Pair:/Coin: label
    emoji: bool = False  # a price came from an emoji label (💰 🛑 🎯)
    multi_line: bool = False  # the labelled prices span more than one line
    first_label: int = -1  # where the first price label starts, -1 without one

    @property
    def labelled(self) -> bool:
        return bool(self.entries or self.market or self.stops or self.targets)


def _own_lines(region: str) -> str:
    """The label's own line plus the following number-only lines."""
    if "\n" not in region:
        return region
    lines = region.split("\n")
    kept = [lines[0]]
    for line in lines[1:]:
        if _WORD.search(line):
            break
        kept.append(line)
    return "\n".join(kept)


def numbers(region: str) -> list[Decimal]:
    """The prices in a label's text; a leading `-` counts only on the first (`Entry: -5`)."""
    found: list[Decimal] = []
    for sign, digits, kilo in _NUMBER.findall(region):
        value = Decimal(digits)
        if kilo:
            value *= _THOUSAND
        if sign and not found:
            value = -value
        found.append(value)
    return found


def _take(scan: Scan, kind: str, region: str, emoji: bool) -> bool:
    """Adds a price label's prices to the scan; True when it carried any."""
    region = _own_lines(region)
    values = numbers(region)
    if kind == "entry":
        if _MARKET.search(region):
            scan.market = True
            return True
        scan.entries += values
    elif kind == "stop":
        if values:
            scan.stops.append(values[0])
    else:
        scan.targets += values
    if values and emoji:
        scan.emoji = True
    return bool(values)


def scan(text: str) -> Scan:
    """Reads every label of normalised text (see the module docstring)."""
    result = Scan(text)
    labels = list(_LABELS.finditer(text))
    head_end = labels[0].start() if labels else len(text)
    result.orphans += numbers(text[:head_end])
    first = last = -1
    for i, label in enumerate(labels):
        kind = label.lastgroup or "other"
        region = text[label.end() : labels[i + 1].start() if i + 1 < len(labels) else len(text)]
        if kind in PRICE_KINDS:
            if _take(result, kind, region, label.group(0)[0] in _EMOJI_LABELS):
                if first < 0:
                    first = label.start()
                last = label.start()
        elif kind == "lev":
            result.leverages.append(label.group("lev_a") or label.group("lev_b") or label.group("lev_c"))
            if first < 0:
                result.orphans += numbers(_own_lines(region))
        elif kind == "pair":
            result.pairs.append(_own_lines(region))
    result.first_label = first
    result.multi_line = first >= 0 and "\n" in text[first:last]
    return result
