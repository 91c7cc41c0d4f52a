"""The parser against the public corpus (shared/signals/public.jsonl) and the spec's outcomes."""

from __future__ import annotations

import json
import pathlib
from decimal import Decimal
from typing import Any

import pytest

from hit_bot.parser import PATTERNS, ParseResult, parse

# A copy of the public corpus lives with the tests, so a fresh clone tests the parser on its own; where the
# shared folder sits beside the repository (CI, the team's machines), the copy must still match it.
CORPUS = pathlib.Path(__file__).resolve().parent / "data" / "public_corpus.jsonl"
SHARED_CORPUS = pathlib.Path(__file__).resolve().parents[3] / "shared" / "signals" / "public.jsonl"


def _cases() -> list[dict[str, Any]]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


CASES = _cases()


def _fields(result: ParseResult) -> dict[str, Any]:
    assert result.signal is not None
    s = result.signal
    return {
        "side": s.side.value,
        "symbol": s.symbol,
        "entries": sorted(s.entries),
        "stop_loss": s.stop_loss,
        "take_profits": list(s.take_profits),
        "leverage": s.leverage,
    }


def _expected(expect: dict[str, Any]) -> dict[str, Any]:
    def dec(x: Any) -> Decimal:
        return Decimal(str(x))

    return {
        "side": expect["side"],
        "symbol": expect["symbol"],
        "entries": sorted(dec(x) for x in expect["entries"]),
        "stop_loss": dec(expect["stop_loss"]),
        "take_profits": [dec(x) for x in expect["take_profits"]],
        "leverage": expect["leverage"],
    }


def test_parser_corpus_is_the_public_one() -> None:
    assert len(CASES) >= 48
    assert sum(c["expect"] is not None for c in CASES) >= 32


@pytest.mark.parametrize("case", [c for c in CASES if c["expect"]], ids=lambda c: c["id"])
def test_parser_reads_every_public_signal(case: dict[str, Any]) -> None:
    result = parse(case["text"])
    assert result.kind == "signal", result.reason
    assert result.format in PATTERNS
    assert result.reason is None
    assert _fields(result) == _expected(case["expect"])


@pytest.mark.parametrize("case", [c for c in CASES if c["expect"] is None], ids=lambda c: c["id"])
def test_parser_never_trades_a_public_non_signal(case: dict[str, Any]) -> None:
    result = parse(case["text"])
    assert result.kind != "signal"
    assert result.signal is None
    assert (result.reason is None) == (result.kind in ("not_signal", "management"))


@pytest.mark.parametrize(
    ("case_id", "kind", "reason_part"),
    [
        ("p033", "not_signal", None),
        ("p034", "not_signal", None),
        ("p035", "not_signal", None),
        ("p036", "management", None),  # TP1 hit: tp_hit
        ("p037", "management", None),  # Closed ETH-USDT at 3300: other
        ("p038", "not_signal", None),
        ("p039", "not_signal", None),
        ("p040", "not_signal", None),
        ("p041", "not_signal", None),
        ("p042", "invalid", "no stop loss"),
        ("p043", "invalid", "stop loss 61000 is above the entry 60000"),
        ("p044", "invalid", "stop loss 3100 is below the entry 3200"),
        ("p045", "invalid", "take profit 59000"),
        ("p046", "invalid", "no symbol"),
        ("p047", "invalid", "-5"),
        ("p048", "invalid", "price 0 must be greater than zero"),
    ],
)
def test_parser_classifies_chatter_as_not_signal_and_broken_signals_as_invalid(
    case_id: str, kind: str, reason_part: str | None
) -> None:
    text = next(c["text"] for c in CASES if c["id"] == case_id)
    result = parse(text)
    assert result.kind == kind
    if reason_part is None:
        assert result.reason is None
    else:
        assert result.reason is not None and reason_part in result.reason
        assert result.format in PATTERNS


def test_parser_names_the_format_of_each_family() -> None:
    by_id = {c["id"]: c["text"] for c in CASES}
    assert parse(by_id["p001"]).format == "standard"
    assert parse(by_id["p004"]).format == "compact"
    assert parse(by_id["p006"]).format == "emoji"
    assert parse(by_id["p014"]).format == "labelled"
    assert parse(by_id["p029"]).format == "alert_card"


def test_parser_patterns_has_the_named_formats_with_examples_that_parse() -> None:
    assert {"standard", "compact", "emoji", "labelled", "alert_card"} <= set(PATTERNS)
    for name, form in PATTERNS.items():
        assert form.name == name
        result = parse(form.example)
        assert result.kind == "signal", (name, result.reason)
        assert result.format == name


def test_parser_corpus_copy_matches_the_shared_corpus_when_present() -> None:
    if not SHARED_CORPUS.exists():
        assert CASES, "the bundled corpus copy is empty"
        return
    lines = SHARED_CORPUS.read_text(encoding="utf-8").splitlines()
    shared = [json.loads(line) for line in lines if line.strip()]
    assert shared == CASES, "the shared corpus changed: refresh discord-bot/tests/data/public_corpus.jsonl"
