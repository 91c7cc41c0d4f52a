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
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from hit_bot.parsing.normalise import ENTRY_MARK, STOP_MARK, TARGET_MARK
from hit_bot.parsing.vocabulary import VOCABULARY

# What may follow a price label before its value. An index: `TP1`, `TP#3`, `Take Profit (2)`, `Target 1:`,
# `TP 3- 141.6` (a list number before the price), `Entry #1`.
_INDEX = (
    r"(?:\#?[0-9]{1,2}(?![0-9.,])"
    r"|[ ]?\(\#?[0-9]{1,2}\)"
    r"|[ ]\#?[0-9]{1,2}(?=[ ]?[:=)])"
    r"|[ ][0-9]{1,2}[ ]?-(?=[ ]?[0-9])"
    r"|[ ]?\#[0-9]{1,2}(?![0-9.,]))?"
)
# Then a separator: `:`, `=` or a dash with a blank after it.
_SEPARATOR = r"(?:[ ]?[:=]|[ ]?-(?=[ ]))?"
_PRICE_TAIL = r"(?![A-Z])" + _INDEX + _SEPARATOR
_LEVERAGE_VALUE = r"[ ]?\(?[ ]?X?[ ]?[0-9]{1,4}(?:\.[0-9]+)?(?![0-9])(?:[ ]?X)?(?![A-Z])(?:[ ]?\))?"
_LEVERAGE_SEPARATOR = r"(?:[ ]?[:=-])?"  # `Hebel: 10x` for a user's word; the shipped ones include theirs
# (kind, tail, words): the label words come from the vocabulary (parsing/vocabulary.toml and the user's
# PARSER_VOCABULARY file); a leverage written as its number (`20x`, `x20`) is syntax, kept here.
_VOCABULARY: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("target", _PRICE_TAIL, VOCABULARY.labels["target"]),
    (
        "stop",
        r"(?:[ ](?:TARGETS?|PRICES?|LEVELS?|ZONES?|AT)(?![A-Z]))?" + _PRICE_TAIL,
        VOCABULARY.labels["stop"],
    ),
    ("entry", _PRICE_TAIL, VOCABULARY.labels["entry"]),
    ("lev", _LEVERAGE_SEPARATOR + _LEVERAGE_VALUE, VOCABULARY.labels["leverage"]),
    # `20x`, `2.5x`; never `0x`, which is a coin's name (`0x (ZRX)`), not a leverage.
    ("lev", r"X(?![A-Z0-9])", (r"(?!0X)[0-9]{1,4}(?:\.[0-9]+)?",)),
    ("lev", r"(?![0-9.A-Z])", (r"X[0-9]{1,4}",)),  # `x20`
)


_SYMBOL_LABELS = ((TARGET_MARK, "target"), (STOP_MARK, "stop"), (ENTRY_MARK, "entry"), ("@", "entry"))


def _build_labels() -> re.Pattern[str]:
    """One regex for every label, used with split(): the character before the label (a blank, a newline
    or a sign that ends a word), then a label word with its tail. A symbol label (🎯 🛑 💰 marks, `@`) is
    matched as the character before it, the mark left in place: it can then be the separator of a word
    label glued to it (`💰TAKE PROFIT:`)."""
    words = [f"(?:{word}){tail}" for _kind, tail, kind_words in _VOCABULARY for word in kind_words]
    marks = "".join(re.escape(mark) for mark, _kind in _SYMBOL_LABELS)
    return re.compile(r"([^A-Z0-9_.](?:" + "|".join(words) + f"|(?=[{marks}])))")


def _kind(label: str) -> str:
    """The kind of a label matched by _LABELS (its first character is the separator before it)."""
    for kind, pattern in _KIND_PATTERNS:
        if pattern.match(label, 1):
            return kind
    return ""


