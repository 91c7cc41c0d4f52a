"""Management messages: what a channel says about a trade that is already running (issue #17).

"Close half", "стоп в безубыток", "止损移到成本价", "TP1 hit ✅", "#DOGE 這單作廢": not a new trade, but an
order or a report about one. `read(text)` gives a `Management` (the action, the symbol if the message names
one, the price, the part to close, the reason) or None when the message says nothing of the kind.

The reading, on the pieces of parsing/cues.py:
1. Each clause is read alone. The actions that move money come first, in this order: `cancel`;
   `close` (a part or a percentage beside it makes it `partial_close`); `reduce` (`partial_close`);
   taking profit with a part (`partial_close`) or with `whole` (`close`); a move word whose nearest noun
   is the stop, the stop beside `breakeven`, or a move word with `breakeven` and no noun (`move_stop`); a
   move or add word whose nearest noun is a target (`update_targets`). Then the reports: `stopped`, or
   `hit` nearest the stop (`sl_hit`); profit taken, `hit` nearest a target, or taking profit with no part
   (`tp_hit`); and the state of the trade (`other`: a close reported as done, entries filled, levels kept).
2. An action word is not taken when a negation comes right before it (`не закрываем`, `don't close`), and
   no money action is taken from a clause that asks (`?`) or from a sentence that sets a condition (`if`,
   `если`, `如果`): those are read as `other`.
3. Of the clauses' readings, a money action wins over a report; of several money actions the larger
   change wins (close, partial_close, cancel, move_stop, update_targets); of reports sl_hit, then tp_hit,
   then other. When in doubt between a money action and a report the report is read: it moves nothing.
   A message that moves the stop or sets targets keeps the trade going, so a close of all of it in the
   same message is not taken (`TP1 close, move SL to entry`: the stop moves).

The words are the vocabulary's ([management.*] in parsing/vocabulary.toml, a user's PARSER_VOCABULARY).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import NamedTuple

from hit_bot.parsing.clause_reading import (
    MONEY_ACTIONS,
    REPORTS,
    ClauseReading,
    ManagementAction,
    read_clause,
)
from hit_bot.parsing.cues import Clause, clauses, clean
from hit_bot.parsing.normalise import normalise
from hit_bot.parsing.symbols import capitalised_coins, symbols
from hit_shared.models import fmt

__all__ = ["MONEY_ACTIONS", "Analysis", "Management", "ManagementAction", "analyse", "read"]


@dataclass(frozen=True, slots=True)
class Management:
    """A management message as read. `price`: the new stop (move_stop), the first new target
    (update_targets), or the price the message gives (a close's, an average entry's); `fraction`: the part
    to close (partial_close; None when the message does not say how much); `breakeven`: the stop goes to
    the entry (move_stop, no price); `targets`: every new target (update_targets), `added` when they are
    added to the trade's instead of replacing them; `reason`: why it was read so, for a person."""

    action: ManagementAction
    symbol: str | None = None
    price: Decimal | None = None
    fraction: Decimal | None = None
    breakeven: bool = False
    targets: tuple[Decimal, ...] = ()
    added: bool = False
    reason: str = ""
    # the message's other money actions, in the order written (`close half, SL to entry`: the move)
    also: tuple[Management, ...] = ()

    @property
    def moves_money(self) -> bool:
        return self.action in MONEY_ACTIONS


class Analysis(NamedTuple):
    """The whole reading, for `read` and for the explanation (parsing/explain.py)."""

    clauses: list[Clause]
    readings: list[ClauseReading]
    notes: list[str]  # action words not taken, and why
    chosen: ClauseReading | None


def read(text: str, *, asked: bool = False, norm: str | None = None) -> Management | None:
    """The management reading of a message, None when it has none (see the module docstring). `asked`:
    the whole message is a question (`Should we move the SL?`), so none of its clauses orders anything;
    `norm`: the message as the signal parser normalised it, when the caller has it (for the symbol)."""
    analysis = analyse(text, asked=asked)
    if analysis.chosen is None:
        return None
    norm = norm if norm is not None else normalise(text)
    chosen = _management(norm, text, analysis, analysis.chosen)
    others = tuple(_management(norm, text, analysis, r) for r in _also(analysis.readings, analysis.chosen))
    return replace(chosen, also=others) if others else chosen


def analyse(text: str, *, asked: bool = False) -> Analysis:
    parts = clauses(clean(text))
    readings: list[ClauseReading] = []
    notes: list[str] = []
    conditional = False
    for clause in parts:
        conditional = (conditional and not _sentence_ended(clause)) or clause.has("condition")
        reading = read_clause(clause, notes, held=conditional or asked)
        if reading is not None:
            readings.append(reading)
    return Analysis(parts, readings, notes, _choose(readings))


def _sentence_ended(clause: Clause) -> bool:
    """A condition holds to the end of its sentence: a new line or a full stop starts a new one. (Clauses
    split at commas keep it: `Если закрепимся ниже, закрываем` is one conditional sentence.)"""
    return clause.opens_sentence


