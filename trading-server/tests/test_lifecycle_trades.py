"""Whole trades, driven by the simulator's price, followed by the position monitor to their end.

Each case ends with no order of the trade left open on the simulator and the journal's realised P&L
equal to the simulator's own (its positions history: P&L net of every fee)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hit_server.testing import RunningServer, paper_settings, running_server, signal_events
from hit_server.testing import place_signal as place
from hit_server.testing import signal_body as signal
from hit_server.testing import until_event as until
from hit_server.testing import wait_until as wait
from hit_server.trading import ids


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05)
    async with running_server(settings) as running:
        yield running


def leftovers(server: RunningServer, symbol: str) -> list[Any]:
    """Orders and TP/SL orders still open on the simulator for the symbol."""
    return [*server.sim.open_orders(symbol), *server.sim.live_tpsl(symbol)]


def sim_realized(server: RunningServer, symbol: str) -> Decimal:
    """The simulator's realised P&L, net of fees, over the symbol's closed positions."""
    closed = [c.position for c in server.sim.position_history if c.position.inst_id == symbol]
    assert closed, "the simulator has no closed position"
    return sum((p.realized_pnl - p.fees for p in closed), Decimal(0))


async def journal_pnl(server: RunningServer, signal_id: str) -> Decimal:
    row = await server.service.journal.get_signal(signal_id)
    assert row is not None and row.realized_pnl is not None and not row.is_open and row.closed_at
    return Decimal(row.realized_pnl)


async def test_lifecycle_limit_entry_fills_then_three_targets_close_the_trade(server: RunningServer) -> None:
    answer = await place(server, signal("lc-3tp", entries=["59500"]))
    assert {o["state"] for o in answer["orders"] if o["role"] == "take_profit"} == {"pending"}

    await server.set_price("BTC-USDT", "59400")
    await until(server, "lc-3tp", "entry_filled")
    tp_ids = [ids.take_profit_id("lc-3tp", n) for n in (1, 2, 3)]
    await wait(lambda: all(c in server.sim.orders_by_client_id for c in tp_ids), "the targets")
    targets = [server.sim.orders_by_client_id[c] for c in tp_ids]
    assert sum(t.size for t in targets) == Decimal(answer["size"])
    assert [t.price for t in targets] == [Decimal(62000), Decimal(64000), Decimal(66000)]

    await server.set_price("BTC-USDT", "62100")
    found = await until(server, "lc-3tp", "stop_moved")
    assert any(e["type"] == "take_profit_hit" and e["data"]["target"] == 1 for e in found)
    (stop,) = server.sim.live_tpsl("BTC-USDT")
    assert stop.spec.sl_trigger == Decimal(59500) and stop.size is None  # whole position, at breakeven

    await server.set_price("BTC-USDT", "64100")
    await until(server, "lc-3tp", "take_profit_hit", 2)
    await server.set_price("BTC-USDT", "66100")
    found = await until(server, "lc-3tp", "closed")

    assert [e["data"]["target"] for e in found if e["type"] == "take_profit_hit"] == [1, 2, 3]
    closed = next(e for e in found if e["type"] == "closed")
    assert closed["data"]["reason"] == "targets"
    assert "BTC-USDT" not in server.sim.positions and leftovers(server, "BTC-USDT") == []
    assert await journal_pnl(server, "lc-3tp") == sim_realized(server, "BTC-USDT") > 0
    assert Decimal(closed["data"]["realized_pnl"]) == sim_realized(server, "BTC-USDT")
    stats = (await server.http.get("/api/v1/stats")).json()
    assert stats["wins"] == 1 and stats["losses"] == 0 and stats["win_rate"] == 1.0
    assert Decimal(stats["pnl_by_symbol"]["BTC-USDT"]) == sim_realized(server, "BTC-USDT")


async def test_lifecycle_tp1_then_stop_at_breakeven(server: RunningServer) -> None:
    answer = await place(server, signal("lc-be"))
    entry = server.sim.orders_by_client_id[ids.entry_id("lc-be", 1)]
    assert entry.state == "filled"

    await server.set_price("BTC-USDT", "62100")
    await until(server, "lc-be", "stop_moved")
    (stop,) = server.sim.live_tpsl("BTC-USDT")
    assert stop.spec.sl_trigger == entry.average_price

    await server.set_price("BTC-USDT", "59000")
    found = await until(server, "lc-be", "closed")

    stopped = next(e for e in found if e["type"] == "stopped_out")
    assert "breakeven" in stopped["message"]
    assert next(e for e in found if e["type"] == "closed")["data"]["reason"] == "breakeven_stop"
    assert leftovers(server, "BTC-USDT") == [] and "BTC-USDT" not in server.sim.positions
    tp1 = server.sim.orders_by_client_id[ids.take_profit_id("lc-be", 1)]
    assert tp1.state == "filled" and tp1.filled_size < Decimal(answer["size"])
    assert await journal_pnl(server, "lc-be") == sim_realized(server, "BTC-USDT")


async def test_lifecycle_stop_reached_before_any_entry_cancels_the_entries(server: RunningServer) -> None:
    await place(server, signal("lc-early", entries=["59500"]))
    entry = server.sim.orders_by_client_id[ids.entry_id("lc-early", 1)]

    # a gap past the resting entry without a fill (its place in the queue was never reached)
    server.sim.prices["BTC-USDT"] = Decimal(57900)
    found = await until(server, "lc-early", "entries_cancelled")

    assert "reached the stop" in found[-1]["message"]
    assert entry.state == "canceled" and leftovers(server, "BTC-USDT") == []
    row = await server.service.journal.get_signal("lc-early")
    assert row is not None and not row.is_open and row.closed_at is None
    stats = (await server.http.get("/api/v1/stats")).json()
    assert stats["closed_trades"] == 0 and stats["wins"] == stats["losses"] == 0


async def test_lifecycle_ladder_partly_filled_then_expired_keeps_the_filled_part(tmp_path: Path) -> None:
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05, entry_timeout_minutes=0.03)
    async with running_server(settings) as server:
        answer = await place(server, signal("lc-ladder", entries=["59000", "59800"], stop_loss="57000"))
        rungs = [o for o in answer["orders"] if o["role"] == "entry"]
        assert len(rungs) >= 2

        await server.set_price("BTC-USDT", "59700")  # only the highest rung fills
        filled = sum(server.sim.orders_by_client_id[r["client_order_id"]].filled_size for r in rungs)
        assert 0 < filled < Decimal(answer["size"])
        found = await until(server, "lc-ladder", "entries_expired")

        assert all(server.sim.orders_by_client_id[r["client_order_id"]].state in ("filled", "canceled")
                   for r in rungs)
        targets = [o for o in server.sim.open_orders("BTC-USDT") if o.reduce_only]
        assert sum(t.size for t in targets) == filled == server.sim.positions["BTC-USDT"].size
        assert {t.price for t in targets} <= {Decimal(62000), Decimal(64000), Decimal(66000)}
        assert sum((t.size or Decimal(0)) for t in server.sim.live_tpsl("BTC-USDT")) >= filled
        assert "go on" in next(e for e in found if e["type"] == "entries_expired")["message"]

        server.sim.close_position("BTC-USDT", "cross", "")  # by hand, on the exchange
        found = await until(server, "lc-ladder", "closed")

        assert next(e for e in found if e["type"] == "closed")["data"]["reason"] == "manual"
        assert leftovers(server, "BTC-USDT") == []
        assert await journal_pnl(server, "lc-ladder") == sim_realized(server, "BTC-USDT")


async def test_lifecycle_manual_close_on_the_exchange_cancels_the_targets(server: RunningServer) -> None:
    await place(server, signal("lc-manual", side="short", symbol="ETH-USDT", stop_loss="3100",
                               take_profits=["2900", "2800"]))
    assert len([o for o in server.sim.open_orders("ETH-USDT") if o.reduce_only]) == 2

    await server.set_price("ETH-USDT", "2950")
    server.sim.close_position("ETH-USDT", "cross", "")
    found = await until(server, "lc-manual", "closed")

    closed = next(e for e in found if e["type"] == "closed")
    assert closed["data"]["reason"] == "manual" and "stopped_out" not in {e["type"] for e in found}
    assert leftovers(server, "ETH-USDT") == []
    assert await journal_pnl(server, "lc-manual") == sim_realized(server, "ETH-USDT") > 0


async def test_lifecycle_stop_policy_none_leaves_the_stop_and_a_stop_out_is_a_loss(tmp_path: Path) -> None:
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05, stop_policy="none")
    async with running_server(settings) as server:
        await place(server, signal("lc-nomove"))
        await server.set_price("BTC-USDT", "62100")
        await until(server, "lc-nomove", "take_profit_hit")
        await asyncio.sleep(0.3)
        assert {t.spec.sl_trigger for t in server.sim.live_tpsl("BTC-USDT")} == {Decimal(58000)}

        await server.set_price("BTC-USDT", "57000")
        found = await until(server, "lc-nomove", "closed")

        assert "stop_moved" not in {e["type"] for e in found}
        assert next(e for e in found if e["type"] == "closed")["data"]["reason"] == "stop"
        assert leftovers(server, "BTC-USDT") == []
        stats = (await server.http.get("/api/v1/stats")).json()
        assert stats["closed_trades"] == 1
        pnl = await journal_pnl(server, "lc-nomove")
        assert pnl == sim_realized(server, "BTC-USDT")
        assert (stats["wins"], stats["losses"]) == ((1, 0) if pnl > 0 else (0, 1))


async def test_lifecycle_pass_lets_other_work_in_between_trades(tmp_path: Path) -> None:
    settings = paper_settings(tmp_path, monitor_poll_seconds=60, monitor_websocket=False)
    levels = {"BTC-USDT": ("58000", ["62000"]), "ETH-USDT": ("2900", ["3100"]), "SOL-USDT": ("145", ["155"])}
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async with running_server(settings) as server:
        for symbol, (stop, targets) in levels.items():
            body = signal(f"lc-yield-{symbol}", symbol=symbol, stop_loss=stop, take_profits=targets)
            await place(server, body)
        ticker = asyncio.create_task(other_work())
        await asyncio.sleep(0)
        before = turns
        looked_at = await server.monitor.lifecycle.sync_all()
        ticker.cancel()

    assert looked_at == 3
    assert turns - before >= looked_at  # the loop ran other work at least once per trade


async def test_lifecycle_breakeven_move_under_lookup_lag_places_one_stop(server: RunningServer) -> None:
    """An acknowledged stop that lookups can't see yet is live: the move happens once, not once per
    pass (found by the simulation, seed 65: every pass placed one more stop while lookups lagged)."""
    await place(server, signal("lc-lag"))
    server.sim.lag.set(0, 2)  # what is accepted from now on is missed by its first two lookups
    await server.set_price("BTC-USDT", "62500")
    await until(server, "lc-lag", "stop_moved")
    passes = server.monitor.lifecycle.passes
    await wait(lambda: server.monitor.lifecycle.passes >= passes + 5, "five more monitor passes")
    stops = [t for t in server.sim.live_tpsl("BTC-USDT") if t.spec.sl_trigger is not None]
    # at most one extra stop, placed while the listing still missed the moved one: the safe side
    assert 1 <= len(stops) <= 2, stops
    assert all(t.spec.sl_trigger == stops[0].spec.sl_trigger for t in stops)
    assert [e["type"] for e in await signal_events(server, "lc-lag")].count("stop_moved") == 1
