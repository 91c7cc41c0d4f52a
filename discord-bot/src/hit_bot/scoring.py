"""The parser scored on a corpus: messages with the outcome a careful trader expects of each.

Run it as `python -m hit_bot.parser --score corpus.jsonl [--json] [--min-recall R]`.

A corpus is JSON lines, one message a line (blank lines skipped):

    {"id": "c1", "text": "<message>", "expect": <expectation>, "family": "<optional group name>"}
    {"id": "m1", "text": "<message>", "action": "move_stop", "symbol": null, "price": 13.62}

`id` is optional (the line number stands in). A line with `expect` is a signal case; its expectation is
one of:
- a signal: `{"side", "symbol", "entries", "stop_loss", "take_profits", "leverage"}`; `entries` (empty =
  market) and `leverage` may be left out; prices are JSON numbers or decimal strings;
- `null`: not a trade (chatter, a question, a result...);
- `{"refuse": "<why>"}`: a message a careful trader would not take; the parser must not trade it.
A line with `action` instead is a management case (issue #17): the action the message asks for or reports
(close, partial_close, cancel, move_stop, update_targets, tp_hit, sl_hit, other) and, each compared only
when the line has it, `symbol` (null: it names none), `price`, `fraction` (within 0.01), `breakeven`
and `targets`.

What is measured, and why it matters:
- recall: the share of expected signals read with every field right. A signal read wrong is worse than
  a miss (it trades the wrong thing), so it is listed apart.
- false trades: a signal produced where none is expected. Each one is money at risk; any false trade
  fails the score.
- field accuracy: of the signals the parser produced for expected signals, how many had each field right,
  to show where a format is misread.
- management: the share of management messages read with the action and every labelled field right; a
  management message read as a signal is a false trade; and a money action (close, partial_close, cancel,
  move_stop, update_targets) that acts otherwise than the line asks (another action, or the right one with
  a symbol, price, part or target it gives and the line does not) is a money action the message did not
  ask for. Each one fails the score, like a false trade. (A money reading that only leaves a labelled
  figure out is read wrong, not unasked: nothing would be done with a figure it does not have.)
Prices are compared as decimals, never floats. Entries are compared as a set (their order carries no
meaning); take profits in order, a target written twice counting once (the parser and the server may
merge equal targets).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from hit_bot.parser import ParseResult, parse
from hit_bot.parsing.management import Management, ManagementAction
from hit_shared.models import SignalCore, fmt

FIELDS = ("side", "symbol", "entries", "stop_loss", "take_profits", "leverage")
_REQUIRED = ("side", "symbol", "stop_loss", "take_profits")


class CorpusError(Exception):
    """The corpus can't be scored (unreadable file, a bad line): the message says where and why."""


@dataclass(frozen=True)
class Expected:
    """A signal the corpus expects, in the shape the comparison needs."""

    side: str
    symbol: str
    entries: tuple[Decimal, ...]
    stop_loss: Decimal
    take_profits: tuple[Decimal, ...]
    leverage: int | None


_MISSING: Any = object()  # a field the management line does not have: not compared
FRACTION_TOLERANCE = Decimal("0.01")  # `a third` may be labelled 0.33 or 0.333


@dataclass(frozen=True)
class ExpectedManagement:
    """A management reading the corpus expects; a field left as _MISSING is not compared."""

    action: ManagementAction
    symbol: Any = _MISSING  # str | None
    price: Any = _MISSING  # Decimal | None
    fraction: Any = _MISSING  # Decimal | None
    breakeven: Any = _MISSING  # bool
    targets: Any = _MISSING  # tuple[Decimal, ...]


@dataclass(frozen=True)
class Case:
    id: str
    line: int
    text: str
    expect: Expected | None  # None: no trade expected
    refuse: str | None  # why a careful trader would not take it, for `{"refuse": ...}`
    family: str | None
    management: ExpectedManagement | None = None  # set for a management case (then expect is None)


# -- reading the corpus ----------------------------------------------------------------------------------


