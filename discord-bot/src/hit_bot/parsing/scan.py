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
    r"(?:\#?[0-9]{1,2}(?![0-9.,])|[ ]?\(\#?[0-9]{1,2}\)|[ ]\#?[0-9]{1,2}(?=[ ]?[:=)])"
    r"|[ ]?\#[0-9]{1,2}(?![0-9.,]))?"
)
_PRICE_TAIL = r"(?![A-Z])" + _INDEX + r"[ ]?(?:[:=]|-(?=[ ]))?"
_WORD_TAIL = r"(?![A-Z])[ ]?[:=]?"
_LEVERAGE_VALUE = r"[ ]?\(?[ ]?X?[ ]?[0-9][0-9]{0,3}(?:\.[0-9]+)?(?![0-9])[ ]?X?(?![A-Z])[ ]?\)?"
# (kind, tail, words): each word starts with a literal so the regex engine can skip it cheaply.
_VOCABULARY: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "target",
        _PRICE_TAIL,
        (
            r"TAKE[ -]?PROFITS?(?:[ ](?:TARGETS?|LEVELS?|PRICES?|ZONES?))?",
            r"PROFIT[ ]TARGETS?",
            r"TARGETS?(?:[ ](?:PRICES?|LEVELS?|ZONES?))?",
            r"TGTS?",
            r"TPS?",
            r"T(?=[0-9])",
        ),
    ),
    (
        "stop",
        r"(?:[ ](?:TARGETS?|PRICES?|LEVELS?|ZONES?|AT)(?![A-Z]))?" + _PRICE_TAIL,
        (r"STOP[ -]?LOSS(?:ES)?", r"STOPLOSS", r"STOP", r"SL", r"S/L", r"INVALIDATION"),
    ),
    (
        "entry",
        _PRICE_TAIL,
        (
            r"ENTRY[ -]?(?:TARGETS?|ZONES?|PRICES?|RANGE|POINTS?|LEVELS?|AREA|ORDERS?)",
            r"ENTRIES",
            r"ENTRY",
            r"ENTER(?:[ ]AT)?",
            r"BUY(?:ING)?[ ](?:ZONE|RANGE|AREA|PRICE|BETWEEN|AT)",
            r"SELL(?:ING)?[ ](?:ZONE|RANGE|AREA|PRICE|BETWEEN|AT)",
            r"OPEN(?:ING)?[ ]PRICE",
            r"LIMIT(?:[ ](?:ORDER|PRICE|ENTRY))?",
            r"EP",
        ),
    ),
    (
        "lev",
        _LEVERAGE_VALUE,
        (
            r"LEV(?:ERAGE)?(?![A-Z])\.?[ ]?[:=-]?[ ]?(?:(?:CROSS|ISOLATED|ISO)(?![A-Z])[ ]?)?",
            r"CROSS(?![A-Z])[ ]?[:=]?",
            r"ISO(?:LATED)?(?![A-Z])[ ]?[:=]?",
        ),
    ),
    ("lev", r"X(?![A-Z0-9])", (r"[0-9][0-9]{0,3}(?:\.[0-9]+)?",)),
    ("lev", r"(?![0-9.A-Z])", (r"X[0-9][0-9]{0,3}",)),
    ("pair", r"S?" + _WORD_TAIL, tuple("PAIR COIN SYMBOL TICKER ASSET TOKEN CONTRACT INSTRUMENT".split())),
    (
        "ignore",
        _WORD_TAIL,
        (
            r"POSITION[ ]SIZE",
            *"""SIZE RISK AMOUNT QTY QUANTITY MARGIN VOLUME CAPITAL ALLOCATION INVESTMENT INVEST TIMEFRAME TF
            DURATION EXCHANGE PROFIT PNL ROI GAIN LOSS""".split(),
        ),
    ),
    ("other", r"[ ]?:(?![0-9])", (r"[A-Z][A-Z]{1,19}",)),
)


