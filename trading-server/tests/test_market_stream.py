"""MarkPrices (the public WebSocket's mark prices, issue #18) against the simulator's /ws/public over a
real loopback port, and against a scripted server for what the simulator never sends."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from hit_server.blofin_sim.loopback import ServedSim, serve_sim
from hit_server.blofin_sim.testing import make_config
from hit_server.blofin_sim.ws_public import PublicWsHub, public_hub_of
from hit_server.exchange.market_stream import MarkPrices, batches, public_ws_url, subscribe_text

BTC = "BTC-USDT"
ETH = "ETH-USDT"
CANDLE = "mark-price-candle1m"
WAIT_S = 5.0


class FakeClock:
    """The clock MarkPrices judges freshness by; moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def until(condition: Callable[[], bool], seconds: float = WAIT_S) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - polls what the stream's task records
            await asyncio.sleep(0.01)


@pytest.fixture
async def served() -> AsyncIterator[ServedSim]:
    """No periodic re-push within a test unless it asks: every push is a subscription's or a change's."""
    async with serve_sim(make_config(public_repush_s=3600.0)) as served:
        yield served


def hub(served: ServedSim) -> PublicWsHub:
    return public_hub_of(served.app)


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Any]]:
    """`await start(url, **kwargs)`: a started MarkPrices with short backoffs (and no second's wait
    between connections); stopped at teardown."""
    running: list[MarkPrices] = []

    async def make(url: str | None, **kwargs: Any) -> MarkPrices:
        kwargs = {"backoff_initial": 0.05, "backoff_max": 0.3, "open_timeout": 3.0, "connect_interval_s": 0.0,
                  **kwargs}
        marks = MarkPrices(url, **kwargs)
        running.append(marks)
        await marks.start()
        return marks

    yield make
    for marks in running:
        await asyncio.wait_for(marks.stop(), WAIT_S)


def public_url(served: ServedSim) -> str:
    return public_ws_url(served.http_url)


def subscribed(served: ServedSim) -> list[set[str]]:
    """The instruments each open public connection of the simulator is subscribed to."""
    return [set(conn.subs) for conn in hub(served).connections]


async def test_mark_prices_fresh_after_subscribing_equals_the_simulator_price(
    served: ServedSim, start: Callable[..., Any]
) -> None:
    marks: MarkPrices = await start(public_url(served))
    assert marks.fresh(BTC) is None  # not watched yet
    marks.watch(BTC)
    marks.watch(BTC)  # idempotent: one subscription
    await until(lambda: marks.fresh(BTC) is not None)
    assert marks.fresh(BTC) == served.sim.price(BTC)
    assert marks.connected and subscribed(served) == [{BTC}]
    assert marks.fresh(ETH) is None


async def test_mark_prices_watch_before_start_subscribes_on_connecting(served: ServedSim) -> None:
    marks = MarkPrices(public_url(served), backoff_initial=0.05)
    marks.watch(ETH)
    marks.watch(BTC)
    try:
        await marks.start()
        await until(lambda: marks.fresh(BTC) is not None and marks.fresh(ETH) is not None)
        assert subscribed(served) == [{BTC, ETH}]
    finally:
        await marks.stop()
    assert not marks.connected and marks.fresh(BTC) is None  # stopped: nothing is fresh


async def test_mark_prices_sees_a_price_change_at_once(served: ServedSim, start: Callable[..., Any]) -> None:
    marks: MarkPrices = await start(public_url(served))
    marks.watch(BTC)
    await until(lambda: marks.fresh(BTC) is not None)
    await served.control("/sim/price", {"instId": BTC, "price": "61234.5"})
    await until(lambda: marks.fresh(BTC) == Decimal("61234.5"))
    served.sim.set_price(BTC, Decimal("59000.1"))
    await until(lambda: marks.fresh(BTC) == Decimal("59000.1"))


async def test_mark_prices_not_fresh_after_max_age_without_a_push(
    served: ServedSim, start: Callable[..., Any]
) -> None:
    clock = FakeClock()
    marks: MarkPrices = await start(public_url(served), max_age_s=5.0, clock=clock)
    marks.watch(BTC)
    await until(lambda: marks.fresh(BTC) is not None)
    clock.now += 5.0
    assert marks.fresh(BTC) == served.sim.price(BTC)  # exactly max_age: still fresh
    clock.now += 0.01
    assert marks.fresh(BTC) is None
    assert marks.connected  # stale, not disconnected
    served.sim.set_price(BTC, Decimal(60100))  # a push renews it
    await until(lambda: marks.fresh(BTC) == Decimal(60100))


