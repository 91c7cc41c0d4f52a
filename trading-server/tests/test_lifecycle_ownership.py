"""What is a trade's own, on an exchange other hands also touch (issue #12: stop coverage counting
stops that are not ours; defect 7's ghost trade taking over another position; invariant h).

- A stop counts as the trade's protection only on the close side, with a stop-loss trigger no worse
  than the trade's stop level: a stop a trader left far away, or a take-profit-only TP/SL, is not.
- A position on the trade's symbol that is not its own (the other side, or another position id
  than the one it followed) is never closed or re-stopped by it: its own position is gone, so the
  trade is ended with an event saying so.
- A closed position's P&L is counted for one trade only.

The monitor's passes are run by the test (no pushes, a far poll), so each step is deterministic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from hit_server.blofin_sim.models import OrderParams, TpslParams, TpslSpec
from hit_server.testing import RunningServer, paper_settings, running_server, signal_events
from hit_server.testing import place_signal as place
from hit_server.testing import signal_body as signal


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = paper_settings(tmp_path, monitor_poll_seconds=60, monitor_websocket=False)
    async with running_server(settings) as running:
        yield running


def by_hand(server: RunningServer, symbol: str, side: str, size: str) -> None:
    """A market order a trader sends on the exchange's own screen (no clientOrderId of ours)."""
    server.sim.place_order(OrderParams(inst_id=symbol, side=side, order_type="market",  # type: ignore[arg-type]
                                       size=Decimal(size), margin_mode="cross"))


def hand_tpsl(server: RunningServer, symbol: str, side: str, spec: TpslSpec) -> None:
    server.sim.place_tpsl(TpslParams(inst_id=symbol, side=side, margin_mode="cross",  # type: ignore[arg-type]
                                     size=None, tpsl=spec))


async def types(server: RunningServer, signal_id: str) -> list[str]:
    return [e["type"] for e in await signal_events(server, signal_id)]


# -- stop coverage ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [
    pytest.param(TpslSpec(sl_trigger=Decimal(30000)), id="a stop far beyond the trade's"),
    pytest.param(TpslSpec(tp_trigger=Decimal(70000)), id="a take profit only"),
])
async def test_lifecycle_stop_coverage_ignores_a_stop_that_does_not_protect_the_trade(
    server: RunningServer, spec: TpslSpec,
) -> None:
    await place(server, signal("own-cover"))
    for stop in server.sim.live_tpsl("BTC-USDT"):  # the trade's stop, removed by hand ...
        server.sim.cancel_tpsl(None, stop.tpsl_id, "")
    hand_tpsl(server, "BTC-USDT", "sell", spec)  # ... and replaced by one that does not protect it

    await server.monitor.lifecycle.sync_all()

    assert "naked_position_repaired" in await types(server, "own-cover")
    stops = [t for t in server.sim.live_tpsl("BTC-USDT") if t.spec.sl_trigger == Decimal(58000)]
    assert len(stops) == 1 and stops[0].size is None  # the whole position, at the trade's level


async def test_lifecycle_stop_coverage_counts_a_tighter_stop_set_by_hand(server: RunningServer) -> None:
    await place(server, signal("own-tighter"))
    for stop in server.sim.live_tpsl("BTC-USDT"):
        server.sim.cancel_tpsl(None, stop.tpsl_id, "")
    hand_tpsl(server, "BTC-USDT", "sell", TpslSpec(sl_trigger=Decimal(59000)))  # closer than 58000

    await server.monitor.lifecycle.sync_all()

    assert [t.spec.sl_trigger for t in server.sim.live_tpsl("BTC-USDT")] == [Decimal(59000)]
    assert "naked_position_repaired" not in await types(server, "own-tighter")


# -- a position that is not the trade's ------------------------------------------------------------


async def doge_short_seen(server: RunningServer, signal_id: str) -> None:
    """A DOGE short the monitor has followed (it knows its position id), then the exchange loses it
    with its orders and leaves no history of it (as a paper exchange restarted without its state)."""
    await place(server, signal(signal_id, side="short", symbol="DOGE-USDT", stop_loss="0.155",
                               take_profits=["0.145", "0.14"]))
    await server.monitor.lifecycle.sync_all()
    row = await server.monitor.lifecycle.book.get(signal_id)
    assert row is not None and row.position_ids
    sim = server.sim
    del sim.positions["DOGE-USDT"]
    for tpsl in sim.live_tpsl("DOGE-USDT"):
        sim.cancel_tpsl(None, tpsl.tpsl_id, "")
    for order in sim.open_orders("DOGE-USDT"):
        sim.cancel_order(None, order.order_id, "")