# Labels follow a non-word character, which the regex consumes: a text must start with one
# (normalise() starts it with a newline). Emoji labels (and `@`) are found with str.find instead.
_LABELS = _build_labels()
_KIND_PATTERNS = tuple(
    (kind, re.compile("|".join(f"(?:{word}){tail}" for word in words))) for kind, tail, words in _VOCABULARY
)
_SYMBOL_KINDS = dict(_SYMBOL_LABELS)
_STOP_KIND = next(pattern for kind, pattern in _KIND_PATTERNS if kind == "stop")
_PERCENT_STOP = re.compile(
    f"(?<![A-Z0-9])(?:{_STOP_KIND.pattern})[ ]?[-+]?[0-9]+(?:[.,][0-9]+)?[ ]?%"
    f"|{STOP_MARK}[ ]?[:=]?[ ]?[-+]?[0-9]+(?:[.,][0-9]+)?[ ]?%"
)
_LEVERAGE_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# A price: digits with an optional decimal part, `K` for thousands, a glued quote (`60000USDT`) ignored;
# never part of a word or of another number (`4H`, `1000PEPE`, `TP1` are not prices).
_NUMBER = re.compile(r"(?<![A-Z0-9.#])([0-9]+(?:\.[0-9]+)?)(K?)(?:USDT|USDC|USD)?(?![0-9A-Z]|\.[0-9])")
# The pieces of a label's value: runs of letters, digits and dots (`$`, `,`, `-`, `(`... separate them).
_VALUE_TOKEN = re.compile(r"[A-Z0-9.]+")
_PRICE_TOKEN = re.compile(r"([0-9]+(?:\.[0-9]+)?)(K?)(?:USDT|USDC|USD)?")
# Tokens with digits that are not prices and end a value: a timeframe (`4H`, `H4`, `15M`), a leverage
# (`20X`, `X20`), a word with a number in front (`1000PEPE`, `2ND`).
_NOT_A_PRICE = re.compile(r"[0-9]{1,3}[MHDW]|[MHDW][0-9]{1,3}|[0-9]{1,4}X|X[0-9]{1,4}|[0-9]+[A-Z]{2,}")
_TIMEFRAME = re.compile(r"[0-9]{1,3}[MHDW]|[MHDW][0-9]{1,3}")
MARKET_WORDS = frozenset(VOCABULARY.labels["market"])
FILLER = MARKET_WORDS | frozenset(
    """AND TO OR THEN FROM BETWEEN ABOVE BELOW UNDER OVER AROUND NEAR AT ON IN USDT USDC USD PRICE ZONE
    AREA RANGE LIMIT ORDER ONLY""".split()
)
# Words that put an entry price as a level to cross (`LONG BTC above 60500`): said of a long's `above` or a
# short's `below`, the entry is a breakout, which a limit order cannot express.
TRIGGER_WORDS = frozenset("ABOVE OVER BELOW UNDER".split())
DIRECTION_WORDS = frozenset("LONG SHORT BUY SELL LONGING SHORTING BUYING SELLING".split())
# Words a stop's value may start with before its price: `SL: H4 candle close below 0.4560`.
STOP_QUALIFIERS = frozenset("CANDLE CANDLES CLOSE CLOSES CLOSING CLOSED BODY DAILY WEEKLY IF".split())
# Words that say a value is not known yet: `TP2: TBD`, `Entry: N/A`.
PLACEHOLDERS = frozenset("TBD TBA NA N A NULL NONE SOON XXX".split())
# A word right after a stop price that hedges it (`SL: 0.49 hold`): not a firm stop.
STOP_HEDGES = frozenset("HOLD HODL MENTAL MAYBE".split())
_ORPHAN_TRIGGER = re.compile(r"(?<![A-Z])(ABOVE|OVER|BELOW|UNDER)[ ]?[:=]?[ ]?\$?[0-9]")
_THOUSAND = Decimal(1000)
PRICE_KINDS = frozenset(("entry", "stop", "target"))


class Reading(NamedTuple):
    """What one label's value says: its prices, whether a market word came with them, whether `or`
    offered an alternative, a garbled token (`6O000`) if any, the word that ended the value, and the word
    that put the price as a level to cross (`above`, `below`) if one came before it."""

    values: list[Decimal]
    market: bool
    alternative: bool
    garbled: str | None
    end_word: str | None
    trigger: str | None = None  # `above` / `below` before the first price: `Entry: above 60500`


@dataclass
class Scan:
    """What the labels of one message say, before any format decides what it means."""

    text: str
    header: str = ""  # the text before the first label; its last line may hold an unlabelled entry
    names: frozenset[str] = frozenset()  # the words that name the coin (`BTC`, `BTCUSDT`)
    entries: list[Decimal] = field(default_factory=list)
    market: bool = False  # an entry label said market / CMP / now
    stops: list[Decimal] = field(default_factory=list)  # the first price of each stop label
    targets: list[Decimal] = field(default_factory=list)
    lev_orphans: list[Decimal] = field(default_factory=list)  # prices right after a leverage
    leverages: list[str] = field(default_factory=list)
    emoji: bool = False  # a price came from an emoji label (💰 🛑 🎯)
    multi_line: bool = False  # the labelled prices span more than one line
    labelled: bool = False  # some price label carried a price or a market word
    problems: list[str] = field(default_factory=list)  # values that could not be read safely
    unread_entries: list[str] = field(default_factory=list)  # `Entry: abc`: entry labels with no price
    entry_triggers: list[str] = field(default_factory=list)  # `Entry: above 60500`: ABOVE (TRIGGER_WORDS)

    def orphans(self) -> list[Decimal]:
        """Prices that no label owns: on the line before the first label, or right after a leverage."""
        return numbers(_header_line(self.header)) + self.lev_orphans

    def orphan_trigger(self) -> str | None:
        """`LONG BTC above 60500`: the trigger word (TRIGGER_WORDS) right before the orphan entry."""
        match = _ORPHAN_TRIGGER.search(_header_line(self.header))
        return match.group(1) if match else None


