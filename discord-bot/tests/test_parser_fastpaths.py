"""The third round of parser shortcuts must answer exactly as what they replace: optional groups written
`(?:X|)` instead of `(?:X)?`, the substring tests in front of regex calls, and scan()'s loop for a label
followed by one plain price."""

from __future__ import annotations

import json
import pathlib
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hit_bot import parser
from hit_bot.parsing import formats, normalise, scan, symbols

CORPUS = pathlib.Path(__file__).resolve().parent / "data" / "public_corpus.jsonl"
TEXTS = [json.loads(line)["text"] for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
PIECES = [
    "LONG", "short", "Buying", "SELL", "BTC-USDT", "eth/usdt", "SOLUSDT.P", "PERP", "USD", "Entry:",
    "Entry zone", "SL:", "Stop Loss", "TP1", "Take Profit (2):", "Targets", "Leverage: cross 10x", "20X",
    "x5", "(10.5x)", "@", "🎯", "🛑", "💰", "📈", "60000", "58,000", "0.5", "65K", "-5", "1)", "2.", "#3",
    "R:R", "0.46 R:R", "RR 1:3", "Risk/Reward: 2.5", "(-6%)", "1-4%", "?", "should", "Is", "what", "<@123>",
    "-", "/", "+", "and", "market", "\n", " ", "  ", "\t", ":", "**", "`", "|", "é", "１",
]  # fmt: skip
FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
messages = st.lists(st.sampled_from(PIECES), max_size=14).map(" ".join) | st.sampled_from(TEXTS)
joined = st.lists(st.sampled_from(PIECES), max_size=14).map("".join)


def _optional_groups() -> list[re.Pattern[str]]:
    """The parser's compiled regexes that write an optional group as `(?:X|)`."""
    found = []
    for module in (parser, normalise, scan, symbols, formats):
        for value in vars(module).values():
            if isinstance(value, re.Pattern) and "|)" in value.pattern:
                found.append(value)
    return found


OPTIONAL = _optional_groups()
# Each of them as it would be written with `?`: the reference the `|)` form must agree with.
WITH_QUESTION_MARK = [re.compile(p.pattern.replace("|)", ")?"), p.flags) for p in OPTIONAL]


def test_optional_groups_are_found_and_are_only_empty_alternatives() -> None:
    assert len(OPTIONAL) >= 10
    assert scan._LABELS in OPTIONAL and symbols._QUOTE in OPTIONAL
    for pattern in OPTIONAL:
        assert "\\|" not in pattern.pattern  # no escaped bar that the replacement could turn into `?`
    for fast, reference in zip(OPTIONAL, WITH_QUESTION_MARK, strict=True):
        assert fast.groups == reference.groups and fast.pattern != reference.pattern


def _matches(pattern: re.Pattern[str], text: str) -> list[tuple[object, ...]]:
    return [(m.span(), m.groups()) for m in pattern.finditer(text)]


@FAST
@given(messages | joined)
def test_optional_group_without_question_mark_matches_the_same(text: str) -> None:
    for candidate in (text, text.upper(), normalise.normalise(text)):
        for fast, reference in zip(OPTIONAL, WITH_QUESTION_MARK, strict=True):
            assert _matches(fast, candidate) == _matches(reference, candidate), fast.pattern
            assert fast.split(candidate) == reference.split(candidate)


@pytest.mark.parametrize("text", TEXTS)
def test_optional_group_without_question_mark_matches_the_same_when_on_the_corpus(text: str) -> None:
    norm = normalise.normalise(text)
    for fast, reference in zip(OPTIONAL, WITH_QUESTION_MARK, strict=True):
        assert _matches(fast, norm) == _matches(reference, norm)


@FAST
@given(messages | joined)
def test_question_start_is_skipped_only_when_it_cannot_match(text: str) -> None:
    for norm in (normalise.normalise(text), normalise.normalise(text.lstrip())):
        if norm[1:2] in parser._NOT_QUESTION_START:
            assert not parser._QUESTION_START.match(norm)


@pytest.mark.parametrize("text", ["Should I long BTC 60000?", "** is this a LONG? 6", "DO IT 1", "what 2"])
def test_parser_question_start_is_still_found(text: str) -> None:
    assert parser._is_question(normalise.normalise(text))


@FAST
@given(messages | joined)
def test_ratio_marker_test_agrees_with_its_regex(text: str) -> None:
    for candidate in (text.upper(), normalise.normalise(text)):
        assert normalise._has_ratio_marker(candidate) == bool(normalise._RISK_REWARD_MARKER.search(candidate))


@FAST
@given(messages | joined)
def test_line_index_is_skipped_only_when_it_cannot_match(text: str) -> None:
    body = "\n" + text.upper().replace("\n", " ")  # one line: only the precheck on its first character
    if body[1:2] not in normalise._LINE_INDEX_STARTS:
        assert normalise._LINE_INDEX.sub("\n ", body) == body


@pytest.mark.parametrize("index", ["1)", "1.", " 2:", "+1 -", "- 4."])
def test_normalise_drops_a_line_index_on_the_first_line(index: str) -> None:
    assert normalise.normalise(f"{index} 61000 LONG BTC-USDT").split() == ["61000", "LONG", "BTC-USDT"]


@pytest.mark.parametrize(
    ("text", "kind", "form"),
    [
        ("LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000", "signal", "standard"),
        ("LONG BTC-USDT Entry: 60000 SL: 61000 TP: 65000", "invalid", "standard"),
        ("LONG BTC-USDT Entry: 60000 TP: 65000", "invalid", "standard"),
    ],
)
def test_parser_result_equals_the_one_its_constructor_builds(text: str, kind: str, form: str) -> None:
    result = parser.parse(text)
    built = parser.ParseResult(kind, result.signal, form, result.reason)  # type: ignore[arg-type]
    assert (result.kind, result.format) == (kind, form)
    assert (result.signal is None) == (kind != "signal") and (result.reason is None) == (kind == "signal")
    assert result == built and repr(result) == repr(built) and hash(result) == hash(built)
    assert vars(result) == vars(built) and list(vars(result)) == list(vars(built))
    with pytest.raises(AttributeError):
        result.kind = "not_signal"  # type: ignore[misc]


def test_every_result_word_contains_a_result_stem() -> None:
    assert parser._RESULT_STEMS == ("HIT", "CLOS", "ED")  # as written out in _reports_a_result
    for word in parser._RESULT_WORDS:
        assert any(stem in word for stem in parser._RESULT_STEMS), word


@pytest.mark.parametrize("word", ["hit", "Closed", "closing", "STOPPED", "cancelled", "filled", "liquidated"])
def test_parser_result_word_makes_a_signal_a_report(word: str) -> None:
    assert parser.parse(f"LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000 {word}").kind == "not_signal"


# What symbols._base() replaces: the base read backwards from just before a quote with a regex over the
# reversed window (optional separator, then the base reversed).
_BASE_REVERSED = re.compile(r"(?:[ ]?[-/:_][ ]?|[ ])?([A-Z0-9]{1,20})(?![A-Z0-9])")


def _base_by_regex(text: str, at: int) -> str:
    base = _BASE_REVERSED.match(text[at - 24 if at > 24 else 0 : at][::-1])
    return base[1][::-1] if base else ""


BASE_PIECES = ["BTC", "1000PEPE", "A", "X" * 19, "Y" * 23, " ", "-", "/", ":", "_", "#", "é", "\n"]


@FAST
@given(st.lists(st.sampled_from(BASE_PIECES)).map("".join))
def test_symbol_base_reads_as_the_reversed_regex(head: str) -> None:
    text = head + "USDT"
    for at in (len(head), *range(len(head))):
        assert symbols._base(text, at) == _base_by_regex(text, at)


@pytest.mark.parametrize(
    ("head", "base"),
    [("BTC-", "BTC"), ("BTC / ", "BTC"), ("BTC", "BTC"), ("BTC ", "BTC"), ("BTC  ", ""), ("BTC-/", "")],
)
def test_symbol_base_before_a_quote(head: str, base: str) -> None:
    assert symbols._base(head + "USDT", len(head)) == base == _base_by_regex(head + "USDT", len(head))


# The label regex with the index and separator after a price label as first written (optional characters
# first); the regex now writes them so that each alternative starts with a character or a set.
_OLD_INDEX = (
    r"(?:\#?[0-9]{1,2}(?![0-9.,])|[ ]?\(\#?[0-9]{1,2}\)|[ ]\#?[0-9]{1,2}(?=[ ]?[:=)])"
    r"|[ ][0-9]{1,2}[ ]?-(?=[ ]?[0-9])|[ ]?\#[0-9]{1,2}(?![0-9.,]))?"
)
_OLD_SEPARATOR = r"(?:[ ]?[:=]|[ ]?-(?=[ ]))?"
_LABELS_AS_WRITTEN = re.compile(
    scan._LABELS.pattern.replace(scan._INDEX, _OLD_INDEX).replace(scan._SEPARATOR, _OLD_SEPARATOR)
)


def test_label_regex_as_written_differs_in_index_and_separator() -> None:
    assert scan._LABELS.pattern.count(scan._INDEX) >= 10
    assert scan._LABELS.pattern.count(scan._SEPARATOR) >= 10
    assert _OLD_INDEX not in scan._LABELS.pattern and _OLD_INDEX in _LABELS_AS_WRITTEN.pattern


LABEL_PIECES = [
    "TP", "TP1", "T2", "TP#3", "Target 1:", "Take Profit (2)", "Entry #1", " #12", "(3)", " (4)", "#5:",
    "1.5", " 6 =", " 7)", ":", "=", " -", "- ", " - ", "SL", "Stop", "Entry", "Targets", "60000", " ", "\n",
    "12,5",
]  # fmt: skip


@FAST
@given(st.lists(st.sampled_from(LABEL_PIECES), max_size=10).map("".join) | messages)
@example("ENTRY ZONE 1-4%")  # a list index (`TP 3-141.6`), once missing from the form as written
def test_label_regex_splits_as_written_first(text: str) -> None:
    for norm in (normalise.normalise(text), "\n" + text.upper()):
        assert scan._LABELS.split(norm) == _LABELS_AS_WRITTEN.split(norm)


@pytest.mark.parametrize("marker", normalise._RISK_REWARD_MARKERS)
def test_ratio_marker_test_finds_each_marker(marker: str) -> None:
    assert normalise._has_ratio_marker(f"TP1 0.46 {marker} 1")
    assert not normalise._has_ratio_marker("TP1 0.46 R")


@pytest.mark.parametrize("text", TEXTS)
def test_read_labelled_gives_the_prices_its_constructor_builds(text: str) -> None:
    found = scan.scan(normalise.normalise(text))
    prices = formats.read_labelled(found)
    assert type(prices) is formats.Prices
    assert prices == formats.Prices(*prices) and prices._asdict() == formats.Prices(*prices)._asdict()
