"""The simulator's adversarial modes (blofin_sim/adversity.py), driven through the /sim/* control API:
lookup lag, the duplicate clientOrderId window, failed batch items, partial fills and hedge mode."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from hit_server.blofin_sim import Simulator

ORDER = "/api/v1/trade/order"
BATCH = "/api/v1/trade/batch-orders"
CANCEL_TPSL = "/api/v1/trade/cancel-tpsl"
SOL = "SOL-USDT"


class Clock:
    """A clock the test moves by hand, installed as the simulator's `clock_ms`."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.now = start_ms

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock(sim: Simulator) -> Clock:
    """A virtual clock for the engine; the signature check keeps the wall clock (it checks our headers)."""
    virtual = Clock()
    sim.clock_ms = virtual
    return virtual


async def control(client: httpx.AsyncClient, path: str, body: dict[str, Any] | None = None,
                  method: str = "POST") -> dict[str, Any]:
    resp = await client.request(method, path, json=body)
    result: dict[str, Any] = resp.json()
    assert result["code"] == "0", resp.text
    return result


def order_body(cid: str, **fields: Any) -> dict[str, Any]:
    body = {"instId": SOL, "marginMode": "cross", "side": "buy", "orderType": "market", "size": "1",
            "clientOrderId": cid}
    body.update(fields)
    return body


async def place(client: httpx.AsyncClient, cid: str, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await client.post(ORDER, json=order_body(cid, **fields))).json()
    return result


def item_code(body: dict[str, Any]) -> str:
    return str(body["data"][0]["code"]) if body.get("data") else str(body["code"])


async def detail(client: httpx.AsyncClient, cid: str) -> Any:
    return (await client.get(f"/api/v1/trade/order-detail?instId={SOL}&clientOrderId={cid}")).json()["data"]


async def pending(client: httpx.AsyncClient) -> list[str]:
    rows = (await client.get("/api/v1/trade/orders-pending")).json()["data"]
    return [row["clientOrderId"] for row in rows]


async def move(client: httpx.AsyncClient, price: str) -> None:
    await control(client, "/sim/price", {"instId": SOL, "price": price})


# -- lookup lag -------------------------------------------------------------------------------------