def read_corpus(path: Path) -> list[Case]:
    """Every case of the file, or CorpusError naming the file and, for a bad line, its number."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CorpusError(f"cannot read {path}: no such file") from None
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
    cases = [_case(path, number, line) for number, line in _lines(raw)]
    if not cases:
        raise CorpusError(f"{path} has no cases (one JSON object a line)")
    return cases


def _lines(raw: bytes) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(raw.splitlines(), start=1):
        if line.strip():
            yield number, line


def _case(path: Path, number: int, line: bytes) -> Case:
    try:
        return _read_case(number, line)
    except ValueError as exc:
        raise CorpusError(f"{path} line {number}: {exc}") from None


def _read_case(number: int, line: bytes) -> Case:
    """One line as a Case; ValueError with the problem (the caller adds where)."""
    try:
        item = json.loads(line.decode("utf-8"), parse_float=Decimal)
    except UnicodeDecodeError:
        raise ValueError("not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ValueError("nested too deeply to read") from None
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    text = item.get("text")
    if not isinstance(text, str):
        raise ValueError('no string field "text"')
    case_id, family = str(item.get("id", f"line {number}")), item.get("family")
    family = None if family is None else str(family)
    if "expect" not in item and "action" in item:
        return Case(case_id, number, text, None, None, family, _expected_management(item))
    if "expect" not in item:
        raise ValueError(
            'no field "expect" (a signal, null, or {"refuse": "<why>"}) or "action" (a management message)'
        )
    expect, refuse = _expectation(item["expect"])
    return Case(id=case_id, line=number, text=text, expect=expect, refuse=refuse, family=family)


def _expected_management(item: dict[str, Any]) -> ExpectedManagement:
    actions = [action.value for action in ManagementAction]
    if item["action"] not in actions:
        raise ValueError(f"action must be one of {', '.join(actions)}, not {item['action']!r}")
    symbol = item.get("symbol", _MISSING)
    if symbol is not _MISSING and symbol is not None and not isinstance(symbol, str):
        raise ValueError("symbol must be a string or null")
    breakeven = item.get("breakeven", _MISSING)
    if breakeven is not _MISSING and not isinstance(breakeven, bool):
        raise ValueError("breakeven must be true or false")
    return ExpectedManagement(
        action=ManagementAction(item["action"]),
        symbol=symbol,
        price=_optional_price(item, "price"),
        fraction=_optional_price(item, "fraction"),
        breakeven=breakeven,
        targets=_prices(item["targets"], "targets") if "targets" in item else _MISSING,
    )


def _optional_price(item: dict[str, Any], name: str) -> Any:
    if name not in item:
        return _MISSING
    return None if item[name] is None else _price(item[name], name)


def _expectation(value: Any) -> tuple[Expected | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, dict) and "refuse" in value:
        return None, str(value["refuse"])
    if isinstance(value, dict):
        return _expected_signal(value), None
    raise ValueError('expect must be null, a signal or {"refuse": "<why>"}')


def _expected_signal(value: dict[str, Any]) -> Expected:
    for name in _REQUIRED:
        if name not in value:
            raise ValueError(f'expect has no "{name}"')
    side = value["side"]
    if side not in ("long", "short"):
        raise ValueError(f"expect.side must be long or short, not {side!r}")
    if not isinstance(value["symbol"], str):
        raise ValueError("expect.symbol must be a string")
    take_profits = _prices(value["take_profits"], "take_profits")
    if not take_profits:
        raise ValueError("expect.take_profits must hold at least one price")
    return Expected(
        side=side,
        symbol=value["symbol"],
        entries=_prices(value.get("entries", []), "entries"),
        stop_loss=_price(value["stop_loss"], "stop_loss"),
        take_profits=take_profits,
        leverage=_leverage(value.get("leverage")),
    )


def _prices(values: Any, name: str) -> tuple[Decimal, ...]:
    if not isinstance(values, list):
        where = name if name == "targets" else f"expect.{name}"
        raise ValueError(f"{where} must be a list of prices")
    return tuple(_price(v, name) for v in values)


def _price(value: Any, name: str) -> Decimal:
    """A JSON number or a decimal string as an exact Decimal."""
    where = name if name in ("price", "fraction", "targets") else f"expect.{name}"
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ValueError(f"{where} holds {value!r}, which is not a price")
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{where} holds {value!r}, which is not a price") from None
    if not price.is_finite():
        raise ValueError(f"{where} holds {value!r}, which is not a price")
    return price


def _leverage(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    raise ValueError(f"expect.leverage must be a whole number or null, not {value!r}")


# -- comparing -------------------------------------------------------------------------------------------


def _shown(prices: Sequence[Decimal]) -> str:
    return "[" + ", ".join(fmt(p) for p in prices) + "]"


def _distinct(prices: Sequence[Decimal]) -> tuple[Decimal, ...]:
    """The prices in order, each value once (62000 and 62000.0 are one value)."""
    return tuple(dict.fromkeys(prices))


def mismatches(got: SignalCore, want: Expected) -> dict[str, str]:
    """Field name -> what differs, for every field the parser got wrong; empty when all are right."""
    found: dict[str, str] = {}
    if got.side.value != want.side:
        found["side"] = f"side {got.side.value}, expected {want.side}"
    if got.symbol != want.symbol:
        found["symbol"] = f"symbol {got.symbol}, expected {want.symbol}"
    if set(got.entries) != set(want.entries):
        found["entries"] = f"entries {_shown(got.entries)}, expected {_shown(want.entries)}"
    if got.stop_loss != want.stop_loss:
        found["stop_loss"] = f"stop_loss {fmt(got.stop_loss)}, expected {fmt(want.stop_loss)}"
    if _distinct(got.take_profits) != _distinct(want.take_profits):
        shown = f"{_shown(got.take_profits)}, expected {_shown(want.take_profits)}"
        found["take_profits"] = f"take_profits {shown}"
    if got.leverage != want.leverage:
        found["leverage"] = f"leverage {got.leverage}, expected {want.leverage}"
    return found


def management_mismatches(got: Management, want: ExpectedManagement) -> dict[str, str]:
    """Field name -> what differs, for the action and every field the case labels; empty when all agree."""
    found: dict[str, str] = {}
    if got.action is not want.action:
        found["action"] = f"action {got.action.value}, expected {want.action.value}"
    if want.symbol is not _MISSING and got.symbol != want.symbol:
        found["symbol"] = f"symbol {got.symbol}, expected {want.symbol}"
    if want.price is not _MISSING and got.price != want.price:
        found["price"] = f"price {_or_none(got.price)}, expected {_or_none(want.price)}"
    if want.fraction is not _MISSING and not _same_fraction(got.fraction, want.fraction):
        found["fraction"] = f"fraction {_or_none(got.fraction)}, expected {_or_none(want.fraction)}"
    if want.breakeven is not _MISSING and got.breakeven != want.breakeven:
        found["breakeven"] = f"breakeven {got.breakeven}, expected {want.breakeven}"
    if want.targets is not _MISSING and _distinct(got.targets) != _distinct(want.targets):
        found["targets"] = f"targets {_shown(got.targets)}, expected {_shown(want.targets)}"
    return found


def _or_none(value: Decimal | None) -> str:
    return "none" if value is None else fmt(value)


def _same_fraction(got: Decimal | None, want: Decimal | None) -> bool:
    if got is None or want is None:
        return got is want
    return abs(got - want) <= FRACTION_TOLERANCE


# -- scoring ---------------------------------------------------------------------------------------------

ProblemKind = Literal[
    "wrong", "missed", "false_trade", "unasked_money", "management_wrong", "management_missed"
]


@dataclass(frozen=True)
class Problem:
    case: Case
    kind: ProblemKind
    detail: str


@dataclass
class Family:
    cases: int = 0
    right: int = 0
    wrong: int = 0
    missed: int = 0
    not_traded: int = 0
    false_trades: int = 0


@dataclass
class Score:
    """The tally of one run; `problems` in corpus order."""

    corpus: str
    cases: int = 0
    right: int = 0
    wrong: int = 0
    missed: int = 0
    ignored: int = 0  # no trade expected, and the parser stayed silent
    refused: int = 0  # no trade expected, and the parser refused it with a reason
    false_trades: int = 0
    fields_right: Counter[str] = field(default_factory=Counter)
    signals_read: int = 0  # expected signals the parser produced a signal for (field accuracy's base)
    families: dict[str, Family] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # management cases (issue #17)
    management_right: int = 0
    management_wrong: int = 0  # read as management, with the action or a labelled field wrong
    management_missed: int = 0  # not read as management (ignored, or refused as a broken signal)
    management_traded: int = 0  # read as a signal: also counted in false_trades
    unasked_money: int = 0  # a money action that is not exactly what the line asks for
    actions: Counter[str] = field(default_factory=Counter)  # management cases per labelled action
    actions_right: Counter[str] = field(default_factory=Counter)

    @property
    def signals(self) -> int:
        return self.right + self.wrong + self.missed

    @property
    def non_signals(self) -> int:
        return self.ignored + self.refused + self.false_trades - self.management_traded

    @property
    def management(self) -> int:
        return self.management_right + self.management_wrong + self.management_missed + self.management_traded

    @property
    def management_rate(self) -> float | None:
        """The share of management messages read with the action and every labelled field right."""
        return self.management_right / self.management if self.management else None

    @property
    def recall(self) -> float | None:
        return self.right / self.signals if self.signals else None

    def passes(self, min_recall: float) -> bool:
        """No false trade, no money action that was not asked for, and at least `min_recall` of the
        signals, and of the management messages, read right."""
        recall = self.recall if self.recall is not None else 1.0
        rate = self.management_rate if self.management_rate is not None else 1.0
        return self.false_trades == 0 and self.unasked_money == 0 and min(recall, rate) >= min_recall


def score(cases: Sequence[Case], corpus: str) -> Score:
    tally = Score(corpus=corpus)
    for case in cases:
        tally.cases += 1
        outcome = _judge(tally, case, parse(case.text))
        if case.family is not None:
            family = tally.families.setdefault(case.family, Family())
            family.cases += 1
            setattr(family, outcome, getattr(family, outcome) + 1)
    return tally


def _judge(tally: Score, case: Case, result: ParseResult) -> str:
    """Counts one case; returns the Family counter it adds to."""
    if case.management is not None:
        return _judge_management(tally, case, case.management, result)
    if case.expect is None:
        return _judge_non_signal(tally, case, result)
    if result.signal is None:
        tally.missed += 1
        why = f"invalid: {result.reason}" if result.kind == "invalid" else "read as not a signal"
        if result.management is not None:
            why = f"read as management ({result.management.action.value}): {result.management.reason}"
        tally.problems.append(Problem(case, "missed", why))
        return "missed"
    tally.signals_read += 1
    wrong = mismatches(result.signal, case.expect)
    tally.fields_right.update(name for name in FIELDS if name not in wrong)
    if wrong:
        tally.wrong += 1
        tally.problems.append(Problem(case, "wrong", "; ".join(wrong.values())))
        return "wrong"
    tally.right += 1
    return "right"


def _judge_non_signal(tally: Score, case: Case, result: ParseResult) -> str:
    if result.signal is None:
        if result.kind == "invalid":
            tally.refused += 1
        else:
            tally.ignored += 1
        return "not_traded"
    tally.false_trades += 1
    s = result.signal
    traded = f"read as {s.side.value} {s.symbol} (stop {fmt(s.stop_loss)})"
    expected = f"expected a refusal: {case.refuse}" if case.refuse is not None else "expected no trade"
    tally.problems.append(Problem(case, "false_trade", f"{traded}; {expected}"))
    return "false_trades"


def _judge_management(tally: Score, case: Case, want: ExpectedManagement, result: ParseResult) -> str:
    tally.actions[want.action.value] += 1
    if result.signal is not None:
        tally.management_traded += 1
        tally.false_trades += 1
        s = result.signal
        detail = f"read as {s.side.value} {s.symbol} (stop {fmt(s.stop_loss)}); expected {want.action.value}"
        tally.problems.append(Problem(case, "false_trade", detail))
        return "false_trades"
    got = result.management
    if got is None:
        tally.management_missed += 1
        why = f"invalid: {result.reason}" if result.kind == "invalid" else "read as not a signal"
        tally.problems.append(Problem(case, "management_missed", f"{why}; expected {want.action.value}"))
        return "missed"
    wrong = management_mismatches(got, want)
    if not wrong:
        tally.management_right += 1
        tally.actions_right[want.action.value] += 1
        return "right"
    tally.management_wrong += 1
    detail = "; ".join(wrong.values())
    if got.moves_money and _unasked(got, want, wrong):
        tally.unasked_money += 1
        tally.problems.append(Problem(case, "unasked_money", f"{detail} ({got.reason})"))
    else:
        tally.problems.append(Problem(case, "management_wrong", f"{detail} ({got.reason})"))
    return "wrong"


def _unasked(got: Management, want: ExpectedManagement, wrong: dict[str, str]) -> bool:
    """A money reading that acts otherwise than the message asks: another action, or a symbol, price, part,
    breakeven or target that the reading gives and the line does not. A figure the reading leaves out
    (`move_stop` with no price where the line has one) makes it incomplete, not unasked: nothing is done
    with a figure that is not there."""
    if "action" in wrong:
        return True
    given = {
        "symbol": got.symbol is not None,
        "price": got.price is not None,
        "fraction": got.fraction is not None,
        "breakeven": got.breakeven,
        "targets": bool(got.targets),
    }
    return any(given[name] for name in wrong)
