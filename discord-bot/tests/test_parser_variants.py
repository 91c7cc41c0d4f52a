"""Messages of the corpus families written differently: labels in any order and case, markdown,
separators, Cornix-style blocks, emoji, code blocks, quotes, CRLF, tabs, full-width characters."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hit_bot.parser import ParseResult, parse
from hit_shared.models import fmt

Expected = tuple[str, str, tuple[str, ...], str, tuple[str, ...], int | None]


def _read(result: ParseResult) -> Expected:
    assert result.kind == "signal", result.reason
    s = result.signal
    assert s is not None
    return (
        s.side.value,
        s.symbol,
        tuple(fmt(p) for p in s.entries),
        fmt(s.stop_loss),
        tuple(fmt(p) for p in s.take_profits),
        s.leverage,
    )


CORNIX = (
    "#BTC/USDT\nSignal Type: Regular (Long)\nLeverage: Cross 20x\nEntry Targets:\n1) 60000\n2) 59500\n"
    "Take-Profit Targets:\n1) 61000\n2) 62000\n3) 63000\nStop Targets:\n1) 58000"
)
SIGNALS: list[tuple[str, str, Expected]] = [
    (CORNIX, "labelled", ("long", "BTC-USDT", ("60000", "59500"), "58000", ("61000", "62000", "63000"), 20)),
    (
        "⚡️⚡️ #ETH/USDT ⚡️⚡️\nExchanges: Binance Futures\nSignal Type: Regular (Short)\n"
        "Leverage: Isolated (10.0X)\nEntry Targets:\n3200 - 3250\nTake-Profit Targets:\n1) 3100\n"
        "2) 3000\n3) 2900\nStop Targets:\n1) 3400",
        "labelled",
        ("short", "ETH-USDT", ("3200", "3250"), "3400", ("3100", "3000", "2900"), 10),
    ),
    (
        "Pair: SOL/USDT\nDirection: LONG\nEntry zone: 140 - 138\nTargets: 145, 150, 160\n"
        "Stoploss: 132\nLeverage: 5x",
        "labelled",
        ("long", "SOL-USDT", ("140", "138"), "132", ("145", "150", "160"), 5),
    ),
    (
        "Coin: #DOGE\nLONG\nBuy zone: 0.16-0.158\nTargets: 0.17 - 0.18 - 0.19\nStop: 0.15",
        "labelled",
        ("long", "DOGE-USDT", ("0.16", "0.158"), "0.15", ("0.17", "0.18", "0.19"), None),
    ),
    (
        "Coin: DOGE\nBuy zone: 0.16-0.158\nTargets: 0.17\nStop: 0.15",
        "labelled",
        ("long", "DOGE-USDT", ("0.16", "0.158"), "0.15", ("0.17",), None),
    ),
    (
        "```\nLONG BTCUSDT\nEntry: 60000\nSL: 58000\nTP: 65000\n```",
        "labelled",
        ("long", "BTC-USDT", ("60000",), "58000", ("65000",), None),
    ),
    (
        "> LONG BTC-USDT\n> Entry: 60000\n> SL: 58000\n> TP1: 61000\n> TP2: 62000",
        "labelled",
        ("long", "BTC-USDT", ("60000",), "58000", ("61000", "62000"), None),
    ),
    (
        "LONG BTC-USDT\r\nEntry: 60000\r\nSL: 58000\r\nTP: 65000\r\n",
        "labelled",
        ("long", "BTC-USDT", ("60000",), "58000", ("65000",), None),
    ),
    (
        "LONG\tBTC-USDT\tEntry:\t60000\tSL:\t58000\tTP:\t65000",
        "standard",
        ("long", "BTC-USDT", ("60000",), "58000", ("65000",), None),
    ),
    (
        "ＬＯＮＧ ＢＴＣ－ＵＳＤＴ Ｅｎｔｒｙ：６０，０００ ＳＬ：５８０００ ＴＰ：６５０００",
        "standard",
        ("long", "BTC-USDT", ("60000",), "58000", ("65000",), None),
    ),
    (
        "🟢 LONG $BTC\n💰 Entry: 60,000 - 59,500\n🎯 TP1: 61,000\n🎯 TP2: 62,500\n🛑 SL: 58,000\n"
        "Leverage: 10x",
        "labelled",
        ("long", "BTC-USDT", ("60000", "59500"), "58000", ("61000", "62500"), 10),
    ),
    (
        "📈 BTC/USDT 💰 60000 🛑 58000 🎯 61000 🎯 62000 🎯 63000 x20",
        "emoji",
        ("long", "BTC-USDT", ("60000",), "58000", ("61000", "62000", "63000"), 20),
    ),
    (
        "📉 SOL 💰 150 🎯 140 🛑 156",
        "emoji",
        ("short", "SOL-USDT", ("150",), "156", ("140",), None),
    ),
    (
        "short eth entry 3200 sl 3300 tp 3100 tp 3000",
        "standard",
        ("short", "ETH-USDT", ("3200",), "3300", ("3100", "3000"), None),
    ),
    (
        "LONG BTCUSDT 60000-59500/58000/61000/62000",
        "compact",
        ("long", "BTC-USDT", ("60000", "59500"), "58000", ("61000", "62000"), None),
    ),
    ("LONG BTCUSDT market/58000/65000", "compact", ("long", "BTC-USDT", (), "58000", ("65000",), None)),
    (
        "SHORT ETHUSDT 20x 3200 / 3300 / 3000",
        "compact",
        ("short", "ETH-USDT", ("3200",), "3300", ("3000",), 20),
    ),
    (
        "LONG 1000PEPEUSDT Entry: 0.0123 SL: 0.0115 TP: 0.0135",
        "standard",
        ("long", "1000PEPE-USDT", ("0.0123",), "0.0115", ("0.0135",), None),
    ),
    (
        "LONG PEPE/USDC Entry: 0.00001234 SL: 0.00001100 TP: 0.00001400",
        "standard",
        ("long", "PEPE-USDC", ("0.00001234",), "0.000011", ("0.000014",), None),
    ),
    (
        "SHORT ETH_USDT @ 3200 SL 3300 TP 3000",
        "standard",
        ("short", "ETH-USDT", ("3200",), "3300", ("3000",), None),
    ),
    (
        "LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000\n\nFollow us for more 24/7",
        "standard",
        ("long", "BTC-USDT", ("60000",), "58000", ("65000",), None),
    ),
    (
        "**LONG** __BTC-USDT__\n**Entry:** 60000\n**SL:** 58000 (-3.3%)\n**TP:** 65000 (+8.3%)",
        "labelled",
        ("long", "BTC-USDT", ("60000",), "58000", ("65000",), None),
    ),
    (
        "LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000 Lev: 10x-20x",
        "standard",
        ("long", "BTC-USDT", ("60000",), "58000", ("65000",), 10),
    ),
    (
        "LONG BTC-USDT 60000 SL 58000 TP 65000",
        "standard",
        ("long", "BTC-USDT", ("60000",), "58000", ("65000",), None),
    ),
    (
        "BTC-USDT LONG\nEntry 60000\nStop Loss 58000\nTake Profit 1: 61000\nTake Profit 2: 62000",
        "labelled",
        ("long", "BTC-USDT", ("60000",), "58000", ("61000", "62000"), None),
    ),
    (
        "LONG BTC-USDT Entry: 60000 SL: 58000 Take Profit (1): 61000 Take Profit (2): 62000",
        "standard",
        ("long", "BTC-USDT", ("60000",), "58000", ("61000", "62000"), None),
    ),
    (
        "Target 1: 61000\nTarget 2: 62000\nLONG BTC-USDT\nEntry: 60000\nSL: 58000",
        "labelled",
        ("long", "BTC-USDT", ("60000",), "58000", ("61000", "62000"), None),
    ),
    (
        "LONG BTC-USDT Entry: 60000 SL: 58000 T1: 61000 T2: 62000",
        "standard",
        ("long", "BTC-USDT", ("60000",), "58000", ("61000", "62000"), None),
    ),
    (
        "LONG BTC-USDT Entry: now SL: 58000 TP: 65000",
        "standard",
        ("long", "BTC-USDT", (), "58000", ("65000",), None),
    ),
    (
        "LONG BTC-USDT @ market SL: 58000 TP: 65000",
        "standard",
        ("long", "BTC-USDT", (), "58000", ("65000",), None),
    ),
    (
        "LONG BTC-USDT Entry: 60k SL: 58k TP: 65k",
        "standard",
        ("long", "BTC-USDT", ("60000",), "58000", ("65000",), None),
    ),
    (
        "Long BTC-USDT.P 25x\nEntry: 60000\nTP: 61000 / 62000 / 63000\nSL: 58000",
        "labelled",
        ("long", "BTC-USDT", ("60000",), "58000", ("61000", "62000", "63000"), 25),
    ),
    (
        "📉 SHORT #ETH\nEntry: 3200\nTargets:\n- 3100\n- 3000\nStop: 3300",
        "labelled",
        ("short", "ETH-USDT", ("3200",), "3300", ("3100", "3000"), None),
    ),
    (
        "🔴 #ETH/USDT\nEntry: 3200\nTP: 3000\nSL: 3300",
        "labelled",
        ("short", "ETH-USDT", ("3200",), "3300", ("3000",), None),
    ),
    (
        "🔴 HIGH RISK\nLONG #ETH/USDT\nEntry: 3200\nTP: 3400\nSL: 3100",
        "labelled",
        ("long", "ETH-USDT", ("3200",), "3100", ("3400",), None),
    ),
    (
        "Exchange: BloFin\nSHORT ETH-USDT\nEntry: 3200\nTP1: 3100\nTP2: 3000\nSL: 3300\nSize: 2 contracts",
        "labelled",
        ("short", "ETH-USDT", ("3200",), "3300", ("3100", "3000"), None),
    ),
    (
        "LONG BTCUSDT Entry 60000 Stop 58000 Target 65000 Risk 1 Size 0.01",
        "standard",
        ("long", "BTC-USDT", ("60000",), "58000", ("65000",), None),
    ),
    (
        "LONG BTC-USDT | Entry 60000 | Stop-Loss 58000 | TP 65000",
        "standard",
        ("long", "BTC-USDT", ("60000",), "58000", ("65000",), None),
    ),
    (
        "SL: 58000\nTP: 65000\nEntry: 60000\nBTC-USDT\nLONG",
        "labelled",
        ("long", "BTC-USDT", ("60000",), "58000", ("65000",), None),
    ),
    (
        "LONG BTC-USDT\nEntry Targets:\n1️⃣ 60000\n2️⃣ 59500\nTake-Profit Targets:\n1️⃣ 61000\n2️⃣ 62000\n"
        "Stop Loss: 58000",
        "labelled",
        ("long", "BTC-USDT", ("60000", "59500"), "58000", ("61000", "62000"), None),
    ),
    (
        "**TRADING SIGNAL ALERT**\n**📝PAIR:** ARB/USDT __(HIGH RISK)__🔴\n**SIDE:** __LONG📈__\n"
        "**📍ENTRY:** `1.2040`\n**✖️SL:** `1.1500`          (-4.48%)\n**💰TAKE PROFIT TARGETS:**\n"
        "**TP1:** `1.2500`          (3.82%)\n**TP2:** `1.3000`          (7.97%)\n**⚖️LEVERAGE:** 5x\n"
        "**TP1:** 0.85 R:R\n**TP2:** 1.78 R:R",
        "alert_card",
        ("long", "ARB-USDT", ("1.204",), "1.15", ("1.25", "1.3"), 5),
    ),
    (
        "LONG BTCUSDT @60000 SL58000 TP65000",
        "standard",
        ("long", "BTC-USDT", ("60000",), "58000", ("65000",), None),
    ),
    (
        "LONG BTC-USDT - Entry: 60000, SL: 58000, TP=65000",
        "standard",
        ("long", "BTC-USDT", ("60000",), "58000", ("65000",), None),
    ),
    (
        "📍Coin : #BTC/USDT\n🟢 Long\n⚡Leverage : Cross 20x\n📊Entry : 60000 - 59500\n🎯Target 1 : 61000\n"
        "🎯Target 2 : 62000\n🛑Stop Loss : 58000",
        "labelled",
        ("long", "BTC-USDT", ("60000", "59500"), "58000", ("61000", "62000"), 20),
    ),
    (
        "SHORT ETH\nEntry: 3,200.50\nSL: 3,300\nTP: 3,100.25 / 3,000",
        "labelled",
        ("short", "ETH-USDT", ("3200.5",), "3300", ("3100.25", "3000"), None),
    ),
    (
        "Signal #1234\nLONG BTC-USDT\nEntry 60000\nSL 58000\nTP 61000\nTP 62000\n\nRisk: 1%\nSize: 0.5\n"
        "Note: trail SL after TP1",
        "labelled",
        ("long", "BTC-USDT", ("60000",), "58000", ("61000", "62000"), None),
    ),
    (
        "ETHUSDT SHORT 3200 SL 3300 TP 3000",
        "standard",
        ("short", "ETH-USDT", ("3200",), "3300", ("3000",), None),
    ),
    (
        "✅ NEW SIGNAL ✅\nLONG BTC-USDT\nEntry 60000\nSL 58000\nTP 65000",
        "labelled",
        ("long", "BTC-USDT", ("60000",), "58000", ("65000",), None),
    ),
    (
        "SIGNAL ALERT — SHORT\nPAIR: BTC/USDT\nSIDE: SHORT\nENTRY: 61000\nSL: 62000\nTP1: 60000\nTP2: 59000",
        "alert_card",
        ("short", "BTC-USDT", ("61000",), "62000", ("60000", "59000"), None),
    ),
]


@pytest.mark.parametrize(("text", "form", "expected"), SIGNALS, ids=lambda v: str(v)[:30])
def test_parser_reads_variant(text: str, form: str, expected: Expected) -> None:
    result = parse(text)
    assert _read(result) == expected
    assert result.format == form


NOT_SIGNALS = [
    "BTC long setup, support at 58000",
    "Should I long BTC-USDT entry 60000 sl 58000 tp 65000?",
    "anyone shorting ETH at 3200 with sl 3300?",
    "check https://example.com/long/60000/58000/65000 and https://x.io/?tp=65000",
    "<@123456789012345678> LONG BTC <#123456789> <:pepe:12345678> <t:1700000000:R>",
    "!stats 7d",
    "!close BTC-USDT 50",
    "/long BTC 60000",
    "gm 🚀🚀 100x gems incoming 2024",
    "Long BTC, it's 60000 now",
    "   \n\t  ",
    "📈📈📈",
]
# Results and follow-ups of a running trade: never a signal, read as management (issue #17).
FOLLOW_UPS = [
    ("TP2 hit on ETH 🎯 +12%", "tp_hit", "ETH-USDT"),
    ("SL hit on BTC, closed at 58000", "sl_hit", "BTC-USDT"),
    ("Move SL to entry 60000 on BTC-USDT LONG", "move_stop", "BTC-USDT"),
    ("BTC-USDT LONG update: TP 65000 moved, SL to breakeven", "move_stop", "BTC-USDT"),
    ("ETH-USDT closed at 3300 for +8%", "other", "ETH-USDT"),
    ("Liquidated on SOL long at 132 lol", "sl_hit", "SOL-USDT"),
    ("Next target 65000 for BTC", "other", "BTC-USDT"),
    ("LONG BTC-USDT Entry 60000 SL 58000 TP1 61000 ✅ TP2 62000", "tp_hit", "BTC-USDT"),
    ("🎯 TP2 ✅ SHORT ETH-USDT Entry 3200 SL 3300 TP 3000", "tp_hit", "ETH-USDT"),
]


@pytest.mark.parametrize(("text", "action", "symbol"), FOLLOW_UPS, ids=lambda v: str(v)[:30])
def test_parser_reads_results_and_follow_ups_as_management(text: str, action: str, symbol: str) -> None:
    result = parse(text)
    assert result.kind == "management"
    assert result.signal is None and result.reason is None
    assert result.management is not None
    assert (result.management.action.value, result.management.symbol) == (action, symbol)


@pytest.mark.parametrize("text", NOT_SIGNALS)
def test_parser_ignores_chatter_results_questions_and_commands(text: str) -> None:
    result = parse(text)
    assert result.kind == "not_signal"
    assert result.signal is None
    assert result.reason is None


INVALID = [
    ("LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000 SHORT", "both LONG and SHORT"),
    ("BTC-USDT Entry: 60000 SL: 58000 TP: 59000", "neither LONG nor SHORT"),
    ("LONG BTC-USDT ETH-USDT Entry: 60000 SL: 58000 TP: 65000", "more than one symbol"),
    ("LONG BTC-USDT Entry: 60000 SL: 58000 TP: 6500", "take profit 6500"),
    ("LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000 Leverage: 200x", "leverage 200x"),
    ("LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000 Leverage: 12.5x", "whole number"),
    ("LONG BTC-USDT Entry: 60000 SL: 5800 TP: 65000", "apart"),
    ("LONG SOL-USDT Entry: 140 SL: 132 TP: 145,150", "apart"),
    ("LONG BTC-USDT Entry: 60000 SL: 60000 TP: 65000", "equals the entry"),
    ("SHORT ETH-USDT Entry: 3200 SL: 3300 SL: 3350 TP: 3000", "more than one stop loss"),
    ("LONG BTC-USDT Entry: 60000 Target: 65000", "no stop loss"),
    ("LONG BTC-USDT Entry: 60000 SL: 58000", "no take-profit"),
    ("SHORT ETH-USDT SL: 3300 TP: 3400", "take profit 3400"),
    ("LONG BTC-USDT Entry 1: market Entry 2: 59000 SL: 58000 TP: 65000", "both as market and as a price"),
    ("SHORT ETH-USDT Entry: 3200 SL: 3300 TP: 0", "greater than zero"),
    ("LONG BTC-USDT Entry: 60000 SL: 58000 TP: 61000 62000 63000 64000 65000 66000 67000 68000 69000 "
     "70000 71000", "at most 10"),
]


@pytest.mark.parametrize(("text", "reason_part"), INVALID)
def test_parser_refuses_broken_signal_with_reason(text: str, reason_part: str) -> None:
    result = parse(text)
    assert result.kind == "invalid"
    assert result.signal is None
    assert result.reason is not None and reason_part in result.reason
    assert result.format is not None


def test_parser_keeps_take_profits_in_written_order() -> None:
    result = parse("SHORT BTC-USDT Entry: 61000 SL: 62500 TP3: 57500 TP1: 60000 TP2: 59000")
    assert result.signal is not None
    assert result.signal.take_profits == (Decimal(57500), Decimal(60000), Decimal(59000))


def test_parser_reads_decimals_exactly() -> None:
    result = parse("LONG DOGE-USDT Entry: 0.16451 SL: 0.15903 TP: 0.17007")
    assert result.signal is not None
    assert result.signal.entries == (Decimal("0.16451"),)
    assert result.signal.stop_loss == Decimal("0.15903")