def _price(token: str) -> Decimal | None:
    match = _PRICE_TOKEN.fullmatch(token)
    if match is None:
        return None
    value = Decimal(match.group(1))
    return value * _THOUSAND if match.group(2) else value


def read_value(region: str, kind: str = "entry", names: frozenset[str] = frozenset()) -> Reading:
    """The prices of a label's value (see _read_tokens); a `-` glued to the first price makes it
    negative, which the checks then refuse. `names` are the words that name the message's coin."""
    reading = _read_tokens(region, kind, names)
    if reading.values and "-" in region and _negative(region):
        reading.values[0] = -reading.values[0]
    return reading


def _read_tokens(region: str, kind: str, names: frozenset[str]) -> Reading:
    """The prices of a label's value, read piece by piece up to its first word that is not filler.

    An entry's value may name the coin and the direction before its price (`Re-entry BTC long 59000`).
    A piece with digits that is neither a price nor a known non-price (`4H`, `20X`) is garbled
    (`6O000`, `60000.5.3`, `.5`, `1E400`): reported, never skipped, so that a broken value never
    becomes a market entry or a dropped target."""
    values: list[Decimal] = []
    market = alternative = False
    trigger: str | None = None
    for piece in _VALUE_TOKEN.findall(region):
        price = _price(piece)
        if price is not None:
            if market and alternative:
                return Reading(values, market, True, None, None, trigger)
            values.append(price)
            continue
        if any(ch.isdigit() for ch in piece):
            if _NOT_A_PRICE.fullmatch(piece):
                if kind == "stop" and not values and _TIMEFRAME.fullmatch(piece):
                    continue  # `SL: H4 candle close below x`
                return Reading(values, market, alternative, None, piece, trigger)
            return Reading(values, market, alternative, piece, None, trigger)
        if kind == "entry" and not values and (piece in names or piece in DIRECTION_WORDS):
            continue
        if piece in FILLER or (kind == "stop" and not values and piece in STOP_QUALIFIERS):
            market = market or piece in MARKET_WORDS
            alternative = alternative or (piece == "OR" and bool(values))
            if not values and piece in TRIGGER_WORDS:
                trigger = trigger or piece
            continue
        return Reading(values, market, alternative, None, piece, trigger)
    return Reading(values, market, alternative, None, None, trigger)


def read_region(region: str) -> tuple[list[Decimal], bool]:
    """The prices of a label's value and whether a market word came with them (see read_value)."""
    reading = read_value(region)
    return reading.values, reading.market


def numbers(text: str) -> list[Decimal]:
    """Every price in a text (see read_value for the sign)."""
    values = [Decimal(d) * _THOUSAND if kilo else Decimal(d) for d, kilo in _NUMBER.findall(text)]
    if values and "-" in text and _negative(text):
        values[0] = -values[0]
    return values


def _negative(region: str) -> bool:
    start = region.lstrip()[:2]
    return len(start) == 2 and start[0] == "-" and start[1].isdigit()


def _header_line(header: str) -> str:
    """The last line before the first label that holds a letter or a digit."""
    lines = [line for line in header.split("\n") if any(ch.isalnum() for ch in line)]
    return lines[-1] if lines else ""


def _has_separator(label: str) -> bool:
    """`Entry:` / `Entry =`: a label that promises a value right after it."""
    return label.rstrip().endswith((":", "="))


class Label(NamedTuple):
    """One label as found: its text (with the separator before it; for a mark, that one character), its
    kind (entry, stop, target, lev, or "" when none fits), the text it owns up to the next label, and
    whether it is an emoji mark (🎯 🛑 💰)."""

    text: str
    kind: str
    region: str
    glyph: bool

    @property
    def name(self) -> str:
        """The label as a person would quote it: `TP1`, `🎯`, `@`."""
        if len(self.text) == 1:
            return _MARK_NAMES.get(self.region[:1], self.region[:1])
        return " ".join(self.text.strip(" \n:=-").split()) or "label"


