"""The pieces a management message is read from: its clauses, the vocabulary's words in them, its numbers.

A management message is read on its own text, not on the signal parser's normalised form: the words that
say what to do with a trade (`закрываю`, `止损移到`, `kapatın`) are read in their own language, so the
signal parser's reading of signals is untouched by them. The steps:

1. `clean`: NFKC (full-width characters become plain ones), links, Discord mentions and markdown removed,
   lower case. Positions below are positions in this cleaned text.
2. `clauses`: the text cut where a sentence or a clause ends (a line break, `.`, `!`, `?`, `;`, a comma, the
   Chinese `，。！？`; never the `.` or `,` inside a number). A clause of numbers alone (`New SL:` then
   `61000` on the next line), one that starts with a share (`40% позиции`) and one of target labels and
   prices only (`TP4 3.10`) belong to the clause before it. Each clause remembers whether it ended in `?`.
3. `cues`: every word of the vocabulary's management kinds (parsing/vocabulary.toml, [management.*]) with
   where it is. A word written in Latin, Cyrillic or Greek letters matches only whole; a word that lies on
   a longer one of a kind that says more is dropped (`已平` shadows the `平仓` inside `已平仓`).
4. `numbers`: the prices written (`13.62$`, `68,250`, `0,512`), the percentages (`50%`), and which small
   numbers are a target's index (`TP 2`, `Тейк 1`, `止盈1`) rather than a price.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from hit_bot.parsing.vocabulary import MANAGEMENT_KINDS, VOCABULARY, recased

# Letters of the scripts that put spaces between words: a word of theirs matches only whole.
SPACED_LETTERS = "A-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff"
_SPACED_LETTER = re.compile(f"[{SPACED_LETTERS}]")


class _Kind:
    """The words of one kind: one regex of them all, and each alone for the rare match that is not whole.

    A word that starts (or ends) with a letter of a spaced script must not have such a letter before (or
    after) it: checked on each match rather than with lookarounds in the regex, which would stop `re` from
    skipping ahead to the words' first letters. When the combined regex's match is not whole, each word
    is tried alone at that place, and the search goes on from the next character."""

    def __init__(self, words: tuple[str, ...]) -> None:
        lowered = [recased(word, str.lower) for word in words]
        self.pattern = re.compile("|".join(f"(?:{word})" for word in lowered))
        # Alone, each word ends where a whole word may end, so that `re` backtracks into its other forms
        # (`закрыва(?:ем|емся)` in `закрываемся`).
        whole = f"(?:(?<![{SPACED_LETTERS}])|(?![{SPACED_LETTERS}]))"
        self.words = tuple(re.compile(f"(?:{word}){whole}") for word in lowered)

    def finditer(self, text: str) -> Iterator[tuple[int, int]]:
        at = 0
        while (found := self.pattern.search(text, at)) is not None:
            span = found.span() if _whole(text, *found.span()) else self._whole_word(text, found.start())
            if span is not None and span[1] > span[0]:
                yield span
                at = span[1]
            else:
                at = found.start() + 1

    def _whole_word(self, text: str, start: int) -> tuple[int, int] | None:
        for word in self.words:
            found = word.match(text, start)
            if found is not None and _whole(text, *found.span()):
                return found.span()
        return None


def _whole(text: str, start: int, end: int) -> bool:
    """No letter of a spaced script glued to either end of `text[start:end]` that starts or ends with one
    (`sl` in `slow` is not the stop; `平掉` before `TP1` is fine)."""
    if start > 0 and _SPACED_LETTER.match(text, start) and _SPACED_LETTER.match(text, start - 1):
        return False
    return not (
        end < len(text)
        and end > start
        and _SPACED_LETTER.match(text, end - 1)
        and _SPACED_LETTER.match(text, end)
    )


KIND_PATTERNS: dict[str, _Kind] = {kind: _Kind(VOCABULARY.management[kind]) for kind in MANAGEMENT_KINDS}
# kind -> the kinds whose words, where they overlap one of its words, say more and win.
_SHADOWED_BY = {
    "close": ("closed", "took_profit", "reduce"),
    "take_profit": ("took_profit",),
    "target": ("took_profit", "take_profit"),
    "entry": ("breakeven",),
    "stop": ("stopped",),
    "hit": ("stopped", "took_profit"),
    "move": ("unchanged",),
    "negation": ("unchanged", "cancel", "breakeven", "reminder"),
    "partial": ("half", "third", "quarter", "reduce"),
}
FRACTIONS = {"half": Decimal("0.5"), "third": Decimal("0.33"), "quarter": Decimal("0.25")}

_URL = re.compile(r"(?i)(?:https?://|www\.)\S*")
_DISCORD_TOKEN = re.compile(r"<(?:@[!&]?|#|a?:\w{1,64}:|t:)?-?\d{1,25}(?::\w)?>")
_MARKDOWN = str.maketrans({**dict.fromkeys("*`~\\", None), **dict.fromkeys("_|>\t[]()", " "), "\r": "\n"})
# Where a clause ends: a line break, `.`/`!`/`?`/`;`/`…` (and the Chinese ones) not inside a number, a comma
# not between two digits, a dash or bar between blanks.
_SEPARATOR = re.compile(r"\n+|[.!?;…。！？；]+(?!\d)|[,，、](?!\d)|(?<!\d)[,，、]|\s[-–—|]+\s")
_SENTENCE_END = re.compile(r"[\n.!?;…。！？；]")
# A clause that starts with a number or a share (`40% позиции` after `Частично фиксирую прибыль,`) goes on
# the clause before it.
_LEADING_SHARE = re.compile(r"\s*\d+(?:[.,]\d+)?\s*%")
_HAS_LETTER = re.compile(r"[^\W\d_]")
# A number: digits with `.` or `,` inside, never glued to a letter, `#`, `№`, `第` or a `:`/`/` of a time or a
# ratio; never a percentage, a leverage (`10x`), a timeframe (`4h`) or an ordinal (`1-й`, `2nd`).
_NUMBER = re.compile(
    rf"(?<![{SPACED_LETTERS}\d#№第.,/:_])(\d+(?:[.,]\d+)*)(k(?![{SPACED_LETTERS}]))?"
    rf"(?![{SPACED_LETTERS}\d_%]|[.,]\d|\s*%|:\d|/\d|-[{SPACED_LETTERS}])"
)
_PERCENT = re.compile(r"(?<![+\-±\d.,])(\d{1,3}(?:[.,]\d+)?)\s*%")
_SHARE = re.compile(r"(?<![\d.,/])([1-9])\s?/\s?([2-9]|10)(?![\d.,/])")  # `2/3` of the position
_THOUSANDS = re.compile(r"[1-9]\d{0,2}(?:,\d{3})+")
_INDEX_GAP = re.compile(r"[\s#:№-]*")


class Cue(NamedTuple):
    """One vocabulary word found: its kind, where it is in the cleaned text, and the text itself."""

    kind: str
    start: int
    end: int
    text: str


class Number(NamedTuple):
    start: int
    end: int
    value: Decimal
    is_index: bool  # a target's number (`TP 2`), not a price


class Clause(NamedTuple):
    """A piece of the message between two separators, with its cues and numbers in order."""

    start: int
    end: int
    text: str
    question: bool  # it ended in `?`
    opens_sentence: bool  # it follows a line break or a full stop (or starts the message), not a comma
    cues: tuple[Cue, ...]
    numbers: tuple[Number, ...]
    percents: tuple[tuple[int, Decimal], ...]  # (where, share): `50%` is (its position, 0.5)

    def of(self, *kinds: str) -> list[Cue]:
        return [cue for cue in self.cues if cue.kind in kinds]

    def has(self, *kinds: str) -> bool:
        return any(cue.kind in kinds for cue in self.cues)

    def prices(self, after: int = 0) -> list[Decimal]:
        """The prices of the clause (not the targets' numbers) that start at or after `after`."""
        return [n.value for n in self.numbers if not n.is_index and n.start >= after]


def clean(text: str) -> str:
    """The message as management words are matched on it (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text)
    text = _URL.sub(" ", _DISCORD_TOKEN.sub(" ", text))
    return text.translate(_MARKDOWN).lower()


def find_cues(text: str) -> list[Cue]:
    """Every management word of the cleaned text, in order, the shadowed ones left out."""
    found = {
        kind: [Cue(kind, start, end, text[start:end]) for start, end in words.finditer(text)]
        for kind, words in KIND_PATTERNS.items()
    }
    kept = []
    for kind, cues in found.items():
        shadows = [cue for other in _SHADOWED_BY.get(kind, ()) for cue in found[other]]
        kept += [c for c in cues if not any(s.start < c.end and c.start < s.end for s in shadows)]
    return sorted(kept, key=lambda cue: (cue.start, cue.end))


def _value(digits: str, kilo: str | None) -> Decimal | None:
    """`68,250` is 68250 (a thousands comma), `13,62` and `0,512` are decimals (a decimal comma)."""
    if "," in digits:
        digits = digits.replace(",", "") if _THOUSANDS.fullmatch(digits) else digits.replace(",", ".")
    if digits.count(".") > 1:
        return None
    try:
        value = Decimal(digits)
    except InvalidOperation:
        return None
    value = value * 1000 if kilo else value
    return value if value > 0 else None


def _is_index(text: str, number: re.Match[str], targets: list[Cue]) -> bool:
    """A number of one or two digits right after or right before a target word (`TP 2`, `Тейк 1`, `止盈1`,
    `2 тейк`) is which target, not a price."""
    digits = number.group(1)
    if not digits.isdigit() or len(digits) > 2:
        return False
    for cue in targets:
        if cue.end <= number.start() and _INDEX_GAP.fullmatch(text, cue.end, number.start()):
            return True
        if number.end() <= cue.start and not text[number.end() : cue.start].strip():
            return True
    return False


def find_numbers(text: str, cues: list[Cue]) -> list[Number]:
    targets = [cue for cue in cues if cue.kind in ("target", "entry")]
    found = []
    for match in _NUMBER.finditer(text):
        value = _value(match.group(1), match.group(2))
        if value is not None:
            found.append(Number(match.start(), match.end(), value, _is_index(text, match, targets)))
    return found


def _percents(text: str, start: int, end: int) -> list[tuple[int, Decimal]]:
    """The shares written in [start, end): `30%` is 0.3, `2/3` is 0.67 (two decimals)."""
    found = [
        (m.start(), Decimal(m.group(1).replace(",", ".")) / 100) for m in _PERCENT.finditer(text, start, end)
    ]
    for m in _SHARE.finditer(text, start, end):
        share = (Decimal(m.group(1)) / Decimal(m.group(2))).quantize(Decimal("0.01"))
        found.append((m.start(), share))
    return sorted(found)


def clauses(text: str) -> list[Clause]:
    """The clauses of cleaned text, each with its cues and numbers (see the module docstring)."""
    cues = find_cues(text)
    numbers = find_numbers(text, cues)
    spans: list[list[int | bool]] = []  # [start, end, question, opens a sentence]
    start, opens = 0, True
    for separator in _SEPARATOR.finditer(text):
        mark = separator.group(0)
        _add_span(spans, text, start, separator.start(), opens, "?" in mark or "？" in mark)
        start, opens = separator.end(), _SENTENCE_END.search(mark) is not None
    _add_span(spans, text, start, len(text), opens, False)
    spans = _join_target_lists(spans, text, cues)
    return [
        Clause(
            begin,
            end,
            text[begin:end],
            question,
            sentence,
            tuple(c for c in cues if begin <= c.start < end),
            tuple(n for n in numbers if begin <= n.start < end),
            tuple(_percents(text, begin, end)),
        )
        for begin, end, question, sentence in ((int(a), int(b), bool(q), bool(o)) for a, b, q, o in spans)
    ]


def _join_target_lists(spans: list[list[int | bool]], text: str, cues: list[Cue]) -> list[list[int | bool]]:
    """A clause of target labels and prices only (`TP4 3.10` after `Update targets: TP3 2.90,`) goes on the
    list of the clause before it."""
    labels = [cue for cue in cues if cue.kind == "target"]
    joined: list[list[int | bool]] = []
    for span in spans:
        start, end = int(span[0]), int(span[1])
        inside = [cue for cue in labels if start <= cue.start < end]
        rest = "".join(text[a:b] for a, b in _gaps(start, end, inside))
        if joined and inside and not _HAS_LETTER.search(rest):
            joined[-1][1] = end
        else:
            joined.append(span)
    return joined


def _gaps(start: int, end: int, cues: list[Cue]) -> Iterator[tuple[int, int]]:
    """The pieces of [start, end) outside the cues."""
    for cue in cues:
        yield start, cue.start
        start = cue.end
    yield start, end


def _add_span(
    spans: list[list[int | bool]], text: str, start: int, end: int, opens: bool, question: bool
) -> None:
    """A clause, or the continuation of the one before when it holds no letter (`61000` under `New SL:`)."""
    if not text[start:end].strip():
        if spans and question:
            spans[-1][2] = True
        return
    if spans and (not _HAS_LETTER.search(text, start, end) or _LEADING_SHARE.match(text, start)):
        spans[-1][1] = end
        spans[-1][2] = bool(spans[-1][2]) or question
        return
    spans.append([start, end, question, opens])