@pytest.mark.parametrize(("side", "what"), [("buy", "a long"), ("sell", "another short")])
async def test_lifecycle_trade_never_takes_over_a_position_that_is_not_its_own(
    server: RunningServer, side: str, what: str,
) -> None:
    await doge_short_seen(server, "own-ghost")
    by_hand(server, "DOGE-USDT", side, "20")  # a new position on the symbol: not the trade's
    other = server.sim.positions["DOGE-USDT"]
    before = (other.position_id, other.size)

    await server.monitor.lifecycle.sync_all()
    await server.monitor.lifecycle.sync_all()

    after = server.sim.positions["DOGE-USDT"]
    assert (after.position_id, after.size) == before, f"{what} was touched"
    assert server.sim.live_tpsl("DOGE-USDT") == [] and server.sim.open_orders("DOGE-USDT") == []
    found = [e for e in await signal_events(server, "own-ghost") if e["type"] == "position_not_found"]
    assert len(found) == 1 and "not found on the exchange" in found[0]["message"]
    assert "closed_for_safety" not in await types(server, "own-ghost")
    row = await server.service.journal.get_signal("own-ghost")
    assert row is not None and not row.is_open and row.realized_pnl is None
    counts = await server.service.journal.counts()
    assert counts.closed == 0 and counts.open_trades == 0


# -- each closed trade's P&L counted once ----------------------------------------------------------


async def test_lifecycle_pnl_of_a_closed_position_is_counted_for_one_trade(server: RunningServer) -> None:
    """Two trades on one symbol, one after the other, each closed by hand on the exchange: each is
    given its own closed position, and /stats counts each once."""
    lifecycle = server.monitor.lifecycle
    await place(server, signal("own-first"))
    await lifecycle.sync_all()
    await server.set_price("BTC-USDT", "60500")
    server.sim.close_position("BTC-USDT", "cross", "")
    await lifecycle.sync_all()
    await place(server, signal("own-second"))
    await lifecycle.sync_all()
    await server.set_price("BTC-USDT", "59500")
    server.sim.close_position("BTC-USDT", "cross", "")
    await lifecycle.sync_all()
    await lifecycle.sync_all()

    history = [c.position for c in server.sim.position_history if c.position.inst_id == "BTC-USDT"]
    assert len(history) == 2
    expected = [h.realized_pnl - h.fees for h in history]
    assert expected[0] > 0 > expected[1]
    pnl = []
    for signal_id in ("own-first", "own-second"):
        row = await server.service.journal.get_signal(signal_id)
        assert row is not None and row.realized_pnl is not None and row.closed_at is not None
        pnl.append(Decimal(row.realized_pnl))
    assert pnl == expected
    stats = (await server.http.get("/api/v1/stats")).json()
    assert (stats["closed_trades"], stats["wins"], stats["losses"]) == (2, 1, 1)
    assert Decimal(stats["realized_pnl"]) == sum(expected, Decimal(0))


async def test_lifecycle_new_position_opened_by_the_trades_own_rung_stays_its_own(
    server: RunningServer,
) -> None:
    """The trade's position closed by hand and a lower rung of its own ladder filled, both between two
    passes: the new position (another id) is the trade's, opened by its entry, and is managed."""
    lifecycle = server.monitor.lifecycle
    answer = await place(server, signal("own-rung", entries=["59000", "59800"], stop_loss="57000"))
    await server.set_price("BTC-USDT", "59700")  # the upper rung fills
    await lifecycle.sync_all()
    first = server.sim.positions["BTC-USDT"].position_id
    server.sim.close_position("BTC-USDT", "cross", "")
    await server.set_price("BTC-USDT", "58900")  # the lower rung fills: a new position

    await lifecycle.sync_all()

    second = server.sim.positions["BTC-USDT"]
    assert second.position_id != first
    row = await lifecycle.book.get("own-rung")
    assert row is not None and row.state == "open" and second.position_id in row.position_ids
    assert "position_not_found" not in await types(server, "own-rung")
    targets = [o for o in server.sim.open_orders("BTC-USDT") if o.reduce_only]
    rungs = [o["client_order_id"] for o in answer["orders"] if o["role"] == "entry"]
    assert sum(t.size for t in targets) >= server.sim.orders_by_client_id[rungs[-1]].filled_size


# -- two server processes on one journal -----------------------------------------------------------


