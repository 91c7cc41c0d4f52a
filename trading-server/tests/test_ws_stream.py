"""PrivateStream (the client) against the simulator's /ws/private over a real loopback port."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from websockets.asyncio.server import ServerConnection, serve

from hit_server.blofin_sim.loopback import ServedSim, serve_sim
from hit_server.blofin_sim.models import OrderParams
from hit_server.blofin_sim.testing import make_config
from hit_server.exchange.blofin_auth import BloFinAuth, Credentials
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_models import OrderRequest
from hit_server.exchange.blofin_rest import RetryPolicy
from hit_server.exchange.blofin_ws import PrivateStream
from hit_server.exchange.ratelimit import ConnectionPacer, RateLimiter

BTC = "BTC-USDT"
KEY = "ws-stream-key-0123456789abcdef0123"
SECRET = "ws-SECRET-must-never-be-logged-77"
PASSPHRASE = "ws-PASSPHRASE-must-never-be-logged"
ALL_CHANNELS = {"orders", "positions", "orders-algo"}


class Recorder:
    """The callbacks a caller gives PrivateStream, remembering what they were told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, list[dict[str, Any]]]] = []
        self.states: list[bool] = []
        self.on_connect: Callable[[], None] | None = None

    async def on_event(self, channel: str, rows: list[dict[str, Any]]) -> None:
        self.events.append((channel, rows))

    async def on_state(self, connected: bool) -> None:
        self.states.append(connected)
        if connected and self.on_connect is not None:
            self.on_connect()

    def rows(self, channel: str) -> list[dict[str, Any]]:
        return [row for ch, rows in self.events if ch == channel for row in rows]

    def filled(self) -> list[str]:
        return [r["clientOrderId"] for r in self.rows("orders") if r["state"] == "filled"]


async def until(condition: Callable[[], bool], seconds: float = 5) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - polls what the stream's callbacks recorded
            await asyncio.sleep(0.01)


@pytest.fixture
async def served() -> AsyncIterator[ServedSim]:
    async with serve_sim(make_config(api_key=KEY, api_secret=SECRET, passphrase=PASSPHRASE)) as served:
        yield served


@pytest.fixture
async def client(served: ServedSim) -> AsyncIterator[BloFinClient]:
    async with httpx.AsyncClient(base_url=served.http_url) as http:
        yield BloFinClient(http, served.auth, request_timeout=5, retry=RetryPolicy(),
                           rate_limiter=RateLimiter.unlimited())


StartStream = Callable[..., tuple[PrivateStream, Recorder, "asyncio.Task[None]"]]


@pytest.fixture
async def start(served: ServedSim) -> AsyncIterator[StartStream]:
    """`start(auth=None, **kwargs)` runs a PrivateStream with short backoffs; stopped at teardown."""
    running: list[tuple[PrivateStream, asyncio.Task[None]]] = []

    def make(
        auth: BloFinAuth | None = None, **kwargs: Any
    ) -> tuple[PrivateStream, Recorder, asyncio.Task[None]]:
        recorder = Recorder()
        kwargs = {"backoff_initial": 0.05, "backoff_max": 0.4, "reply_timeout": 3.0, **kwargs}
        stream = PrivateStream(served.ws_url(), auth or served.auth, on_event=recorder.on_event,
                               on_state=recorder.on_state, **kwargs)
        task = asyncio.create_task(stream.run())
        running.append((stream, task))
        return stream, recorder, task

    yield make
    for stream, task in running:
        await asyncio.wait_for(stream.stop(), 5)
        await asyncio.wait_for(task, 5)


def market_buy(cid: str, **extra: Any) -> OrderRequest:
    return OrderRequest(inst_id=BTC, side="buy", order_type="market", size=Decimal(1), margin_mode="cross",
                        client_order_id=cid, **extra)


def secrets_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    # KEY[:8]: even a prefix of the key longer than mask() shows (a frame trace elides the middle)
    return [s for s in (SECRET, PASSPHRASE, KEY[:8], "passphrase\":", "sign\":") if s in text]