# A message that keeps the trade going (moves its stop, sets its targets) does not close all of it too:
# `TP1 close, move SL to entry` reports a target and moves the stop; the close of everything is not taken.
_KEEPS_THE_TRADE = (ManagementAction.MOVE_STOP, ManagementAction.UPDATE_TARGETS)


def _choose(readings: list[ClauseReading]) -> ClauseReading | None:
    if any(reading.action in _KEEPS_THE_TRADE for reading in readings):
        readings = [reading for reading in readings if reading.action is not ManagementAction.CLOSE]
    for action in (*MONEY_ACTIONS, *REPORTS):
        for reading in readings:
            if reading.action is action:
                return reading
    return None


def _also(readings: list[ClauseReading], chosen: ClauseReading) -> list[ClauseReading]:
    """The other money actions of a message whose chosen one leaves the trade going: the first reading of
    each other action, in the order written. A close of all of it ends the trade, so nothing goes with it,
    and a close of all of it beside a part or a move is not taken (see `_choose`)."""
    if chosen.action not in MONEY_ACTIONS or chosen.action is ManagementAction.CLOSE:
        return []
    seen = {chosen.action, ManagementAction.CLOSE}
    others = []
    for reading in readings:
        if reading.action in MONEY_ACTIONS and reading.action not in seen and _complete(reading):
            seen.add(reading.action)
            others.append(reading)
    return others


def _complete(reading: ClauseReading) -> bool:
    """A reading with the figures its action needs: a part to close, a stop to move to, target prices
    (`BTC update: TP1 done` names targets but gives none: no second action)."""
    if reading.action is ManagementAction.PARTIAL_CLOSE:
        return reading.fraction is not None
    if reading.action is ManagementAction.MOVE_STOP:
        return reading.breakeven or reading.price is not None
    if reading.action is ManagementAction.UPDATE_TARGETS:
        return bool(reading.targets)
    return True


def _management(norm: str, text: str, analysis: Analysis, chosen: ClauseReading) -> Management:
    price = chosen.price
    if price is None and not chosen.breakeven and chosen.action in _PRICE_ANYWHERE:
        price = _only_price(analysis.clauses)
    symbol, symbol_note = _symbol(norm, text)
    reason = _reason(chosen, price)
    if analysis.notes:
        reason += " (not taken: " + "; ".join(dict.fromkeys(analysis.notes)) + ")"
    if symbol_note:
        reason += f"; {symbol_note}"
    return Management(
        action=chosen.action,
        symbol=symbol,
        price=price,
        fraction=chosen.fraction,
        breakeven=chosen.breakeven,
        targets=chosen.targets,
        added=chosen.added,
        reason=reason,
    )


# The actions whose price may be the message's only one when their clause has none (`Вся позиция набрана,
# средняя цена входа 141.60$`; `New SL:` with the price on its own line).
_PRICE_ANYWHERE = (ManagementAction.OTHER, ManagementAction.MOVE_STOP)


def _only_price(parts: list[Clause]) -> Decimal | None:
    """The message's one price, when it gives exactly one (`средняя цена входа 141.60$`)."""
    prices = {price for clause in parts for price in clause.prices()}
    return prices.pop() if len(prices) == 1 else None


def _symbol(norm: str, text: str) -> tuple[str | None, str | None]:
    """The symbol the message names (as the signal parser finds one: a pair, a cashtag, `Pair:`, a coin
    beside LONG/SHORT), else a coin written in capitals in a message that is not all capitals
    (`Close BTC now`). Two different ones: none, and a note saying so."""
    found = symbols(norm)
    if not found:
        found = capitalised_coins(text)
    if len(found) > 1:
        return None, f"it names more than one symbol ({', '.join(found[:4])}), so none is taken"
    return (found[0] if found else None), None


# -- the reason ------------------------------------------------------------------------------------------

_SAYS = {
    ManagementAction.CLOSE: "it orders a close of the position",
    ManagementAction.PARTIAL_CLOSE: "it orders a partial close",
    ManagementAction.CANCEL: "it cancels the trade or its orders",
    ManagementAction.MOVE_STOP: "it moves the stop",
    ManagementAction.UPDATE_TARGETS: "it changes the targets",
    ManagementAction.TP_HIT: "it reports a target reached",
    ManagementAction.SL_HIT: "it reports the stop hit",
    ManagementAction.OTHER: "it is about a running trade but asks for no action",
}


def _reason(chosen: ClauseReading, price: Decimal | None) -> str:
    words = " + ".join(f'"{cue.text.strip()}"' for cue in chosen.words)
    parts = [f"{_SAYS[chosen.action]}: {words}"]
    if chosen.action is ManagementAction.MOVE_STOP:
        to = "breakeven" if chosen.breakeven else fmt(price) if price else None
        parts.append(f"to {to}" if to else "no price given")
    elif chosen.action is ManagementAction.PARTIAL_CLOSE:
        parts.append(f"{fmt(chosen.fraction)} of it" if chosen.fraction else "how much not said")
    elif chosen.action is ManagementAction.UPDATE_TARGETS:
        shown = ", ".join(fmt(t) for t in chosen.targets) or "no price given"
        parts.append(f"{'added' if chosen.added else 'new'}: {shown}")
    return ", ".join(parts)
