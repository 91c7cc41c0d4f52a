"""The account mirror (`exchange/mirror.py`) against the simulator: when it says it is live, it shows what
the exchange's REST reads show, whatever the order of pushes, seeds and reconnections.

The simulator's engine calls its subscribers with the same channels and rows as BloFin's private stream;
`Stream` below stands for the socket between them: it holds pushes back and lets them through when
the test says (a slow network), or loses them on a disconnection, as a real one would.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from hit_server.blofin_sim import SimConfig, create_app, views
from hit_server.blofin_sim.models import SimEvent
from hit_server.exchange.blofin_auth import BloFinAuth, Credentials
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_errors import BloFinError
from hit_server.exchange.blofin_models import Balance, Order, OrderRequest, Position, TpslOrder, TpslRequest
from hit_server.exchange.inprocess import InProcessHttp
from hit_server.exchange.mirror import AccountMirror
from hit_server.exchange.ratelimit import RateLimiter

# made up for each run: the simulator checks them, nothing else knows them
KEY, SECRET, PASSPHRASE = f"mirror-{secrets.token_hex(8)}", secrets.token_hex(16), secrets.token_hex(8)
SYMBOLS = ("BTC-USDT", "ETH-USDT", "SOL-USDT")


class Stream:
    """Engine events on their way to the mirror: held in order until `flush`, lost on `drop`."""

    def __init__(self, sim: Any, mirror: AccountMirror) -> None:
        self.mirror = mirror
        self.up = False
        self.in_flight: list[SimEvent] = []
        sim.subscribe(self._sent)

    def _sent(self, event: SimEvent) -> None:
        if self.up:  # while the socket is down, what the exchange pushes is lost
            self.in_flight.append(event)

    def flush(self, count: int | None = None) -> None:
        count = len(self.in_flight) if count is None else min(count, len(self.in_flight))
        for event in self.in_flight[:count]:
            self.mirror.push(event.channel, [event.data])
        del self.in_flight[:count]

    def drop(self) -> None:
        self.in_flight.clear()
        self.up = False
        self.mirror.disconnected()

    def reconnect(self) -> None:
        self.up = True
        self.mirror.connected()


class BusyReader:
    """The REST reads of a seed, with the account changing between them as on a busy account:
    `between` runs before each read (a trade, some pushes let through)."""

    def __init__(self, client: BloFinClient) -> None:
        self.client = client
        self.between: Callable[[], Awaitable[None]] | None = None

    async def _busy(self) -> None:
        if self.between is not None:
            await self.between()

    async def balance(self) -> Balance:
        await self._busy()
        return await self.client.balance()

    async def positions(self, inst_id: str | None = None) -> list[Position]:
        await self._busy()
        return await self.client.positions(inst_id)

    async def pending_orders(self, inst_id: str | None = None) -> list[Order]:
        await self._busy()
        return await self.client.pending_orders(inst_id)

    async def pending_tpsl(self, inst_id: str | None = None) -> list[TpslOrder]:
        await self._busy()
        return await self.client.pending_tpsl(inst_id)


class World:
    def __init__(self, clock: list[float] | None = None) -> None:
        self.app = create_app(SimConfig(api_key=KEY, api_secret=SECRET, passphrase=PASSPHRASE,
                                        rate_limit_per_min=0, trade_limit_per_10s=0))
        self.sim = self.app.state.sim
        auth = BloFinAuth(Credentials(KEY, SecretStr(SECRET), SecretStr(PASSPHRASE)))
        self.client = BloFinClient(InProcessHttp(self.app, "http://paper-exchange"), auth,
                                   rate_limiter=RateLimiter.unlimited())
        now = clock if clock is not None else [0.0]
        self.reader = BusyReader(self.client)
        self.mirror = AccountMirror(self.reader, clock=lambda: now[0])
        self.stream = Stream(self.sim, self.mirror)

    async def live(self) -> None:
        """Every push delivered and the seed landed."""
        for _ in range(200):
            self.stream.flush()
            if self.mirror.live and not self.stream.in_flight:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the mirror did not become live: {self.mirror!r}")

    async def agrees(self, context: str) -> None:
        rest_positions = {p.inst_id: p.positions for p in await self.client.positions()}
        rest_orders = sorted(o.order_id for o in await self.client.pending_orders())
        rest_tpsl = sorted(t.tpsl_id for t in await self.client.pending_tpsl())
        assert self.mirror.live, context
        assert {p.inst_id: p.positions for p in self.mirror.positions()} == rest_positions, context
        assert sorted(o.order_id for o in self.mirror.open_orders()) == rest_orders, context
        assert sorted(t.tpsl_id for t in self.mirror.live_tpsl()) == rest_tpsl, context
        assert self.mirror.held_symbols() == set(rest_positions), context


class Trader:
    """Random account activity through the REST API and price moves through the engine."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.world = world
        self.rng = rng
        self.n = 0

    def cid(self) -> str:
        self.n += 1
        return f"m{self.n}"

    async def act(self) -> str:
        rng, client, sim = self.rng, self.world.client, self.world.sim
        symbol = rng.choice(SYMBOLS)
        price = sim.price(symbol)
        step = price / 100
        action = rng.choice(["market", "limit", "limit", "cancel", "move", "move", "close", "tpsl"])
        try:
            if action == "market":
                side = rng.choice(["buy", "sell"])
                stop = price - 3 * step if side == "buy" else price + 3 * step
                await client.place_order(self._order(symbol, side, "market", None, stop))
            elif action == "limit":
                side = rng.choice(["buy", "sell"])
                limit = price - step if side == "buy" else price + step
                stop = limit - 3 * step if side == "buy" else limit + 3 * step
                await client.place_order(self._order(symbol, side, "limit", limit, stop))
            elif action == "cancel":
                orders = await client.pending_orders()
                if orders:
                    order = rng.choice(orders)
                    await client.cancel_order(order.inst_id, order_id=order.order_id)
            elif action == "move":
                sim.set_price(symbol, price + step * Decimal(rng.choice([-4, -2, -1, 1, 2, 4])))
            elif action == "close":
                if await client.positions(symbol):
                    await client.close_position(symbol, "cross")
            elif action == "tpsl":
                positions = await client.positions(symbol)
                if positions:
                    long = positions[0].positions > 0
                    await client.place_tpsl(TpslRequest(
                        inst_id=symbol, side="sell" if long else "buy", margin_mode="cross",
                        size=Decimal(-1), client_order_id=self.cid(),
                        sl_trigger_price=(price - 5 * step if long else price + 5 * step).quantize(step),
                        sl_order_price=Decimal(-1),
                    ))
        except BloFinError:
            pass  # refused (margin, price rules): the exchange is unchanged, and so must the mirror be
        return action

    def _order(self, symbol: str, side: str, kind: str, price: Decimal | None, stop: Decimal) -> OrderRequest:
        tick = self.world.sim.instrument(symbol).tick_size
        lot = self.world.sim.instrument(symbol).min_size
        return OrderRequest(
            inst_id=symbol, side=side, order_type=kind, size=lot * self.rng.choice([1, 2, 5]),  # type: ignore[arg-type]
            price=None if price is None else price.quantize(tick), margin_mode="cross",
            client_order_id=self.cid(), sl_trigger_price=stop.quantize(tick), sl_order_price=Decimal(-1),
        )


