"""When in doubt, no trade: unreadable values, ambiguous stops, withdrawn signals, non-crypto
instruments and prices off the coin's scale are refused, never read as something else."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hit_bot.parser import CONDITIONAL_REASON, parse

GARBLED = ["abc", "6O000", "60000.5.3", ".5", "N/A", "TBD", "-", "1e400", ""]


@pytest.mark.parametrize("value", GARBLED)
def test_parser_refuses_entry_that_cannot_be_read(value: str) -> None:
    result = parse(f"LONG ARB-USDT\nEntry: {value}\nSL: 0.7100\nTP: 0.8200")
    assert result.kind == "invalid"
    assert result.reason is not None and "read" in result.reason


def test_parser_refuses_empty_entry_zone_label() -> None:
    result = parse("SHORT OP-USDT\nEntry Zone:\n🎯 TP1: 1.910\n🛑 SL: 2.140")
    assert result.kind == "invalid"


@pytest.mark.parametrize("value", ["6200O", "TBD", "N/A", "7,1.2.3"])
def test_parser_refuses_target_that_cannot_be_read(value: str) -> None:
    result = parse(f"LONG ETH-USDT\nEntry: 3010\nSL: 2950\nTP1: 3080\nTP2: {value}")
    assert result.kind == "invalid"


def test_parser_refuses_leverage_that_cannot_be_read() -> None:
    result = parse("LONG ETH-USDT Entry: 3010 SL: 2950 TP: 3080 Leverage: 1OO x")
    assert result.kind == "invalid"
    assert result.reason is not None and "leverage" in result.reason


def test_parser_refuses_entry_offered_as_price_or_market() -> None:
    result = parse("LONG ETH-USDT Entry: 3010 or market SL: 2950 TP: 3080")
    assert result.kind == "invalid"
    assert result.reason is not None and "market" in result.reason


def test_parser_reads_market_word_before_a_price_as_that_price() -> None:
    result = parse("SHORT OP-USDT\nEntry at CMP: 2.015\nSL: 2.140\nTP: 1.910")
    assert result.signal is not None
    assert result.signal.entries == (Decimal("2.015"),)


@pytest.mark.parametrize("word", ["market", "CMP", "now", "current price"])
def test_parser_reads_market_only_when_the_message_says_so(word: str) -> None:
    result = parse(f"LONG ETH-USDT Entry: {word} SL: 2950 TP: 3080")
    assert result.signal is not None and result.signal.is_market


@pytest.mark.parametrize(
    ("stop", "reason_part"),
    [
        ("2950 - 2930", "more than one price"),
        ("2950 or 2930", "more than one price"),
        ("5%", "stop loss"),
        ("2950 hold", "hedged"),
    ],
)
def test_parser_refuses_ambiguous_stop(stop: str, reason_part: str) -> None:
    result = parse(f"LONG ETH-USDT\nEntry: 3010\nSL: {stop}\nTP: 3080")
    assert result.kind == "invalid"
    assert result.reason is not None and reason_part in result.reason


@pytest.mark.parametrize(
    ("text", "action", "symbol"),
    [
        ("Close LONG ETH-USDT Entry: 3010 SL: 2950 TP: 3080", "close", "ETH-USDT"),
        ("Exit SHORT OP-USDT now, entry 2.015 SL 2.140 TP 1.910", "close", "OP-USDT"),
        ("Cancel LONG ETH-USDT Entry: 3010 SL: 2950 TP: 3080", "cancel", "ETH-USDT"),
        ("LONG ETH-USDT Entry: 3010 SL: 2950 TP: 3080 - CANCEL this signal", "cancel", "ETH-USDT"),
        ("SHORT OP-USDT Entry 2.015 SL 2.140 TP 1.910\nSignal invalidated", "cancel", "OP-USDT"),
        ("Don't take this one: LONG ETH-USDT Entry: 3010 SL: 2950 TP: 3080", "cancel", "ETH-USDT"),
    ],
)
def test_parser_reads_a_closed_or_withdrawn_signal_as_management(text: str, action: str, symbol: str) -> None:
    """A signal closed or withdrawn in its own message is never traded: it is the close or the cancel of
    that trade (issue #17), and the levels it repeats are never read as new ones."""
    result = parse(text)
    assert result.kind == "management" and result.signal is None
    assert result.management is not None
    assert (result.management.action.value, result.management.symbol) == (action, symbol)


@pytest.mark.parametrize(
    "text",
    [
        "Example format: LONG ETH-USDT Entry: 3010 SL: 2950 TP: 3080",
        "LONG ETH-USDT Entry: 3010 SL: 2950 TP: 3080 ... just kidding",
        # repeats and recaps of a signal already posted: taking one again would be a second trade
        "Reminder: the OP long (entry 2.015, SL 1.940, TP 2.140) is still on",
        "INJ short still active - entry 21.4, sl 22.1, tp 20.2",
        "Recap of the week: LONG ETH-USDT Entry: 3010 SL: 2950 TP: 3080, +4%",
        "Not a signal, only my chart: ARB long 1.05, stop 0.99, target 1.15",
        "SHORT OP-USDT Entry 2.015 SL 2.140 TP 1.910 - don't enter yet, the 4H has not closed",
    ],
)
def test_parser_ignores_withdrawn_closed_or_example_signals(text: str) -> None:
    assert parse(text).kind == "not_signal"


@pytest.mark.parametrize(
    "text",
    [
        "If SOL breaks 150 we long it, target 160, SL 144",
        "if ETH loses 3100 I'll short: tp 2950 sl 3180",
        "Only if BTC reclaims 61000: LONG Entry 61000 SL 59800 TP 63000",
    ],
)
def test_parser_refuses_a_plan_that_waits_for_the_price(text: str) -> None:
    result = parse(text)
    assert result.kind == "invalid"
    assert result.reason == CONDITIONAL_REASON


@pytest.mark.parametrize(
    ("text", "symbol"),
    [
        ("ETH long still good: entry 3200, sl 3100, tp 3400", "ETH-USDT"),
        ("I'll long ARB here 1.05, sl 0.99, tp 1.15", "ARB-USDT"),
        ("Going long BTC 60000, sl 58000, tp 65000", "BTC-USDT"),
    ],
)
def test_parser_does_not_take_a_plain_word_beside_the_direction_for_the_coin(text: str, symbol: str) -> None:
    result = parse(text)
    assert result.signal is not None, result.reason
    assert result.signal.symbol == symbol


@pytest.mark.parametrize(
    "text",
    [
        "SILVER sell now 31.20\nSL 31.60\nTP 30.40",
        "LONG XAUUSD Entry: 2390 SL: 2370 TP: 2430",
        "SHORT EURUSD Entry: 1.0850 SL: 1.0900 TP: 1.0780",
        "LONG NAS100 Entry: 18200 SL: 18050 TP: 18500",
    ],
)
def test_parser_refuses_instruments_that_are_not_crypto(text: str) -> None:
    result = parse(text)
    assert result.kind == "invalid"
    assert result.reason is not None and "crypto" in result.reason


def test_parser_refuses_prices_off_the_coin_scale() -> None:
    result = parse("xrp/usdt long 5210\nTp 5390 5600\nSl 5050")
    assert result.kind == "invalid"
    assert result.reason is not None and "decimal point" in result.reason


def test_parser_reads_a_decimal_comma() -> None:
    result = parse("SHORT ETH-USDT Entry: 0,512 SL: 0,530 TP: 0,480")
    assert result.kind == "invalid"  # ETH at 0.5 is off its scale
    result = parse("SHORT ARB-USDT Entry: 0,512 SL: 0,530 TP: 0,480")
    assert result.signal is not None
    assert result.signal.entries == (Decimal("0.512"),)


_GARBLE = st.sampled_from(["O", "o", "l", "..", "e9", "e400", "I", "S"])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 99999), st.integers(0, 5), _GARBLE, st.sampled_from(["Entry", "SL", "TP2", "Leverage"]))
def test_parser_never_trades_a_garbled_value(number: int, at: int, garble: str, label: str) -> None:
    digits = str(number)
    at = min(at, len(digits) - 1) if len(digits) > 1 else 1
    value = digits[:at] + garble + digits[at:]
    values = {"Entry": "3010", "SL": "2950", "TP2": "3120", "Leverage": "10x"}
    values[label] = value
    text = (
        f"LONG ETH-USDT\nEntry: {values['Entry']}\nSL: {values['SL']}\nTP1: 3080\nTP2: {values['TP2']}\n"
        f"Leverage: {values['Leverage']}"
    )
    assert parse(text).kind != "signal"


