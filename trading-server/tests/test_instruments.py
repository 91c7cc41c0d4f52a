from decimal import Decimal

import pytest

from hit_server.exchange.instruments import Instrument

BTC = Instrument.from_blofin(
    {
        "instId": "BTC-USDT", "baseCurrency": "BTC", "quoteCurrency": "USDT", "contractValue": "0.001",
        "lotSize": "0.1", "minSize": "0.1", "tickSize": "0.1", "maxLeverage": "150",
        "maxLimitSize": "100000", "maxMarketSize": "5000", "state": "live",
    }
)


@pytest.mark.parametrize(
    ("base", "contracts"),
    [("0.01", "10.0"), ("0.01234", "12.3"), ("0.00019", "0.1"), ("0.00009", "0")],
)
def test_instrument_contracts_for_base_rounds_down_to_lot(base, contracts):
    assert BTC.contracts_for_base(Decimal(base)) == Decimal(contracts)


def test_instrument_size_problem_refuses_under_min_size_instead_of_rounding_up():
    assert "under the minimum" in (BTC.size_problem(Decimal("0.0"), market=True) or "")
    assert BTC.size_problem(Decimal("0.1"), market=True) is None
    assert "exceeds the maximum" in (BTC.size_problem(Decimal("5000.1"), market=True) or "")
    assert BTC.size_problem(Decimal("5000.1"), market=False) is None


def test_instrument_round_price_to_tick():
    assert BTC.round_price(Decimal("60000.04")) == Decimal("60000.0")
    assert BTC.round_price(Decimal("60000.05")) == Decimal("60000.1")
    assert BTC.round_price(Decimal("60000.09"), "down") == Decimal("60000.0")
    assert BTC.round_price(Decimal("60000.01"), "up") == Decimal("60000.1")


def test_instrument_round_trips_blofin_row():
    assert Instrument.from_blofin(BTC.to_blofin()) == BTC


def test_instrument_to_blofin_writes_plain_decimals():
    pepe = Instrument.from_blofin({**BTC.to_blofin(), "instId": "PEPE-USDT", "tickSize": "0.000000001"})
    assert pepe.to_blofin()["tickSize"] == "0.000000001"