@pytest.mark.parametrize("seed", range(12))
async def test_mirror_agrees_with_the_exchange_through_delays_drops_and_reconnections(seed: int) -> None:
    world = World()
    rng = random.Random(seed)
    trader = Trader(world, rng)
    busy: list[str] = []

    async def between_seed_reads() -> None:
        if rng.random() < 0.6:
            busy.append(await trader.act())
            world.stream.flush(rng.randint(0, 4))

    world.reader.between = between_seed_reads
    world.stream.reconnect()
    await world.live()
    await world.agrees(f"seed {seed}: after the first seed")
    history: list[str] = []
    for step in range(60):
        history.append(await trader.act())
        roll = rng.random()
        if roll < 0.5:
            world.stream.flush(rng.randint(0, 3))  # the network lets some pushes through
        elif roll < 0.6:
            world.stream.drop()  # lost: pushes in flight are gone; the mirror must not be believed
            assert not world.mirror.live
            assert world.mirror.balance() is None
            history.append("drop")
        elif roll < 0.75:
            world.stream.reconnect()  # a new session: a seed is read while pushes go on arriving
            history.append("reconnect")
        if rng.random() < 0.2:
            if not world.stream.up:
                world.stream.reconnect()
                history.append("reconnect")
            await world.live()
            await world.agrees(f"seed {seed}, step {step}: {history[-8:]}")
    world.stream.reconnect()
    await world.live()
    await world.agrees(f"seed {seed}: at the end")
    assert len(busy) > 10, "the account hardly changed while seeds were read: the test tests little"


