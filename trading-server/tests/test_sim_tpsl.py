"""TP/SL orders: attached to entries, placed on positions, fired in the order a price move crosses them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from hit_server.blofin_sim import Simulator

TPSL = "/api/v1/trade/order-tpsl"


async def place(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"instId": "SOL-USDT", "marginMode": "cross", "side": "buy", "orderType": "market", "size": "10"}
    body.update(fields)
    result: dict[str, Any] = (await client.post("/api/v1/trade/order", json=body)).json()
    return result


async def tpsl(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"instId": "SOL-USDT", "marginMode": "cross", "side": "sell", "size": "-1"}
    body.update(fields)
    result: dict[str, Any] = (await client.post(TPSL, json=body)).json()
    return result


async def move(client: httpx.AsyncClient, price: str, inst_id: str = "SOL-USDT") -> None:
    assert (await client.post("/sim/price", json={"instId": inst_id, "price": price})).json()["code"] == "0"


def code(body: dict[str, Any]) -> str:
    data = body.get("data")
    if isinstance(data, list) and data:
        return str(data[0]["code"])
    if isinstance(data, dict):
        return str(data["code"])
    return str(body["code"])


async def pending_tpsl(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await client.get("/api/v1/trade/orders-tpsl-pending")).json()["data"]
    return rows


async def test_tpsl_attached_becomes_position_tpsl_when_entry_fills(client: httpx.AsyncClient) -> None:
    body = await place(
        client, slTriggerPrice="140", slOrderPrice="-1", tpTriggerPrice="170", tpOrderPrice="-1"
    )
    rows = await pending_tpsl(client)
    order = (await client.get(
        f"/api/v1/trade/order-detail?instId=SOL-USDT&orderId={body['data'][0]['orderId']}")).json()["data"]
    assert len(rows) == 1
    assert (rows[0]["side"], rows[0]["size"], rows[0]["slTriggerPrice"], rows[0]["tpTriggerPrice"]) == (
        "sell", "10", "140", "170")
    assert (order["slTriggerPrice"], order["tpTriggerPrice"]) == ("140", "170")
    assert order["algoId"] == rows[0]["tpslId"]


async def test_tpsl_attached_waits_for_limit_entry(client: httpx.AsyncClient) -> None:
    await place(client, orderType="limit", price="145", slTriggerPrice="135", tpTriggerPrice="160")
    before = await pending_tpsl(client)
    await move(client, "144")
    after = await pending_tpsl(client)
    assert before == []
    assert [r["slTriggerPrice"] for r in after] == ["135"]


async def test_tpsl_stop_loss_fires_and_closes_position(client: httpx.AsyncClient, sim: Simulator) -> None:
    await place(client, slTriggerPrice="140", tpTriggerPrice="170")
    await move(client, "139")
    hist = (await client.get("/api/v1/trade/orders-tpsl-history")).json()["data"]
    orders = (await client.get("/api/v1/trade/orders-history?instId=SOL-USDT")).json()["data"]
    # fills at the trigger level it crossed: 10 x (140 - 150) = -100; fees 1500 x 0.0006 + 1400 x 0.0006
    assert sim.positions == {}
    assert (hist[0]["state"], hist[0]["actualSide"], hist[0]["actualSize"]) == ("effective", "sl", "10")
    assert orders[0]["orderCategory"] == "sl"
    assert orders[0]["averagePrice"] == "140"
    assert sim.cash == Decimal(100000) - 100 - Decimal("0.9") - Decimal("0.84")


async def test_tpsl_take_profit_fires_on_the_way_up(client: httpx.AsyncClient, sim: Simulator) -> None:
    await place(client, slTriggerPrice="140", tpTriggerPrice="170")
    await move(client, "175")
    assert sim.positions == {}
    assert sim.position_history[-1].position.realized_pnl == Decimal(200)


async def test_tpsl_fire_in_the_order_the_move_crosses_them(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    await place(client, size="30")
    first = await tpsl(client, size="10", tpTriggerPrice="160", clientOrderId="tp1")
    second = await tpsl(client, size="10", tpTriggerPrice="155", clientOrderId="tp2")
    third = await tpsl(client, size="10", tpTriggerPrice="165", clientOrderId="tp3")
    await move(client, "170")
    fired = [f.price for f in sim.fills[1:]]
    assert [code(b) for b in (first, second, third)] == ["0", "0", "0"]
    assert fired == [Decimal(155), Decimal(160), Decimal(165)]
    assert sim.positions == {}


async def test_tpsl_short_position_triggers_reverse(client: httpx.AsyncClient, sim: Simulator) -> None:
    await place(client, side="sell", slTriggerPrice="160", tpTriggerPrice="130")
    await move(client, "155")
    assert "SOL-USDT" in sim.positions
    await move(client, "161")
    assert sim.positions == {}
    assert sim.position_history[-1].position.realized_pnl == Decimal(-100)


async def test_tpsl_remaining_orders_canceled_when_position_closes(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    await place(client, slTriggerPrice="140")
    await tpsl(client, tpTriggerPrice="180", clientOrderId="tpx")
    await client.post("/api/v1/trade/close-position", json={"instId": "SOL-USDT", "marginMode": "cross"})
    hist = (await client.get("/api/v1/trade/orders-tpsl-history")).json()["data"]
    assert await pending_tpsl(client) == []
    assert sorted(r["state"] for r in hist) == ["canceled", "canceled"]


async def test_tpsl_limit_order_price_rests_after_trigger(client: httpx.AsyncClient, sim: Simulator) -> None:
    await place(client)
    await tpsl(client, slTriggerPrice="140", slOrderPrice="141")
    await move(client, "139.5")
    resting = (await client.get("/api/v1/trade/orders-pending")).json()["data"]
    await move(client, "141.5")
    assert [(o["orderType"], o["price"], o["reduceOnly"]) for o in resting] == [("limit", "141", "true")]
    assert sim.positions == {}
    assert sim.fills[-1].price == Decimal(141)


async def test_tpsl_marketable_limit_order_price_fills_at_once(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    await place(client)
    await tpsl(client, slTriggerPrice="140", slOrderPrice="139")
    await move(client, "138")
    assert sim.positions == {}
    assert sim.fills[-1].price == Decimal(140)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"tpTriggerPrice": "149"}, "102037"),
        ({"slTriggerPrice": "151"}, "102038"),
        ({"side": "sell", "tpTriggerPrice": "151"}, "102039"),
        ({"side": "sell", "slTriggerPrice": "149"}, "102040"),
        ({"orderType": "limit", "price": "145", "slTriggerPrice": "146"}, "102051"),
        ({"orderType": "limit", "price": "145", "tpTriggerPrice": "144"}, "102052"),
        ({"side": "sell", "orderType": "limit", "price": "155", "slTriggerPrice": "154"}, "102047"),
        ({"side": "sell", "orderType": "limit", "price": "155", "tpTriggerPrice": "156"}, "102049"),
        ({"tpOrderPrice": "170"}, "152001"),
    ],
)
async def test_tpsl_attached_on_wrong_side_refused(
    client: httpx.AsyncClient, sim: Simulator, fields: dict[str, str], expected: str
) -> None:
    assert code(await place(client, **fields)) == expected
    assert sim.orders == {}


async def test_tpsl_on_position_wrong_side_refused(client: httpx.AsyncClient) -> None:
    await place(client)
    assert code(await tpsl(client, slTriggerPrice="151")) == "102038"
    assert code(await tpsl(client, tpTriggerPrice="149")) == "102037"
    assert code(await tpsl(client, side="buy", slTriggerPrice="140")) == "102022"


async def test_tpsl_without_position_refused(client: httpx.AsyncClient) -> None:
    assert code(await tpsl(client, slTriggerPrice="140")) == "102022"


async def test_tpsl_duplicate_client_order_id_shared_with_orders(client: httpx.AsyncClient) -> None:
    await place(client, clientOrderId="sig7")
    assert code(await tpsl(client, slTriggerPrice="140", clientOrderId="sig7")) == "102002"
    assert code(await tpsl(client, slTriggerPrice="140", clientOrderId="sig7sl")) == "0"
    assert code(await place(client, clientOrderId="sig7sl")) == "102002"


async def test_tpsl_cancel_and_detail(client: httpx.AsyncClient) -> None:
    await place(client)
    made = await tpsl(client, slTriggerPrice="140", clientOrderId="sl1")
    detail = (await client.get("/api/v1/trade/order-tpsl-detail?instId=SOL-USDT&clientOrderId=sl1")).json()
    cancel = await client.post(
        "/api/v1/trade/cancel-tpsl", json=[{"instId": "SOL-USDT", "clientOrderId": "sl1"}]
    )
    again = (await client.post("/api/v1/trade/cancel-tpsl",
                               json=[{"instId": "SOL-USDT", "tpslId": made["data"]["tpslId"]}]))
    assert detail["data"]["size"] == "-1"
    assert detail["data"]["state"] == "live"
    assert cancel.json()["data"][0]["code"] == "0"
    assert again.json()["code"] == "1"
    assert again.json()["data"][0]["code"] == "102068"
    assert await pending_tpsl(client) == []


async def test_tpsl_whole_position_size_follows_position(client: httpx.AsyncClient, sim: Simulator) -> None:
    await place(client)
    await tpsl(client, slTriggerPrice="140")
    await place(client, size="5")
    await move(client, "140")
    assert sim.positions == {}
    assert sim.fills[-1].size == Decimal(15)


async def test_tpsl_events_recorded_for_websocket(client: httpx.AsyncClient, sim: Simulator) -> None:
    seen: list[str] = []
    sim.subscribe(lambda event: seen.append(event.channel))
    await place(client, slTriggerPrice="140")
    await move(client, "139")
    assert {"orders", "orders-algo", "positions", "account"} <= set(seen)
    assert [e.channel for e in sim.events][-len(seen):] == seen


async def test_tpsl_lost_mode_fills_the_entry_without_its_stop_then_attaches_again(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    reply = await client.post("/sim/attached-tpsl-lost", json={"count": 1})
    assert reply.json()["data"] == {"count": 1}

    assert code(await place(client, slTriggerPrice="140", slOrderPrice="-1")) == "0"
    assert sim.positions["SOL-USDT"].size == Decimal(10)
    assert await pending_tpsl(client) == []  # filled, and naked: what the mode is for
    assert sim.attached_tpsl_lost == 0

    assert code(await place(client, slTriggerPrice="141", slOrderPrice="-1")) == "0"
    assert [row["slTriggerPrice"] for row in await pending_tpsl(client)] == ["141"]
    assert code((await client.post("/sim/attached-tpsl-lost", json={"count": -1})).json()) != "0"
