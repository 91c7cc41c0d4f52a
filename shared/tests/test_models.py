from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from hit_shared.models import (
    Side,
    SignalCore,
    TradeResponse,
    TradeSignal,
    TradeStatus,
    TradingMode,
    consistency_problem,
)


def signal(**overrides):
    body = {
        "signal_id": "discord:1:2",
        "side": "long",
        "symbol": "BTC-USDT",
        "entries": ["60000"],
        "stop_loss": "58000",
        "take_profits": ["65000"],
    }
    body.update(overrides)
    return TradeSignal.model_validate(body)


def test_trade_signal_accepts_numbers_and_strings_as_decimals():
    sig = signal(entries=[60000.5, "59500"], take_profits=[65000])
    assert sig.entries == (Decimal("60000.5"), Decimal("59500"))
    assert sig.take_profits == (Decimal(65000),)


def test_trade_signal_is_frozen_and_forbids_unknown_fields():
    sig = signal()
    with pytest.raises(ValidationError):
        sig.model_copy(update={}).__setattr__("side", Side.SHORT)
    with pytest.raises(ValidationError, match="extra"):
        signal(size="1")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"stop_loss": "61000"}, "stop loss 61000 is above the entry 60000 of a LONG"),
        ({"side": "short", "take_profits": ["55000"]}, "stop loss 58000 is below the entry 60000 of a SHORT"),
        ({"take_profits": ["59000"]}, "take profit 59000 is at or below the entry 60000 of a LONG"),
        ({"stop_loss": "60000"}, "stop loss 60000 equals the entry 60000"),
        ({"entries": [], "take_profits": ["57000"]}, "take profit 57000 is at or below the stop loss"),
        ({"entries": ["-5"]}, "price -5 must be greater than zero"),
    ],
)
def test_trade_signal_refuses_inconsistent_prices_with_a_sentence(overrides, reason):
    with pytest.raises(ValidationError, match=reason):
        signal(**overrides)


def test_trade_signal_refuses_bad_ids_symbols_leverage_and_nan():
    for overrides in (
        {"signal_id": "has space"},
        {"signal_id": ""},
        {"symbol": "btc-usdt"},
        {"leverage": 0},
        {"leverage": 151},
        {"stop_loss": "NaN"},
        {"take_profits": []},
        {"take_profits": [str(70000 + i) for i in range(11)]},
        {"raw_text": "x" * 4001},
    ):
        with pytest.raises(ValidationError):
            signal(**overrides)


def test_trade_signal_requires_timezone_on_posted_at():
    with pytest.raises(ValidationError, match="timezone"):
        signal(posted_at="2026-01-01T12:00:00")
    assert signal(posted_at="2026-01-01T13:00:00+01:00").posted_at == datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_consistency_problem_short_mirror_image_is_consistent():
    assert (
        consistency_problem(Side.SHORT, [Decimal(3200)], Decimal(3300), [Decimal(3000), Decimal(2900)], 10)
        is None
    )


def test_signal_core_market_entry():
    core = SignalCore(
        side=Side.SHORT, symbol="ETH-USDT", stop_loss=Decimal(3600), take_profits=(Decimal(3200),)
    )
    assert core.is_market


def test_trade_response_round_trips_through_json():
    response = TradeResponse(
        signal_id="discord:1:2",
        status=TradeStatus.REJECTED,
        reason="trading is halted",
        mode=TradingMode.PAPER,
        symbol="BTC-USDT",
        side=Side.LONG,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    again = TradeResponse.model_validate_json(response.model_dump_json())
    assert again == response
