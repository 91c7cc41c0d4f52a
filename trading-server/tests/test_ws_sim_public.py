"""The simulator's public WebSocket (`/ws/public`, mark-price-candle1m) over a real loopback port, driven
by a plain websockets client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hit_server.blofin_sim import SimEvent
from hit_server.blofin_sim.loopback import ServedSim, serve_sim
from hit_server.blofin_sim.models import OrderParams
from hit_server.blofin_sim.testing import make_config
from hit_server.blofin_sim.ws_public import MINUTE_MS, PublicWsHub, public_hub_of

BTC = "BTC-USDT"
ETH = "ETH-USDT"
CANDLE = "mark-price-candle1m"
Message = dict[str, Any]
RECEIVE_S = 5.0


@pytest.fixture
async def served() -> AsyncIterator[ServedSim]:
    """No periodic re-push within a test (an hour): every push seen is a subscription's or a change's."""
    async with serve_sim(make_config(public_repush_s=3600.0)) as served:
        yield served


def hub(served: ServedSim) -> PublicWsHub:
    return public_hub_of(served.app)


def connect_public(served: ServedSim) -> Any:
    return connect(served.ws_url("/ws/public"), ping_interval=None, open_timeout=5, close_timeout=1)


async def receive(ws: ClientConnection) -> Message:
    message: Message = json.loads(await asyncio.wait_for(ws.recv(), RECEIVE_S))
    return message


async def subscribe(ws: ClientConnection, *inst_ids: str) -> list[Message]:
    """The ack and the first candle of each instrument (the two frames each subscription answers with)."""
    args = [{"channel": CANDLE, "instId": i} for i in inst_ids]
    await ws.send(json.dumps({"op": "subscribe", "args": args}))
    return [await receive(ws) for _ in range(2 * len(inst_ids))]


def close_of(push: Message) -> Decimal:
    [row] = push["data"]
    return Decimal(row[4])


async def test_public_ws_subscribe_is_acked_then_answered_with_the_current_candle(served: ServedSim) -> None:
    price = served.sim.price(BTC)
    async with connect_public(served) as ws:
        ack, push = await subscribe(ws, BTC)
    [[ts, open_, high, low, close, confirm]] = push["data"]
    assert ack == {"event": "subscribe", "arg": {"channel": CANDLE, "instId": BTC}}
    assert push["arg"] == {"channel": CANDLE, "instId": BTC}
    assert Decimal(close) == Decimal(open_) == Decimal(high) == Decimal(low) == price
    assert int(ts) % MINUTE_MS == 0 and 0 <= served.sim.clock_ms() - int(ts) < MINUTE_MS
    assert confirm == "0"


async def test_public_ws_pushes_a_price_change_at_once_with_the_candle_high_and_low(
    served: ServedSim,
) -> None:
    start = served.sim.price(BTC)
    async with connect_public(served) as ws:
        await subscribe(ws, BTC)
        await served.control("/sim/price", {"instId": BTC, "price": str(start + 1000)})
        up = await receive(ws)
        await served.control("/sim/price", {"instId": BTC, "price": str(start - 500)})
        down = await receive(ws)
    [[_, open_, high, low, close, _]] = down["data"]
    assert close_of(up) == start + 1000
    assert Decimal(close) == start - 500
    # the same minute's candle unless the test straddled a minute: then it opens at the new price
    assert (Decimal(open_), Decimal(high), Decimal(low)) in {
        (start, start + 1000, start - 500), (start + 1000, start + 1000, start - 500),
        (start - 500, start - 500, start - 500)}


async def test_public_ws_pushes_only_the_subscribed_instruments(served: ServedSim) -> None:
    async with connect_public(served) as ws:
        await subscribe(ws, BTC)
        served.sim.set_price(ETH, served.sim.price(ETH) + 10)
        served.sim.set_price(BTC, Decimal(61234))
        push = await receive(ws)
    assert push["arg"]["instId"] == BTC and close_of(push) == Decimal(61234)


async def test_public_ws_price_moves_from_another_thread_reach_the_socket(served: ServedSim) -> None:
    async with connect_public(served) as ws:
        await subscribe(ws, ETH)
        await asyncio.to_thread(served.sim.set_price, ETH, Decimal("3123.5"))
        push = await receive(ws)
    assert close_of(push) == Decimal("3123.5")


async def test_public_ws_repushes_the_current_candle_without_a_change(served: ServedSim) -> None:
    hub(served).repush_s = 0.05
    async with connect_public(served) as ws:
        await subscribe(ws, BTC, ETH)
        pushes = [await receive(ws) for _ in range(6)]
    assert {p["arg"]["instId"] for p in pushes} == {BTC, ETH}
    assert {close_of(p) for p in pushes if p["arg"]["instId"] == BTC} == {served.sim.price(BTC)}


async def test_public_ws_unsubscribe_stops_the_pushes(served: ServedSim) -> None:
    async with connect_public(served) as ws:
        await subscribe(ws, BTC, ETH)
        await ws.send(json.dumps({"op": "unsubscribe", "args": [{"channel": CANDLE, "instId": BTC}]}))
        ack = await receive(ws)
        served.sim.set_price(BTC, Decimal(61000))
        served.sim.set_price(ETH, Decimal(3001))
        push = await receive(ws)
    assert ack == {"event": "unsubscribe", "arg": {"channel": CANDLE, "instId": BTC}}
    assert push["arg"]["instId"] == ETH


@pytest.mark.parametrize("request_text", [
    pytest.param(json.dumps({"op": "subscribe", "args": [{"channel": "mark-price", "instId": BTC}]}),
                 id="unknown_channel"),
    pytest.param(json.dumps({"op": "subscribe", "args": [{"channel": CANDLE, "instId": "NOPE-USDT"}]}),
                 id="unknown_instrument"),
    pytest.param(json.dumps({"op": "subscribe", "args": [{"channel": CANDLE}]}), id="no_instrument"),
    pytest.param(json.dumps({"op": "subscribe", "args": [{"channel": CANDLE, "instId": [BTC]}]}),
                 id="instrument_not_a_string"),
    pytest.param(json.dumps({"op": "subscribe", "args": [{"channel": "orders"}]}), id="private_channel"),
    pytest.param(json.dumps({"op": "login", "args": []}), id="login"),
    pytest.param(json.dumps({"op": "subscribe", "args": []}), id="no_args"),
    pytest.param("{not json", id="not_json"),
])
async def test_public_ws_bad_request_gets_the_60012_error_and_the_socket_stays(
    served: ServedSim, request_text: str
) -> None:
    async with connect_public(served) as ws:
        await ws.send(request_text)
        error = await receive(ws)
        await ws.send("ping")
        pong = await asyncio.wait_for(ws.recv(), RECEIVE_S)
    assert error == {"event": "error", "code": "60012", "msg": f"Invalid request: {request_text}"}
    assert pong == "pong"


async def test_public_ws_one_bad_argument_refuses_the_whole_request(served: ServedSim) -> None:
    args = [{"channel": CANDLE, "instId": BTC}, {"channel": CANDLE, "instId": "NOPE-USDT"}]
    async with connect_public(served) as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": args}))
        error = await receive(ws)
        served.sim.set_price(BTC, Decimal(61000))
        await ws.send("ping")
        after = await asyncio.wait_for(ws.recv(), RECEIVE_S)
    assert error["code"] == "60012"
    assert after == "pong"  # no BTC push: nothing was subscribed


async def test_public_ws_one_request_subscribes_every_instrument(served: ServedSim) -> None:
    every = sorted(served.sim.instruments)
    async with connect_public(served) as ws:
        answers = await subscribe(ws, *every)
        served.sim.set_price(every[-1], served.sim.price(every[-1]) + 1)
        moved = await receive(ws)
    acks = [a["arg"]["instId"] for a in answers if a.get("event") == "subscribe"]
    candles = [a["arg"]["instId"] for a in answers if "data" in a]
    assert acks == candles == every  # each acknowledged, then its candle, in the order asked
    assert moved["arg"]["instId"] == every[-1]
    assert [set(conn.subs) for conn in hub(served).connections] == [set(every)]


async def test_public_ws_a_request_over_4096_bytes_is_refused_whole(served: ServedSim) -> None:
    every = sorted(served.sim.instruments)
    args = [{"channel": CANDLE, "instId": i} for i in every]
    text = json.dumps({"op": "subscribe", "args": args + args})  # repeated: over BloFin's 4096 bytes
    assert len(text.encode()) > 4096 >= len(json.dumps({"op": "subscribe", "args": args}).encode())
    async with connect_public(served) as ws:
        await ws.send(text)
        error = await receive(ws)
        await ws.send("ping")
        after = await asyncio.wait_for(ws.recv(), RECEIVE_S)
    assert error == {"event": "error", "code": "60012", "msg": f"Invalid request: {text[:512]}"}
    assert after == "pong"  # nothing subscribed, the socket stays
    assert hub(served).request_sizes == [len(text.encode())]


async def test_public_ws_ping_is_answered_with_pong(served: ServedSim) -> None:
    async with connect_public(served) as ws:
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), RECEIVE_S) == "pong"


async def test_public_ws_idle_connection_without_subscriptions_is_closed(served: ServedSim) -> None:
    hub(served).idle_timeout_s = 0.3
    async with connect_public(served) as ws:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), RECEIVE_S)
    assert ws.close_code == 1000


async def test_public_ws_drop_closes_public_sockets_and_refuse_blocks_new_ones(served: ServedSim) -> None:
    async with connect_public(served) as one, connect_public(served) as two:
        await subscribe(one, BTC)
        dropped = await served.control("/sim/ws/drop", {})
        for ws in (one, two):
            with pytest.raises(ConnectionClosed):
                await receive(ws)
    await served.control("/sim/ws/refuse", {"seconds": 30})
    with pytest.raises(InvalidStatus) as refused:
        async with connect_public(served):
            pass
    assert dropped["data"] == {"dropped": 0, "dropped_public": 2}
    assert one.close_code == 1012
    assert refused.value.response.status_code == 403 and len(hub(served).refused_times) == 1


async def test_public_ws_slow_consumer_is_closed_instead_of_blocking_the_engine(served: ServedSim) -> None:
    hub(served).queue_size = 5
    async with connect_public(served) as ws:
        await subscribe(ws, BTC)
        for n in range(50):  # synchronous: the writer gets no turn in between
            served.sim.set_price(BTC, Decimal(60000 + n + 1))
        with pytest.raises(ConnectionClosed):
            while True:
                await receive(ws)
    assert ws.close_code == 1013


async def test_private_ws_instrument_not_a_string_gets_60012_not_a_crash(served: ServedSim) -> None:
    request = json.dumps({"op": "subscribe", "args": [{"channel": "orders", "instId": [BTC]}]})
    async with connect(served.ws_url(), ping_interval=None, open_timeout=5, close_timeout=1) as ws:
        await ws.send(json.dumps({"op": "login", "args": [served.auth.ws_login_args()]}))
        login = await receive(ws)
        await ws.send(request)
        error = await receive(ws)
        await ws.send("ping")
        pong = await asyncio.wait_for(ws.recv(), RECEIVE_S)
    assert login["event"] == "login"
    assert error == {"event": "error", "code": "60012", "msg": f"Invalid request: {request}"}
    assert pong == "pong"


def test_price_moves_reach_price_listeners_not_event_subscribers() -> None:
    from hit_server.blofin_sim import Simulator

    sim = Simulator(make_config())
    events: list[SimEvent] = []
    moves: list[tuple[str, Decimal]] = []
    sim.subscribe(events.append)
    sim.price_listeners.append(lambda inst_id, price: moves.append((inst_id, price)))
    btc = sim.price(BTC)
    sim.set_price(BTC, btc + 100)
    sim.set_price(BTC, btc + 100)  # no change: nobody hears of it
    sim.set_price(ETH, Decimal(3100))
    quiet = list(events)
    sim.reset()
    assert quiet == []
    assert moves[:2] == [(BTC, btc + 100), (ETH, Decimal(3100))]
    assert sorted(moves[2:]) == [(BTC, btc), (ETH, Decimal(3000))]  # the reset moved both back


def test_price_listeners_hear_the_final_price_of_a_move_that_fills_an_order() -> None:
    from hit_server.blofin_sim import Simulator

    sim = Simulator(make_config())
    moves: list[tuple[str, Decimal]] = []
    sim.price_listeners.append(lambda inst_id, price: moves.append((inst_id, price)))
    sim.place_order(OrderParams(inst_id=BTC, side="buy", order_type="limit", price=Decimal(59000),
                                size=Decimal(1), margin_mode="cross", client_order_id="listenfill"))
    sim.set_price(BTC, Decimal(58000))  # crosses the limit at 59000 on the way
    assert sim.positions[BTC].size == 1
    assert moves == [(BTC, Decimal(58000))]
