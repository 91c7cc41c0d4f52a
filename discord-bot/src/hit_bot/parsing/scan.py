"""One pass over normalised text: where the labels are and which prices each one carries.

A price label (`Entry`, `SL`, `TP2`, `Take-Profit Targets:`, `🎯`...) owns the text after it up to the
next label or the first word that is not filler (`and`, `to`, `market`...), across lines: so the
numbered lines of a Cornix-style block belong to their label, while `Size: 0.01`, `Risk 1`,
`Note: ...` or a trailing `Follow us 24/7` never become prices. Prices that no label owns but that sit
on the line before the first price label, or right after a leverage, are "orphans": the implicit entry
of `LONG BTC 60000 SL 58000 TP 65000`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from hit_bot.parsing.normalise import ENTRY_MARK, STOP_MARK, TARGET_MARK

# An optional group is written `(?:X|)`, not `(?:X)?`: the same matches in the same order, but for `?` on a
# group of more than one character CPython's engine runs a REPEAT (which allocates), for `|)` a cheap branch.
# An index after a price label: `TP1`, `T2`, `TP#3`, `Target 1:`, `Take Profit (2)`, `Entry #1`. Every
# alternative starts with a character or a set, not an optional one (`[ ]X|X` for `[ ]?X`, in that order):
# the engine then skips an alternative on its first character without entering it.
_INDEX = (
    r"(?:\#[0-9][0-9]?(?![0-9.,])|[0-9][0-9]?(?![0-9.,])|[ ]\(\#?[0-9]{1,2}\)|\(\#?[0-9]{1,2}\)"
    r"|[ ]\#?[0-9]{1,2}(?=[ ]?[:=)])|[ ]\#[0-9]{1,2}(?![0-9.,])|)"
)
_SEPARATOR = r"(?:[ ][:=]|[:=]|[ ]-(?=[ ])|-(?=[ ])|)"
_PRICE_TAIL = r"(?![A-Z])" + _INDEX + _SEPARATOR
_LEVERAGE_VALUE = r"[ ]?\(?[ ]?X?[ ]?[0-9][0-9]{0,3}(?:\.[0-9]+|)(?![0-9])(?:[ ]?X|)(?![A-Z])(?:[ ]?\)|)"
# (kind, tail, words): each word starts with a literal so the regex engine can skip it cheaply.
_VOCABULARY: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "target",
        _PRICE_TAIL,
        (
            r"TAKE[ -]?PROFITS?(?:[ ](?:TARGETS?|LEVELS?|PRICES?|ZONES?)|)",
            r"PROFIT[ ]TARGETS?",
            r"TARGETS?(?:[ ](?:PRICES?|LEVELS?|ZONES?)|)",
            r"TGTS?",
            r"TPS?",
            r"T(?=[0-9])",
        ),
    ),
    (
        "stop",
        r"(?:[ ](?:TARGETS?|PRICES?|LEVELS?|ZONES?|AT)(?![A-Z])|)" + _PRICE_TAIL,
        (r"STOP[ -]?LOSS(?:ES|)", r"STOPLOSS", r"STOP", r"SL", r"S/L", r"INVALIDATION"),
    ),
    (
        "entry",
        _PRICE_TAIL,
        (
            r"ENTRY[ -]?(?:TARGETS?|ZONES?|PRICES?|RANGE|POINTS?|LEVELS?|AREA|ORDERS?)",
            r"ENTRIES",
            r"ENTRY",
            r"ENTER(?:[ ]AT|)",
            r"BUY(?:ING|)[ ](?:ZONE|RANGE|AREA|PRICE|BETWEEN|AT)",
            r"SELL(?:ING|)[ ](?:ZONE|RANGE|AREA|PRICE|BETWEEN|AT)",
            r"OPEN(?:ING|)[ ]PRICE",
            r"LIMIT(?:[ ](?:ORDER|PRICE|ENTRY)|)",
            r"EP",
        ),
    ),
    (
        "lev",
        _LEVERAGE_VALUE,
        (
            r"LEV(?:ERAGE|)(?![A-Z])\.?[ ]?[:=-]?[ ]?(?:(?:CROSS|ISOLATED|ISO)(?![A-Z])[ ]?|)",
            r"CROSS(?![A-Z])[ ]?[:=]?",
            r"ISO(?:LATED|)(?![A-Z])[ ]?[:=]?",
        ),
    ),
    # Possessive digits (`{0,3}+`, `++`): what follows them is never a digit, so giving some back could not
    # help a match, and this label is tried before every price (`SL: 58000` fails it four times otherwise).
    ("lev", r"X(?![A-Z0-9])", (r"[0-9][0-9]{0,3}+(?:\.[0-9]++|)",)),
    ("lev", r"(?![0-9.A-Z])", (r"X[0-9][0-9]{0,3}+",)),
)


_SYMBOL_LABELS = ((TARGET_MARK, "target"), (STOP_MARK, "stop"), (ENTRY_MARK, "entry"), ("@", "entry"))


def _build_labels() -> re.Pattern[str]:
    """One regex for every label, used with split(): a separator character, then the words grouped by
    their first letter (so the engine tests one letter per group). A second group, tried only once a
    label matched, takes a plain price right after it (`SL: 58000`, followed by a blank or the end): when
    nothing but blanks follows it up to the next label, scan() reads it without read_region."""
    by_letter: dict[str, list[str]] = {}
    rest: list[str] = []
    for _kind, tail, words in _VOCABULARY:
        for word in words:
            if word[0].isalpha() and word[1:2] not in ("?", "*", "+", "{"):
                by_letter.setdefault(word[0], []).append(f"{word[1:]}{tail}")
            else:
                rest.append(f"{word}{tail}")
    groups = [f"{letter}(?:{'|'.join(words)})" for letter, words in by_letter.items()]
    # A symbol label (🎯 🛑 💰 marks, `@`) is matched as the separator before it, the mark left in place:
    # it can then be the separator of a word label glued to it (`💰TAKE PROFIT:`).
    symbols = "(?=[" + "".join(re.escape(mark) for mark, _kind in _SYMBOL_LABELS) + "])"
    # No label starts inside the price taken (blanks, then digits followed by a blank: the only label
    # word made of digits ends with an X), so the labels found are the same as without the group.
    plain = r"(?:([ \n]*[0-9]+(?:\.[0-9]+|))(?=[ \n]|\Z)|)"
    # Every label starts with one of these: tested once, before the alternatives (most separators fail it).
    starts = {_first_character(word) for _kind, _tail, words in _VOCABULARY for word in words}
    first = "".join(sorted(starts)) + "".join(re.escape(mark) for mark, _kind in _SYMBOL_LABELS)
    return re.compile(
        r"([^A-Z0-9_.](?=[" + first + "])(?:" + "|".join([*groups, *rest, symbols]) + "))" + plain
    )


def _first_character(word: str) -> str:
    """What a label word's first character can be, as a regex character set item."""
    if word[0].isalpha():
        return word[0]
    if word.startswith("[0-9]"):
        return "0-9"
    raise ValueError(f"a label word must start with a letter or [0-9]: {word}")


