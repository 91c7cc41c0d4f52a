"""Issue #18 end to end: the server against the simulator over real loopback sockets (REST, the private
account stream, the public mark prices), as against BloFin.

- a warm signal costs two trading requests (the entry, the take-profit batch) and no read at all;
- so does the first signal on a symbol never traded, when the account's leverage there is already the
  plan's (read at start) and its mark streamed (every instrument's is); with a lower leverage on the
  account the plan's is sent with the entry (the entry does not wait for it), with a higher one it is
  set first, before the signal's intent;
- a stop-out at the exchange is known to the journal, evented and its leftover take profits cancelled
  within a second, by the pushes alone (the timed passes are minutes apart here);
- with the stream down, the same is known by the next REST poll;
- a leverage changed on the exchange behind the server's back is set again.
Times are taken on the server's and the simulator's clocks (event time minus the stop's trigger), not by
the test's polling.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from hit_server.blofin_sim import SimConfig
from hit_server.blofin_sim import create_app as create_sim_app
from hit_server.blofin_sim.loopback import serve_loopback
from hit_server.blofin_sim.ws_public import public_hub_of
from hit_server.server import create_app
from hit_server.testing import BASE_URL, TEST_API_KEY, paper_settings
from hit_server.trading import ids

# made up for each run: the simulator checks them, nothing else knows them
KEY, SECRET, PASSPHRASE = f"latency-{secrets.token_hex(12)}", secrets.token_hex(16), secrets.token_hex(8)
TRADE_PREFIX = "/api/v1/trade/"
PLAN_LEVERAGE = 5  # the server's DEFAULT_LEVERAGE: the plan of a signal that names none
READY = "XRP-USDT"  # its leverage on the account is the plan's before the server starts


class Counted:
    """The simulator behind a layer that notes every REST request (method and path) as it arrives."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state
        self.requests: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.requests.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


@dataclass
class Setup:
    http: httpx.AsyncClient
    sim_http: httpx.AsyncClient
    exchange: Counted
    app: Any

    @property
    def sim(self) -> Any:
        return self.exchange.state.sim

    @property
    def service(self) -> Any:
        return self.app.state.service