def _build_labels() -> tuple[re.Pattern[str], dict[str, str]]:
    """One regex for every label: a separator character, then the words grouped by their first letter
    (so the engine tests one letter per group), each word ending in an empty marker group whose name
    (`lastgroup`) tells the kind."""
    by_letter: dict[str, list[str]] = {}
    rest: list[str] = []
    kinds: dict[str, str] = {}
    for kind, tail, words in _VOCABULARY:
        for word in words:
            marker = f"m{len(kinds)}"
            kinds[marker] = kind
            if word[0].isalpha() and word[1:2] not in ("?", "*", "+", "{"):
                by_letter.setdefault(word[0], []).append(f"{word[1:]}{tail}(?P<{marker}>)")
            else:
                rest.append(f"{word}{tail}(?P<{marker}>)")
    groups = [f"{letter}(?:{'|'.join(words)})" for letter, words in by_letter.items()]
    return re.compile(r"[^A-Z0-9_.](?:" + "|".join(groups + rest) + ")"), kinds


# Labels follow a non-word character, which the regex consumes: a text must start with one
# (normalise() starts it with a newline). Emoji labels (and `@`) are found with str.find instead.
_LABELS, _KINDS = _build_labels()
_SYMBOL_LABELS = (("🎯", "target"), ("🛑", "stop"), ("⛔", "stop"), ("💰", "entry"), ("@", "entry"))
_LEVERAGE_NUMBER = re.compile(r"[0-9][0-9]*(?:\.[0-9]+)?")
# A price: digits with an optional decimal part, `K` for thousands, a glued quote (`60000USDT`) ignored;
# never part of a word or of another number (`4H`, `1000PEPE`, `TP1` are not prices).
_NUMBER = re.compile(r"([0-9](?<![A-Z0-9.#].)[0-9]*(?:\.[0-9]+)?)(K?)(?:USDT|USDC|USD)?(?![0-9A-Z]|\.[0-9])")
_MARKET = re.compile(r"\b(?:MARKET|CMP|NOW|CURRENT|ASAP|INSTANT|IMMEDIATE(?:LY)?)\b")
_WORD = re.compile(r"[A-Z]{2}")
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
    """The prices in a label's text; a `-` glued to the first one makes it negative (`Entry: -5`)."""
    first = _NUMBER.search(region)
    if first is None:
        return []
    found = [_decimal(first.group(1), first.group(2))]
    at = first.start()
    if at and region[at - 1] == "-" and (at < 2 or region[at - 2] in " :=\n"):
        found[0] = -found[0]
    found += [_decimal(digits, kilo) for digits, kilo in _NUMBER.findall(region, first.end())]
    return found


def _decimal(digits: str, kilo: str) -> Decimal:
    return Decimal(digits) * _THOUSAND if kilo else Decimal(digits)


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


def _labels(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every label, in text order."""
    found = [(m.start(), m.end(), _KINDS[m.lastgroup or ""]) for m in _LABELS.finditer(text)]
    emoji = False
    for symbol, kind in _SYMBOL_LABELS:
        at = text.find(symbol)
        while at >= 0:
            emoji = True
            found.append((at, at - len(text) - 1, kind))  # a negative end marks an emoji label
            at = text.find(symbol, at + 1)
    if emoji:
        found.sort(key=lambda label: (label[0], label[1] >= 0))
    return found


def scan(text: str) -> Scan:
    """Reads every label of normalised text (see the module docstring)."""
    result = Scan(text)
    labels = _labels(text)
    size = len(text)
    result.orphans += numbers(text[: labels[0][0]] if labels else text)
    first = last = -1
    for i, (start, end, kind) in enumerate(labels):
        emoji = end < 0
        if emoji:
            end = start + 1
        region = text[end : labels[i + 1][0] if i + 1 < len(labels) else size]
        if kind in PRICE_KINDS:
            if _take(result, kind, region, emoji):
                if first < 0:
                    first = start
                last = start
        elif kind == "lev":
            value = _LEVERAGE_NUMBER.search(text, start, end)
            if value:
                result.leverages.append(value.group(0))
            if first < 0:
                result.orphans += numbers(_own_lines(region))
        elif kind == "pair":
            result.pairs.append(_own_lines(region))
    result.first_label = first
    result.multi_line = first >= 0 and "\n" in text[first:last]
    return result
