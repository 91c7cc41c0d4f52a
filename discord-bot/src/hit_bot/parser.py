"""Reads a Discord message and says whether it is a trade signal (spec/signals.md).

`parse(text)` never raises and has four outcomes:
- `signal`: a consistent `SignalCore`, with the name of the format it was written in;
- `management`: a message about a trade already running (close, partial close, cancel, move the stop,
  new targets, a target or the stop hit, other news of it): a `Management` (hit_bot/parsing/management.py)
  with its action, the symbol it names, its price and part, and the reason it was read so;
- `not_signal`: chatter, questions, analysis, links, commands: ignore silently;
- `invalid`: it has the shape of a signal but is broken (no stop loss, no symbol, two directions,
  prices in the wrong order...): the caller replies with `reason` and trades nothing.
When in doubt the answer is never `signal` (rule 4). A message is read as a signal first; only one that is
not a signal is read for management, so a signal never becomes management, and a management message is
never a trade.

The formats are the named entries of `PATTERNS` (see hit_bot/parsing/formats.py to add one). Run
`python -m hit_bot.parser "<message>"` to see how a message reads, or `--jsonl` to parse a stream.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Literal

from hit_bot.parsing.checks import (
    ambiguous_number_problem,
    entry_order_problem,
    equal_targets,
    leverage_problem,
    merged_targets,
    not_crypto_problem,
    scale_problem,
)
from hit_bot.parsing.cues import SPACED_LETTERS, clean
from hit_bot.parsing.formats import DEFAULT_FORMATS, Prices, SignalFormat
from hit_bot.parsing.management import Management, ManagementAction
from hit_bot.parsing.management import read as read_management
from hit_bot.parsing.normalise import (
    CHECK_MARK,
    DOWN_MARK,
    STOP_MARK,
    TARGET_MARK,
    UP_MARK,
    drop_commentary,
    normalise,
)
from hit_bot.parsing.scan import Scan, percentage_stop, scan
from hit_bot.parsing.symbols import coin_words, directions, lone_coin, symbols, words
from hit_bot.parsing.vocabulary import VOCABULARY
from hit_shared.models import MAX_RAW_TEXT, SYMBOL_PATTERN, Side, SignalCore, consistency_problem, fmt

log = logging.getLogger(__name__)

# Priority order: the first format whose `detect` accepts the message reads it.
PATTERNS: dict[str, SignalFormat] = {f.name: f for f in DEFAULT_FORMATS}

MAX_TEXT = MAX_RAW_TEXT
MAX_ENTRIES = 20
# Prices further apart than this within one signal are a typo (`5800` for `58000`, `145,150` read as one
# number), not a trade.
MAX_PRICE_SPREAD = Decimal(10)
INTERNAL_ERROR = "the parser could not read this message"


@dataclass(frozen=True)
class ParseResult:
    kind: Literal["signal", "management", "not_signal", "invalid"]
    signal: SignalCore | None = None  # set iff kind == "signal"
    format: str | None = None  # the PATTERNS name that matched (also for "invalid" when known)
    reason: str | None = None  # a human sentence iff kind == "invalid"
    management: Management | None = None  # set iff kind == "management" (its own reason inside)


NOT_SIGNAL = ParseResult("not_signal")


_DIGIT = re.compile(r"\d")  # any Unicode digit (`６` too): normalise() turns them into ASCII ones
_TRADE_WORD = re.compile(r"(?i)\b(?:long|short|buy|sell)\b|📈|📉")
# Results and reports of trades already made: never a new trade.
_RESULT_WORDS = frozenset(
    """HIT HITS REACHED CLOSED CLOSING STOPPED ACHIEVED SMASHED BOOKED CANCELLED CANCELED LIQUIDATED
    TRIGGERED FILLED""".split()
)
# Follow-ups about a running trade: quietly ignored when they do not read as a full signal.
_FOLLOW_UP_WORDS = frozenset(
    "UPDATE UPDATES UPDATED MOVE MOVED MOVES MOVING BREAKEVEN TRAIL TRAILING SECURE PARTIAL".split()
)
_RESULT_LABEL = f"(?:TP|TARGET|T[0-9]|SL|STOP|{TARGET_MARK}|{STOP_MARK})"
_CHECKED_LABEL = re.compile(f"{CHECK_MARK}[^\n]*{_RESULT_LABEL}|{_RESULT_LABEL}[^\n]*{CHECK_MARK}")
# A target, stop or entry word of any language the vocabulary knows, then on its line one of its words
# for a level reached or a stop taken (the management kinds `target`, `stop`, `entry`, then `hit`,
# `stopped`, or `moved`): `TP1 done`, `All targets completed`, `Тейк 1 взят`, `止盈1已到达`, `Hedef 1
# tamam`, `SL moved to BE`. Alone those words may tell of a chart (`retest done`, `price moved up`) above a
# real signal. Read on the message as the management reader cleans it (lower case, every language's words
# kept, remarks in brackets too), where a word of a spaced script matches only whole.


def _any_of(*kinds: str) -> str:
    return "|".join(f"(?:{word})" for kind in kinds for word in VOCABULARY.management[kind])


_RESULT_WORD = f"(?:{_any_of('hit', 'stopped')}|moved)"
_RESULT_AFTER_LABEL = re.compile(
    f"(?<![{SPACED_LETTERS}])(?:{_any_of('target', 'stop', 'entry')})[^\n]{{0,24}}?"
    f"(?<![{SPACED_LETTERS}]){_RESULT_WORD}(?![{SPACED_LETTERS}])"
)
# The result words alone, anywhere, even inside a longer word: most signals have none, and this search
# is several times quicker than the one above (whose leading look-behind must be tried at every character).
_ANY_RESULT_WORD = re.compile(_RESULT_WORD)
# Result words that say the same inside a remark in brackets (`TP 65000 (update: entry filled)`), which
# the signal's reading drops; `closed` is left out there (`SL 63000 (4h candle closed below)` is a stop's
# condition, not a result).
_REMARK_RESULT_WORDS = _RESULT_WORDS - {"CLOSED", "CLOSING", "CANCELLED", "CANCELED"}
_QUESTION_WORDS = """SHOULD WOULD COULD CAN IS ARE DO DOES DID WHAT WHEN WHY HOW WHERE WHO WHICH ANYONE
    ANYBODY THOUGHTS WDYT SHALL""".split()
_QUESTION_START = re.compile(f"[^A-Z0-9]*(?:{'|'.join(_QUESTION_WORDS)})(?![A-Z0-9])")
_DIRECTION_WORD = re.compile(f"\\b(?:LONG|SHORT|BUY|SELL)(?:ING)?\\b|{UP_MARK}|{DOWN_MARK}")
_SYMBOL = re.compile(SYMBOL_PATTERN)


class _Message:
    """One message, its normalised forms (parsing/normalise.py) and its labels (parsing/scan.py), each
    made once, when first needed: the signal reading and the management reading share them."""

    def __init__(self, text: str) -> None:
        self.text = text

    @cached_property
    def with_commentary(self) -> str:
        """Normalised with the remarks beside prices kept (`(breakout)`, `5%`): the checks read them."""
        return normalise(self.text, keep_commentary=True)

    @cached_property
    def norm(self) -> str:
        return drop_commentary(self.with_commentary)

    @cached_property
    def candidates(self) -> list[str]:
        """The symbols the message names."""
        return symbols(self.norm)

    @cached_property
    def found(self) -> Scan:
        """Its labels and the prices each one carries."""
        return scan(self.norm, coin_words(self.norm, self.candidates))


def parse(text: str) -> ParseResult:
    """Classifies one message (see the module docstring). Never raises, whatever the input."""
    message = _Message(text)
    try:
        result = _parse(message)
    except Exception:  # the safety net of a function that must never raise; a bug here means no trade
        log.exception("the signal parser failed; treating the message as unreadable")
        return ParseResult("invalid", reason=INTERNAL_ERROR)
    if result.kind == "signal" or len(text) > MAX_TEXT or _is_command(text):
        return result
    try:
        return _management_reading(message, result)
    except Exception:  # never raises; a bug here leaves the message as the signal parser read it
        log.exception("the management reader failed; keeping the signal parser's reading")
        return result


def _management_reading(message: _Message, result: ParseResult) -> ParseResult:
    """A message that is not a signal, read for management (hit_bot/parsing/management.py).

    A message with a whole trade in it (an entry with a stop or a target) that is not a signal is a
    withdrawn, closed, repeated or illustrated signal, or a broken one. A broken one stays invalid with its
    reason (`Вход: 1.41 Тейки: 1.42` lacks its stop; its `✅` is no target hit). Of the others, the levels
    are the signal's own, never new ones, so of management they may only close or cancel that trade or
    report on it (`Close LONG ETH-USDT Entry: 3010 ...`, `... CANCEL this signal`); otherwise they stay
    ignored (`Example format: LONG ...`). A reading that asks for nothing (`other`) never hides an invalid
    signal's reason either."""
    if result.kind == "invalid" and _trade_shaped(message.found):
        return result  # a broken signal: its reason is the answer, whatever else the message says
    norm = message.norm
    management = read_management(message.text, asked=_is_question(norm), norm=norm)
    if management is None:
        return result
    if management.action not in _WHOLE_TRADE_ACTIONS and _trade_shaped(message.found):
        return result
    if result.kind == "invalid" and management.action is ManagementAction.OTHER:
        return result
    return ParseResult("management", management=management)


