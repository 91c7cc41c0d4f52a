"""The simulator's private WebSocket over a real loopback port, driven by a plain websockets client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hit_server.blofin_sim import SimEvent
from hit_server.blofin_sim.loopback import ServedSim, serve_sim
from hit_server.blofin_sim.models import OrderParams
from hit_server.blofin_sim.testing import TEST_KEY, TEST_PASSPHRASE, TEST_SECRET, make_config
from hit_server.exchange.blofin_auth import BloFinAuth, Credentials, wall_clock_ms
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_models import OrderRequest
from hit_server.exchange.blofin_rest import RetryPolicy
from hit_server.exchange.ratelimit import RateLimiter

BTC = "BTC-USDT"
ETH = "ETH-USDT"
Message = dict[str, Any]


@pytest.fixture
async def served() -> AsyncIterator[ServedSim]:
    async with serve_sim(make_config()) as served:
        yield served


def connect_to(served: ServedSim) -> Any:
    return connect(served.ws_url(), ping_interval=None, open_timeout=5, close_timeout=1)


@pytest.fixture
async def client(served: ServedSim) -> AsyncIterator[BloFinClient]:
    async with httpx.AsyncClient(base_url=served.http_url) as http:
        yield BloFinClient(http, served.auth, request_timeout=5, retry=RetryPolicy(),
                           rate_limiter=RateLimiter.unlimited())


async def send(ws: ClientConnection, message: Message) -> None:
    await ws.send(json.dumps(message))


async def receive(ws: ClientConnection) -> Message:
    raw = await asyncio.wait_for(ws.recv(), 5)
    message: Message = json.loads(raw)
    return message


async def collect(ws: ClientConnection, last: Callable[[Message], bool]) -> list[Message]:
    """Every message up to and including the first for which `last` is true (5 s at most)."""
    seen: list[Message] = []
    async with asyncio.timeout(5):
        while not seen or not last(seen[-1]):
            seen.append(await receive(ws))
    return seen


def rows(messages: list[Message], channel: str) -> list[Message]:
    """The rows pushed on `channel`, in order."""
    return [row for m in messages if m.get("arg", {}).get("channel") == channel and "data" in m
            for row in m["data"]]


def push_of(channel: str, **fields: str) -> Callable[[Message], bool]:
    def wanted(message: Message) -> bool:
        if message.get("arg", {}).get("channel") != channel or "data" not in message:
            return False
        return any(all(row.get(k) == v for k, v in fields.items()) for row in message["data"])
    return wanted


async def login(ws: ClientConnection, auth: BloFinAuth) -> Message:
    await send(ws, {"op": "login", "args": [auth.ws_login_args()]})
    return await receive(ws)


async def subscribe(ws: ClientConnection, *args: dict[str, str]) -> list[Message]:
    """One reply (ack or error) per argument, and the snapshot of each acked positions/account channel."""
    await send(ws, {"op": "subscribe", "args": list(args)})
    seen: list[Message] = []

    def complete() -> bool:
        acked = [m["arg"]["channel"] for m in seen if m.get("event") == "subscribe"]
        snapshots = sum(m.get("action") == "snapshot" for m in seen)
        wanted = sum(c in ("positions", "account") for c in acked)
        return sum("event" in m for m in seen) == len(args) and snapshots == wanted

    async with asyncio.timeout(5):
        while not complete():
            seen.append(await receive(ws))
    return seen


def auth_with(*, key: str = TEST_KEY, secret: str = TEST_SECRET, passphrase: str = TEST_PASSPHRASE,
              skew_ms: int = 0) -> BloFinAuth:
    creds = Credentials(key, SecretStr(secret), SecretStr(passphrase))
    return BloFinAuth(creds, clock_ms=lambda: wall_clock_ms() + skew_ms)


async def test_ws_login_accepted_when_signed_with_the_sim_credentials(served: ServedSim) -> None:
    async with connect_to(served) as ws:
        assert await login(ws, served.auth) == {"event": "login", "code": "0", "msg": ""}
        acks = await subscribe(ws, {"channel": "orders"})
    assert acks == [{"event": "subscribe", "arg": {"channel": "orders"}}]


@pytest.mark.parametrize("auth", [
    pytest.param(auth_with(key="another-key-0123456789abcdef0123"), id="wrong_key"),
    pytest.param(auth_with(passphrase="not-the-passphrase"), id="wrong_passphrase"),
    pytest.param(auth_with(secret="not-the-secret"), id="bad_signature"),
    pytest.param(auth_with(skew_ms=-61_000), id="stale_timestamp"),
    pytest.param(auth_with(skew_ms=+61_000), id="future_timestamp"),
])
async def test_ws_login_refused_and_closed_when_credentials_are_wrong(
    served: ServedSim, auth: BloFinAuth
) -> None:
    async with connect_to(served) as ws:
        reply = await login(ws, auth)
        with pytest.raises(ConnectionClosed):
            await receive(ws)
    assert reply == {"event": "error", "code": "60009", "msg": "Login failed."}
    assert ws.close_code == 1008


async def test_ws_login_refused_when_the_nonce_is_reused(served: ServedSim) -> None:
    args = served.auth.ws_login_args()
    async with connect_to(served) as first, connect_to(served) as second:
        await send(first, {"op": "login", "args": [args]})
        await send(second, {"op": "login", "args": [args]})
        replies = [await receive(first), await receive(second)]
    assert replies[0]["code"] == "0"
    assert replies[1] == {"event": "error", "code": "60009", "msg": "Login failed."}


async def test_ws_login_refused_when_malformed(served: ServedSim) -> None:
    async with connect_to(served) as ws:
        await send(ws, {"op": "login", "args": [{"apiKey": TEST_KEY}]})
        assert (await receive(ws))["code"] == "60009"


async def test_ws_subscribe_before_login_is_an_error_event(served: ServedSim) -> None:
    async with connect_to(served) as ws:
        [reply] = await subscribe(ws, {"channel": "orders"})
        assert reply["event"] == "error" and reply["code"] == "60011"
        assert (await login(ws, served.auth))["code"] == "0"  # the socket stays usable


async def test_ws_subscribe_acks_each_channel_and_refuses_unknown_ones(served: ServedSim) -> None:
    async with connect_to(served) as ws:
        await login(ws, served.auth)
        acks = await subscribe(ws, {"channel": "orders"}, {"channel": "orders-algo", "instId": BTC})
        [bad_channel] = await subscribe(ws, {"channel": "books5"})
        [bad_inst] = await subscribe(ws, {"channel": "orders", "instId": "NOPE-USDT"})
        await send(ws, {"op": "dance"})
        bad_op = await receive(ws)
    assert acks == [{"event": "subscribe", "arg": {"channel": "orders"}},
                    {"event": "subscribe", "arg": {"channel": "orders-algo", "instId": BTC}}]
    for reply in (bad_channel, bad_inst, bad_op):
        assert reply["event"] == "error" and reply["code"] == "60012"
        assert reply["msg"].startswith("Invalid request: ")


async def test_ws_market_order_with_stop_pushes_orders_positions_and_orders_algo(
    served: ServedSim, client: BloFinClient
) -> None:
    async with connect_to(served) as ws:
        await login(ws, served.auth)
        subscribed = await subscribe(ws, {"channel": "orders"}, {"channel": "positions"},
                                     {"channel": "orders-algo"})
        await client.place_order(OrderRequest(
            inst_id=BTC, side="buy", order_type="market", size=Decimal(2), margin_mode="cross",
            client_order_id="wsopen1", sl_trigger_price=Decimal(57000)))
        pushes = await collect(ws, lambda m: m.get("arg", {}).get("channel") == "orders-algo")
    snapshots = [m for m in subscribed if m.get("action") == "snapshot"]
    assert snapshots == [{"action": "snapshot", "arg": {"channel": "positions"}, "data": []}]
    assert {m["action"] for m in pushes} == {"update"}
    orders = rows(pushes, "orders")
    assert [o["state"] for o in orders] == ["live", "filled"]
    filled = orders[-1]
    assert (filled["clientOrderId"], filled["side"], filled["orderType"]) == ("wsopen1", "buy", "market")
    assert (filled["filledSize"], filled["slTriggerPrice"]) == ("2", "57000")
    assert Decimal(filled["averagePrice"]) == served.sim.prices[BTC]
    [pos] = rows(pushes, "positions")
    assert (pos["instId"], pos["positions"], pos["positionSide"]) == (BTC, "2", "net")
    assert pos["marginMode"] == "cross"
    assert Decimal(pos["averagePrice"]) == served.sim.prices[BTC]
    [tpsl] = rows(pushes, "orders-algo")
    assert (tpsl["state"], tpsl["side"], tpsl["slTriggerPrice"]) == ("live", "sell", "57000")
    assert tpsl["size"] == "2"


async def test_ws_stop_trigger_pushes_orders_algo_and_a_flat_position(
    served: ServedSim, client: BloFinClient
) -> None:
    await client.place_order(OrderRequest(
        inst_id=BTC, side="buy", order_type="market", size=Decimal(1), margin_mode="cross",
        client_order_id="wsstop1", sl_trigger_price=Decimal(57000)))
    async with connect_to(served) as ws:
        await login(ws, served.auth)
        subscribed = await subscribe(ws, {"channel": "positions"}, {"channel": "orders-algo"},
                                     {"channel": "orders"})
        await served.control("/sim/price", {"instId": BTC, "price": "56000"})
        pushes = await collect(ws, lambda m: any(r.get("orderCategory") == "sl" and r["state"] == "filled"
                                                 for r in m.get("data", [])))
    assert [p["positions"] for p in rows(subscribed, "positions")] == ["1"]
    algo = rows(pushes, "orders-algo")
    assert (algo[0]["state"], algo[0]["actualSide"], algo[0]["actualSize"]) == ("effective", "sl", "1")
    closing = rows(pushes, "orders")[-1]
    assert (closing["orderCategory"], closing["state"], closing["reduceOnly"]) == ("sl", "filled", "true")
    assert closing["algoId"] == algo[0]["tpslId"]
    assert rows(pushes, "positions")[-1] == {"instId": BTC, "positions": "0", "positionSide": "net"}


async def test_ws_positions_snapshot_and_pushes_follow_the_inst_id_filter(
    served: ServedSim, client: BloFinClient
) -> None:
    for inst, cid in ((BTC, "wsfb"), (ETH, "wsfe")):
        await client.place_order(OrderRequest(inst_id=inst, side="buy", order_type="market", size=Decimal(1),
                                              margin_mode="cross", client_order_id=cid))
    async with connect_to(served) as ws:
        await login(ws, served.auth)
        subscribed = await subscribe(ws, {"channel": "positions", "instId": ETH},
                                     {"channel": "orders", "instId": ETH})
        await client.place_order(OrderRequest(inst_id=BTC, side="buy", order_type="market", size=Decimal(1),
                                              margin_mode="cross", client_order_id="wsfb2"))
        await client.place_order(OrderRequest(inst_id=ETH, side="buy", order_type="market", size=Decimal(1),
                                              margin_mode="cross", client_order_id="wsfe2"))
        pushes = await collect(ws, lambda m: m.get("arg", {}).get("channel") == "positions")
    assert [row["instId"] for row in rows(subscribed, "positions")] == [ETH]
    assert all(m["arg"]["instId"] == ETH for m in pushes)  # nothing about BTC came before ETH's position
    assert {row["clientOrderId"] for row in rows(pushes, "orders")} == {"wsfe2"}
    assert [row["positions"] for row in rows(pushes, "positions")] == ["2"]


async def test_ws_unsubscribe_stops_the_pushes_of_that_channel(
    served: ServedSim, client: BloFinClient
) -> None:
    async with connect_to(served) as ws:
        await login(ws, served.auth)
        subscribed = await subscribe(ws, {"channel": "orders"}, {"channel": "account"})
        await send(ws, {"op": "unsubscribe", "args": [{"channel": "orders"}]})
        ack = await receive(ws)
        await client.place_order(OrderRequest(inst_id=BTC, side="buy", order_type="market", size=Decimal(1),
                                              margin_mode="cross", client_order_id="wsun1"))
        await client.close_position(BTC, "cross", client_order_id="wsun2")
        after = await receive(ws)
    [account] = [m for m in subscribed if m.get("action") == "snapshot"]
    assert account["arg"] == {"channel": "account"} and account["data"]["details"][0]["currency"] == "USDT"
    assert ack == {"event": "unsubscribe", "arg": {"channel": "orders"}}
    assert after["arg"] == {"channel": "account"}  # the closing fill's balance, not an order


async def test_ws_account_is_pushed_now_and_then_without_an_event(served: ServedSim) -> None:
    """BloFin pushes the balance "in regular interval" as well as on events; the other channels only on
    events. A client can keep its balance fresh on these pushes instead of REST reads."""
    served.hub.account_push_s = 0.05
    async with connect_to(served) as ws:
        await login(ws, served.auth)
        await subscribe(ws, {"channel": "positions"}, {"channel": "account"}, {"channel": "orders"})
        pushed = [await receive(ws) for _ in range(3)]
    assert [(m["arg"], m["action"]) for m in pushed] == [({"channel": "account"}, "update")] * 3
    assert all(m["data"]["details"][0]["currency"] == "USDT" for m in pushed)


async def test_sim_state_counts_the_private_streams_logged_in(served: ServedSim) -> None:
    async def streams() -> int:
        """The default account's, as /sim/state and /sim/accounts say it (they must agree)."""
        async with httpx.AsyncClient(base_url=served.http_url) as http:
            count: int = (await http.get("/sim/state")).json()["data"]["privateStreams"]
            [row] = [r for r in (await http.get("/sim/accounts")).json()["data"] if r["default"]]
        assert row["privateStreams"] == count
        return count

    async with connect_to(served) as ws:
        assert await streams() == 0  # connected, not logged in
        await login(ws, served.auth)
        assert await streams() == 1
    for _ in range(100):  # the server side sees the close a moment later
        if await streams() == 0:
            break
        await asyncio.sleep(0.02)
    assert await streams() == 0


