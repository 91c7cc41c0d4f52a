"""The words the parser reads, loaded from data a user can extend without Python.

`vocabulary.toml` (shipped beside this module) holds the label words per kind (entry, stop, target,
leverage, market, close, cancel), the words of other languages per kind, and the words of management
messages ("close half", "стоп в безубыток": parsing/management.py) per language and kind; its comments
say how each is read. A user file of the same shape, named by the environment variable
`PARSER_VOCABULARY`, is merged over it: its words are added to each kind and tried before the shipped
ones. Both are read once, at import; a file that can't be used stops the import with one
`VocabularyError` naming the file and the problem (the bot then does not start, rather than trade on a
vocabulary it did not read).

`PARSER_VOCABULARY` is read from the process environment; the bot (`python -m hit_bot`) also takes it
from its `.env` file, setting it in its environment before it imports the parser. Label words are matched
on the normalised message, which is ASCII upper case; words of other languages go under
`[translations.<language>]`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from hit_bot.parsing import VOCABULARY_VARIABLE, VocabularyError

ENVIRONMENT_VARIABLE = VOCABULARY_VARIABLE
LABEL_KINDS = ("entry", "stop", "target", "leverage", "market", "close", "cancel")
# A translated word becomes the English word of its kind, which the scanner reads.
ENGLISH = {
    "long": "LONG",
    "short": "SHORT",
    "entry": "ENTRY",
    "stop": "STOP",
    "target": "TP",
    "leverage": "LEVERAGE",
    "market": "MARKET",
    "close": "CLOSE",
    "cancel": "CANCEL",
}
_PLAIN_WORD = re.compile("[A-Z]+")
# The kinds of management words (parsing/management.py says how each one is used).
MANAGEMENT_KINDS = (
    "close", "closed", "partial", "half", "third", "quarter", "reduce", "take_profit", "took_profit", "whole",
    "cancel", "trade", "stop", "target", "entry", "move", "add", "breakeven", "hit", "stopped", "filled",
    "unchanged", "negation", "reminder", "condition",
)  # fmt: skip


@dataclass(frozen=True)
class Vocabulary:
    """`labels[kind]`: regular expressions (market: plain words), in the order they are tried;
    `translations`: (regular expression, English word) pairs, in the order they are tried."""

    labels: dict[str, tuple[str, ...]]
    translations: tuple[tuple[str, str], ...]
    management: dict[str, tuple[str, ...]]  # kind -> regular expressions of every language, in order


def _words(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(word, str) and word.strip() for word in value):
        raise ValueError(f"{where} must be a list of non-empty strings")
    return value


def _checked_pattern(word: str, where: str, flags: int = 0) -> str:
    try:
        re.compile(word, flags)
    except re.error as exc:
        raise ValueError(f"{where}: {word!r} is not a valid regular expression ({exc})") from exc
    return word


def recased(pattern: str, case: Callable[[str], str]) -> str:
    """A pattern put in one case (`str.upper` or `str.lower`), its escapes kept (`\\s` stays `\\s`, never
    `\\S`). Words of other languages are matched on text put in that case rather than with re.IGNORECASE,
    which makes a regex of many words several times slower."""
    out, escaped = [], False
    for ch in pattern:
        out.append(ch if escaped else case(ch))
        escaped = not escaped and ch == "\\"
    return "".join(out)


def _any_case_pattern(word: str, where: str) -> str:
    """A word of another language: matched in any case, so it must stay a valid pattern in upper and in
    lower case (an inline flag such as `(?i)` does not: words are matched in any case already)."""
    for name, case in (("upper", str.upper), ("lower", str.lower)):
        try:
            re.compile(recased(word, case))
        except re.error as exc:
            raise ValueError(
                f"{where}: {word!r} is not a valid regular expression in {name} case ({exc}); "
                "words are matched in any case, so leave out inline flags like (?i)"
            ) from exc
    return word


def _label_word(kind: str, word: str) -> str:
    """A label word as the scanner matches it: upper case (unless it holds a regex escape such as `\\s`),
    starting with a letter or `[0-9]` (the scanner tests a label's first character before the rest)."""
    word = word.strip() if "\\" in word else word.strip().upper()
    where = f"labels.{kind}"
    if kind == "market":
        if not _PLAIN_WORD.fullmatch(word):
            raise ValueError(f"{where}: {word!r} must be a single word of letters")
        return word
    if not word.isascii():
        raise ValueError(f"{where}: {word!r} is not ASCII; put words of other languages under [translations]")
    if not word[0].isalpha() and not word.startswith("[0-9]"):
        raise ValueError(f"{where}: {word!r} must start with a letter (A-Z) or [0-9]")
    return _checked_pattern(word, where)


def _labels(table: Any) -> dict[str, list[str]]:
    if not isinstance(table, dict):
        raise ValueError("[labels] must be a table of kinds")
    unknown = set(table) - set(LABEL_KINDS)
    if unknown:
        raise ValueError(f"labels.{sorted(unknown)[0]} is not a kind (kinds: {', '.join(LABEL_KINDS)})")
    return {
        kind: [_label_word(kind, w) for w in _words(words, f"labels.{kind}")] for kind, words in table.items()
    }


def _translations(table: Any) -> list[tuple[str, str]]:
    if not isinstance(table, dict) or not all(isinstance(words, dict) for words in table.values()):
        raise ValueError("[translations] must hold one table per language ([translations.russian])")
    pairs = []
    for language, kinds in table.items():
        for kind, words in kinds.items():
            where = f"translations.{language}.{kind}"
            if kind not in ENGLISH:
                raise ValueError(f"{where}: {kind} is not a kind (kinds: {', '.join(ENGLISH)})")
            pairs += [
                (_any_case_pattern(w, where), ENGLISH[kind]) for w in _words(words, where)
            ]
    return pairs


def _management(table: Any) -> dict[str, list[str]]:
    """kind -> patterns, the languages' words of each kind in the file's order."""
    if not isinstance(table, dict) or not all(isinstance(words, dict) for words in table.values()):
        raise ValueError("[management] must hold one table per language ([management.russian])")
    found: dict[str, list[str]] = {}
    for language, kinds in table.items():
        for kind, words in kinds.items():
            where = f"management.{language}.{kind}"
            if kind not in MANAGEMENT_KINDS:
                raise ValueError(f"{where}: {kind} is not a kind (kinds: {', '.join(MANAGEMENT_KINDS)})")
            patterns = [_any_case_pattern(w.strip(), where) for w in _words(words, where)]
            found.setdefault(kind, []).extend(patterns)
    return found


_SECTIONS = ("labels", "translations", "management")
Words = tuple[dict[str, list[str]], list[tuple[str, str]], dict[str, list[str]]]


def _read(text: str) -> Words:
    """The label words, translations and management words of one file's text (ValueError saying what is
    wrong)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML ({exc})") from exc
    unknown = set(data) - set(_SECTIONS)
    if unknown:
        raise ValueError(f"[{sorted(unknown)[0]}] is not a section (sections: {', '.join(_SECTIONS)})")
    return (
        _labels(data.get("labels", {})),
        _translations(data.get("translations", {})),
        _management(data.get("management", {})),
    )


def _read_file(path: Path) -> Words:
    try:
        return _read(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise VocabularyError(f"vocabulary file {path}: can't be read ({exc})") from exc
    except ValueError as exc:
        raise VocabularyError(f"vocabulary file {path}: {exc}") from exc


def load(user_file: str | None = None) -> Vocabulary:
    """The shipped vocabulary, with the words of `user_file` (if named) added in front of each kind."""
    shipped = resources.files(__package__) / "vocabulary.toml"
    with resources.as_file(shipped) as path:
        labels, translations, management = _read_file(path)
    if user_file:
        extra_labels, extra_translations, extra_management = _read_file(Path(user_file))
        for kind, words in extra_labels.items():
            labels[kind] = words + labels.get(kind, [])
        translations = extra_translations + translations
        for kind, words in extra_management.items():
            management[kind] = words + management.get(kind, [])
    missing = [kind for kind in LABEL_KINDS if not labels.get(kind)]
    missing += [kind for kind in MANAGEMENT_KINDS if not management.get(kind)]
    if missing:
        raise VocabularyError(f"the shipped vocabulary has no {missing[0]} words")
    return Vocabulary(
        {kind: tuple(words) for kind, words in labels.items()},
        tuple(translations),
        {kind: tuple(words) for kind, words in management.items()},
    )


VOCABULARY = load(os.environ.get(ENVIRONMENT_VARIABLE))