SIGNAL_LINES = "LONG BTC-USDT\nEntry: 64000\nSL: 63000\nTP1: 65000\nTP2: 66000"


@pytest.mark.parametrize(
    "text",
    [
        f"{SIGNAL_LINES}\nTP1 done",
        f"{SIGNAL_LINES}\nAll targets done 🚀 +45%",
        f"{SIGNAL_LINES}\nAll targets completed",
        f"{SIGNAL_LINES}\nEntry done, SL at entry now",
        f"{SIGNAL_LINES}\nSL moved to BE",
        f"{SIGNAL_LINES}\nExpired",
        f"{SIGNAL_LINES}\nТейк 1 отработал",
        f"{SIGNAL_LINES}\nСтоп выбит",
        f"{SIGNAL_LINES}\n止盈1已到达",
        f"{SIGNAL_LINES}\nHedef 1 tamam",
        f"{SIGNAL_LINES}\nTP1 alcanzado",
        f"{SIGNAL_LINES}\nAlvo 1 atingido",
        f"{SIGNAL_LINES}\nTP1 taken, TP2 next",
        "LONG BTC-USDT Entry: 64000 SL: 63000 TP: 65000 (update: entry filled)",
        "LONG BTC-USDT\nEntry: 64000 (TP1 hit already)\nSL: 63000\nTP: 65000",
        "LONG BTC-USDT\nEntry: 64000\nSL: 63000\nTP: 65000 (done ✅)",
    ],
)
def test_a_signal_repeated_with_its_result_is_a_report_never_a_new_trade(text: str) -> None:
    """A channel posts the signal again with how it went (a line under it, or a remark in brackets that
    the reading of prices drops): trading it would open the trade again at stale prices."""
    assert parse(text).kind in ("not_signal", "management")


