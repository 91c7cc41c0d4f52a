"""Requests validate before anything is signed; replies parse BloFin's string-typed rows."""

from decimal import Decimal

import pytest
from pydantic import ValidationError

from hit_server.exchange.blofin_models import Balance, Order, OrderRequest, Position, TpslOrder, TpslRequest


def market(**overrides: object) -> OrderRequest:
    values: dict[str, object] = {"inst_id": "BTC-USDT", "side": "buy", "order_type": "market",
                                 "size": Decimal("0.1"), "margin_mode": "cross", "client_order_id": "sig1e1"}
    values.update(overrides)
    return OrderRequest(**values)  # type: ignore[arg-type]


def test_order_request_renders_blofin_body_with_market_tpsl_prices():
    body = market(tp_trigger_price=Decimal("66000"), sl_trigger_price=Decimal("57000.5")).to_blofin()
    assert body == {
        "instId": "BTC-USDT", "marginMode": "cross", "positionSide": "net", "side": "buy",
        "orderType": "market", "size": "0.1", "reduceOnly": "false", "clientOrderId": "sig1e1",
        "tpTriggerPrice": "66000", "tpOrderPrice": "-1", "slTriggerPrice": "57000.5", "slOrderPrice": "-1",
    }


def test_order_request_writes_decimals_without_exponent():
    req = market(order_type="limit", price=Decimal("1E-7"), size=Decimal("1E+3"), reduce_only=True)
    body = req.to_blofin()
    assert body["price"] == "0.0000001"
    assert body["size"] == "1000"
    assert body["reduceOnly"] == "true"


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"price": Decimal(1)}, "market order takes no price"),
        ({"order_type": "limit"}, "needs a positive price"),
        ({"size": Decimal(0)}, "greater than 0"),
        ({"client_order_id": "has-dash"}, "letters, digits or underscores"),
        ({"client_order_id": "x" * 33}, "letters, digits or underscores"),
        ({"tp_order_price": Decimal(5)}, "tp_order_price needs tp_trigger_price"),
        ({"sl_trigger_price": Decimal(-3)}, "sl_trigger_price must be positive"),
        ({"side": "long"}, "side"),
        ({"margin_mode": "portfolio"}, "margin_mode"),
    ],
)
def test_order_request_refuses_bad_input(overrides, problem):
    with pytest.raises(ValidationError, match=problem):
        market(**overrides)


def test_order_request_is_frozen():
    req = market()
    with pytest.raises(ValidationError):
        req.size = Decimal(5)  # type: ignore[misc]


def test_tpsl_request_whole_position_and_required_trigger():
    req = TpslRequest(inst_id="ETH-USDT", side="sell", margin_mode="cross", size=Decimal(-1),
                      client_order_id="sig1sl", sl_trigger_price=Decimal("2900"),
                      sl_order_price=Decimal("2890"))
    assert req.to_blofin() == {
        "instId": "ETH-USDT", "marginMode": "cross", "positionSide": "net", "side": "sell", "size": "-1",
        "reduceOnly": "true", "clientOrderId": "sig1sl", "slTriggerPrice": "2900", "slOrderPrice": "2890",
    }
    with pytest.raises(ValidationError, match="needs tp_trigger_price or sl_trigger_price"):
        TpslRequest(inst_id="ETH-USDT", side="sell", margin_mode="cross", size=Decimal(1),
                    client_order_id="a")
    with pytest.raises(ValidationError, match="size must be positive or -1"):
        TpslRequest(inst_id="ETH-USDT", side="sell", margin_mode="cross", size=Decimal(-2),
                    client_order_id="a", sl_trigger_price=Decimal(1))


def test_order_from_blofin_reads_absent_values_as_none():
    row = {"orderId": "1", "clientOrderId": None, "instId": "ETH-USDT", "side": "sell", "orderType": "limit",
           "price": "1514.15", "size": "1.000000000000000000", "filledSize": "0", "averagePrice": "",
           "state": "live", "reduceOnly": "false", "fee": "0", "pnl": "0", "createTime": "1697031292762",
           "updateTime": "1697031292788", "orderCategory": "normal", "tpTriggerPrice": "1688",
           "slTriggerPrice": None}
    order = Order.from_blofin(row)
    assert order.client_order_id == ""
    assert order.price == Decimal("1514.15")
    assert order.size == Decimal(1)
    assert order.average_price is None
    assert order.tp_trigger_price == Decimal(1688)
    assert order.sl_trigger_price is None
    assert order.is_open and not order.reduce_only
    with pytest.raises(ValidationError):
        Order.from_blofin({**row, "state": "exploded"})


def test_position_balance_and_tpsl_parse_blofin_rows():
    position = Position.from_blofin({
        "positionId": "7", "instId": "BTC-USDT", "marginMode": "isolated", "positionSide": "net",
        "positions": "-3", "availablePositions": "-3", "averagePrice": "60000", "markPrice": "59000",
        "unrealizedPnl": "3", "leverage": "5", "liquidationPrice": ""})
    assert position.positions == Decimal(-3)
    assert position.liquidation_price is None
    assert position.leverage == 5
    balance = Balance.from_blofin({"totalEquity": "10", "details": [
        {"currency": "BTC", "equity": "1", "available": "1", "frozen": "0"},
        {"currency": "USDT", "equity": "9.5", "available": "8", "frozen": "1.5"}]})
    assert (balance.equity, balance.available, balance.frozen) == (Decimal("9.5"), Decimal(8), Decimal("1.5"))
    tpsl = TpslOrder.from_blofin({"tpslId": "2411", "clientOrderId": "aabbc", "instId": "ETH-USDT",
                                  "side": "sell", "size": "-1", "tpTriggerPrice": None,
                                  "slTriggerPrice": "1222.0", "state": "effective"})
    assert tpsl.size == Decimal(-1) and tpsl.tp_trigger_price is None and tpsl.state == "effective"
