"""Layouts real channels use (issue #14), each written here with its own coins and prices."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hit_bot.parser import parse

D = Decimal
SHAPES = [
    # stop qualifiers
    ("LONG OP-USDT\nEntry: 1.950\nTP1: 2.050\nSL: 4H candle close below 1.880", "long", "OP-USDT", ["1.950"],
     "1.880", ["2.050"], None),
    ("📈 NEAR | USDT @ $4.210 - 4H - 2.1.3\nTarget 1: 4.330 (RR 1.2)\nSL Close Below: 4.120", "long",
     "NEAR-USDT", ["4.210"], "4.120", ["4.330"], None),
    ("SHORT ARB-USDT Entry: 0.910 Stoploss above 0.950 TP: 0.860", "short", "ARB-USDT", ["0.910"], "0.950",
     ["0.860"], None),
    # entry words, DCA, other languages
    ("Pair: SEI/USDT #LONG\nTargets: 0.52 - 0.55\nGet in : 0.48 - 0.47\nSL: 0.44", "long", "SEI-USDT",
     ["0.48", "0.47"], "0.44", ["0.52", "0.55"], None),
    ("Short: OP/USDT\nEntry: 2.10\nDCA: 2.18\nTP: 1.95\nSL: 2.30", "short", "OP-USDT", ["2.10", "2.18"],
     "2.30", ["1.95"], None),
    ("sui short\ngiriş: 1.62\nsl: 1.70\nhedef: 1.50", "short", "SUI-USDT", ["1.62"], "1.70", ["1.50"], None),
    ("APT/USDT ЛОНГ\nВход: 8.40\nСтоп: 8.10\nТейк 1: 8.90", "long", "APT-USDT", ["8.40"], "8.10", ["8.90"],
     None),
    ("WIF/USDT 做空\n入场: 2.40\n止损: 2.55\n止盈: 2.20", "short", "WIF-USDT", ["2.40"], "2.55", ["2.20"],
     None),
    # target layouts
    ("#SEIUSDT / LONG / 5X-10X ENTRY: 0.48 EXIT: 0.50 , 0.52 STOPLOSS: 0.45", "long", "SEI-USDT", ["0.48"],
     "0.45", ["0.50", "0.52"], 5),
    ("OPUSD SELL 2.10 SL: 2.25 TP 1-2.00 TP 2-1.90", "short", "OP-USDT", ["2.10"], "2.25", ["2.00", "1.90"],
     None),
    ("#SIGNAL (NEARUSD)\nOpen LONG for the price between 4.20$ - 4.10$\nTargets:\n1) Close the order at "
     "the price $4.40\nSTOP LOSS: $3.95", "long", "NEAR-USDT", ["4.20", "4.10"], "3.95", ["4.40"], None),
    # horizons are not directions; no direction: inferred from consistent prices
    ("Coin: #OP/USDT\nLong Set-up\nEntry: 1.95\nTarget: 2.05 - 2.15 (Short term)\nStoploss: 1.85", "long",
     "OP-USDT", ["1.95"], "1.85", ["2.05", "2.15"], None),
    ("sei/usdt\nenter 0.48\nstop 0.45\ntargets 0.52 0.50", "long", "SEI-USDT", ["0.48"], "0.45",
     ["0.52", "0.50"], None),
    # symbols: another name for the coin, coins named like words, digits first, a venue suffix, a leverage
    # beside the coin, a coin called 0x
    ("#xbt short\nentry 97150\nsl 98400\ntp 95000", "short", "BTC-USDT", ["97150"], "98400", ["95000"], None),
    ("HIGH/USDT LONG\nEntry: 0.88\nSL: 0.82\nTP: 0.95", "long", "HIGH-USDT", ["0.88"], "0.82", ["0.95"],
     None),
    ("Short NOT-USDT entry 0.0061 sl 0.0065 tp 0.0057", "short", "NOT-USDT", ["0.0061"], "0.0065",
     ["0.0057"], None),
    ("LONG 1000BONK\nEntry: 0.0215\nSL: 0.0201\nTP1: 0.0230", "long", "1000BONK-USDT", ["0.0215"],
     "0.0201", ["0.0230"], None),
    ("SUIUSDT.P short\nEntry: 3.85\nSL: 4.02\nTP: 3.60", "short", "SUI-USDT", ["3.85"], "4.02", ["3.60"],
     None),
    ("TIA LONG X5 X15\nEntry: 5.40\nSL: 5.10\nTP: 5.90", "long", "TIA-USDT", ["5.40"], "5.10", ["5.90"], 5),
    ("0x (ZRXUSD) SHORT\nEntry: 0.345\nSL: 0.362\nTP: 0.320", "short", "ZRX-USDT", ["0.345"], "0.362",
     ["0.320"], None),
    # placeholders among the targets are dropped
    ("INJ LONG\nEntry: 21.4\nSL: 20.6\nTP1: 22.3\nTP2: 23.1\nTP3: 🚀", "long", "INJ-USDT", ["21.4"], "20.6",
     ["22.3", "23.1"], None),
    # an entry label followed by the coin and the direction before its price
    ("Re-entry ETH short 3480 SL 3560 TP 3350", "short", "ETH-USDT", ["3480"], "3560", ["3350"], None),
    # the coin alone before the first label; 多 / 空 alone
    ("LTC giriş: 84.2 stop: 81.9 hedef: 88.0 long", "long", "LTC-USDT", ["84.2"], "81.9", ["88.0"], None),
    ("空 DOT 入场 4.35 止损 4.52 止盈 4.10", "short", "DOT-USDT", ["4.35"], "4.52", ["4.10"], None),
    ("VENTA ATOM/USDT\nEntrada: 6.20\nObjetivo 1: 5.90\nObjetivo 2: 5.70\nStop: 6.45", "short", "ATOM-USDT",
     ["6.20"], "6.45", ["5.90", "5.70"], None),
    ("AAVE/USDT venda\nEntrada: 182\nAlvo 1: 176\nAlvo 2: 171\nStop: 188", "short", "AAVE-USDT", ["182"],
     "188", ["176", "171"], None),
    # a spot channel's layout: `Buy:` is the entry, `Sell:` the targets
    ("#FET/USDT\nBuy: 1.21 - 1.24\nSell: 1.30 - 1.36 - 1.45\nStop: 1.15", "long", "FET-USDT",
     ["1.21", "1.24"], "1.15", ["1.30", "1.36", "1.45"], None),
]  # fmt: skip


@pytest.mark.parametrize(("text", "side", "symbol", "entries", "stop", "targets", "leverage"), SHAPES)
def test_parser_reads_real_channel_shape(
    text: str, side: str, symbol: str, entries: list[str], stop: str, targets: list[str], leverage: int | None
) -> None:
    result = parse(text)
    assert result.signal is not None, result.reason
    signal = result.signal
    assert (signal.side, signal.symbol) == (side, symbol)
    assert signal.entries == tuple(D(e) for e in entries)
    assert signal.stop_loss == D(stop)
    assert signal.take_profits == tuple(D(t) for t in targets)
    assert signal.leverage == leverage


def test_parser_refuses_a_side_the_prices_do_not_agree_on() -> None:
    result = parse("sei/usdt\nenter 0.48\nstop 0.45\ntargets 0.46")
    assert result.kind == "invalid"


def test_parser_refuses_market_reading_when_prices_sit_outside_labels() -> None:
    result = parse("LONG OP-USDT on the 1.95 retest\nwatch this one\n\nSL: 1.85\nTP: 2.05")
    assert result.kind == "invalid"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # one price or two? (a decimal comma with four decimals, or a list without a blank)
        ("LONG ETH Entry 3200 SL 3100 TP 3300,3400", "can be read as one price (3300.3400) or as two"),
        # an entry label whose price is not read is never a market order
        ("Re-entry SOL long wait 142 SL 136 TP 150", "its Re-entry has no price that can be read"),
        # more targets than a signal may carry
        (
            "DOGE LONG\nEntry: 0.100\nSL: 0.090\nTargets: "
            + " ".join(f"0.1{n:02d}" for n in range(1, 13)),
            "at most 10 take-profit targets are supported, got 12",
        ),
        # BUY: and SELL: as labels twice over: no layout to read them by
        ("BTC\nBuy: 60000\nSell: 62000\nBuy: 59000\nSL 58000", "it gives both LONG and SHORT"),
    ],
)
def test_parser_refuses_what_it_cannot_read_safely(text: str, reason: str) -> None:
    result = parse(text)
    assert result.kind == "invalid", result
    assert reason.lower() in (result.reason or "").lower()


@pytest.mark.parametrize(
    ("text", "entries", "targets"),
    [
        ("LONG BTC Entry 60000 SL 58000 TP 0,415", None, None),  # a decimal comma: refused as out of scale
        ("LONG ADA Entry 0,415 SL 0,398 TP 0,44", ["0.415"], ["0.44"]),
        ("LONG ADA Entry 1,2345 SL 1,1 TP 1,35", ["1.2345"], ["1.35"]),
        ("LONG BTC Entry 60,500 SL 59,000 TP 62,000", ["60500"], ["62000"]),
    ],
)
def test_parser_tells_decimal_commas_from_thousands(
    text: str, entries: list[str] | None, targets: list[str] | None
) -> None:
    result = parse(text)
    if entries is None:
        assert result.kind == "invalid"
        return
    assert result.signal is not None, result.reason
    assert result.signal.entries == tuple(D(e) for e in entries)
    assert result.signal.take_profits == tuple(D(t) for t in targets or ())