async def test_mark_prices_stay_fresh_on_the_periodic_repush_alone(start: Callable[..., Any]) -> None:
    clock = FakeClock()
    async with serve_sim(make_config(public_repush_s=0.05)) as served:
        marks: MarkPrices = await start(public_url(served), max_age_s=5.0, clock=clock)
        marks.watch(BTC)
        await until(lambda: marks.fresh(BTC) is not None)
        for _ in range(3):  # stale, then renewed by a re-push with no price change in between
            clock.now += 60
            assert marks.fresh(BTC) is None
            await until(lambda: marks.fresh(BTC) is not None)
        assert marks.fresh(BTC) == served.sim.price(BTC)
        await marks.stop()


async def test_mark_prices_none_on_a_drop_then_fresh_and_resubscribed_after_the_reconnect(
    served: ServedSim, start: Callable[..., Any]
) -> None:
    clock = FakeClock()  # never moves: only the disconnect can make a mark un-fresh
    marks: MarkPrices = await start(public_url(served), max_age_s=3600.0, clock=clock)
    marks.watch(BTC)
    marks.watch(ETH)
    await until(lambda: marks.fresh(BTC) is not None and marks.fresh(ETH) is not None)
    await served.control("/sim/ws/refuse", {"seconds": 0.5})
    await served.control("/sim/ws/drop")
    await until(lambda: not marks.connected)
    assert marks.fresh(BTC) is None and marks.fresh(ETH) is None
    served.sim.set_price(BTC, Decimal(62000))  # while disconnected: the next subscription brings it
    await until(lambda: marks.fresh(BTC) is not None and marks.fresh(ETH) is not None)
    assert marks.fresh(BTC) == Decimal(62000)
    assert subscribed(served) == [{BTC, ETH}]
    served.sim.set_price(ETH, Decimal("3010.5"))
    await until(lambda: marks.fresh(ETH) == Decimal("3010.5"))
    assert len(hub(served).refused_times) >= 1


