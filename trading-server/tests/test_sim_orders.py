"""Orders against the simulator over httpx.ASGITransport: fills, limits, refusals, P&L and fees."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from hit_server.blofin_sim import Simulator, create_app
from hit_server.blofin_sim.testing import make_auth, make_config, sim_http

ORDER = "/api/v1/trade/order"


async def place(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"instId": "BTC-USDT", "marginMode": "cross", "side": "buy", "orderType": "market", "size": "1"}
    body.update(fields)
    result: dict[str, Any] = (await client.post(ORDER, json=body)).json()
    return result


def item_code(body: dict[str, Any]) -> str:
    """The code of the first order item, the way BloFin reports a refused order (top-level code 1)."""
    return str(body["data"][0]["code"]) if body.get("data") else str(body["code"])


async def move(client: httpx.AsyncClient, inst_id: str, price: str) -> None:
    resp = await client.post("/sim/price", json={"instId": inst_id, "price": price})
    assert resp.json()["code"] == "0"


async def detail(client: httpx.AsyncClient, order_id: str, inst_id: str = "BTC-USDT") -> dict[str, Any]:
    body = (await client.get(f"/api/v1/trade/order-detail?instId={inst_id}&orderId={order_id}")).json()
    data: dict[str, Any] = body["data"]
    return data


async def test_order_market_buy_fills_at_last_with_taker_fee(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    body = await place(client, size="10", clientOrderId="entry1")
    order_id = body["data"][0]["orderId"]
    order = await detail(client, order_id)
    pos = (await client.get("/api/v1/account/positions?instId=BTC-USDT")).json()["data"][0]
    # 10 contracts x 0.001 BTC x 60000 = 600 USDT notional; taker 0.06 % = 0.36
    assert body["code"] == "0"
    assert (order["state"], order["filledSize"], order["averagePrice"], order["fee"]) == (
        "filled", "10", "60000", "0.36")
    assert (pos["positions"], pos["averagePrice"], pos["marginMode"], pos["positionSide"]) == (
        "10", "60000", "cross", "net")
    assert sim.cash == Decimal("99999.64")


async def test_order_market_sell_opens_short_with_negative_positions(client: httpx.AsyncClient) -> None:
    await place(client, side="sell", size="2.5")
    await move(client, "BTC-USDT", "59000")
    pos = (await client.get("/api/v1/account/positions")).json()["data"][0]
    assert pos["positions"] == "-2.5"
    assert Decimal(pos["unrealizedPnl"]) == Decimal("2.5")  # 2.5 x 0.001 x 1000


async def test_order_round_trip_pnl_and_fees(client: httpx.AsyncClient, sim: Simulator) -> None:
    await place(client, instId="ETH-USDT", size="100")  # 100 x 0.01 ETH at 3000 = 3000 USDT
    await move(client, "ETH-USDT", "3100")
    bal = (await client.get("/api/v1/account/balance")).json()["data"]["details"][0]
    assert Decimal(bal["equity"]) == Decimal(100000) - Decimal("1.8") + Decimal(100)
    await client.post("/api/v1/trade/close-position", json={"instId": "ETH-USDT", "marginMode": "cross"})
    hist = (await client.get("/api/v1/account/positions-history")).json()["data"][0]
    fills = (await client.get("/api/v1/trade/fills-history?instId=ETH-USDT")).json()["data"]
    # open fee 3000 x 0.0006 = 1.8; close fee 3100 x 0.0006 = 1.86; gross P&L 100
    assert (hist["pnl"], hist["fee"], hist["realizedPnl"]) == ("100", "3.66", "96.34")
    assert (hist["openAveragePrice"], hist["closeAveragePrice"]) == ("3000", "3100")
    assert sorted(f["fee"] for f in fills) == ["1.8", "1.86"]
    assert sim.cash == Decimal("100096.34")
    assert sim.positions == {}


async def test_order_adds_to_position_at_weighted_average(client: httpx.AsyncClient) -> None:
    await place(client, size="1")
    await move(client, "BTC-USDT", "62000")
    await place(client, size="3")
    pos = (await client.get("/api/v1/account/positions")).json()["data"][0]
    assert (pos["positions"], pos["averagePrice"]) == ("4", "61500")


async def test_order_limit_rests_until_price_crosses(client: httpx.AsyncClient, sim: Simulator) -> None:
    body = await place(client, orderType="limit", price="59000", size="2", clientOrderId="lim1")
    order_id = body["data"][0]["orderId"]
    pending = (await client.get("/api/v1/trade/orders-pending")).json()["data"]
    frozen = sim.account().order_frozen
    await move(client, "BTC-USDT", "59000.1")
    still = await detail(client, order_id)
    await move(client, "BTC-USDT", "58500")
    filled = await detail(client, order_id)
    assert [o["orderId"] for o in pending] == [order_id]
    assert frozen == Decimal("2") * Decimal("0.001") * Decimal(59000) / 3
    assert still["state"] == "live"
    assert (filled["state"], filled["averagePrice"], filled["fee"]) == ("filled", "59000", "0.0236")
    assert sim.account().order_frozen == 0


async def test_order_limit_sell_fills_when_price_rises_to_it(client: httpx.AsyncClient) -> None:
    body = await place(client, side="sell", orderType="limit", price="61000")
    await move(client, "BTC-USDT", "61500")
    order = await detail(client, body["data"][0]["orderId"])
    assert (order["state"], order["averagePrice"]) == ("filled", "61000")


async def test_order_marketable_limit_fills_at_once_as_taker(client: httpx.AsyncClient) -> None:
    body = await place(client, orderType="limit", price="60500")
    order = await detail(client, body["data"][0]["orderId"])
    assert (order["state"], order["averagePrice"], order["fee"]) == ("filled", "60000", "0.036")


async def test_order_post_only_that_would_take_is_canceled(client: httpx.AsyncClient) -> None:
    body = await place(client, orderType="post_only", price="60500")
    order = await detail(client, body["data"][0]["orderId"])
    assert order["state"] == "canceled"


@pytest.mark.parametrize("order_type", ["ioc", "fok"])
async def test_order_ioc_fok_not_marketable_is_canceled(client: httpx.AsyncClient, order_type: str) -> None:
    body = await place(client, orderType=order_type, price="59000")
    assert (await detail(client, body["data"][0]["orderId"]))["state"] == "canceled"
    assert (await client.get("/api/v1/account/positions")).json()["data"] == []


async def test_order_cancel_then_cancel_again_gives_102068(client: httpx.AsyncClient) -> None:
    body = await place(client, orderType="limit", price="59000", clientOrderId="c1")
    cancel = "/api/v1/trade/cancel-order"
    first = await client.post(cancel, json={"instId": "BTC-USDT", "clientOrderId": "c1"})
    again = (await client.post("/api/v1/trade/cancel-order",
                               json={"instId": "BTC-USDT", "orderId": body["data"][0]["orderId"]}))
    hist = (await client.get("/api/v1/trade/orders-history")).json()["data"]
    assert first.json()["data"][0]["code"] == "0"
    assert item_code(again.json()) == "102068"
    assert (hist[0]["state"], hist[0]["cancelSource"]) == ("canceled", "user_canceled")


async def test_order_cancel_of_unknown_order_gives_102068(client: httpx.AsyncClient) -> None:
    resp = await client.post("/api/v1/trade/cancel-order", json={"instId": "BTC-USDT", "orderId": "42"})
    assert item_code(resp.json()) == "102068"


async def test_order_reduce_only_without_position_gives_102022(client: httpx.AsyncClient) -> None:
    assert item_code(await place(client, side="sell", reduceOnly="true")) == "102022"


async def test_order_reduce_only_never_flips(client: httpx.AsyncClient, sim: Simulator) -> None:
    await place(client, size="2")
    body = await place(client, side="sell", size="5", reduceOnly=True)
    order = await detail(client, body["data"][0]["orderId"])
    assert sim.positions == {}
    assert order["filledSize"] == "2"
    assert item_code(await place(client, side="sell", size="1", reduceOnly="true")) == "102022"


async def test_order_reduce_only_same_side_as_position_gives_102022(client: httpx.AsyncClient) -> None:
    await place(client, size="2")
    assert item_code(await place(client, side="buy", size="1", reduceOnly="true")) == "102022"


async def test_order_without_reduce_only_flips_through_zero(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    await place(client, size="2")
    await place(client, side="sell", size="5")
    pos = (await client.get("/api/v1/account/positions")).json()["data"][0]
    assert (pos["positions"], pos["averagePrice"]) == ("-3", "60000")
    assert len(sim.position_history) == 1


async def test_order_duplicate_client_order_id_gives_102002(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    first = await place(client, clientOrderId="sig42entry")
    second = await place(client, clientOrderId="sig42entry", size="3")
    assert first["code"] == "0"
    assert second["code"] == "1"
    assert second["data"][0] == {"orderId": None, "clientOrderId": "sig42entry", "code": "102002",
                                 "msg": "Duplicate customized order ID"}
    assert len(sim.orders) == 1


@pytest.mark.parametrize("cid", ["has-dash", "x" * 33, "spa ce", "ü1"])
async def test_order_bad_client_order_id_gives_152009(client: httpx.AsyncClient, cid: str) -> None:
    assert item_code(await place(client, clientOrderId=cid)) == "152009"


async def test_order_insufficient_margin_gives_103003(sim: Simulator) -> None:
    app = create_app(make_config(balance=Decimal(100)))
    async with sim_http(app, make_auth(app.state.sim.config)) as client:
        # 10 contracts = 600 USDT notional at 3x = 200 USDT margin > 100
        body = await place(client, size="10")
        small = await place(client, size="1")
    assert body["code"] == "1"
    assert item_code(body) == "103003"
    assert small["code"] == "0"


async def test_order_leverage_changes_margin_needed(client: httpx.AsyncClient, sim: Simulator) -> None:
    resp = await client.post("/api/v1/account/set-leverage",
                             json={"instId": "BTC-USDT", "leverage": "10", "marginMode": "cross"})
    await place(client, size="10")
    info = (await client.get("/api/v1/account/leverage-info?instId=BTC-USDT&marginMode=cross")).json()
    assert resp.json()["data"] == {"leverage": "10", "marginMode": "cross", "instId": "BTC-USDT",
                                   "positionSide": "net"}
    assert info["data"]["leverage"] == "10"
    assert sim.account().position_margin == Decimal(60)


async def test_order_unknown_instrument_gives_152014(client: httpx.AsyncClient) -> None:
    body = await place(client, instId="NOPE-USDT")
    assert body["code"] == "152014"


async def test_order_suspended_instrument_refused(client: httpx.AsyncClient) -> None:
    body = await place(client, instId="LUNA-USDT")
    assert body["code"] == "152002"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"size": "0.05"}, "152002"),  # under minSize 0.1
        ({"size": "0.15"}, "152002"),  # not a lotSize multiple
        ({"size": "6000.1"}, "102015"),  # over maxMarketSize
        ({"orderType": "limit", "price": "50000", "size": "24000.1"}, "102014"),
        ({"orderType": "limit", "price": "59000.05"}, "152002"),  # off the 0.1 tick
        ({"orderType": "limit"}, "152001"),  # no price
        ({"size": ""}, "152001"),
        ({"side": "long"}, "152002"),
        ({"marginMode": "portfolio"}, "152002"),
        ({"positionSide": "long"}, "102089"),
        ({"size": "abc"}, "152002"),
    ],
)
async def test_order_shape_violations_refused(
    client: httpx.AsyncClient, sim: Simulator, fields: dict[str, str], code: str
) -> None:
    assert item_code(await place(client, **fields)) == code
    assert sim.orders == {}


async def test_order_body_not_json_gives_152004(client: httpx.AsyncClient) -> None:
    resp = await client.post(ORDER, content=b"[1,2")
    assert resp.json()["code"] == "152004"


async def test_order_top_failure_envelope_when_configured() -> None:
    app = create_app(make_config(failure_envelope="top"))
    async with sim_http(app, make_auth(app.state.sim.config)) as client:
        body = await place(client, side="sell", reduceOnly="true")
    assert body["code"] == "102022"
    assert body["data"][0]["code"] == "102022"


async def test_order_zero_failure_envelope_keeps_code_only_in_item() -> None:
    app = create_app(make_config(failure_envelope="zero"))
    async with sim_http(app, make_auth(app.state.sim.config)) as client:
        body = await place(client, side="sell", reduceOnly="true")
    assert body["code"] == "0"
    assert body["data"][0]["code"] == "102022"
    assert body["data"][0]["orderId"] is None


async def test_order_batch_reports_each_item(client: httpx.AsyncClient) -> None:
    rows = [
        {"instId": "SOL-USDT", "marginMode": "cross", "side": "buy", "orderType": "market", "size": "1",
         "clientOrderId": "b1"},
        {"instId": "SOL-USDT", "marginMode": "cross", "side": "buy", "orderType": "market", "size": "1",
         "clientOrderId": "b1"},
    ]
    body = (await client.post("/api/v1/trade/batch-orders", json=rows)).json()
    assert body["code"] == "2"
    assert [item["code"] for item in body["data"]] == ["0", "102002"]


async def test_order_position_mode_switch_refused_with_open_position(client: httpx.AsyncClient) -> None:
    await place(client)
    resp = await client.post("/api/v1/account/set-position-mode", json={"positionMode": "long_short_mode"})
    same = await client.post("/api/v1/account/set-position-mode", json={"positionMode": "net_mode"})
    assert resp.json()["code"] == "110019"
    assert same.json()["code"] == "0"


async def test_order_isolated_position_reports_margin(client: httpx.AsyncClient, sim: Simulator) -> None:
    await place(client, marginMode="isolated", size="30")  # 1800 notional / 3 = 600
    pos = (await client.get("/api/v1/account/positions")).json()["data"][0]
    bal = (await client.get("/api/v1/account/balance")).json()["data"]
    assert (pos["marginMode"], pos["margin"]) == ("isolated", "600")
    assert "initialMargin" not in pos
    assert bal["isolatedEquity"] == "600"
    assert item_code(await place(client, marginMode="cross", size="1")) == "152002"


async def test_order_detail_of_unknown_order_is_null(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/trade/order-detail?instId=BTC-USDT&clientOrderId=never")).json()
    assert body == {"code": "0", "msg": "", "data": None}


async def test_order_detail_needs_inst_id(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/trade/order-detail?clientOrderId=x")).json()
    assert body["code"] == "152001"


async def test_order_leverage_change_refused_with_pending_cross_order(client: httpx.AsyncClient) -> None:
    await place(client, orderType="limit", price="55000")
    resp = await client.post("/api/v1/account/set-leverage",
                             json={"instId": "BTC-USDT", "leverage": 10, "marginMode": "cross"})
    too_high = await client.post("/api/v1/account/set-leverage",
                                 json={"instId": "ETH-USDT", "leverage": "151", "marginMode": "cross"})
    assert resp.json()["code"] == "110006"
    assert too_high.json()["code"] == "152002"


async def test_order_margin_mode_switch_refused_with_open_order(client: httpx.AsyncClient) -> None:
    body = await place(client, orderType="limit", price="55000")
    refused = await client.post("/api/v1/account/set-margin-mode", json={"marginMode": "isolated"})
    order_id = body["data"][0]["orderId"]
    await client.post("/api/v1/trade/cancel-order", json={"instId": "BTC-USDT", "orderId": order_id})
    allowed = await client.post("/api/v1/account/set-margin-mode", json={"marginMode": "isolated"})
    assert refused.json()["code"] == "110019"
    assert allowed.json()["data"] == {"marginMode": "isolated"}


async def test_order_position_rows_follow_each_fill_and_price_move(client: httpx.AsyncClient) -> None:
    """Position rows are kept between changes: a read after a fill or a price move shows the new values."""

    async def row() -> dict[str, Any]:
        data: dict[str, Any] = (await client.get("/api/v1/account/positions")).json()["data"][0]
        return data

    await place(client, size="2")
    first = await row()
    again = await row()
    assert again["positions"] == "2" and again["unrealizedPnl"] == first["unrealizedPnl"]
    await move(client, "BTC-USDT", "61000")
    moved = await row()
    assert moved["markPrice"] == "61000" and moved["unrealizedPnl"] != again["unrealizedPnl"]
    await place(client, size="1")
    assert (await row())["positions"] == "3"


def test_order_position_row_handed_out_is_a_copy(sim: Simulator) -> None:
    from hit_server.blofin_sim import views
    from hit_server.blofin_sim.models import SimPosition

    pos = SimPosition("p1", "BTC-USDT", "cross", 10, 1, 1, size=Decimal(2), average_price=Decimal(60000))
    inst, mark = sim.instruments["BTC-USDT"], Decimal(61000)
    first = views.position_view(inst, pos, mark)
    first["positions"] = "999"
    assert views.position_view(inst, pos, mark)["positions"] == "2"
