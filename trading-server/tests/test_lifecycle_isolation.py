"""One trade's trouble never stops the position monitor for the others (issue #12, defects 1 and 8).

Each case puts one trade in a state its pass cannot handle the old way (equal take-profit prices,
a position reported with an average price of 0), then removes another trade's stop by hand on the
exchange: that stop must be restored all the same, and the troubled trade must be handled (its
targets placed under distinct ids) or reported once, not on every pass."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hit_server.blofin_sim.catalog import default_instruments
from hit_server.exchange.blofin_models import Position
from hit_server.journal.journal import OrderRecord
from hit_server.journal.trade_book import Trade
from hit_server.lifecycle.stops import breakeven_after_tp1
from hit_server.lifecycle.trade_work import Work
from hit_server.testing import RunningServer, paper_settings, running_server, signal_events
from hit_server.testing import place_signal as place
from hit_server.testing import signal_body as signal
from hit_server.testing import until_event as until
from hit_server.testing import wait_until as wait
from hit_server.trading import ids
from hit_shared.models import OrderRole


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05)
    async with running_server(settings) as running:
        yield running


async def place_eth_short(server: RunningServer, signal_id: str) -> None:
    """The bystander: a market short on ETH whose stop the test removes by hand."""
    await place(server, signal(signal_id, side="short", symbol="ETH-USDT", stop_loss="3100",
                               take_profits=["2900", "2800"]))
    assert server.sim.live_tpsl("ETH-USDT")


def remove_stops_by_hand(server: RunningServer, symbol: str) -> None:
    for stop in server.sim.live_tpsl(symbol):
        server.sim.cancel_tpsl(None, stop.tpsl_id, "")
    assert server.sim.live_tpsl(symbol) == []


async def test_lifecycle_equal_targets_after_a_partial_fill_get_distinct_ids_and_others_are_kept(
    server: RunningServer,
) -> None:
    # 62000.04 rounds to 62000.0 on BTC's 0.1 tick: two targets at one price
    answer = await place(server, signal("iso-equal", entries=["59000", "59800"], stop_loss="57000",
                                        take_profits=["62000", "62000.04", "64000"]))
    await place_eth_short(server, "iso-bystander")
    rungs = [o["client_order_id"] for o in answer["orders"] if o["role"] == "entry"]

    await server.set_price("BTC-USDT", "59700")  # only the 59800 rung fills: a partial fill
    filled = sum(server.sim.orders_by_client_id[c].filled_size for c in rungs)
    assert 0 < filled < Decimal(answer["size"])
    remove_stops_by_hand(server, "ETH-USDT")

    found = await until(server, "iso-bystander", "naked_position_repaired")
    assert "had no stop" in found[-1]["message"]
    (stop,) = server.sim.live_tpsl("ETH-USDT")
    assert stop.spec.sl_trigger == Decimal(3100)

    def btc_targets() -> list[Any]:
        return [o for o in server.sim.open_orders("BTC-USDT") if o.reduce_only]

    await wait(lambda: sum(t.size for t in btc_targets()) == filled, "the partial fill's targets")
    targets = btc_targets()
    assert len({t.client_order_id for t in targets}) == len(targets)
    assert {t.price for t in targets} <= {Decimal(62000), Decimal(64000)}
    by_price = {p: sum(t.size for t in targets if t.price == p) for p in {t.price for t in targets}}
    assert len(by_price) == len(targets)  # one order per price: equal targets are merged


def test_lifecycle_batch_numbers_each_slice_once_when_targets_are_equal() -> None:
    from hit_server.lifecycle.take_profits import new_batch  # here: the module came with this fix

    instrument = default_instruments()["BTC-USDT"]
    trade = Trade(signal_id="iso-unit", symbol="BTC-USDT", side="long", body={}, opened_at=_now())
    prices = [Decimal("62000.0"), Decimal("62000.0"), Decimal("62000.04"), Decimal("64000")]
    planned = [
        OrderRecord(client_order_id=ids.take_profit_id("iso-unit", n), role=OrderRole.TAKE_PROFIT, seq=n,
                    symbol="BTC-USDT", side="sell", order_type="limit", size=Decimal("0.3"), price=price,
                    state="pending")
        for n, price in enumerate(prices, start=1)
    ]
    work = Work(trade, list(planned), instrument, "cross")

    batch = new_batch(work, planned, Decimal("1.2"))

    assert len({r.client_order_id for r in batch}) == len(batch) == len({r.seq for r in batch}) == 2
    assert [(r.seq, r.price) for r in batch] == [(1, Decimal("62000.0")), (4, Decimal("64000"))]
    assert [r.size for r in batch] == [Decimal("0.9"), Decimal("0.3")]  # three targets' share at 62000
    assert sum(r.size for r in batch) == Decimal("1.2")


async def test_lifecycle_average_price_zero_skips_the_breakeven_and_others_are_kept(
    server: RunningServer,
) -> None:
    await place(server, signal("iso-zero"))
    await place_eth_short(server, "iso-bystander-2")
    # the exchange reports the BTC position with an average price of 0 (seen on a glitchy reply)
    server.sim.positions["BTC-USDT"].average_price = Decimal(0)
    await server.set_price("BTC-USDT", "62100")  # TP1 fills: the breakeven policy wants to move
    await until(server, "iso-zero", "take_profit_hit")
    remove_stops_by_hand(server, "ETH-USDT")

    await until(server, "iso-bystander-2", "naked_position_repaired")

    passes = server.monitor.lifecycle.passes
    await wait(lambda: server.monitor.lifecycle.passes >= passes + 3, "three more passes")
    assert {t.spec.sl_trigger for t in server.sim.live_tpsl("BTC-USDT")} == {Decimal(58000)}
    assert "stop_moved" not in {e["type"] for e in await signal_events(server, "iso-zero")}


def test_lifecycle_breakeven_policy_never_gives_a_level_of_zero() -> None:
    trade = Trade(signal_id="iso-policy", symbol="BTC-USDT", side="long", body={}, opened_at=_now(),
                  stop_price=Decimal(58000), targets_hit=[1])
    position = Position(
        inst_id="BTC-USDT", position_side="net", positions=Decimal(1), available_positions=Decimal(1),
        average_price=Decimal(0), mark_price=Decimal(62100), unrealized_pnl=Decimal(0), leverage=3,
        margin_mode="cross", liquidation_price=None, position_id="1",
    )

    assert breakeven_after_tp1(trade, position, Decimal("0.1")) is None
    assert breakeven_after_tp1(trade, position.model_copy(update={"average_price": Decimal("60000.04")}),
                               Decimal("0.1")) == Decimal("60000.0")
    # a breakeven below the stop in force would loosen it: no move
    assert breakeven_after_tp1(trade, position.model_copy(update={"average_price": Decimal(57000)}),
                               Decimal("0.1")) is None


async def test_lifecycle_a_failing_trade_is_reported_once_and_retried(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await place(server, signal("iso-broken"))
    await place_eth_short(server, "iso-bystander-3")
    lifecycle = server.monitor.lifecycle
    original = lifecycle.stops.keep
    broken = True
    calls = 0

    async def keep(work: Work, snap: Any, position: Position) -> None:
        nonlocal calls
        if work.signal_id == "iso-broken" and broken:
            calls += 1
            raise RuntimeError("an unexpected fault in this trade's pass")
        await original(work, snap, position)

    monkeypatch.setattr(lifecycle.stops, "keep", keep)
    remove_stops_by_hand(server, "ETH-USDT")
    await until(server, "iso-bystander-3", "naked_position_repaired")
    passes = lifecycle.passes
    await wait(lambda: lifecycle.passes >= passes + 3, "three more passes")

    failures = [e for e in await signal_events(server, "iso-broken") if e["type"] == "trade_pass_failed"]
    assert len(failures) == 1 and "RuntimeError" in failures[0]["message"]
    assert calls >= 3  # retried at every pass, reported once

    broken = False  # it clears; a later failure is reported again
    await wait(lambda: lifecycle.passes >= passes + 6, "three more passes")
    broken = True
    await until(server, "iso-broken", "trade_pass_failed", count=2)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_monitor_stop_ends_a_task_that_lost_its_first_cancellation(tmp_path: Path) -> None:
    """Python 3.11 can lose a cancellation that meets an expiring asyncio.timeout; stopping the monitor
    must still end its task (found by the simulation, seed 163: a clean shutdown waited forever)."""
    settings = paper_settings(tmp_path, monitor_poll_seconds=60, monitor_websocket=False)
    async with running_server(settings) as server:
        monitor = server.monitor
        await monitor.stop()
        cancellations = 0

        async def loses_the_first_cancellation() -> None:
            nonlocal cancellations
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    cancellations += 1
                    if cancellations > 1:
                        raise

        monitor._task = asyncio.create_task(loses_the_first_cancellation())
        await asyncio.sleep(0)  # the task is waiting
        stopping = asyncio.create_task(monitor.stop())
        await asyncio.wait({stopping}, timeout=10)
        if not stopping.done():  # the test fails; end the task so the server can shut down
            monitor._task.cancel()
        assert stopping.done() and cancellations == 2