async def test_mark_prices_unknown_instrument_never_fresh_and_others_unaffected(
    served: ServedSim, start: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hit_server.exchange.market_stream")
    marks: MarkPrices = await start(public_url(served))
    marks.watch("NOPE-USDT")
    marks.watch(BTC)
    await until(lambda: marks.fresh(BTC) is not None)
    await until(lambda: any("NOPE-USDT refused" in r.getMessage() for r in caplog.records))
    served.sim.set_price(BTC, Decimal(60500))
    await until(lambda: marks.fresh(BTC) == Decimal(60500))
    assert marks.fresh("NOPE-USDT") is None
    assert marks.connected and len(hub(served).connections) == 1 and subscribed(served) == [{BTC}]


async def test_mark_prices_without_a_url_does_nothing(start: Callable[..., Any]) -> None:
    marks: MarkPrices = await start(None)
    marks.watch(BTC)
    assert not marks.connected and marks.fresh(BTC) is None
    await marks.stop()


async def test_mark_prices_stop_closes_the_socket_and_ends_freshness(
    served: ServedSim, start: Callable[..., Any]
) -> None:
    marks: MarkPrices = await start(public_url(served))
    marks.watch(BTC)
    await until(lambda: marks.fresh(BTC) is not None)
    await asyncio.wait_for(marks.stop(), WAIT_S)
    assert not marks.connected and marks.fresh(BTC) is None
    await until(lambda: not hub(served).connections)
    served.sim.set_price(BTC, Decimal(61000))
    assert marks.fresh(BTC) is None


# ---- every instrument, in batches (WATCH_ALL_MARKS) ----------------------------------------------------


def every_instrument(served: ServedSim) -> list[str]:
    return sorted(served.sim.instruments)


def subscribe_sizes(served: ServedSim) -> list[int]:
    """The size of every subscribe request the simulator's public sockets received, in order."""
    return [size for size in hub(served).request_sizes if size > len("ping")]


@pytest.mark.parametrize("max_bytes", [4096, 700])
async def test_mark_prices_subscribe_every_instrument_in_few_requests_within_the_byte_limit(
    served: ServedSim, start: Callable[..., Any], max_bytes: int
) -> None:
    symbols = every_instrument(served)
    expected = batches(symbols, max_bytes)
    marks: MarkPrices = await start(public_url(served), max_request_bytes=max_bytes)
    marks.watch_all(symbols)
    await until(lambda: all(marks.fresh(s) is not None for s in symbols))

    sizes = subscribe_sizes(served)
    assert subscribed(served) == [set(symbols)]
    assert len(sizes) == marks.requests_sent == len(expected)
    assert max(sizes) <= max_bytes, sizes
    assert [len(subscribe_text(batch).encode()) for batch in expected] == sizes
    if max_bytes == 700:  # the batches are as full as the limit allows: one more symbol would not fit
        assert len(expected) > 3
        for batch, following in itertools.pairwise(expected):
            assert len(subscribe_text([*batch, following[0]]).encode()) > max_bytes
    else:
        assert len(expected) == 1  # the simulator's 67 instruments fit one request of BloFin's size


async def test_mark_prices_every_instrument_resubscribed_in_batches_after_a_reconnect(
    served: ServedSim, start: Callable[..., Any]
) -> None:
    symbols = every_instrument(served)
    clock = FakeClock()  # never moves: only the disconnect can make a mark un-fresh
    marks: MarkPrices = await start(public_url(served), max_request_bytes=900, clock=clock, max_age_s=3600.0)
    marks.watch_all(symbols)
    await until(lambda: all(marks.fresh(s) is not None for s in symbols))
    first = marks.requests_sent
    await served.control("/sim/ws/drop")
    await until(lambda: not marks.connected or marks.fresh(symbols[0]) is None)
    served.sim.set_price(BTC, Decimal(63000))  # what the new subscription brings

    await until(lambda: marks.connected and all(marks.fresh(s) is not None for s in symbols))

    assert marks.fresh(BTC) == Decimal(63000)
    assert subscribed(served) == [set(symbols)]  # the new connection holds every one of them
    assert marks.requests_sent == 2 * first == 2 * len(batches(symbols, 900))
    assert max(subscribe_sizes(served)) <= 900


async def test_mark_prices_a_refused_batch_is_split_until_the_unknown_symbol_stands_alone(
    served: ServedSim, start: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hit_server.exchange.market_stream")
    symbols = every_instrument(served)
    marks: MarkPrices = await start(public_url(served))
    marks.watch_all([*symbols[:40], "NOPE-USDT", *symbols[40:]])  # one request: the simulator refuses it

    await until(lambda: all(marks.fresh(s) is not None for s in symbols))
    await until(lambda: any(r.getMessage().startswith("BloFin public stream: NOPE-USDT refused")
                            for r in caplog.records))

    assert marks.fresh("NOPE-USDT") is None and marks.connected
    assert subscribed(served) == [set(symbols)]
    # halving: two requests per level down to the lone symbol (68 symbols: 7 levels), not one per symbol
    assert marks.requests_sent <= 1 + 2 * 7, marks.requests_sent


async def test_mark_prices_keep_to_the_subscribe_requests_allowed_per_connection_and_hour(
    served: ServedSim, start: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hit_server.exchange.market_stream")
    symbols = every_instrument(served)
    cut = batches(symbols, 400)
    assert len(cut) > 3
    marks: MarkPrices = await start(public_url(served), max_request_bytes=400, requests_per_hour=3)
    marks.watch_all(symbols)

    await until(lambda: any("3 subscribe requests sent within the hour" in r.getMessage()
                            for r in caplog.records))
    allowed = [s for batch in cut[:3] for s in batch]
    await until(lambda: all(marks.fresh(s) is not None for s in allowed))

    assert marks.requests_sent == len(subscribe_sizes(served)) == 3  # the fourth waits for the hour to pass
    assert subscribed(served) == [set(allowed)]
    assert marks.fresh(cut[3][0]) is None


def test_batches_keep_the_order_and_cut_at_the_byte_limit() -> None:
    symbols = [f"S{n:03d}-USDT" for n in range(200)]
    for limit in (120, 500, 4096):
        cut = batches(symbols, limit)
        assert [s for batch in cut for s in batch] == symbols
        assert all(len(subscribe_text(batch).encode()) <= limit for batch in cut)
        assert all(len(subscribe_text([*a, b[0]]).encode()) > limit for a, b in itertools.pairwise(cut))
    assert batches([], 4096) == []
    assert batches(["X" * 5000], 4096) == [["X" * 5000]]  # alone: refused alone


def test_public_ws_url_beside_the_rest_root() -> None:
    assert public_ws_url("https://openapi.blofin.com") == "wss://openapi.blofin.com/ws/public"
    assert public_ws_url("https://demo-trading-openapi.blofin.com/") == (
        "wss://demo-trading-openapi.blofin.com/ws/public")
    assert public_ws_url("http://127.0.0.1:8123") == "ws://127.0.0.1:8123/ws/public"


# ---- a scripted server: what the simulator never sends ------------------------------------------------


def push(inst_id: str, close: Any, *, channel: str = CANDLE) -> str:
    return json.dumps({"arg": {"channel": channel, "instId": inst_id},
                       "data": [["1753151760000", "1", "2", "0.5", close, "0"]]})


JUNK: list[str | bytes] = [
    "not json at all",
    "[1, 2, 3]",
    "null",
    b"\xff\xfe binary junk",
    "[" * 100_000,
    json.dumps({"event": "subscribe", "arg": {"channel": CANDLE, "instId": "NEVER-ASKED"}}),
    json.dumps({"event": "subscribe", "arg": "not an object"}),
    json.dumps({"arg": {"channel": CANDLE, "instId": BTC}}),  # no data
    json.dumps({"arg": {"channel": CANDLE, "instId": BTC}, "data": []}),
    json.dumps({"arg": {"channel": CANDLE, "instId": BTC}, "data": "60000"}),
    json.dumps({"arg": {"channel": CANDLE, "instId": BTC}, "data": [{"close": "1"}]}),
    json.dumps({"arg": {"channel": CANDLE, "instId": BTC}, "data": [["1753151760000", "1"]]}),
    json.dumps({"arg": [BTC], "data": [["1", "1", "1", "1", "1", "0"]]}),
    push(BTC, "abc"), push(BTC, "-5"), push(BTC, "0"), push(BTC, "NaN"), push(BTC, "Infinity"),
    push(BTC, 61000), push(BTC, None), push(BTC, ["1"]),
    push(BTC, "99", channel="mark-price-candle5m"),
    push("XRP-USDT", "1.5"),  # not watched
    json.dumps({"event": "error", "code": "60012", "msg": "Invalid request: nothing pending"}),
    json.dumps({"event": "unsubscribe", "arg": {"channel": CANDLE, "instId": BTC}}),
]


@asynccontextmanager
async def scripted(handler: Callable[[ServerConnection], Any]) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws/public"


async def test_mark_prices_ignores_junk_frames_without_losing_the_connection(
    start: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hit_server.exchange.market_stream")
    connections: list[ServerConnection] = []

    async def handler(ws: ServerConnection) -> None:
        connections.append(ws)
        async for raw in ws:
            arg = json.loads(raw)["args"][0]
            await ws.send(json.dumps({"event": "subscribe", "arg": arg}))
            if arg["instId"] == BTC:
                await ws.send(push(BTC, "60000.5"))
                for frame in JUNK:
                    await ws.send(frame)
            else:  # ETH, watched after the junk was sent: its push comes after all of it
                await ws.send(push(ETH, "3000.25"))

    async with scripted(handler) as url:
        marks: MarkPrices = await start(url)
        marks.watch(BTC)
        await until(lambda: marks.fresh(BTC) is not None)
        marks.watch(ETH)
        await until(lambda: marks.fresh(ETH) is not None)
        assert marks.fresh(BTC) == Decimal("60000.5")  # no junk replaced it
        assert marks.fresh(ETH) == Decimal("3000.25")
        assert marks.connected and len(connections) == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) >= len(JUNK) - 1  # the unsubscribe event is ignored quietly


async def test_mark_prices_reconnects_when_a_ping_gets_no_pong(start: Callable[..., Any]) -> None:
    connections: list[ServerConnection] = []

    async def deaf(ws: ServerConnection) -> None:  # acknowledges, then never answers anything
        connections.append(ws)
        async for raw in ws:
            if raw != "ping":
                await ws.send(json.dumps({"event": "subscribe", "arg": json.loads(raw)["args"][0]}))
                await ws.send(push(BTC, "60000"))

    async with scripted(deaf) as url:
        marks: MarkPrices = await start(url, ping_interval=0.1)
        marks.watch(BTC)
        await until(lambda: marks.fresh(BTC) is not None)
        await until(lambda: len(connections) >= 2)
        await until(lambda: marks.fresh(BTC) is not None)  # resubscribed on the new connection
