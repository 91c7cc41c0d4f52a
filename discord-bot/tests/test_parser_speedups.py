"""The parser's shortcuts must answer exactly as the plain code they replace: the one-call format choice
against each format's own `detect`, a changed PATTERNS honoured, and the plain price taken by the label
regex against read_region."""

from __future__ import annotations

import json
import pathlib
import re
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hit_bot import parser
from hit_bot.parsing import scan as scan_module
from hit_bot.parsing.formats import DEFAULT_FORMATS, SignalFormat, default_choice, read_labelled
from hit_bot.parsing.normalise import normalise
from hit_bot.parsing.scan import read_region, scan

CORPUS = pathlib.Path(__file__).resolve().parent / "data" / "public_corpus.jsonl"
TEXTS = [json.loads(line)["text"] for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
PIECES = [
    "Take Profit:", "Stop Loss", "Leverage 10x", "Cross 20x", "Buy zone", "Limit", "Opening price", "EP",
    "Invalidation", "ISO", "TGT", "T1", "💰TAKE PROFIT:", "⚖️LEVERAGE:", "(2)", "#1",

    "LONG", "SHORT", "BTC-USDT", "BTCUSDT", "Entry:", "Entry", "SL:", "SL", "TP:", "TP1", "Targets:", "🎯",
    "🛑", "💰", "📈", "@", "60000", "58000", "65000", "0.5", "-", "/", "20x", "x10", "Lev:", "10X", "and",
    "market", "\n", " ", "  ", ":", "TRADING SIGNAL ALERT", "PAIR:", "SIDE:", "1)", "K", "Size: 0.01",
]  # fmt: skip
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
messages = st.lists(st.sampled_from(PIECES), max_size=16).map(" ".join) | st.sampled_from(TEXTS)


def _first_detected(text: str) -> SignalFormat | None:
    found = scan(normalise(text))
    return next((form for form in DEFAULT_FORMATS if form.detect(found)), None)


@pytest.mark.parametrize("text", TEXTS)
def test_default_choice_is_the_first_format_that_detects_when_on_the_corpus(text: str) -> None:
    assert default_choice(scan(normalise(text))) is _first_detected(text)


@FAST
@given(messages)
def test_default_choice_is_the_first_format_that_detects(text: str) -> None:
    assert default_choice(scan(normalise(text))) is _first_detected(text)


def test_parser_honours_patterns_when_they_are_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000"
    first = SignalFormat("first", text, lambda found: found.labelled, read_labelled)
    monkeypatch.setattr(parser, "PATTERNS", {"first": first, **parser.PATTERNS})
    assert parser.parse(text).format == "first"
    monkeypatch.setattr(parser, "PATTERNS", {"compact": parser.PATTERNS["compact"]})
    assert parser.parse(text).kind == "not_signal"


@pytest.mark.parametrize(
    ("text", "entries", "stops", "targets"),
    [
        ("LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000", ["60000"], ["58000"], ["65000"]),
        (
            "LONG BTC-USDT Entry: 60000 and 59000 SL: 58000 TP: 65000 \n",
            ["60000", "59000"],
            ["58000"],
            ["65000"],
        ),
        (
            "LONG BTC-USDT Entry: 60000 20x SL: 58000 TP: 65000 - 66000",
            ["60000"],
            ["58000"],
            ["65000", "66000"],
        ),
        ("LONG BTC-USDT Entry:\n 60000\nSL: 58000 Size: 0.01\nTP: 65K", ["60000"], ["58000"], ["65000"]),
    ],
)
def test_scan_reads_plain_prices_as_read_region_does(
    text: str, entries: list[str], stops: list[str], targets: list[str]
) -> None:
    found = scan(normalise(text))
    assert found.entries == [Decimal(e) for e in entries]
    assert found.stops == [Decimal(s) for s in stops]
    assert found.targets == [Decimal(t) for t in targets]


@FAST
@given(
    st.lists(st.sampled_from([" ", "\n", "60000", "0.5", "20X", "AND", "61000", "-", "K", "SL:"]), max_size=6)
)
def test_scan_price_after_a_label_matches_read_region(pieces: list[str]) -> None:
    region = " " + " ".join(pieces)
    found = scan("\nLONG BTC-USDT ENTRY:" + region)
    values, market = read_region(region.split(" SL:")[0].split(" 20X")[0])
    if not market:
        assert found.entries == values


def test_parser_signal_result_equals_the_constructed_one() -> None:
    result = parser.parse("LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000")
    assert result.signal is not None
    assert result == parser.ParseResult("signal", result.signal, "standard")
    assert repr(result) == repr(parser.ParseResult("signal", result.signal, "standard"))
    assert hash(result) == hash(parser.ParseResult("signal", result.signal, "standard"))
    with pytest.raises(AttributeError):
        result.kind = "invalid"  # type: ignore[misc]


# The label regex without the look-ahead on a label's first character that _build_labels puts first.
_LABELS_UNGUARDED = re.compile(
    re.sub(r"^\(\[\^A-Z0-9_\.\]\(\?=\[[^\]]*\]\)", "([^A-Z0-9_.]", scan_module._LABELS.pattern)
)


def test_label_regex_look_ahead_is_the_only_difference() -> None:
    assert _LABELS_UNGUARDED.pattern != scan_module._LABELS.pattern
    assert _LABELS_UNGUARDED.pattern.startswith("([^A-Z0-9_.](?:")


@FAST
@given(messages)
def test_label_regex_splits_as_without_its_first_character_look_ahead(text: str) -> None:
    norm = normalise(text)
    assert scan_module._LABELS.split(norm) == _LABELS_UNGUARDED.split(norm)


def test_label_words_must_start_with_a_letter_or_a_digit() -> None:
    with pytest.raises(ValueError, match="must start with a letter"):
        scan_module._first_character("(?:A)")
