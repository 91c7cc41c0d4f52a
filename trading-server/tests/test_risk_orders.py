"""Ladders and take-profit splits: whole lots, exact sums, nothing under minSize."""

from decimal import Decimal as D

import pytest

from hit_server.exchange.instruments import Instrument
from hit_server.risk.engine import PlannedOrder, ladder, split_take_profits

BTC = Instrument("BTC-USDT", "BTC", "USDT", D("0.001"), D("0.1"), D("0.1"), D("0.1"), 150, D("1e5"), D("1e5"))
XRP = Instrument("XRP-USDT", "XRP", "USDT", D("1"), D("1"), D("10"), D("0.0001"), 75, D("1e6"), D("1e6"))
TPS = (D("61000"), D("62000"), D("63000"))


def pairs(orders: tuple[PlannedOrder, ...]) -> list[tuple[str, str]]:
    return [(str(o.price), str(o.size)) for o in orders]


@pytest.mark.parametrize(
    ("instrument", "total", "expected"),
    [
        (BTC, "1.0", [("61000", "0.4"), ("62000", "0.3"), ("63000", "0.3")]),  # leftover lot to TP1
        (BTC, "0.9", [("61000", "0.3"), ("62000", "0.3"), ("63000", "0.3")]),
        (BTC, "0.2", [("62000", "0.1"), ("63000", "0.1")]),  # TP1's slice merged into TP2
        (BTC, "0.1", [("63000", "0.1")]),  # the last target absorbs everything
        (XRP, "25", [("62000", "13"), ("63000", "12")]),  # 8 per target would be under minSize 10
        (XRP, "30", [("61000", "10"), ("62000", "10"), ("63000", "10")]),
    ],
)
def test_risk_split_take_profits_even_by_lot_with_merges(instrument, total, expected):
    orders = split_take_profits(D(total), TPS, instrument)
    assert pairs(orders) == expected
    assert sum(o.size for o in orders) == D(total)


def test_risk_split_take_profits_one_target_gets_everything():
    assert split_take_profits(D("3.7"), (D("65000"),), BTC) == (PlannedOrder(D("65000"), D("3.7")),)


@pytest.mark.parametrize(
    ("total", "n_prices", "picked"),
    [
        ("0.3", 3, [0, 1, 2]),
        ("0.2", 3, [0, 2]),
        ("0.1", 3, [1]),
        ("0.3", 5, [0, 2, 4]),
        ("0.3", 4, [0, 2, 3]),
        ("0.2", 4, [0, 3]),
        ("0.1", 4, [1]),
    ],
)
def test_risk_ladder_keeps_rungs_spread_across_the_prices(total, n_prices, picked):
    prices = [D(60000 - 100 * i) for i in range(n_prices)]
    orders = ladder(D(total), prices, BTC)
    assert [o.price for o in orders] == [prices[i] for i in picked]
    assert all(o.size == D("0.1") for o in orders)


def test_risk_ladder_gives_leftover_lots_to_the_first_rungs():
    orders = ladder(D("1.1"), [D("3"), D("2"), D("1")], BTC)
    assert [o.size for o in orders] == [D("0.4"), D("0.4"), D("0.3")]


@pytest.mark.parametrize(
    ("total", "prices", "message"),
    [
        ("0.05", [D("1")], "under the minimum"),
        ("0.15", [D("1")], "not a multiple"),
        ("1", [], "at least one"),
    ],
)
def test_risk_ladder_and_split_refuse_sizes_the_caller_should_have_rejected(total, prices, message):
    for cut in (ladder, split_take_profits):
        with pytest.raises(ValueError, match=message):
            cut(D(total), prices, BTC)