_WHOLE_TRADE_ACTIONS = (
    ManagementAction.CLOSE,
    ManagementAction.CANCEL,
    ManagementAction.TP_HIT,
    ManagementAction.SL_HIT,
)


def _trade_shaped(found: Scan) -> bool:
    """The message holds a whole trade: a labelled entry (a price or market) with a stop or a target, or
    prices before the labels with both a stop and a target (`ARB long 1.05, stop 0.99, target 1.15`; a
    price alone before a stop is a close's or a move's, `Closing half at 2.415, SL to 2.30`)."""
    if found.entries or found.market:
        return bool(found.stops or found.targets)
    return bool(found.orphans() and found.stops and found.targets)


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
    return ParseResult("invalid", format=format_name, reason=reason)


# A message that withdraws, closes or illustrates a trade: never a new one (`Close LONG BTC ...`,
# `Cancel ...`, `Signal invalidated`, `Don't take this one`, `Example format:`, `just kidding`).
# The words are the vocabulary's close and cancel words (parsing/vocabulary.toml).
_CLOSE_WORDS = "|".join(VOCABULARY.labels["close"])
_CANCEL_WORDS = "|".join(VOCABULARY.labels["cancel"])
_WITHDRAWN = re.compile(
    f"^\\n[^A-Z0-9]*(?:{_CLOSE_WORDS}|{_CANCEL_WORDS})(?![A-Z])(?![ ]?:)"
    f"|(?<![A-Z])(?:{_CANCEL_WORDS})(?![A-Z])"
)