@pytest.mark.parametrize(
    "text",
    [
        f"Retest done.\n{SIGNAL_LINES}",
        "LONG BTC-USDT\nEntry: 64000\nSL: 63000 (4h candle closed below)\nTP: 65000",
    ],
)
def test_done_about_the_chart_and_a_stop_s_condition_leave_a_signal_a_signal(text: str) -> None:
    result = parse(text)
    assert result.signal is not None
    assert result.signal.stop_loss == Decimal("63000")


@pytest.mark.parametrize(
    "text",
    [
        f"{SIGNAL_LINES}\nThis is a repost of yesterday's signal",
        f"Repost:\n{SIGNAL_LINES}",
        f"{SIGNAL_LINES}\nOld signal, ignore",
        "Correction: LONG BTC-USDT Entry: 64000 SL: 63500 TP: 65000",
        f"{SIGNAL_LINES}\nTest message, please ignore",
        "Hypothetical: LONG BTC-USDT Entry: 64000 SL: 63000 TP: 65000",
    ],
)
def test_a_repost_a_correction_a_test_or_a_hypothetical_is_never_a_new_trade(text: str) -> None:
    """A repeat or a corrected copy of a signal already posted would be a second trade; a test or an
    illustration is none."""
    assert parse(text).kind != "signal"


@pytest.mark.parametrize(
    "text",
    [
        f"{SIGNAL_LINES}\n\nDo not repost our signals.",
        f"BTC in a correction, buying the dip.\n{SIGNAL_LINES}",
        f"{SIGNAL_LINES}\nIgnore the noise, the trend is up.",
    ],
)
def test_the_same_words_in_a_footer_or_the_market_s_talk_leave_a_signal_a_signal(text: str) -> None:
    result = parse(text)
    assert result.signal is not None
    assert result.signal.stop_loss == Decimal("63000")