async def test_stream_subscribes_delivers_pushes_and_stops_cleanly(
    served: ServedSim, client: BloFinClient, start: StartStream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="websockets")
    stream, recorder, task = start()
    await until(lambda: stream.connected)
    [conn] = served.hub.connections
    assert {sub.channel for sub in conn.subs} == ALL_CHANNELS
    await client.place_order(market_buy("wsstream1", sl_trigger_price=Decimal(57000)))
    await until(lambda: bool(recorder.rows("orders-algo")))
    await stream.stop()
    await asyncio.wait_for(task, 5)
    assert recorder.states == [True, False] and not stream.connected
    assert recorder.events[0] == ("positions", [])  # the snapshot on subscribe: no position yet
    assert recorder.filled() == ["wsstream1"]
    assert [r["positions"] for r in recorder.rows("positions")] == ["1"]
    assert recorder.rows("orders-algo")[0]["slTriggerPrice"] == "57000"
    await until(lambda: not served.hub.connections)
    assert secrets_in(caplog) == []
    assert any("connected" in r.getMessage() for r in caplog.records)


async def test_stream_reconnects_and_resubscribes_after_drop_without_missing_later_events(
    served: ServedSim, client: BloFinClient, start: StartStream
) -> None:
    stream, recorder, _ = start()
    await until(lambda: stream.connected)

    def publish_at_reconnect() -> None:  # the earliest moment after the new subscriptions
        if len(recorder.states) == 3:
            served.sim.place_order(OrderParams(inst_id=BTC, side="buy", order_type="market", size=Decimal(1),
                                               margin_mode="cross", client_order_id="wsatonce"))

    recorder.on_connect = publish_at_reconnect
    await served.control("/sim/ws/drop")
    await until(lambda: recorder.states == [True, False, True])
    for n in range(3):
        await client.place_order(market_buy(f"wsafter{n}"))
    await until(lambda: len(recorder.filled()) == 4)
    assert recorder.filled() == ["wsatonce", "wsafter0", "wsafter1", "wsafter2"]
    [conn] = served.hub.connections
    assert {sub.channel for sub in conn.subs} == ALL_CHANNELS
    assert [r["positions"] for r in recorder.rows("positions")][-1] == "4"


async def test_stream_backs_off_while_connections_are_refused(served: ServedSim, start: StartStream) -> None:
    await served.control("/sim/ws/refuse", {"seconds": 1.0})
    began = time.monotonic()
    stream, recorder, _ = start()
    await until(lambda: stream.connected)
    took = time.monotonic() - began
    refused = served.hub.refused_times
    assert took >= 1.0 and recorder.states == [True]
    # 0.05 s doubling to 0.4 s, jittered, over a second: a handful, not a tight loop (how the waits grow
    # is test_stream_backoff_doubles_up_to_the_cap_with_jitter's; a busy machine only makes them longer)
    assert 2 <= len(refused) <= 10


async def test_stream_login_refusal_is_backed_off_and_logged_once_without_secrets(
    served: ServedSim, start: StartStream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="websockets")
    wrong = BloFinAuth(Credentials(KEY, SecretStr(SECRET + "x"), SecretStr(PASSPHRASE)))
    began = time.monotonic()
    stream, recorder, _ = start(auth=wrong)
    await until(lambda: served.hub.login_attempts >= 4, seconds=60)
    took = time.monotonic() - began
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "login refused" in r.getMessage()]
    # backed off, not a tight loop: three waits of at least half of 0.05, 0.1 and 0.2 s between four tries
    assert took >= 0.175
    assert len(errors) == 1 and "60009" in errors[0].getMessage()
    assert recorder.states == [] and not stream.connected
    assert secrets_in(caplog) == []


async def test_stream_pings_when_silent_so_the_idle_limit_never_drops_it(
    served: ServedSim, start: StartStream
) -> None:
    served.hub.idle_timeout_s = 0.4
    stream, recorder, _ = start(ping_interval=0.1)
    await until(lambda: stream.connected)
    await asyncio.sleep(1.2)
    assert recorder.states == [True] and stream.connected


async def test_stream_reconnects_when_the_server_drops_it_for_silence(
    served: ServedSim, start: StartStream
) -> None:
    served.hub.idle_timeout_s = 0.3
    _, recorder, _ = start(ping_interval=5.0)  # pings far too rarely for this server
    await until(lambda: len(recorder.states) >= 3)
    assert recorder.states[:3] == [True, False, True]


async def test_stream_account_object_arrives_as_one_row(served: ServedSim, start: StartStream) -> None:
    _, recorder, _ = start(channels=("account",))
    await until(lambda: bool(recorder.events))
    [(channel, rows)] = recorder.events
    assert channel == "account" and len(rows) == 1 and rows[0]["details"][0]["currency"] == "USDT"