def _kind(label: str) -> str:
    """The kind of a label matched by _LABELS from its first two letters (its first character is the
    separator); the first letter alone decides, except for S, L and I (`SL`/`SELL`, `LEV`/`LIMIT`,
    `INVALIDATION`/`ISO`)."""
    if label[1] in _KIND_BY_LETTER:
        return _KIND_BY_LETTER[label[1]]
    second, yes, no = _KIND_BY_TWO_LETTERS[label[1]]
    return yes if label[2:3] == second else no


# Labels follow a non-word character, which the regex consumes: a text must start with one
# (normalise() starts it with a newline). Emoji labels (and `@`) are found with str.find instead.
_LABELS = _build_labels()
_KIND_BY_LETTER = {
    **dict.fromkeys("TP", "target"),
    **dict.fromkeys("EBO", "entry"),
    **dict.fromkeys("CX0123456789", "lev"),
}
_KIND_BY_TWO_LETTERS = {"S": ("E", "entry", "stop"), "L": ("I", "entry", "lev"), "I": ("N", "stop", "lev")}
_SYMBOL_KINDS = dict(_SYMBOL_LABELS)
# _kind of every possible start of a label (`label[1:3]`), looked up instead of computed.
_KIND_BY_START = {
    f"{first}{second}": _kind(f" {first}{second}")
    for first in [*_KIND_BY_LETTER, *_KIND_BY_TWO_LETTERS]
    for second in ["", *map(chr, range(128))]
}
_LEVERAGE_NUMBER = re.compile(r"[0-9][0-9]*(?:\.[0-9]+|)")
# A price: digits with an optional decimal part, `K` for thousands, a glued quote (`60000USDT`) ignored;
# never part of a word or of another number (`4H`, `1000PEPE`, `TP1` are not prices). Or a word.
_NUMBER = re.compile(r"([0-9](?<![A-Z0-9.#].)[0-9]*(?:\.[0-9]+|))(K?)(?:USDT|USDC|USD|)(?![0-9A-Z]|\.[0-9])")
_TOKEN = re.compile(_NUMBER.pattern + r"|([A-Z](?<![A-Z0-9_.].)[A-Z]+)")
MARKET_WORDS = frozenset("MARKET CMP NOW CURRENT ASAP INSTANT IMMEDIATE IMMEDIATELY".split())
FILLER = MARKET_WORDS | frozenset(
    """AND TO OR THEN FROM BETWEEN ABOVE BELOW UNDER OVER AROUND NEAR AT ON IN USDT USDC USD PRICE ZONE
    AREA RANGE LIMIT ORDER ONLY""".split()
)
_THOUSAND = Decimal(1000)
# A region that is one plain price between blanks (no sign, no `K`, no word).
_PLAIN_PRICE = re.compile(r"[ \n]*([0-9]+(?:\.[0-9]+|))[ \n]*")
# A region that starts with a word (the first token of _TOKEN then).
_LEADING_WORD = re.compile(r"[ \n]*([A-Z][A-Z]+)")
PRICE_KINDS = frozenset(("entry", "stop", "target"))