async def test_ws_ping_is_answered_with_pong(served: ServedSim) -> None:
    async with connect_to(served) as ws:
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), 5) == "pong"


async def test_ws_idle_connection_is_closed_when_silent(served: ServedSim) -> None:
    served.hub.idle_timeout_s = 0.3
    async with connect_to(served) as ws:
        await asyncio.sleep(0.2)
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), 5) == "pong"  # activity restarts the clock
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 1000


async def test_ws_slow_consumer_is_closed_instead_of_blocking_the_engine(served: ServedSim) -> None:
    served.hub.queue_size = 5
    async with connect_to(served) as ws:
        await login(ws, served.auth)
        await subscribe(ws, {"channel": "orders"})
        for n in range(50):  # synchronous, as the engine publishes: the writer gets no turn in between
            served.hub.publish(SimEvent("orders", {"instId": BTC, "orderId": str(n)}))
        with pytest.raises(ConnectionClosed):
            while True:
                await receive(ws)
    assert ws.close_code == 1013


async def test_ws_engine_events_from_another_thread_reach_the_socket(served: ServedSim) -> None:
    served.sim.place_order(OrderParams(inst_id=BTC, side="buy", order_type="market", size=Decimal(1),
                                       margin_mode="cross", client_order_id="wsthread"))
    async with connect_to(served) as ws:
        await login(ws, served.auth)
        await subscribe(ws, {"channel": "positions"})
        await asyncio.to_thread(served.sim.set_leverage, BTC, 5, "cross")
        push = await receive(ws)
    assert push["data"][0]["leverage"] == "5"


async def test_ws_drop_closes_every_socket_and_refuse_blocks_new_ones(served: ServedSim) -> None:
    async with connect_to(served) as one, connect_to(served) as two:
        await served.control("/sim/ws/drop", {})
        for ws in (one, two):
            with pytest.raises(ConnectionClosed):
                await receive(ws)
    await served.control("/sim/ws/refuse", {"seconds": 0.5})
    with pytest.raises(InvalidStatus) as refused:
        async with connect_to(served):
            pass
    await asyncio.sleep(0.6)
    async with connect_to(served) as again:
        await again.send("ping")
        assert await asyncio.wait_for(again.recv(), 5) == "pong"
    assert refused.value.response.status_code == 403
    assert len(served.hub.refused_times) == 1