# `If BTC breaks 62000 we long ...`: a plan for later, not a trade to take now.
_CONDITIONAL = re.compile(r"\n[^A-Z0-9]*(?:IF|ONLY[ ]IF|IN[ ]CASE|WHEN|ONCE)[ ]")
CONDITIONAL_REASON = (
    "it is a plan that depends on what the price does first (if ...): post the trade once it is on"
)


def _withdrawn(norm: str) -> bool:
    return _WITHDRAWN.search(norm) is not None


def _reports_a_result(norm: str, with_commentary: str) -> bool:
    """A result word (`hit`, `closed`...) or a check mark on a line with a target or a stop (`TP1 61000
    ✅`), in the message as read (`norm`) or in the remarks its reading drops (`with_commentary`: `... TP
    65000 (TP1 hit)`). A result word of any language after a label is `_reports_after_a_label`."""
    texts = (norm,) if with_commentary == norm else (norm, with_commentary)
    return (
        bool(words(norm) & _RESULT_WORDS)
        or (len(texts) == 2 and bool(words(with_commentary) & _REMARK_RESULT_WORDS))
        or any(_CHECKED_LABEL.search(text) is not None for text in texts)
    )


def _reports_after_a_label(text: str) -> bool:
    """A level reached or a stop taken, said after its label (`_RESULT_AFTER_LABEL`). Asked only of a
    message a signal format fits: the vocabulary is long, and others are no trade anyway."""
    if _ANY_RESULT_WORD.search(unicodedata.normalize("NFKC", text).lower()) is None:
        return False
    return _RESULT_AFTER_LABEL.search(clean(text)) is not None