async def test_mirror_is_not_believed_before_its_seed_lands_or_after_a_loss() -> None:
    world = World()
    assert not world.mirror.live  # nothing connected yet
    world.stream.reconnect()
    assert not world.mirror.live  # connected, seed not read yet
    await world.live()
    assert world.mirror.balance() is not None
    world.stream.drop()
    assert not world.mirror.live
    assert world.mirror.positions() == [] or not world.mirror.live


async def test_wait_live_answers_when_the_seed_lands_or_when_time_is_up() -> None:
    world = World()
    assert not await world.mirror.wait_live(0.05)  # nothing connected: no seed will land
    world.stream.reconnect()
    waiting = asyncio.create_task(world.mirror.wait_live(10))
    await world.live()
    assert await waiting
    world.stream.drop()
    assert not await world.mirror.wait_live(0)


async def test_mirror_balance_is_believed_only_while_young() -> None:
    clock = [100.0]
    world = World(clock)
    world.mirror.balance_max_age_s = 30.0
    world.stream.reconnect()
    await world.live()
    assert world.mirror.balance() is not None
    clock[0] += 31.0  # no push and no refresh for longer than allowed
    assert world.mirror.balance() is None
    assert world.mirror.live  # the rest of the mirror still stands: only the balance is too old


async def test_mirror_refreshes_the_balance_before_it_gets_too_old() -> None:
    world = World()
    world.mirror.balance_max_age_s = 0.2  # on the real clock for this one: the refresh task sleeps on it
    world.mirror.clock = asyncio.get_running_loop().time
    world.stream.reconnect()
    await world.live()
    seen_at = world.mirror._balance_at
    for _ in range(100):
        await asyncio.sleep(0.02)
        if world.mirror._balance_at > seen_at:
            break
    assert world.mirror._balance_at > seen_at, "the balance was not read again in the background"
    assert world.mirror.balance() is not None


async def test_the_balance_pushed_now_and_then_is_not_read_again_by_rest() -> None:
    """BloFin pushes the balance at a regular interval; while those pushes come more often than the
    refresh would, the mirror spends no request on it (a fleet of idle accounts spent most of its IP
    budget on these reads)."""
    world = World()
    world.mirror.balance_max_age_s = 0.3  # a refresh would be due 0.15 s after the last word
    world.mirror.clock = asyncio.get_running_loop().time
    reads = [0]
    read_balance = world.reader.balance

    async def counted() -> Balance:
        reads[0] += 1
        return await read_balance()

    world.reader.balance = counted  # type: ignore[method-assign]
    world.stream.reconnect()
    await world.live()
    seeded = reads[0]
    for _ in range(20):  # 1 s: the pushes every 0.05 s, as the stream would deliver them
        world.mirror.push("account", [views.balance_view(world.sim.account(), world.sim.clock_ms())])
        await asyncio.sleep(0.05)
    assert reads[0] == seeded, "the balance was read by REST although the stream kept it fresh"
    await asyncio.sleep(0.5)  # the pushes stop: the refresh reads it again
    assert reads[0] > seeded


async def test_an_unreadable_push_stops_the_mirror_being_believed_until_it_is_read_again() -> None:
    world = World()
    world.stream.reconnect()
    await world.live()
    seeds = world.mirror.seeds
    world.mirror.push("positions", [{"instId": "BTC-USDT", "positions": "not a number"}])
    assert not world.mirror.live
    await world.live()
    assert world.mirror.seeds == seeds + 1
    await world.agrees("after an unreadable push")


async def test_wait_until_answers_on_the_push_that_settles_it_and_gives_up_on_a_loss() -> None:
    world = World()
    world.stream.reconnect()
    await world.live()
    client = world.client
    ack = await client.place_order(OrderRequest(
        inst_id="ETH-USDT", side="buy", order_type="market", size=Decimal(1), margin_mode="cross",
        client_order_id="w1",
    ))
    waiting = asyncio.create_task(world.mirror.wait_until(lambda: world.mirror.order("w1"), 5.0))
    await asyncio.sleep(0)
    assert not waiting.done()  # the push is still in flight
    world.stream.flush()
    seen = await waiting
    assert seen is not None and seen.order_id == ack.order_id and seen.state == "filled"

    never = asyncio.create_task(world.mirror.wait_until(lambda: world.mirror.order("nope"), 5.0))
    await asyncio.sleep(0)
    world.stream.drop()
    assert await asyncio.wait_for(never, 1.0) is None  # not the 5 s: the loss ends the wait
