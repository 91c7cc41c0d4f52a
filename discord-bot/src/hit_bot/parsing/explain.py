"""How the parser read a message, for the person checking it: `python -m hit_bot.parser "<message>"`.

The lines say which words were taken as which label, which numbers became which price, where the
direction and the symbol came from, and why a message was ignored (`parse` gives a reason only for an
invalid signal); for a management message, which words of each clause were read as what, what each clause
says, and which action words were not taken and why. They re-read the message with the parser's own
parts, so they show what `parse` saw.
"""

from __future__ import annotations

from hit_bot import parser
from hit_bot.parsing import management
from hit_bot.parsing.normalise import normalise
from hit_bot.parsing.scan import Label, labels, leverage_of, read_value, scan
from hit_bot.parsing.symbols import coin_words, directions, symbols
from hit_shared.models import fmt

_KIND_NAMES = {"entry": "entry", "stop": "stop loss", "target": "take profit"}
_SHOWN_TEXT = 300  # characters of the normalised text shown


def explain(text: str) -> list[str]:
    """The reading of one message, as lines to print under parser_cli.describe()'s verdict."""
    result = parser.parse(text)
    norm = normalise(text)
    shown = " ".join(norm.split())
    lines = [f"read as: {shown[:_SHOWN_TEXT]}{'...' if len(shown) > _SHOWN_TEXT else ''}"]
    names = coin_words(norm, symbols(norm))
    found = scan(norm, names)
    label_lines = [_label_line(label, names) for label in _labels(norm)]
    lines += label_lines or ["no label word (entry, stop loss, take profit, leverage) found"]
    if not found.entries and not found.market and found.orphans():
        prices = ", ".join(fmt(p) for p in found.orphans())
        lines.append(f"prices before the labels, taken as the entry (no entry label): {prices}")
    lines.append(_direction_line(norm, result))
    lines.append(f"symbol: {', '.join(symbols(norm)) or 'none found'}")
    if result.kind != "signal":
        lines += management_lines(text, result)
    if result.kind == "not_signal":
        lines.append(f"ignored because {_why_ignored(text, norm)}")
    return ["how it was read:", *(f"  {line}" for line in lines)]


_SHOWN_CLAUSE = 60  # characters of a clause shown


def management_lines(text: str, result: parser.ParseResult) -> list[str]:
    """The management reading: each clause that holds a management word, the words and what the clause
    says; the words not taken and why; the action read (or why none, for a message that is not one)."""
    if len(text) > parser.MAX_TEXT or parser._is_command(text):
        return []
    analysis = management.analyse(text, asked=parser._is_question(normalise(text)))
    said = {id(reading.clause): reading for reading in analysis.readings}
    lines = []
    for number, clause in enumerate(analysis.clauses, start=1):
        if not clause.cues:
            continue
        words = ", ".join(f'"{cue.text.strip()}" {cue.kind}' for cue in clause.cues)
        reading = said.get(id(clause))
        shown = " ".join(clause.text.split())
        shown = shown if len(shown) <= _SHOWN_CLAUSE else shown[: _SHOWN_CLAUSE - 3] + "..."
        says = reading.action.value if reading else "nothing"
        lines.append(f'clause {number} "{shown}": {words} -> {says}')
    lines += [f"not taken: {note}" for note in dict.fromkeys(analysis.notes)]
    if result.management is not None:
        lines.append(f"management: {result.management.action.value} because {result.management.reason}")
    elif analysis.chosen is not None:
        lines.append(
            f"not read as management ({analysis.chosen.action.value}): "
            "it is shaped like a signal, so it stays an invalid signal"
        )
    return lines


def _labels(norm: str) -> list[Label]:
    return [label for label in labels(norm)[1] if label.kind]


def _label_line(label: Label, names: frozenset[str]) -> str:
    """`"TP1" taken as take profit: 65000`, or what stopped the label from giving a price."""
    head = f'"{label.name}" taken as'
    if label.kind == "lev":
        number = leverage_of(label.text)
        return f"{head} leverage: {number + 'x' if number else 'no number'}"
    kind = _KIND_NAMES[label.kind]
    reading = read_value(label.region, label.kind, names)
    if reading.garbled:
        return f'{head} {kind}: "{reading.garbled}" is not a price that can be read'
    prices = ", ".join(fmt(p) for p in reading.values)
    parts = [f"{head} {kind}: {prices or 'no price'}"]
    if reading.market:
        parts.append("(a market word: at market)" if not prices else "(with a market word)")
    if reading.trigger:
        parts.append(f"(written as {reading.trigger.lower()} the price)")
    if reading.end_word:
        parts.append(f'(its value ends at "{reading.end_word}")')
    return " ".join(parts)


def _direction_line(norm: str, result: parser.ParseResult) -> str:
    sides = directions(norm)
    if sides:
        return "direction: " + " and ".join(side.value.upper() for side in sides) + " (written)"
    if result.signal is not None:
        return f"direction: {result.signal.side.value.upper()} (none written; inferred from the prices)"
    return "direction: none written"


def _why_ignored(text: str, norm: str) -> str:
    """The first of the parser's reasons to ignore a message that applies (the same checks, in the same
    order as hit_bot.parser._parse)."""
    if len(text) > parser.MAX_TEXT:
        return f"it is longer than {parser.MAX_TEXT} characters and has no trade word"
    if not any(ch.isdigit() for ch in text):
        return "it has no number"
    if parser._is_command(text):
        return "it is a bot command"
    if parser._reports_a_result(norm, normalise(text, keep_commentary=True)):
        return "it reports a result (hit, closed, stopped, or a check mark beside a target or stop)"
    if parser._is_question(norm):
        return "it asks a question"
    if parser._withdrawn(norm):
        return "it closes, cancels, withdraws, repeats or only illustrates a trade (a close or cancel word)"
    if not scan(norm, coin_words(norm, symbols(norm))).labelled:
        return "no entry, stop loss or take profit label carries a price"
    if not directions(norm):
        return "it gives no direction (LONG or SHORT) and no stop and target to infer one from"
    if parser._reports_after_a_label(text):
        return "it reports a level reached or a stop taken after its label (TP1 done, SL moved to BE)"
    return "it follows up a running trade (update, move, breakeven...)"