_COMMAND_STARTS = ("!", "/", "?")


def _is_command(text: str) -> bool:
    start = text.lstrip()[:2]
    return start[:1] in _COMMAND_STARTS and start[1:2].isalpha()


def _is_question(norm: str) -> bool:
    if _QUESTION_START.match(norm):
        return True
    if "?" not in norm:
        return False
    return any("?" in line and _DIRECTION_WORD.search(line) for line in norm.split("\n"))


def _parse(message: _Message) -> ParseResult:
    """The pipeline: gates that ignore a message outright, normalise, the labels and their prices (scan),
    the format that explains them, the direction, then the reading and its checks (_read)."""
    text = message.text
    if len(text) > MAX_TEXT:
        if _TRADE_WORD.search(text[:MAX_TEXT]) and _DIGIT.search(text):
            return ParseResult("invalid", reason=f"the message is longer than {MAX_TEXT} characters")
        return NOT_SIGNAL
    if not _DIGIT.search(text) or _is_command(text):
        return NOT_SIGNAL
    norm = message.norm
    if _reports_a_result(norm, message.with_commentary) or _is_question(norm) or _withdrawn(norm):
        return NOT_SIGNAL
    candidates, found = message.candidates, message.found
    form = _choice(found)
    if form is None or _reports_after_a_label(text):
        return NOT_SIGNAL
    if _CONDITIONAL.match(norm):
        return _invalid(CONDITIONAL_REASON, form.name, norm)
    side = _side(found, form, norm)
    if not isinstance(side, Side):
        return side
    return _read(found, form, side, candidates or lone_coin(found.header), message)


def _side(found: Scan, form: SignalFormat, norm: str) -> Side | ParseResult:
    """The one direction the message gives (or its prices give, when it writes none), or the result for a
    message without exactly one."""
    sides = directions(norm)
    if not sides and found.stops and found.targets:
        sides = _inferred_side(form.read(found))
        if not sides:
            return _invalid(
                "it says neither LONG nor SHORT, and its prices do not say it either", form.name, norm
            )
    if not sides:
        return NOT_SIGNAL
    if len(sides) > 1:
        return _invalid("it gives both LONG and SHORT", form.name, norm)
    return sides[0]


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


def _read(
    found: Scan, form: SignalFormat, side: Side, candidates: list[str], message: _Message
) -> ParseResult:
    prices = form.read(found)
    prices = prices._replace(take_profits=merged_targets(prices.take_profits))
    problem = _symbol_problem(candidates)
    norm, clean = message.norm, message.with_commentary
    if problem is None:
        problem = ambiguous_number_problem(clean) or entry_order_problem(side, prices, clean)
    problem = problem or _prices_problem(prices, clean) or leverage_problem(norm)
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
    signal = SignalCore(
        side=side,
        symbol=candidates[0],
        entries=prices.entries,
        stop_loss=prices.stops[0],
        take_profits=prices.take_profits,
        leverage=leverage,
    )
    return ParseResult("signal", signal, form.name)


def _symbol_problem(candidates: list[str]) -> str | None:
    if not candidates:
        return "it names no symbol (write it like BTC-USDT)"
    if len(candidates) > 1:
        return f"it names more than one symbol ({', '.join(candidates[:4])})"
    if not _SYMBOL.match(candidates[0]):
        return f"{candidates[0]} is not a valid symbol"
    return not_crypto_problem(candidates[0])


def _prices_problem(prices: Prices, clean: str) -> str | None:
    if prices.problem:
        return prices.problem
    if not prices.stops:
        if percentage_stop(clean):
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
    if side is Side.LONG:
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