async def test_stream_goes_on_when_a_callback_raises(
    served: ServedSim, client: BloFinClient, start: StartStream, caplog: pytest.LogCaptureFixture
) -> None:
    stream, recorder, _ = start()
    calls = 0
    record = stream.on_event

    async def flaky(channel: str, rows: list[dict[str, Any]]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("a bug in the caller")
        await record(channel, rows)

    stream.on_event = flaky
    await until(lambda: stream.connected)
    await client.place_order(market_buy("wsflaky"))
    await until(lambda: recorder.filled() == ["wsflaky"])
    assert recorder.states == [True]
    assert any("on_event failed" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_stream_stop_returns_promptly_while_refused(served: ServedSim, start: StartStream) -> None:
    await served.control("/sim/ws/refuse", {"seconds": 30})
    stream, recorder, task = start(backoff_initial=5.0, backoff_max=10.0)
    await until(lambda: len(served.hub.refused_times) >= 1)
    began = time.monotonic()
    await stream.stop()
    # promptly: without waiting out the 5 s backoff (a margin for a busy machine)
    assert task.done() and time.monotonic() - began < 4.0
    assert recorder.states == []


@pytest.mark.parametrize("failures", range(8))
def test_stream_backoff_doubles_up_to_the_cap_with_jitter(failures: int) -> None:
    async def ignore(channel: str, rows: list[dict[str, Any]]) -> None:
        return None

    creds = Credentials(KEY, SecretStr(SECRET), SecretStr(PASSPHRASE))
    stream = PrivateStream("ws://127.0.0.1:9/ws/private", BloFinAuth(creds), on_event=ignore,
                           backoff_initial=0.5, backoff_max=30.0, rng=random.Random(failures))
    base = min(30.0, 0.5 * 2 ** max(failures - 1, 0))
    delays = [stream.backoff_delay(failures) for _ in range(50)]
    assert all(base / 2 <= d <= base for d in delays)
    assert max(delays) - min(delays) > base / 10  # jittered, so reconnecting clients spread out


async def test_stream_gives_up_on_a_socket_that_never_answers_ping() -> None:
    """A half-dead connection (acks, then silence, no pong) is detected and replaced."""
    pings = 0

    async def mute(ws: ServerConnection) -> None:
        nonlocal pings
        await ws.recv()
        await ws.send(json.dumps({"event": "login", "code": "0", "msg": ""}))
        await ws.recv()
        await ws.send(json.dumps({"event": "subscribe", "arg": {"channel": "orders"}}))
        async for message in ws:
            pings += message == "ping"

    async with serve(mute, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        creds = Credentials(KEY, SecretStr(SECRET), SecretStr(PASSPHRASE))
        recorder = Recorder()
        stream = PrivateStream(f"ws://127.0.0.1:{port}", BloFinAuth(creds), channels=("orders",),
                               on_event=recorder.on_event, on_state=recorder.on_state, ping_interval=0.1,
                               backoff_initial=0.05)
        task = asyncio.create_task(stream.run())
        try:
            await until(lambda: len(recorder.states) >= 3)
        finally:
            await stream.stop()
            await asyncio.wait_for(task, 5)
    assert recorder.states[:3] == [True, False, True]
    assert pings >= 1


async def test_streams_sharing_a_pacer_connect_one_interval_apart(start: StartStream) -> None:
    """BloFin lets one IP open one new connection a second: streams of one address (a fleet worker's
    accounts) each take a turn from their shared pacer before connecting, one interval apart."""

    class Noting(ConnectionPacer):
        def __init__(self) -> None:
            super().__init__(interval_s=0.3)
            self.granted: list[float] = []

        async def turn(self) -> None:
            await super().turn()
            self.granted.append(time.monotonic())

    pacer = Noting()
    recorders = [start(pacer=pacer)[1] for _ in range(3)]
    await until(lambda: all(True in recorder.states for recorder in recorders))
    assert len(pacer.granted) == 3  # each stream waited for its turn before its connection
    gaps = [later - earlier for earlier, later in zip(pacer.granted, pacer.granted[1:], strict=False)]
    assert all(gap >= 0.3 - 0.01 for gap in gaps), gaps


async def test_a_connection_pacer_gives_one_turn_per_interval() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = ConnectionPacer(interval_s=1.0, clock=lambda: now[0], sleep=sleep)
    await pacer.turn()
    await pacer.turn()
    now[0] += 0.25
    await pacer.turn()
    now[0] += 5
    await pacer.turn()  # long after the last: at once
    assert slept == [1.0, 0.75]