async def until(condition: Callable[[], Any], what: str, within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {within} s: {what}")


@asynccontextmanager
async def running(tmp_path: Path, **overrides: Any) -> AsyncIterator[Setup]:
    """The server against the simulator over loopback, once its account mirror is live. The account's
    leverage on READY is the plan's from before the server starts (a returning user's account)."""
    sim_app = create_sim_app(SimConfig(api_key=KEY, api_secret=SECRET, passphrase=PASSPHRASE))
    sim_app.state.sim.set_leverage(READY, PLAN_LEVERAGE, "cross")
    exchange = Counted(sim_app)
    async with serve_loopback(exchange) as loopback:
        settings = paper_settings(
            tmp_path, blofin_base_url=loopback.http_url, blofin_api_key=KEY, blofin_api_secret=SECRET,
            blofin_passphrase=PASSPHRASE, monitor_poll_seconds=1.0, rate_limit_per_minute=100_000,
            default_leverage=PLAN_LEVERAGE, **overrides,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            async with (
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
                                  headers={"X-API-Key": TEST_API_KEY}, timeout=30) as http,
                httpx.AsyncClient(base_url=loopback.http_url) as sim_http,
            ):
                setup = Setup(http, sim_http, exchange, app)
                await until(lambda: setup.service.mirror.live, "the account mirror is live")
                yield setup


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with running(tmp_path) as setup:
        yield setup


def signal(signal_id: str, symbol: str, price: Decimal, **extra: Any) -> dict[str, Any]:
    return {
        "signal_id": signal_id, "symbol": symbol, "side": "long", "entries": [],
        "stop_loss": str(price * Decimal("0.97")),
        "take_profits": [str(price * Decimal(f)) for f in ("1.02", "1.04", "1.06")],
        **extra,
    }


async def post(setup: Setup, body: dict[str, Any]) -> dict[str, Any]:
    reply = await setup.http.post("/api/v1/signals", json=body)
    assert reply.status_code in (200, 201), reply.text
    answer: dict[str, Any] = reply.json()
    assert answer["status"] == "placed", answer
    return answer


async def events(setup: Setup, signal_id: str) -> list[dict[str, Any]]:
    reply = await setup.http.get("/api/v1/events", params={"signal_id": signal_id, "limit": 500})
    found: list[dict[str, Any]] = reply.json()["events"]
    return found


async def close_out(setup: Setup, signal_id: str) -> None:
    reply = await setup.http.post(f"/api/v1/trades/{signal_id}/close", json={},
                                  headers={"Idempotency-Key": f"close-{signal_id}"})
    assert reply.status_code == 200, reply.text
    await until(lambda: not setup.service.mirror.held_symbols(), "the position closed")
    trades = await setup.http.get("/api/v1/trades", params={"status": "open"})
    assert trades.status_code == 200


async def test_a_warm_signal_sends_its_entry_and_targets_and_reads_nothing(setup: Setup) -> None:
    price = setup.sim.price("ETH-USDT")
    await post(setup, signal("warm-1", "ETH-USDT", price))
    await until(lambda: setup.service.marks is not None and setup.service.marks.fresh("ETH-USDT"),
                "the mark price of ETH-USDT is streamed")
    await close_out(setup, "warm-1")
    await until(lambda: not setup.sim.open_orders("ETH-USDT"), "the closed trade's orders cancelled")

    before = len(setup.exchange.requests)
    await post(setup, signal("warm-2", "ETH-USDT", setup.sim.price("ETH-USDT")))
    sent = setup.exchange.requests[before:]

    on_the_way = [r for r in sent if not r.startswith("GET /api/v1/account/balance")]  # background refresh
    assert on_the_way == ["POST /api/v1/trade/order", "POST /api/v1/trade/batch-orders"], sent
    order = setup.sim.orders_by_client_id
    stops = [t for t in setup.sim.live_tpsl("ETH-USDT") if t.spec.sl_trigger is not None]
    assert stops, "placed, so its stop is on the exchange"
    assert sum(1 for cid in order if cid.startswith(ids.signal_prefix("warm-2"))) >= 4  # entry + 3 targets


def since(setup: Setup, before: int) -> list[str]:
    """The requests the simulator received since `before`, but the balance's background refresh."""
    return [r for r in setup.exchange.requests[before:] if not r.startswith("GET /api/v1/account/balance")]


async def test_a_first_signal_with_the_accounts_leverage_already_the_plans_is_as_fast_as_a_warm_one(
    setup: Setup,
) -> None:
    service = setup.service
    await until(lambda: service.executor.known_leverage(READY, "cross") == PLAN_LEVERAGE,
                "the account's leverage on XRP-USDT read at start")
    await until(lambda: service.marks.fresh(READY), "the mark price of XRP-USDT streamed, unasked")
    assert not any(READY in r for r in setup.exchange.requests)  # no request ever named it

    before = len(setup.exchange.requests)
    await post(setup, signal("ready-1", READY, setup.sim.price(READY)))

    assert since(setup, before) == ["POST /api/v1/trade/order", "POST /api/v1/trade/batch-orders"]
    assert "POST /api/v1/account/set-leverage" not in setup.exchange.requests  # never, since the start
    assert setup.sim.positions[READY].leverage == PLAN_LEVERAGE
    reads = [r for r in setup.exchange.requests if "batch-leverage-info" in r]
    live = len(service.live_symbols())
    assert len(reads) == -(-live // 20), reads  # every live instrument, 20 a read


async def first_signal_with_the_set_held(
    setup: Setup, symbol: str, signal_id: str, **extra: Any
) -> tuple[asyncio.Task[dict[str, Any]], int]:
    """Post a first signal on `symbol` (its leverage read at start, its mark streamed) while the
    exchange holds its set-leverage for a second; the posting task once the set has arrived, and where
    the simulator's request list stood before the post."""
    service = setup.service
    await until(lambda: service.executor.known_leverage(symbol, "cross") == 3, f"{symbol}'s leverage read")
    await until(lambda: service.marks.fresh(symbol), f"the mark price of {symbol} streamed")
    fault = {"kind": "delay", "seconds": 1.0, "count": 1, "path": "/api/v1/account/set-leverage"}
    assert (await setup.sim_http.post("/sim/faults", json=fault)).is_success
    before = len(setup.exchange.requests)
    posting = asyncio.create_task(post(setup, signal(signal_id, symbol, setup.sim.price(symbol), **extra)))
    await until(lambda: "POST /api/v1/account/set-leverage" in since(setup, before), "the leverage being set")
    return posting, before


async def test_a_first_signal_raising_the_leverage_sends_its_entry_without_waiting_for_the_set(
    setup: Setup,
) -> None:
    """The account holds 3x on the symbol, the plan asks 5x: a raise. The entry may go at 3x (more
    margin than planned, liquidation farther away) while the set is on its way; whichever BloFin
    carries out first, the position ends at the plan's 5x. One round trip less on the first signal."""
    symbol = "ADA-USDT"  # the simulated account's default leverage, 3x: not the plan's
    posting, before = await first_signal_with_the_set_held(setup, symbol, "raise-1")

    # the set is still held by the exchange, and the entry is in already, its stop attached
    await until(lambda: symbol in setup.sim.positions, "the entry filled while the set is held")
    assert setup.sim.leverage_for(symbol, "cross") == 3 and not posting.done()
    assert setup.sim.positions[symbol].leverage == 3
    assert any(t.spec.sl_trigger is not None for t in setup.sim.live_tpsl(symbol))
    await posting

    assert sorted(since(setup, before)) == sorted([
        "POST /api/v1/account/set-leverage", "POST /api/v1/trade/order", "POST /api/v1/trade/batch-orders",
    ])
    assert setup.sim.leverage_for(symbol, "cross") == PLAN_LEVERAGE
    assert setup.sim.positions[symbol].leverage == PLAN_LEVERAGE  # applied to the open position
    assert setup.service.executor.known_leverage(symbol, "cross") == PLAN_LEVERAGE
    kinds = {e["type"] for e in await events(setup, "raise-1")}
    assert "placed" in kinds and not kinds & {"leverage_restored", "leverage_not_raised"}, kinds


async def test_a_first_signal_lowering_the_leverage_with_a_far_stop_sets_it_before_its_intent(
    setup: Setup,
) -> None:
    """The account holds 3x, the signal asks 2x with its stop 20% away: at 3x a move of ~33% takes the
    whole margin, less the maintenance margin, and the stop is not within half of that (16.2%), so an
    entry at 3x, margined less than planned, could be liquidated before its stop. The set goes first,
    before the signal's intent is recorded (a process killed during that round trip leaves nothing to
    answer "failed", and the signal is traded when it comes again)."""
    symbol = "AVAX-USDT"
    price = setup.sim.price(symbol)
    posting, before = await first_signal_with_the_set_held(
        setup, symbol, "lower-1", leverage=2, stop_loss=str(price * Decimal("0.80"))
    )
    assert await setup.service.journal.get_signal("lower-1") is None
    assert symbol not in setup.sim.positions
    await posting

    assert since(setup, before) == [
        "POST /api/v1/account/set-leverage", "POST /api/v1/trade/order", "POST /api/v1/trade/batch-orders",
    ]
    assert setup.sim.positions[symbol].leverage == 2


async def test_a_first_signal_lowering_the_leverage_with_a_near_stop_sends_its_entry_first(
    setup: Setup,
) -> None:
    """The account holds 3x, the signal asks 2x with its stop 3% away, well inside the ~33% move that
    would liquidate a position at 3x: the entry goes at 3x while the set is on its way, and the
    position ends at the plan's 2x."""
    symbol = "DOT-USDT"
    posting, before = await first_signal_with_the_set_held(setup, symbol, "lower-near-1", leverage=2)

    await until(lambda: symbol in setup.sim.positions, "the entry filled while the set is held")
    assert setup.sim.positions[symbol].leverage == 3 and not posting.done()
    assert any(t.spec.sl_trigger is not None for t in setup.sim.live_tpsl(symbol))
    await posting

    assert sorted(since(setup, before)) == sorted([
        "POST /api/v1/account/set-leverage", "POST /api/v1/trade/order", "POST /api/v1/trade/batch-orders",
    ])
    assert setup.sim.positions[symbol].leverage == 2
    kinds = {e["type"] for e in await events(setup, "lower-near-1")}
    assert "placed" in kinds and not kinds & {"leverage_restored", "leverage_not_lowered"}, kinds


@pytest.mark.parametrize(
    ("symbol", "extra", "planned", "told_as"),
    [
        ("LINK-USDT", {}, PLAN_LEVERAGE, "leverage_not_raised"),  # 3x held, the plan's 5x refused
        ("ATOM-USDT", {"leverage": 2}, 2, "leverage_not_lowered"),  # 3x held, 2x refused (a 3% stop)
    ],
)
async def test_a_leverage_change_the_exchange_refuses_leaves_the_entry_at_the_leverage_held_and_says_so(
    setup: Setup, symbol: str, extra: dict[str, Any], planned: int, told_as: str
) -> None:
    service = setup.service
    signal_id = f"refused-{symbol}"
    await until(lambda: service.executor.known_leverage(symbol, "cross") == 3, f"{symbol}'s leverage read")
    await until(lambda: service.marks.fresh(symbol), f"the mark price of {symbol} streamed")
    fault = {"kind": "error_code", "code": "152002", "count": 1, "path": "/api/v1/account/set-leverage"}
    assert (await setup.sim_http.post("/sim/faults", json=fault)).is_success

    answer = await post(setup, signal(signal_id, symbol, setup.sim.price(symbol), **extra))

    assert answer["status"] == "placed"
    assert setup.sim.positions[symbol].leverage == 3
    assert any(t.spec.sl_trigger is not None for t in setup.sim.live_tpsl(symbol))
    told = [e["message"] for e in await events(setup, signal_id) if e["type"] == told_as]
    assert len(told) == 1 and f"{planned}x" in told[0] and "3x" in told[0], told
    assert service.executor.known_leverage(symbol, "cross") is None  # set again by the next signal


async def test_watch_all_marks_false_watches_only_what_is_named(tmp_path: Path) -> None:
    async with running(tmp_path, watch_all_marks=False) as setup:
        marks = setup.service.marks
        assert marks is not None and marks.watched == 0  # nothing open, nothing named yet
        await post(setup, signal("named-1", "SOL-USDT", setup.sim.price("SOL-USDT")))
        assert marks.watched == 1
        await until(lambda: marks.fresh("SOL-USDT"), "the named symbol's mark streamed")
        assert marks.fresh("BTC-USDT") is None


async def test_watch_all_marks_watches_every_live_instrument_and_again_after_a_drop(setup: Setup) -> None:
    marks = setup.service.marks
    live = setup.service.live_symbols()
    hub = public_hub_of(setup.exchange.app)
    assert "LUNA-USDT" not in live and len(live) == len(setup.sim.instruments) - 1  # LUNA is suspended
    assert marks.watched == len(live)
    await until(lambda: all(marks.fresh(s) for s in live), "every live instrument's mark streamed")
    first = marks.requests_sent

    (await setup.sim_http.post("/sim/ws/drop")).raise_for_status()  # the public stream too
    await until(lambda: marks.requests_sent > first, "subscribed again on a new connection")
    await until(lambda: all(marks.fresh(s) for s in live), "every live instrument's mark streamed again")

    assert [set(conn.subs) for conn in hub.connections] == [set(live)]
    sizes = [size for size in hub.request_sizes if size > len("ping")]
    assert marks.requests_sent == 2 * first == len(sizes) and max(sizes) <= 4096


def _when(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))


async def stop_out(setup: Setup, signal_id: str, symbol: str) -> tuple[float, float]:
    """Move the price through the trade's stop; seconds (by the clocks of the exchange and the server)
    until the journal's event says so, and until no order of the trade rests on the exchange."""
    stop = Decimal((await setup.http.get(f"/api/v1/trades/{signal_id}")).json()["stop"]["price"])
    triggered = time.time()
    setup.sim.set_price(symbol, stop * Decimal("0.99"))
    done = await until(
        lambda: not setup.sim.open_orders(symbol) and time.time(), "the leftover take profits cancelled"
    )
    found = await until_async(lambda: _stopped_event(setup, signal_id), "the stop-out evented")
    return _when(found).timestamp() - triggered, done - triggered


async def _stopped_event(setup: Setup, signal_id: str) -> dict[str, Any] | None:
    for event in await events(setup, signal_id):
        if event["type"] in ("stopped_out", "closed"):
            return event
    return None


async def until_async(condition: Callable[[], Any], what: str, within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await condition()
        if value:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {within} s: {what}")


async def test_a_stop_out_is_known_evented_and_cleaned_up_within_a_second_by_the_pushes(
    setup: Setup,
) -> None:
    setup.app.state.monitor.poll_s = 300.0  # no timed pass for minutes: only the pushes can tell
    price = setup.sim.price("SOL-USDT")
    await post(setup, signal("out-1", "SOL-USDT", price))
    await until(lambda: len(setup.sim.open_orders("SOL-USDT")) == 3, "the three take profits rest")

    evented_s, cleaned_s = await stop_out(setup, "out-1", "SOL-USDT")

    assert evented_s < 1.0 and cleaned_s < 1.0, (evented_s, cleaned_s)
    # and the symbol is free again: a re-entry right after the stop-out is placed
    await post(setup, signal("out-2", "SOL-USDT", setup.sim.price("SOL-USDT")))


async def test_with_the_stream_down_a_stop_out_is_known_by_the_next_poll(setup: Setup) -> None:
    price = setup.sim.price("BTC-USDT")
    await post(setup, signal("down-1", "BTC-USDT", price))
    await until(lambda: len(setup.sim.open_orders("BTC-USDT")) == 3, "the three take profits rest")
    (await setup.sim_http.post("/sim/ws/refuse", json={"seconds": 120})).raise_for_status()
    (await setup.sim_http.post("/sim/ws/drop")).raise_for_status()
    await until(lambda: not setup.service.mirror.live, "the mirror knows the stream is gone")

    evented_s, cleaned_s = await stop_out(setup, "down-1", "BTC-USDT")

    poll = setup.app.state.monitor.poll_s
    assert evented_s < poll + 1.0 and cleaned_s < poll + 1.0, (evented_s, cleaned_s, poll)


async def test_leverage_changed_behind_the_servers_back_is_set_again(setup: Setup) -> None:
    price = setup.sim.price("DOGE-USDT")
    await post(setup, signal("lev-1", "DOGE-USDT", price, leverage=3))
    await close_out(setup, "lev-1")
    await until(lambda: not setup.sim.open_orders("DOGE-USDT"), "the closed trade's orders cancelled")
    setup.sim.set_leverage("DOGE-USDT", 20, "cross")  # the trader, on BloFin's site

    await post(setup, signal("lev-2", "DOGE-USDT", setup.sim.price("DOGE-USDT"), leverage=3))

    assert setup.sim.positions["DOGE-USDT"].leverage == 3
    assert "leverage_restored" in {e["type"] for e in await events(setup, "lev-2")}


async def test_the_balance_pushed_now_and_then_keeps_the_mirror_fresh_and_runs_no_pass(setup: Setup) -> None:
    """BloFin pushes the balance at a regular interval: the mirror takes it (no REST refresh), and the
    monitor does not run a pass for it (no pass reads the balance; a fleet of accounts would each run
    one every few seconds, each a journal query)."""
    mirror, lifecycle = setup.service.mirror, setup.app.state.monitor.lifecycle
    setup.exchange.app.state.ws_hub.account_push_s = 0.05
    first_push_at = mirror._balance_at
    await until(lambda: mirror._balance_at > first_push_at, "a periodic balance push reached the mirror")
    passes, pushed_at = lifecycle.passes, mirror._balance_at
    await until(lambda: mirror._balance_at > pushed_at + 0.5, "half a second more of balance pushes")
    assert lifecycle.passes == passes, "a pass ran for a push that only told the balance"
    await post(setup, signal("pushes-1", "ETH-USDT", setup.sim.price("ETH-USDT")))
    await until(lambda: lifecycle.passes > passes, "the order's pushes woke a pass")


async def test_a_signals_own_pushes_wake_no_pass_while_it_is_carried_out(setup: Setup) -> None:
    """The pushes a signal causes (its entry filled, its stop, its targets) arrive while it is still being
    carried out, when a pass finds nothing to do (the trade is the signal's until it is answered): the
    monitor holds its pass until the signal is answered, and one pass after it sees the whole burst.
    Here the take-profit batch answers 0.3 s late, so the entry's pushes come well before the end."""
    monitor, service = setup.app.state.monitor, setup.service
    # the monitor's first reconciliation, at start, is not a pass a push wakes: it is under way first
    await until(lambda: monitor.lifecycle.passes >= 1, "the monitor's first pass begun")
    busy_at_pass: list[bool] = []
    sync_all = monitor.lifecycle.sync_all

    async def watched(**kwargs: Any) -> int:
        busy_at_pass.append(not service.signal_locks.idle)
        return await sync_all(**kwargs)

    monitor.lifecycle.sync_all = watched
    monitor.signal_wait_s = 60.0  # its bound (0.5 s) is for a signal stuck on the exchange; not here
    fault = {"kind": "delay", "seconds": 0.3, "count": 1, "path": "/api/v1/trade/batch-orders"}
    assert (await setup.sim_http.post("/sim/faults", json=fault)).is_success
    passes = monitor.lifecycle.passes
    posting = asyncio.create_task(post(setup, signal("own-1", "LINK-USDT", setup.sim.price("LINK-USDT"))))
    await until(lambda: "LINK-USDT" in service.mirror.held_symbols(), "the entry's fill pushed")
    await posting
    await until(lambda: monitor.lifecycle.passes > passes, "a pass after the signal was answered")
    assert busy_at_pass and not any(busy_at_pass), busy_at_pass
