"""Reads a Discord message and says whether it is a trade signal (spec/signals.md).

`parse(text)` never raises and has three outcomes:
- `signal`: a consistent `SignalCore`, with the name of the format it was written in;
- `not_signal`: chatter, questions, results ("TP1 hit"), analysis, links, commands: ignore silently;
- `invalid`: it has the shape of a signal but is broken (no stop loss, no symbol, two directions,
  prices in the wrong order...): the caller replies with `reason` and trades nothing.
When in doubt the answer is never `signal` (rule 4).

The formats are the named entries of `PATTERNS` (see hit_bot/parsing/formats.py to add one). Run
`python -m hit_bot.parser "<message>"` to see how a message reads, or `--jsonl` to parse a stream.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from hit_bot.parsing.checks import (
    entry_order_problem,
    equal_targets,
    leverage_problem,
    merged_targets,
    not_crypto_problem,
    scale_problem,
)
from hit_bot.parsing.formats import DEFAULT_FORMATS, Prices, SignalFormat, default_choice
from hit_bot.parsing.normalise import CHECK_MARK, DOWN_MARK, STOP_MARK, TARGET_MARK, UP_MARK, normalise
from hit_bot.parsing.scan import Scan, percentage_stop, scan
from hit_bot.parsing.symbols import directions, symbols, words
from hit_bot.parsing.vocabulary import VOCABULARY
from hit_shared.models import MAX_RAW_TEXT, SYMBOL_PATTERN, Side, SignalCore, consistency_problem, fmt

log = logging.getLogger(__name__)

# Priority order: the first format whose `detect` accepts the message reads it.
PATTERNS: dict[str, SignalFormat] = {f.name: f for f in DEFAULT_FORMATS}
_DEFAULT_PATTERNS = dict(PATTERNS)

MAX_TEXT = MAX_RAW_TEXT
MAX_ENTRIES = 20
# Prices further apart than this within one signal are a typo (`5800` for `58000`, `145,150` read as one
# number), not a trade.
MAX_PRICE_SPREAD = Decimal(10)
INTERNAL_ERROR = "the parser could not read this message"


@dataclass(frozen=True)
class ParseResult:
    kind: Literal["signal", "not_signal", "invalid"]
    signal: SignalCore | None = None  # set iff kind == "signal"
    format: str | None = None  # the PATTERNS name that matched (also for "invalid" when known)
    reason: str | None = None  # a human sentence iff kind == "invalid"


NOT_SIGNAL = ParseResult("not_signal")
_new = object.__new__


def _result(
    kind: Literal["signal", "invalid"], signal: SignalCore | None, format_name: str | None, reason: str | None
) -> ParseResult:
    """ParseResult(kind, signal, format_name, reason), the same object built without its __init__: being
    frozen, that sets each field through object.__setattr__, twice what filling the instance dict costs
    (ParseResult has no __slots__ for this: a slot is set through its descriptor, no cheaper)."""
    result = _new(ParseResult)
    fields = result.__dict__
    fields["kind"] = kind
    fields["signal"] = signal
    fields["format"] = format_name
    fields["reason"] = reason
    return result


_DIGIT = re.compile(r"\d")  # any Unicode digit (`６` too): normalise() turns them into ASCII ones
_ASCII_DIGIT = re.compile("[0-9]")  # the same on ASCII text, but found by a charset scan, not a category test
_TRADE_WORD = re.compile(r"(?i)\b(?:long|short|buy|sell)\b|📈|📉")
# Results and reports of trades already made: never a new trade.
_RESULT_WORDS = frozenset(
    """HIT HITS REACHED CLOSED CLOSING STOPPED ACHIEVED SMASHED BOOKED CANCELLED CANCELED LIQUIDATED
    TRIGGERED FILLED""".split()
)
# Every result word contains one of these (all but HIT, HITS, CLOSING end with ED): a message with none of
# them has no result word, found with three substring tests.
_RESULT_STEMS = ("HIT", "CLOS", "ED")
# Follow-ups about a running trade: quietly ignored when they do not read as a full signal.
_FOLLOW_UP_WORDS = frozenset(
    "UPDATE UPDATES UPDATED MOVE MOVED MOVES MOVING BREAKEVEN TRAIL TRAILING SECURE PARTIAL".split()
)
_RESULT_LABEL = f"(?:TP|TARGET|T[0-9]|SL|STOP|{TARGET_MARK}|{STOP_MARK})"
_CHECKED_LABEL = re.compile(f"{CHECK_MARK}[^\n]*{_RESULT_LABEL}|{_RESULT_LABEL}[^\n]*{CHECK_MARK}")
_QUESTION_WORDS = """SHOULD WOULD COULD CAN IS ARE DO DOES DID WHAT WHEN WHY HOW WHERE WHO WHICH ANYONE
    ANYBODY THOUGHTS WDYT SHALL""".split()
_QUESTION_START = re.compile(f"[^A-Z0-9]*(?:{'|'.join(_QUESTION_WORDS)})(?![A-Z0-9])")
# A normalised message starts with a newline; when the character after it is a letter or a digit that no
# question word starts with, _QUESTION_START cannot match, and the regex call is skipped.
_NOT_QUESTION_START = frozenset(string.ascii_uppercase + string.digits) - {w[0] for w in _QUESTION_WORDS}
# `(?:X|)` is `(?:X)?` written as a branch, which the regex engine runs faster (see parsing/scan.py).
_DIRECTION_WORD = re.compile(f"\\b(?:LONG|SHORT|BUY|SELL)(?:ING|)\\b|{UP_MARK}|{DOWN_MARK}")
_SYMBOL = re.compile(SYMBOL_PATTERN)
_LONG = Side.LONG  # a module constant: `Side.LONG` is a lookup through the enum's metaclass


def parse(text: str) -> ParseResult:
    """Classifies one message (see the module docstring). Never raises, whatever the input."""
    try:
        return _parse(text)
    except Exception:  # the safety net of a function that must never raise; a bug here means no trade
        log.exception("the signal parser failed; treating the message as unreadable")
        return ParseResult("invalid", reason=INTERNAL_ERROR)


def _choice(found: Scan) -> SignalFormat | None:
    """The first format of PATTERNS whose `detect` accepts the scan."""
    for form in PATTERNS.values():
        if form.detect(found):
            return form
    return None


def _invalid(reason: str, format_name: str | None, norm: str) -> ParseResult:
    found_words = words(norm)
    if found_words & _FOLLOW_UP_WORDS or ("BREAK" in found_words and "EVEN" in found_words):
        return NOT_SIGNAL
    return _result("invalid", None, format_name, reason)


# A message that withdraws, closes or illustrates a trade: never a new one (`Close LONG BTC ...`,
# `Cancel ...`, `Signal invalidated`, `Don't take this one`, `Example format:`, `just kidding`).
# The words are the vocabulary's close and cancel words (parsing/vocabulary.toml).
_CLOSE_WORDS = "|".join(VOCABULARY.labels["close"])
_CANCEL_WORDS = "|".join(VOCABULARY.labels["cancel"])
_WITHDRAWN = re.compile(
    f"^\\n[^A-Z0-9]*(?:{_CLOSE_WORDS}|{_CANCEL_WORDS})(?![A-Z])(?![ ]?:)"
    f"|(?<![A-Z])(?:{_CANCEL_WORDS})(?![A-Z])"
)


def _withdrawn(norm: str) -> bool:
    return _WITHDRAWN.search(norm) is not None


def _reports_a_result(norm: str) -> bool:
    """A result word (`hit`, `closed`...; substring tests first, the word set only when one is there), or
    a check mark on a line with a target or a stop (`TP1 61000 ✅`)."""
    if CHECK_MARK in norm and _CHECKED_LABEL.search(norm):
        return True
    if "HIT" in norm or "CLOS" in norm or "ED" in norm:  # _RESULT_STEMS, written out (cheaper than a loop)
        return bool(words(norm) & _RESULT_WORDS)
    return False


_COMMAND_STARTS = ("!", "/", "?")


def _is_command(text: str) -> bool:
    start = text.lstrip()[:2]
    return start[:1] in _COMMAND_STARTS and start[1:2].isalpha()


def _is_question(norm: str) -> bool:
    if not (norm[:1] == "\n" and norm[1:2] in _NOT_QUESTION_START) and _QUESTION_START.match(norm):
        return True
    if "?" not in norm:
        return False
    return any("?" in line and _DIRECTION_WORD.search(line) for line in norm.split("\n"))


def _parse(text: str) -> ParseResult:
    if len(text) > MAX_TEXT:
        if _TRADE_WORD.search(text[:MAX_TEXT]) and _DIGIT.search(text):
            return ParseResult("invalid", reason=f"the message is longer than {MAX_TEXT} characters")
        return NOT_SIGNAL
    if not (_ASCII_DIGIT if text.isascii() else _DIGIT).search(text) or (
        (text[0] in _COMMAND_STARTS or text[0].isspace()) and _is_command(text)
    ):
        return NOT_SIGNAL
    norm = normalise(text)
    if _reports_a_result(norm) or _is_question(norm) or _withdrawn(norm):
        return NOT_SIGNAL
    found = scan(norm)
    form = default_choice(found) if PATTERNS == _DEFAULT_PATTERNS else _choice(found)
    if form is None:
        return NOT_SIGNAL
    sides = directions(norm)
    if not sides and found.stops and found.targets:
        sides = _inferred_side(form.read(found))
        if not sides:
            return _invalid(
                "it says neither LONG nor SHORT, and its prices do not say it either", form.name, norm
            )
    if len(sides) != 1:
        if not sides:
            return NOT_SIGNAL
        return _invalid("it gives both LONG and SHORT", form.name, norm)
    return _read(found, form, sides[0], norm, text)


def _inferred_side(prices: Prices) -> tuple[Side, ...]:
    """The side the prices of a message without a direction word are consistent with: every entry
    between the stop and every target, on exactly one side. Without entries there is no inference."""
    if not prices.entries or not prices.stops or not prices.take_profits or len(set(prices.stops)) > 1:
        return ()
    stop, entries, targets = prices.stops[0], prices.entries, prices.take_profits
    if stop < min(entries) and max(entries) < min(targets):
        return (Side.LONG,)
    if stop > max(entries) and min(entries) > max(targets):
        return (Side.SHORT,)
    return ()


def _read(found: Scan, form: SignalFormat, side: Side, norm: str, text: str) -> ParseResult:
    prices = form.read(found)
    prices = prices._replace(take_profits=merged_targets(prices.take_profits))
    problem = _symbol_problem(candidates := symbols(norm))
    if problem is None:
        problem = entry_order_problem(side, prices, normalise(text, keep_commentary=True))
    problem = problem or _prices_problem(prices, text) or leverage_problem(norm)
    leverage, lev_problem = _leverage(found.leverages) if found.leverages else (None, None)
    problem = problem or lev_problem
    if problem is None:
        problem = consistency_problem(
            side, prices.entries, prices.stops[0], prices.take_profits, leverage
        ) or _spread_problem(side, prices)
    if problem is None:
        problem = scale_problem(candidates[0], prices)
    if problem is not None:
        return _invalid(problem, form.name, norm)
    signal = _signal(side, candidates[0], prices.entries, prices.stops[0], prices.take_profits, leverage)
    return _result("signal", signal, form.name, None)


# SignalCore.model_construct spends ~2 us matching aliases and defaults, a third of what is left of a parse.
# Its fields have neither, so the instance is built the way model_construct ends: the same __dict__ (in
# field order), every field set, no extra, no private. Any feature of the model that model_construct would
# honour turns this off (tests compare both).
_SIGNAL_FIELDS = ("side", "symbol", "entries", "stop_loss", "take_profits", "leverage")
FAST_SIGNAL = (
    tuple(SignalCore.model_fields) == _SIGNAL_FIELDS
    and not SignalCore.__pydantic_post_init__
    and not SignalCore.__pydantic_root_model__
    and not SignalCore.__private_attributes__
    and all(f.alias is None and f.validation_alias is None for f in SignalCore.model_fields.values())
)


def _slot_setter(name: str) -> Callable[[object, object], None]:
    """The __set__ of the descriptor behind one of the slots model_construct fills: cheaper than
    object.__setattr__, which finds the same descriptor on every call."""
    owner = next(klass for klass in SignalCore.__mro__ if name in vars(klass))
    setter: Callable[[object, object], None] = vars(owner)[name].__set__
    return setter


_FIELDS_SET = set(_SIGNAL_FIELDS)  # never changed: each signal gets a copy, cheaper than set(tuple)
_SET_FIELDS_SET = _slot_setter("__pydantic_fields_set__")
_SET_EXTRA = _slot_setter("__pydantic_extra__")
_SET_PRIVATE = _slot_setter("__pydantic_private__")


def _signal(
    side: Side,
    symbol: str,
    entries: tuple[Decimal, ...],
    stop_loss: Decimal,
    take_profits: tuple[Decimal, ...],
    leverage: int | None,
) -> SignalCore:
    """A SignalCore from checked values (consistency_problem found nothing), without validating again."""
    if not FAST_SIGNAL:
        return SignalCore.model_construct(
            side=side,
            symbol=symbol,
            entries=entries,
            stop_loss=stop_loss,
            take_profits=take_profits,
            leverage=leverage,
        )
    signal = _new(SignalCore)
    fields = signal.__dict__  # empty: filled in field order, cheaper than setting a new dict through its slot
    fields["side"] = side
    fields["symbol"] = symbol
    fields["entries"] = entries
    fields["stop_loss"] = stop_loss
    fields["take_profits"] = take_profits
    fields["leverage"] = leverage
    _SET_FIELDS_SET(signal, _FIELDS_SET.copy())
    _SET_EXTRA(signal, None)
    _SET_PRIVATE(signal, None)
    return signal


def _symbol_problem(candidates: list[str]) -> str | None:
    if not candidates:
        return "it names no symbol (write it like BTC-USDT)"
    if len(candidates) > 1:
        return f"it names more than one symbol ({', '.join(candidates[:4])})"
    if not _SYMBOL.match(candidates[0]):
        return f"{candidates[0]} is not a valid symbol"
    return not_crypto_problem(candidates[0])


def _prices_problem(prices: Prices, text: str) -> str | None:
    if prices.problem:
        return prices.problem
    if not prices.stops:
        if percentage_stop(normalise(text, keep_commentary=True)):
            return (
                "its stop loss is given only as a percentage, which is not read: "
                "write the stop as a price (SL: 58000)"
            )
        return "it has no stop loss, and a signal without a stop loss is never traded"
    if len(prices.stops) > 1 and len(set(prices.stops)) > 1:
        shown = ", ".join(fmt(s) for s in dict.fromkeys(prices.stops))
        return f"it gives more than one stop loss ({shown})"
    if not prices.take_profits:
        return "it has no take-profit target"
    if len(prices.entries) > MAX_ENTRIES:
        return f"it has {len(prices.entries)} entry prices; at most {MAX_ENTRIES} are supported"
    return equal_targets(prices.take_profits)


def _leverage(values: list[str]) -> tuple[int | None, str | None]:
    """The leverage asked for; of several (`10x-20x`) the lowest, the cautious reading."""
    if not values:
        return None, None
    lowest = min(Decimal(v) for v in values)
    if lowest != lowest.to_integral_value():
        return None, f"leverage {fmt(lowest)}x is not a whole number"
    return int(lowest), None


def _spread_problem(side: Side, prices: Prices) -> str | None:
    """Once the order of the prices is known to be right, the stop and the furthest target are the
    extremes."""
    stop = prices.stops[0]
    if side is _LONG:
        low, high = stop, max(prices.take_profits)
    else:
        low, high = min(prices.take_profits), stop
    if high > low * MAX_PRICE_SPREAD:
        return (
            f"its prices {fmt(low)} and {fmt(high)} are more than {fmt(MAX_PRICE_SPREAD)}x apart; "
            "check it for a typo"
        )
    return None


if __name__ == "__main__":
    from hit_bot.parser_cli import main

    raise SystemExit(main())
