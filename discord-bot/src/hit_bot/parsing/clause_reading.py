"""One clause of a management message read alone: the action it says, the words that said it, its figures.

The rules, in order (the money actions first; parsing/management.py combines the clauses):
- `cancel`; `close` (a part or a percentage near it makes it `partial_close`); `reduce`
  (`partial_close`); taking profit with a part near it (`partial_close`) or with `whole` (`close`);
- `move_stop`: a move word whose nearest noun (within a few words) is the stop, the stop beside
  `breakeven`, or a move verb with `breakeven` and no noun (`Переводим в безубыток`); never when the
  clause reports the stop hit;
- `update_targets`: a move or add word whose nearest noun is a target that is not kept as it is;
- the reports: `stopped`, or `hit` nearest the stop (`sl_hit`); profit taken, taking profit without a
  part, or `hit` nearest a target (`tp_hit`); a close reported as done, entries filled, a level kept, a
  stop or target with a price, an action word not taken (`other`).
An action word is not taken when a negation comes right before it; no money action is taken from a clause
that asks (`?`) or from a sentence that sets a condition (the caller says so).
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from hit_bot.parsing.cues import FRACTIONS, Clause, Cue


class ManagementAction(StrEnum):
    CLOSE = "close"
    PARTIAL_CLOSE = "partial_close"
    CANCEL = "cancel"
    MOVE_STOP = "move_stop"
    UPDATE_TARGETS = "update_targets"
    TP_HIT = "tp_hit"
    SL_HIT = "sl_hit"
    OTHER = "other"


# The actions that would change a position or its orders; the others only report.
MONEY_ACTIONS = (
    ManagementAction.CLOSE,
    ManagementAction.PARTIAL_CLOSE,
    ManagementAction.CANCEL,
    ManagementAction.MOVE_STOP,
    ManagementAction.UPDATE_TARGETS,
)
REPORTS = (ManagementAction.SL_HIT, ManagementAction.TP_HIT, ManagementAction.OTHER)


class ClauseReading(NamedTuple):
    """What one clause says: its action, the words that said it, and its figures."""

    action: ManagementAction
    clause: Clause
    words: tuple[Cue, ...]
    price: Decimal | None = None
    fraction: Decimal | None = None
    breakeven: bool = False
    targets: tuple[Decimal, ...] = ()
    added: bool = False


_NEGATION_REACH = 20  # characters between a negation and the word it undoes
_PART_REACH = 25  # characters between a close word and the part it names (`close 50%`, `平一半`)
_NOUN_REACH = 20  # characters between a move word and the stop or target it moves
_BREAKEVEN_REACH = 12  # characters between the stop and `breakeven` after it, with no verb (`SL to BE`)
# Move words that only link the stop to its level (`SL to 61000`, `SL now 61000`): never a move without it.
_CONNECTORS = frozenset(("to", "→", "->", "now", "теперь", "сейчас"))
_NOUNS = ("stop", "target", "entry")


def _gap(a: Cue, b: Cue) -> int:
    return max(0, a.start - b.end, b.start - a.end)


def _nearest(clause: Clause, cue: Cue, kinds: tuple[str, ...] = _NOUNS, reach: int = 10_000) -> Cue | None:
    """The noun (stop, target, entry) nearest the word within `reach` characters, the one before it on
    a tie."""
    nouns = [noun for noun in clause.of(*kinds) if noun is not cue and _gap(cue, noun) <= reach]
    if not nouns:
        return None
    return min(nouns, key=lambda noun: (_gap(cue, noun), noun.start > cue.start))


def _subject(clause: Clause, hit: Cue) -> Cue | None:
    """What a hit word says was hit: its nearest noun; for a mark (`✅`), which follows what it marks, the
    nearest noun before it (`TP1 ✅ stop to entry`), or after it when there is none (`✅ TP1`)."""
    before = [noun for noun in clause.of(*_NOUNS) if noun.end <= hit.start]
    if any(ch.isalnum() for ch in hit.text) or not before:
        return _nearest(clause, hit)
    return max(before, key=lambda noun: noun.end)


def _negation(clause: Clause, cue: Cue) -> Cue | None:
    for negation in clause.of("negation"):
        if negation.end <= cue.start and cue.start - negation.end <= _NEGATION_REACH:
            return negation
    return None


class _Judge:
    """Whether an action word of one clause may be taken, collecting the notes of those that may not."""

    def __init__(self, clause: Clause, held: bool, notes: list[str]) -> None:
        self.clause, self.held, self.notes = clause, held, notes

    def money(self, cue: Cue) -> bool:
        if self.held:
            self.notes.append(f'"{cue.text.strip()}": it is asked, or depends on a condition')
            return False
        return self.report(cue)

    def report(self, cue: Cue) -> bool:
        if self.clause.question:
            self.notes.append(f'"{cue.text.strip()}": it is asked')
            return False
        negation = _negation(self.clause, cue)
        if negation is not None:
            self.notes.append(f'"{cue.text.strip()}": negated by "{negation.text.strip()}"')
            return False
        return True


def _parts(clause: Clause, cue: Cue) -> list[Cue]:
    """The words near `cue` that name a part of the position (`half`, `часть`, `部分`)."""
    parts = clause.of("partial", "half", "third", "quarter")
    near = [part for part in parts if _gap(cue, part) <= _PART_REACH]
    return sorted(near, key=lambda part: _gap(cue, part))


def _fraction(clause: Clause, cue: Cue) -> Decimal | None:
    """The size of the part named near `cue`: a half, a third, a quarter, or a percentage."""
    for part in _parts(clause, cue):
        if part.kind in FRACTIONS:
            return FRACTIONS[part.kind]
    for where, share in clause.percents:
        if 0 < share <= 1 and max(cue.start - where, where - cue.end) <= _PART_REACH:
            return share
    return None


def _part(clause: Clause, cue: Cue) -> tuple[bool, Decimal | None]:
    """Whether the words near `cue` name a part of the position (not all of it), and its size if known."""
    fraction = _fraction(clause, cue)
    if fraction is not None:
        return fraction < 1, fraction if fraction < 1 else None
    return bool(_parts(clause, cue)), None


def read_clause(clause: Clause, notes: list[str], *, held: bool = False) -> ClauseReading | None:
    """What the clause says. `held`: the message asks, or the clause's sentence sets a condition, so no
    money action is taken from it (a clause that itself ends in `?` reports nothing either)."""
    judge = _Judge(clause, held, notes)
    return _money_reading(clause, judge) or _report_reading(clause, judge)


def _money_reading(clause: Clause, judge: _Judge) -> ClauseReading | None:
    for cue in clause.of("cancel"):
        if _about_a_trade(clause) and judge.money(cue):
            return ClauseReading(ManagementAction.CANCEL, clause, (cue,), _first(clause.prices(cue.start)))
    for cue in clause.of("close", "reduce"):
        if judge.money(cue):
            return _closing(clause, cue, always_part=cue.kind == "reduce")
    for cue in clause.of("take_profit"):
        partial, _size = _part(clause, cue)
        if (partial or clause.has("whole")) and judge.money(cue):
            return _closing(clause, cue, always_part=partial)
    return _stop_move(clause, judge) or _targets_change(clause, judge)


# `Cancelled ❌`, `Отмена!`, `#DOGE cancelled`, `作废`: a clause this short need not name the trade.
_SHORT_CLAUSE_WORDS = 3
_SHORT_CLAUSE_CJK = 4  # characters of a language written without spaces
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff]")


def _about_a_trade(clause: Clause) -> bool:
    """A cancel is taken only where the clause names the trade or an order (`вход` and `entry` may have
    been read as breakeven), or says little else."""
    if clause.has("trade", "entry", "breakeven"):
        return True
    return (
        len(clause.text.split()) <= _SHORT_CLAUSE_WORDS
        and len(_CJK.findall(clause.text)) <= _SHORT_CLAUSE_CJK
    )


def _closing(clause: Clause, cue: Cue, *, always_part: bool) -> ClauseReading:
    partial, fraction = _part(clause, cue)
    words = (cue, *_parts(clause, cue)[:1])
    price = _first(clause.prices(cue.start))
    if partial or always_part:
        return ClauseReading(ManagementAction.PARTIAL_CLOSE, clause, words, price, fraction)
    return ClauseReading(ManagementAction.CLOSE, clause, (cue,), price)


def _stop_move(clause: Clause, judge: _Judge) -> ClauseReading | None:
    """The stop moved: a move word whose nearest noun is the stop, the stop with `breakeven` right after it
    (`SL to BE`, `стопом в б/у`, `止损保本`), or a move verb with `breakeven` near it and no noun
    (`Переводим в безубыток`). Never in a clause that reports the stop hit."""
    if clause.has("stopped") or any(_is_stop(_subject(clause, hit)) for hit in clause.of("hit")):
        return None
    for move in clause.of("move"):
        noun = _nearest(clause, move, ("stop", "target"), _NOUN_REACH)
        near = [cue for cue in clause.of("breakeven") if _gap(move, cue) <= _NOUN_REACH]
        if _is_stop(noun) or (noun is None and near and move.text.strip() not in _CONNECTORS):
            if judge.money(move):
                return _stop_reading(clause, move, noun, clause.of("breakeven"))
            return None
    for stop in clause.of("stop"):
        after = [cue for cue in clause.of("breakeven") if 0 <= cue.start - stop.end <= _BREAKEVEN_REACH]
        if after and not clause.prices(stop.end)[:1] and judge.money(stop):
            return _stop_reading(clause, stop, stop, after)
    return None


def _is_stop(noun: Cue | None) -> bool:
    return noun is not None and noun.kind == "stop"


def _stop_reading(clause: Clause, word: Cue, noun: Cue | None, breakeven: list[Cue]) -> ClauseReading:
    """The new stop: the one price after the stop and its move word, else breakeven if the clause says so."""
    after = min(word.start, noun.start) if noun is not None else word.start
    prices = set(clause.prices(after))
    price = prices.pop() if len(prices) == 1 else None  # `from 58000 to 59500`: which one is not guessed
    words = tuple(cue for cue in (noun, word) if cue is not None and cue.kind in ("stop", "move"))
    words = tuple(dict.fromkeys(words))
    if price is None and breakeven:
        return ClauseReading(ManagementAction.MOVE_STOP, clause, (*words, breakeven[0]), breakeven=True)
    return ClauseReading(ManagementAction.MOVE_STOP, clause, words, price)


def _targets_change(clause: Clause, judge: _Judge) -> ClauseReading | None:
    """New targets: a move or add word whose nearest noun is a target that is not kept as it is."""
    kept = {id(_nearest(clause, cue, ("target",))) for cue in clause.of("unchanged")}
    for word in clause.of("move", "add"):
        noun = _nearest(clause, word, ("stop", "target"), _NOUN_REACH)
        if noun is None or noun.kind != "target" or id(noun) in kept:
            continue
        if not judge.money(word):
            return None
        targets = tuple(clause.prices(min(word.start, noun.start)))
        action = ManagementAction.UPDATE_TARGETS
        return ClauseReading(
            action, clause, (noun, word), _first(targets), targets=targets, added=word.kind == "add"
        )
    return None


def _report_reading(clause: Clause, judge: _Judge) -> ClauseReading | None:
    """sl_hit, tp_hit or other. A close reported as done counts as a hit of the level it names (`закрыта
    по стопу`, `closed at TP2`); a clause that is the stop word alone is the stop hit (`К сожалению,
    стоп.`)."""
    hits = [(cue, _subject(clause, cue)) for cue in (*clause.of("hit"), *clause.of("closed"))]
    if _only_the_stop(clause):
        hits.append((clause.cues[0], clause.cues[0]))
    stop_hits = [(noun, cue) for cue, noun in hits if _is_stop(noun)]
    target_hits = [(noun, cue) for cue, noun in hits if noun is not None and noun.kind == "target"]
    reports = (
        (ManagementAction.SL_HIT, [(cue,) for cue in clause.of("stopped")] + stop_hits),
        (ManagementAction.TP_HIT, [(cue,) for cue in clause.of("took_profit", "take_profit")] + target_hits),
    )
    for action, found in reports:
        for words in found:
            if judge.report(words[-1]):
                return ClauseReading(
                    action, clause, tuple(w for w in words if w is not None), _first(clause.prices())
                )
    return _state_reading(clause)


def _only_the_stop(clause: Clause) -> bool:
    """The clause is the stop word and nothing else (punctuation and emoji aside)."""
    if len(clause.cues) != 1 or clause.cues[0].kind != "stop" or clause.numbers:
        return False
    cue = clause.cues[0]
    rest = clause.text[: cue.start - clause.start] + clause.text[cue.end - clause.start :]
    return not any(ch.isalnum() for ch in rest)


# Words that tell the state of a running trade, or an action word that was not taken: `other`.
_STATE_WORDS = ("closed", "filled", "hit", "unchanged", "close", "cancel", "take_profit", "reduce")


def _state_reading(clause: Clause) -> ClauseReading | None:
    """News of a running trade that asks for nothing: a state word, or a stop or target with a price (not
    in a question: `anyone short ETH at 3200 with sl 3300?` is chatter)."""
    levels = clause.of("stop", "target") if clause.prices() and not clause.question else []
    words = clause.of(*_STATE_WORDS) or levels
    if not words:
        return None
    return ClauseReading(ManagementAction.OTHER, clause, (words[0],), _first(clause.prices()))


def _first(prices: list[Decimal] | tuple[Decimal, ...]) -> Decimal | None:
    return prices[0] if prices else None