@dataclass(slots=True, init=False)
class Scan:
    """What the labels of one message say, before any format decides what it means."""

    text: str
    entries: list[Decimal]
    market: bool  # an entry label said market / CMP / now
    stops: list[Decimal]  # the first price of each stop label
    targets: list[Decimal]
    header: str  # the text before the first label; its last line may hold an unlabelled entry
    lev_orphans: list[Decimal]  # prices right after a leverage
    leverages: list[str]
    emoji: bool  # a price came from an emoji label (💰 🛑 🎯)
    multi_line: bool  # the labelled prices span more than one line
    labelled: bool  # some price label carried a price or a market word

    def __init__(self, text: str, header: str = "") -> None:
        # Written out: the generated __init__ with default factories costs twice as much.
        self.text = text
        self.entries = []
        self.market = False
        self.stops = []
        self.targets = []
        self.header = header
        self.lev_orphans = []
        self.leverages = []
        self.emoji = False
        self.multi_line = False
        self.labelled = False

    def orphans(self) -> list[Decimal]:
        """Prices that no label owns: on the line before the first label, or right after a leverage."""
        return numbers(_header_line(self.header)) + self.lev_orphans


def read_region(region: str) -> tuple[list[Decimal], bool]:
    """The prices of a label's text up to its first word that is not filler, and whether a market word
    (`market`, `CMP`, `now`) came before them. A `-` glued to the first price makes it negative."""
    plain = _PLAIN_PRICE.fullmatch(region)
    if plain:  # the common ` 60000`: what the loop below reads from it, without the loop
        return [Decimal(plain.group(1))], False
    lead = _LEADING_WORD.match(region)
    if lead and lead.group(1) not in FILLER:  # the loop's first token would end it
        return [], False
    values: list[Decimal] = []
    market = False
    for digits, kilo, word in _TOKEN.findall(region):
        if word:
            if word not in FILLER:
                break
            market = market or word in MARKET_WORDS
        else:
            values.append(Decimal(digits) * _THOUSAND if kilo else Decimal(digits))
    if values and "-" in region and _negative(region):
        values[0] = -values[0]
    return values, market