async def test_sim_lag_hides_an_order_from_its_first_lookups(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    await control(client, "/sim/lag", {"lookups": 2})
    assert item_code(await place(client, "lag1", orderType="limit", price="140")) == "0"
    misses = [await detail(client, "lag1"), await pending(client)]
    assert misses == [None, []]
    assert (await detail(client, "lag1"))["state"] == "live"
    assert await pending(client) == ["lag1"]
    assert sim.orders_by_client_id["lag1"].state == "live"


async def test_sim_lag_follows_the_simulator_clock(client: httpx.AsyncClient, clock: Clock) -> None:
    await control(client, "/sim/lag", {"ms": 2000})
    await place(client, "lagclock")
    assert await detail(client, "lagclock") is None
    clock.now += 1999
    assert await detail(client, "lagclock") is None
    clock.now += 1
    assert (await detail(client, "lagclock"))["state"] == "filled"


async def test_sim_lag_hidden_order_still_counts_on_the_exchange(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    """The matching engine knows it: its clientOrderId is taken and its position is there."""
    await control(client, "/sim/lag", {"lookups": 100})
    await place(client, "lagdup")
    assert item_code(await place(client, "lagdup")) == "102002"
    positions = (await client.get("/api/v1/account/positions")).json()["data"]
    assert [p["positions"] for p in positions] == ["1"]
    assert await detail(client, "lagdup") is None


async def test_sim_lag_applies_to_tpsl_orders_and_ends_on_delete(client: httpx.AsyncClient) -> None:
    await place(client, "lagpos")
    await control(client, "/sim/lag", {"lookups": 50})
    made = (await client.post("/api/v1/trade/order-tpsl", json={
        "instId": SOL, "marginMode": "cross", "side": "sell", "size": "-1", "slTriggerPrice": "140",
        "clientOrderId": "lagsl"})).json()
    url = f"/api/v1/trade/order-tpsl-detail?instId={SOL}&clientOrderId=lagsl"
    hidden = [(await client.get(url)).json()["data"],
              (await client.get("/api/v1/trade/orders-tpsl-pending")).json()["data"]]
    await control(client, "/sim/lag", method="DELETE")
    assert made["code"] == "0"
    assert hidden == [None, []]
    assert (await client.get(url)).json()["data"]["state"] == "live"
    assert (await detail(client, "lagpos"))["state"] == "filled", "orders placed before the lag stay visible"


# -- duplicate clientOrderId window -----------------------------------------------------------------


async def test_sim_duplicate_client_id_refused_forever_by_default(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    await place(client, "dupforever")
    clock.now += 86_400_000 * 30
    assert item_code(await place(client, "dupforever")) == "102002"


async def test_sim_duplicate_window_accepts_the_same_client_id_again_after_it(
    client: httpx.AsyncClient, sim: Simulator, clock: Clock
) -> None:
    await control(client, "/sim/duplicate-window", {"ms": 5000})
    first = await place(client, "dupwin")
    clock.now += 4999
    assert item_code(await place(client, "dupwin")) == "102002"
    clock.now += 1
    second = await place(client, "dupwin")
    assert item_code(second) == "0"
    assert second["data"][0]["orderId"] != first["data"][0]["orderId"]
    assert [o.client_order_id for o in sim.orders.values()] == ["dupwin", "dupwin"]
    assert sim.positions[SOL].size == Decimal(2), "the resend became a second order"
    assert (await detail(client, "dupwin"))["orderId"] == second["data"][0]["orderId"]


# -- failed batch items -----------------------------------------------------------------------------


def batch(prefix: str, n: int = 3) -> list[dict[str, Any]]:
    return [order_body(f"{prefix}{i}", orderType="limit", price=str(140 - i)) for i in range(n)]


async def test_sim_item_fault_refuses_the_chosen_batch_item_and_places_the_rest(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    await control(client, "/sim/item-faults", {"index": 1, "code": "103003", "count": 1})
    reply = (await client.post(BATCH, json=batch("bi"))).json()
    again = (await client.post(BATCH, json=batch("bj"))).json()
    assert reply["code"] == "2"
    assert [item["code"] for item in reply["data"]] == ["0", "103003", "0"]
    assert sorted(sim.orders_by_client_id) == ["bi0", "bi2", "bj0", "bj1", "bj2"]
    assert again["code"] == "0", "count 1: the mode ended after one refusal"


async def test_sim_item_fault_probability_is_repeatable_by_seed(client: httpx.AsyncClient) -> None:
    async def refused_pattern(prefix: str) -> list[str]:
        await control(client, "/sim/item-faults", {"probability": 0.5, "seed": 7})
        codes = []
        for n in range(3):
            reply = (await client.post(BATCH, json=batch(f"{prefix}{n}x", 5))).json()
            codes += [item["code"] for item in reply["data"]]
        return codes

    first = await refused_pattern("pa")
    second = await refused_pattern("pb")
    assert first == second
    assert "500" in first and "0" in first


async def test_sim_item_fault_on_cancel_tpsl_leaves_the_order_live(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    await place(client, "ifpos")
    await client.post("/api/v1/trade/order-tpsl", json={
        "instId": SOL, "marginMode": "cross", "side": "sell", "size": "-1", "slTriggerPrice": "140",
        "clientOrderId": "ifsl"})
    await control(client, "/sim/item-faults", {"path": CANCEL_TPSL, "index": 0, "count": 1})
    reply = (await client.post(CANCEL_TPSL, json=[{"instId": SOL, "clientOrderId": "ifsl"}])).json()
    assert (reply["code"], reply["data"][0]["code"]) == ("1", "500")
    assert sim.tpsl_by_client_id["ifsl"].state == "live"


async def test_sim_item_fault_needs_an_index_or_a_probability(client: httpx.AsyncClient) -> None:
    reply = (await client.post("/sim/item-faults", json={"code": "500"})).json()
    assert reply["code"] == "152002"


# -- partial fills ----------------------------------------------------------------------------------


async def test_sim_partial_fill_fills_one_part_per_crossing(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    await control(client, "/sim/partial-fills", {"fraction": "0.25"})
    await place(client, "pf1", orderType="limit", price="140", size="10")
    await move(client, "139")
    first = await detail(client, "pf1")
    await move(client, "138")  # still beyond the limit: the next move fills the next part
    second = await detail(client, "pf1")
    resting = await pending(client)
    for price in ("137", "136", "135"):
        await move(client, price)
    last = await detail(client, "pf1")
    assert (first["state"], first["filledSize"]) == ("partially_filled", "2")  # 10 x 0.25 = 2.5 -> 2 lots
    assert (second["state"], second["filledSize"]) == ("partially_filled", "4")
    assert resting == ["pf1"]
    assert await pending(client) == []
    assert (last["state"], last["filledSize"]) == ("filled", "10")
    assert sim.positions[SOL].size == Decimal(10)


async def test_sim_partial_fill_is_at_least_one_lot(client: httpx.AsyncClient, sim: Simulator) -> None:
    await control(client, "/sim/partial-fills", {"fraction": "0.01"})
    await place(client, "pflot", orderType="limit", price="140", size="3")
    await move(client, "139")
    assert sim.orders_by_client_id["pflot"].filled_size == Decimal(1)
    assert sim.orders_by_client_id["pflot"].state == "partially_filled"


async def test_sim_partial_fill_attached_stop_covers_what_is_filled(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    await control(client, "/sim/partial-fills", {"fraction": "0.5"})
    await place(client, "pfsl", orderType="limit", price="140", size="4", slTriggerPrice="130",
                slOrderPrice="-1")
    await move(client, "139.5")
    order = sim.orders_by_client_id["pfsl"]
    after_first = [(t.size, t.state) for t in sim.tpsl_orders.values()]
    await move(client, "139")
    after_second = [(t.size, t.state) for t in sim.tpsl_orders.values()]
    assert after_first == [(Decimal(2), "live")]
    assert after_second == [(Decimal(4), "live")], "one attached stop, grown with the fill"
    assert order.algo_id == next(iter(sim.tpsl_orders))
    await move(client, "129")
    assert sim.positions == {}, "the stop closed the whole filled position"


async def test_sim_partial_fill_off_fills_whole_and_reset_clears_every_mode(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    await control(client, "/sim/partial-fills", {"fraction": "0.5"})
    await control(client, "/sim/lag", {"ms": 1000})
    await control(client, "/sim/duplicate-window", {"ms": 10})
    await control(client, "/sim/item-faults", {"index": 0})
    await control(client, "/sim/position-mode", {"mode": "long_short_mode"})
    await control(client, "/sim/attached-tpsl-lost", {"count": 2})
    await control(client, "/sim/reset")
    modes = (await client.get("/sim/state")).json()["data"]["modes"]
    await place(client, "pfoff", orderType="limit", price="140", size="4")
    await move(client, "139")
    assert modes == {"lag": {"ms": 0, "lookups": 0, "hidden": 0}, "duplicateWindowMs": None,
                     "itemFaults": None, "partialFillFraction": None, "positionMode": "net_mode",
                     "attachedTpslLost": 0}
    assert sim.orders_by_client_id["pfoff"].state == "filled"


# -- hedge mode -------------------------------------------------------------------------------------


async def test_sim_hedge_mode_refuses_net_writes(client: httpx.AsyncClient, sim: Simulator) -> None:
    await control(client, "/sim/position-mode", {"mode": "long_short_mode"})
    mode = (await client.get("/api/v1/account/position-mode")).json()["data"]["positionMode"]
    refused = await place(client, "hedge1")
    assert mode == "long_short_mode"
    assert item_code(refused) == "102089"
    assert sim.orders == {}
