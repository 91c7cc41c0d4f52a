"""The parser builds its SignalCore without a second validation; it must be the very object that
model_construct and full validation would give."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from hit_bot import parser
from hit_bot.parser import parse
from hit_shared.models import Side, SignalCore

VALUES = {
    "side": Side.SHORT,
    "symbol": "ETH-USDT",
    "entries": (Decimal(3200), Decimal(3250)),
    "stop_loss": Decimal(3350),
    "take_profits": (Decimal(3000), Decimal(2900)),
    "leverage": 20,
}


@pytest.mark.parametrize("fast", [True, False])
def test_parser_signal_equals_model_construct_and_validation(
    monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    monkeypatch.setattr(parser, "FAST_SIGNAL", fast)
    built = parser._signal(**VALUES)  # type: ignore[arg-type]
    reference = SignalCore.model_construct(**VALUES)  # type: ignore[arg-type]
    assert type(built) is SignalCore
    assert built == reference == SignalCore.model_validate(VALUES)
    assert built.model_fields_set == reference.model_fields_set == set(VALUES)
    assert list(built.__dict__) == list(reference.__dict__)
    assert built.__pydantic_extra__ is reference.__pydantic_extra__
    assert built.__pydantic_private__ is reference.__pydantic_private__
    assert built.model_dump(mode="json") == reference.model_dump(mode="json")
    assert copy.deepcopy(built) == built
    assert built.model_copy(update={"leverage": 5}).leverage == 5
    with pytest.raises(ValueError, match="frozen"):
        built.leverage = 3  # type: ignore[misc]


def test_parser_fast_signal_is_on_for_the_current_model() -> None:
    assert parser.FAST_SIGNAL


def test_parser_signals_have_their_own_fields_set() -> None:
    first = parse("LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000").signal
    second = parse("LONG ETH-USDT Entry: 3200 SL: 3100 TP: 3300").signal
    assert first is not None and second is not None
    assert first.model_fields_set is not second.model_fields_set
    assert first.symbol == "BTC-USDT" and second.symbol == "ETH-USDT"
