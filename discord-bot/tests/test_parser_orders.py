"""What the parser refuses because no order the bot places could carry it (issue #14): a breakout entry
(a stop-entry order), a target written twice, a stop given only as a percentage."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hit_bot.parser import parse


@pytest.mark.parametrize(
    "text",
    [
        "LONG BTC above 60500 (breakout)\nSL: 59000\nTP: 62000",
        "LONG BTC-USDT on breakout 60500 SL: 59000 TP: 62000",
        "LONG ETH-USDT Entry: 3010 on breakout\nSL: 2950\nTP: 3080",
        "Long SOL-USDT, buy the break above 152.4\nEntry: 152.4\nSL: 148\nTP: 158",
        "SHORT ETH-USDT Entry: below 2900\nSL: 2990\nTP: 2800",
        "LONG AVAX-USDT Entry: above 24.10\nSL: 23.20\nTP: 25.60",
    ],
)
def test_parser_refuses_breakout_entry_as_a_stop_entry_order(text: str) -> None:
    result = parse(text)
    assert result.kind == "invalid"
    assert result.reason is not None
    assert "breakout" in result.reason and "stop-entry orders are not supported" in result.reason


def test_parser_merges_a_target_repeated_side_by_side() -> None:
    result = parse("LONG ETH-USDT Entry: 3010 SL: 2950 TP1: 3080 TP2: 3120 TP3: 3120 TP4: 3200")
    assert result.signal is not None
    assert result.signal.take_profits == (Decimal(3080), Decimal(3120), Decimal(3200))


def test_parser_refuses_a_target_written_twice_apart_like_the_server() -> None:
    result = parse("LONG ETH-USDT Entry: 3010 SL: 2950 TP1: 3080 TP2: 3120 TP3: 3080")
    assert result.kind == "invalid"
    assert result.reason == (
        "TP1 and TP3 are both 3080: a target written twice is likely a typo; send each target once"
    )


@pytest.mark.parametrize("stop", ["SL: 5%", "Stop loss: -3.5%", "🛑 4%", "Stop 2 %"])
def test_parser_says_a_percentage_stop_is_not_read(stop: str) -> None:
    result = parse(f"LONG ETH-USDT\nEntry: 3010\n{stop}\nTP: 3080")
    assert result.kind == "invalid"
    assert result.reason is not None
    assert "percentage" in result.reason and "no stop loss" not in result.reason


def test_parser_reads_a_breakdown_remark_on_the_stop_as_part_of_the_stop() -> None:
    """The stop's own words describe when it fires, not how to enter: no breakout entry."""
    result = parse("LONG ETH-USDT Entry: 3010 SL: daily close below 2950 (breakdown) TP: 3080")
    assert result.signal is not None
    assert result.signal.stop_loss == Decimal(2950)