_MARK_NAMES = {TARGET_MARK: "🎯", STOP_MARK: "🛑", ENTRY_MARK: "💰"}


def labels(text: str) -> tuple[str, list[Label]]:
    """The text before the first label, and every label of normalised text in order."""
    parts = _LABELS.split(text)  # header, then per label: the label, the text up to the next label
    found = []
    for label, region in zip(parts[1::2], parts[2::2], strict=True):
        if len(label) == 1:  # a symbol label: the mark starts its region
            found.append(Label(label, _SYMBOL_KINDS.get(region[:1], ""), region, region[:1] != "@"))
        else:
            found.append(Label(label, _kind(label), region, False))
    return parts[0], found


def scan(text: str, names: frozenset[str] = frozenset()) -> Scan:
    """Reads every label of normalised text (see the module docstring); `names` are the words that name
    the message's coin (symbols.coin_words)."""
    header, found = labels(text)
    result = Scan(text, header, names=names)
    newline = False
    for label, kind, region, glyph in found:
        newline = newline or "\n" in label
        if kind == "lev":
            _leverage(result, label, read_region(region)[0] if not result.labelled else [])
        elif kind and _take(result, kind, label, region):
            result.emoji = result.emoji or glyph
            result.multi_line = result.multi_line or (result.labelled and newline)
            result.labelled, newline = True, False
        newline = newline or "\n" in region
    return result


def leverage_of(label: str) -> str | None:
    """The number of a leverage label (`LEVERAGE: CROSS 20X` -> `20`)."""
    value = _LEVERAGE_NUMBER.search(label)
    return value.group(0) if value else None


def _leverage(result: Scan, label: str, orphans: list[Decimal]) -> None:
    value = _LEVERAGE_NUMBER.search(label)
    if value:
        result.leverages.append(value.group(0))
    result.lev_orphans += orphans


def _take(result: Scan, kind: str, label: str, region: str) -> bool:
    """Adds a price label's prices to the scan; True when it carried any (or a market word)."""
    reading = read_value(region, kind, result.names)
    name = " ".join(label.strip(" \n:=-").split()) or "label"
    if reading.garbled:
        result.problems.append(f"its {name} value {reading.garbled} is not a price that can be read")
        return False
    if not reading.values and not reading.market:
        _unread(result, kind, name, label, region, reading)
        return False
    values = reading.values
    if kind == "entry":
        return _take_entry(result, name, reading)
    if kind == "stop":
        _take_stop(result, reading)
    else:
        result.targets += values
    return bool(values)


def _unread(result: Scan, kind: str, name: str, label: str, region: str, reading: Reading) -> None:
    """A label that promised a value (`Entry:`, `TP2: TBD`, `Re-entry ... 59000` with a price further on
    its line) but carries none that can be read: an entry label is remembered (the entry is then unknown,
    never market), a target placeholder refused."""
    placeholder = reading.end_word in PLACEHOLDERS or region.strip(" \n") in ("-", "--", "?", "...")
    if kind == "entry" and (_has_separator(label) or numbers(region.split("\n", 1)[0])):
        result.unread_entries.append(name)
    elif kind == "target" and _has_separator(label) and placeholder:
        result.problems.append(f"its {name} has no price that can be read")


def _take_entry(result: Scan, name: str, reading: Reading) -> bool:
    if reading.market and reading.values and reading.alternative:
        result.problems.append(f"its {name} offers a price or market: choose one")
    elif reading.values:
        if reading.trigger:
            result.entry_triggers.append(reading.trigger)
        result.entries += reading.values  # `Entry at CMP: 0.487`: the market word describes the price
    else:
        result.market = True
    return True


def _take_stop(result: Scan, reading: Reading) -> None:
    values = reading.values
    if len(values) > 1 and len(set(values)) > 1:
        shown = ", ".join(str(v) for v in values)
        result.problems.append(
            f"its stop loss gives more than one price ({shown}): "
            "a stop range or alternative stops are not traded"
        )
    if reading.end_word in STOP_HEDGES:
        result.problems.append(f"its stop loss is hedged ({reading.end_word}): not a firm stop")
    if values:
        result.stops.append(values[0])


def percentage_stop(clean: str) -> bool:
    """`SL: 5%`: a stop label whose value is a percentage (`clean` is normalised with its commentary kept:
    normalise() drops percentages). Told apart from a missing stop so that the reason says what to fix."""
    return _PERCENT_STOP.search(clean) is not None