def numbers(text: str) -> list[Decimal]:
    """Every price in a text (see read_region for the sign)."""
    values = [Decimal(d) * _THOUSAND if kilo else Decimal(d) for d, kilo in _NUMBER.findall(text)]
    if values and "-" in text and _negative(text):
        values[0] = -values[0]
    return values


def _negative(region: str) -> bool:
    start = region.lstrip()[:2]
    return len(start) == 2 and start[0] == "-" and start[1].isdigit()


def _header_line(header: str) -> str:
    """The last non-blank line before the first label."""
    header = header.rstrip()
    return header[header.rfind("\n") + 1 :]


def _leverage(result: Scan, label: str, orphans: list[Decimal]) -> None:
    value = _LEVERAGE_NUMBER.search(label)
    if value:
        result.leverages.append(value.group(0))
    result.lev_orphans += orphans


def scan(text: str) -> Scan:
    """Reads every label of normalised text (see the module docstring)."""
    parts = _LABELS.split(text)  # header, then per label: the label, a plain price or None, the rest
    result = Scan(text, parts[0])  # the header's last line is taken only when orphans() is asked for
    prices = {"entry": result.entries, "stop": result.stops, "target": result.targets}
    labelled = newline = emoji = multi_line = False
    pieces = iter(parts)
    next(pieces)
    for label, plain, rest in zip(pieces, pieces, pieces, strict=True):
        if plain is not None and (kind := _KIND_BY_START[label[1:3]]) != "lev" and not rest.strip(" \n"):
            # One plain price after a word label (a symbol label never has one): what read_region and _take
            # would do with it (Decimal() skips the blanks), and the bookkeeping below for a label that took.
            prices[kind].append(Decimal(plain))
            multi_line = multi_line or (labelled and (newline or "\n" in label))
            labelled = True
            newline = "\n" in plain or "\n" in rest
            continue
        region = rest if plain is None else plain + rest
        if len(label) == 1:  # a symbol label: the mark starts its region
            kind = _SYMBOL_KINDS.get(region[:1], "")
            glyph = region[:1] != "@"
        else:
            kind = _KIND_BY_START[label[1:3]]
            glyph = False
        newline = newline or "\n" in label
        if kind != "lev" and (not kind or region.isspace() or not region):
            newline = newline or "\n" in region
            continue
        if kind == "lev":
            _leverage(result, label, read_region(region)[0] if not labelled else [])
            took = False
        else:
            took = _take(result, kind, *read_region(region))
        if took:
            emoji = emoji or glyph
            multi_line = multi_line or (labelled and newline)
            labelled, newline = True, False
        newline = newline or "\n" in region
    result.labelled, result.emoji, result.multi_line = labelled, emoji, multi_line
    return result


def _take(result: Scan, kind: str, values: list[Decimal], market: bool) -> bool:
    """Adds a price label's prices to the scan; True when it carried any (or a market word)."""
    if kind == "entry" and market:
        result.market = True
        return True
    if not values:
        return False
    if kind == "entry":
        result.entries += values
    elif kind == "stop":
        result.stops.append(values[0])
    else:
        result.targets += values
    return True