async def test_lifecycle_targets_are_placed_by_the_process_holding_the_trades_lease(
    server: RunningServer,
) -> None:
    """Another process working on this trade holds its lease: this one does none of the trade's work in
    that pass (it would derive the same clientOrderIds for a batch of another size) but still restores
    the stop; it places the targets once the lease is given back, or once it lapsed (its holder died)."""
    from hit_server.journal.trade_lease import TradeLeases

    lifecycle = server.monitor.lifecycle
    answer = await place(server, signal("own-lease", entries=["59000", "59800"], stop_loss="57000"))
    await server.set_price("BTC-USDT", "59700")  # one rung fills: targets are due
    for stop in server.sim.live_tpsl("BTC-USDT"):
        server.sim.cancel_tpsl(None, stop.tpsl_id, "")
    other = TradeLeases(lifecycle.book.db, holder="the-other-process")
    assert await other.take("own-lease")

    def targets() -> Decimal:
        return sum((o.size for o in server.sim.open_orders("BTC-USDT") if o.reduce_only), Decimal(0))

    await lifecycle.sync_all()

    assert targets() == 0
    assert [t.spec.sl_trigger for t in server.sim.live_tpsl("BTC-USDT")] == [Decimal(57000)]  # never waits
    await other.give_back("own-lease")
    await lifecycle.sync_all()
    filled = server.sim.positions["BTC-USDT"].size
    assert targets() == filled

    dead = TradeLeases(lifecycle.book.db, holder="a-dead-process", seconds=0)  # lapses at once
    assert await dead.take("own-lease")
    await server.set_price("BTC-USDT", "58900")  # the other rung fills: more targets are due
    await lifecycle.sync_all()
    assert targets() == server.sim.positions["BTC-USDT"].size > filled
    assert sum(Decimal(o["size"]) for o in answer["orders"] if o["role"] == "entry") == targets()


async def test_lifecycle_a_pass_reading_the_trade_before_another_process_worked_on_it_does_nothing(
    server: RunningServer,
) -> None:
    """Found by the simulation (seed 170): a second process read the trade and the account before the
    first process saw its entry fill and placed its targets; working from that stale view it took the
    trade for one whose entry had vanished unfilled, ended it and cancelled the targets. A pass works
    on a trade only if nobody saved the trade since the pass read it."""
    from hit_server.journal.trade_lease import TradeLeases
    from hit_server.lifecycle.passes import Lifecycle

    first = server.monitor.lifecycle
    second = Lifecycle(first.client, first.journal, first.book, first.settings)
    await place(server, signal("own-stale", entries=["59000"], stop_loss="57000"))
    await first.sync_all()  # both processes know the trade before its entry fills

    trades = await second.book.open_trades()  # the second process's pass begins ...
    stale_snapshot = await second.snapshot()
    await server.set_price("BTC-USDT", "58900")  # ... the entry fills ...
    await first.sync_all()  # ... and the first process places the targets and records the fill
    placed = sorted(o.client_order_id for o in server.sim.open_orders("BTC-USDT") if o.reduce_only)
    assert placed
    orders = await second.book.orders_of([t.signal_id for t in trades])
    for trade in trades:
        await second._sync_isolated(trade, stale_snapshot, orders[trade.signal_id])

    assert sorted(o.client_order_id for o in server.sim.open_orders("BTC-USDT") if o.reduce_only) == placed
    assert "entries_cancelled" not in await types(server, "own-stale")
    # the lease it took with its check was given back: another process works on the trade at once
    third = TradeLeases(first.book.db, holder="a-third-process")
    assert await third.take("own-stale")
    await third.give_back("own-stale")
    await second.sync_all()  # read afresh, the trade is followed as it is
    assert sorted(o.client_order_id for o in server.sim.open_orders("BTC-USDT") if o.reduce_only) == placed


async def test_lifecycle_breakeven_move_leaves_a_tighter_stop_the_trader_set_by_hand(
    server: RunningServer,
) -> None:
    # The trader tightened the protection by hand (a stop at 61,000 over a long from ~60,000): moving
    # the trade's stop to breakeven after TP1 must not cancel it and leave the position looser.
    await place(server, signal("own-tight", take_profits=["62000", "64000", "66000"]))
    await server.monitor.lifecycle.sync_all()  # the targets are placed
    await server.set_price("BTC-USDT", "61500")
    hand_tpsl(server, "BTC-USDT", "sell", TpslSpec(sl_trigger=Decimal(61000)))
    await server.set_price("BTC-USDT", "62100")  # TP1 fills: the stop moves to breakeven
    await server.monitor.lifecycle.sync_all()
    await server.monitor.lifecycle.sync_all()

    assert "stop_moved" in await types(server, "own-tight")
    triggers = sorted(t.spec.sl_trigger for t in server.sim.live_tpsl("BTC-USDT"))
    assert Decimal(61000) in triggers and Decimal(58000) not in triggers
