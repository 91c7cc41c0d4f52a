"""Injected faults and rate limits of the simulator, over httpx.ASGITransport."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from hit_server.blofin_sim import Simulator, create_app
from hit_server.blofin_sim.faults import covers
from hit_server.blofin_sim.testing import make_auth, make_config, sim_http

ORDER = "/api/v1/trade/order"


def order_body(cid: str) -> dict[str, str]:
    return {"instId": "BTC-USDT", "marginMode": "cross", "side": "buy", "orderType": "market", "size": "1",
            "clientOrderId": cid}


async def fault(client: httpx.AsyncClient, **fields: Any) -> None:
    resp = await client.post("/sim/faults", json=fields)
    assert resp.json()["code"] == "0", resp.text


async def test_fault_delay_answers_late_and_carries_out(client: httpx.AsyncClient, sim: Simulator) -> None:
    await fault(client, kind="delay", seconds=0.3, path=ORDER)
    started = time.monotonic()
    resp = await client.post(ORDER, json=order_body("d1"))
    assert time.monotonic() - started >= 0.3
    assert resp.json()["code"] == "0"
    assert "d1" in sim.orders_by_client_id


async def test_fault_timeout_holds_then_504_without_carrying_out(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    await fault(client, kind="timeout", seconds=0.2)
    started = time.monotonic()
    resp = await client.post(ORDER, json=order_body("t1"))
    assert time.monotonic() - started >= 0.2
    assert resp.status_code == 504
    assert sim.orders == {}


async def test_fault_http_5xx_not_carried_out(client: httpx.AsyncClient, sim: Simulator) -> None:
    await fault(client, kind="http_5xx", code="502")
    resp = await client.post(ORDER, json=order_body("h1"))
    assert resp.status_code == 502
    assert sim.orders == {}


async def test_fault_http_429_not_carried_out(client: httpx.AsyncClient, sim: Simulator) -> None:
    await fault(client, kind="http_429")
    resp = await client.post(ORDER, json=order_body("r1"))
    assert (resp.status_code, resp.json()["code"]) == (429, "429")
    assert sim.orders == {}


async def test_fault_error_code_answers_envelope_without_carrying_out(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    await fault(client, kind="error_code", code="103013")
    resp = await client.post(ORDER, json=order_body("e1"))
    assert (resp.status_code, resp.json()["code"]) == (200, "103013")
    assert sim.orders == {}


async def test_fault_drop_reply_carries_out_then_raises_protocol_error(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    await fault(client, kind="drop_reply", path=ORDER)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(ORDER, json=order_body("x1"))
    detail = await client.get("/api/v1/trade/order-detail?instId=BTC-USDT&clientOrderId=x1")
    assert detail.json()["data"]["state"] == "filled"
    assert "x1" in sim.orders_by_client_id


async def test_fault_applies_only_under_its_path_and_count(client: httpx.AsyncClient) -> None:
    await fault(client, kind="error_code", code="500", count=2, path=ORDER)
    balance = await client.get("/api/v1/account/balance")
    codes = [(await client.post(ORDER, json=order_body(f"p{i}"))).json()["code"] for i in range(3)]
    assert balance.json()["code"] == "0"
    assert codes == ["500", "500", "0"]


async def test_fault_delete_clears_pending(client: httpx.AsyncClient) -> None:
    await fault(client, kind="http_5xx", count=5)
    await client.delete("/sim/faults")
    state = (await client.get("/sim/state")).json()["data"]
    assert state["faults"] == []
    assert (await client.get("/api/v1/account/balance")).status_code == 200


async def test_fault_request_with_unknown_kind_refused(client: httpx.AsyncClient) -> None:
    resp = await client.post("/sim/faults", json={"kind": "explode"})
    assert resp.json()["code"] != "0"


async def test_rate_limit_trade_endpoints_per_10s() -> None:
    app = create_app(make_config(trade_limit_per_10s=3))
    async with sim_http(app, make_auth(app.state.sim.config)) as client:
        trade = [await client.post(ORDER, json=order_body(f"q{i}")) for i in range(4)]
        other = await client.get("/api/v1/account/balance")
    assert [r.status_code for r in trade] == [200, 200, 200, 429]
    assert trade[-1].json() == {"code": "429", "msg": "Too Many Requests"}
    assert other.status_code == 200


async def test_rate_limit_per_minute_per_ip() -> None:
    app = create_app(make_config(rate_limit_per_min=5))
    async with sim_http(app) as client:
        statuses = [(await client.get("/api/v1/public/time")).status_code for _ in range(6)]
        control = await client.get("/sim/state")
    assert statuses == [200] * 5 + [429]
    assert control.status_code == 200


async def test_sim_reset_restores_start(client: httpx.AsyncClient, sim: Simulator) -> None:
    await client.post(ORDER, json=order_body("z1"))
    await client.post("/sim/reset")
    again = await client.post(ORDER, json=order_body("z1"))
    assert again.json()["code"] == "0"
    assert len(sim.orders) == 1


@pytest.mark.parametrize(
    ("fault_path", "request_path", "applies"),
    [
        ("", "/api/v1/trade/order", True),
        ("/api/v1/trade/order", "/api/v1/trade/order", True),
        ("/api/v1/trade/order", "/api/v1/trade/orders-pending", False),  # the monitor's listing: never
        ("/api/v1/trade/order", "/api/v1/trade/order-tpsl", False),
        ("/api/v1/trade/order-", "/api/v1/trade/order-tpsl", True),
        ("/api/v1/trade/", "/api/v1/trade/orders-pending", True),
        ("/api/v1/trade", "/api/v1/trade/cancel-order", True),
        ("/api/v1/trade", "/api/v1/trades", False),
        ("/api/v1/account/balance", "/api/v1/account/positions", False),
    ],
)
def test_a_fault_path_is_an_endpoint_a_folder_or_a_prefix_ending_in_a_dash(
    fault_path: str, request_path: str, applies: bool
) -> None:
    assert covers(fault_path, request_path) is applies

