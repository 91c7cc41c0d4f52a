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
