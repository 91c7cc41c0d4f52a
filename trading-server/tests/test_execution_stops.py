"""`Executor.ensure_stop` (rule 2): a stop it reports as confirmed is live on the exchange, however
many times it is called for one signal."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from hit_server.risk.engine import PlannedOrder, TradePlan
from hit_server.testing import RunningServer, paper_settings, place_signal, running_server
from hit_server.testing import signal_body as signal
from hit_server.trading.execution import Execution
from hit_shared.models import OrderRole, TradeSignal


def live_stops(server: RunningServer, symbol: str = "BTC-USDT") -> list[Any]:
    return [
        t for t in server.sim.tpsl_orders.values()
        if t.inst_id == symbol and t.state == "live" and t.spec.sl_trigger is not None
    ]


async def remove_stops_by_hand(server: RunningServer) -> None:
    for stop in live_stops(server):
        await server.service.client.cancel_tpsl(stop.inst_id, tpsl_id=stop.tpsl_id)
    assert not live_stops(server)


async def run_of(server: RunningServer, body: dict[str, Any]) -> Execution:
    """The placed signal's Execution as the reconciliation builds it: its journaled orders."""
    sig = TradeSignal.model_validate(body)
    records = await server.service.journal.orders_of(sig.signal_id)
    entries = tuple(PlannedOrder(r.price, r.size) for r in records if r.role == OrderRole.ENTRY)
    size = sum((e.size for e in entries), Decimal(0))
    plan = TradePlan(
        leverage=5, size=size, entries=entries, stop_loss=sig.stop_loss, take_profits=(),
        risk_usd=Decimal(0), notional_usd=Decimal(0), reference_price=Decimal(0),
    )
    instrument = await server.service.client.instrument(sig.symbol)
    return Execution(sig, plan, instrument, "cross", records)


async def test_execution_second_ensure_stop_after_its_stop_was_cancelled_places_a_live_one(
    tmp_path: Path,
) -> None:
    # The monitor stays idle (no feed, 300 s polling): only ensure_stop may restore the stop here.
    settings = paper_settings(tmp_path, monitor_websocket=False, monitor_poll_seconds=300)
    body = signal("s3-stop")
    async with running_server(settings) as server:
        await place_signal(server, body)
        run = await run_of(server, body)
        await remove_stops_by_hand(server)
        first = await server.service.executor.ensure_stop(run)
        after_first = [t.client_order_id for t in live_stops(server)]
        await remove_stops_by_hand(server)  # the stop it placed is cancelled (by hand, or it fired)

        second = await server.service.executor.ensure_stop(run)
        after_second = live_stops(server)

    assert first and len(after_first) == 1
    assert second, "a stop can be placed: ensure_stop should place one"
    assert after_second, "ensure_stop reported a stop as confirmed while none is live on the exchange"
    assert after_second[0].size is None  # the whole position
    assert after_second[0].client_order_id != after_first[0]  # a fresh clientOrderId for a fresh stop


async def test_execution_ensure_stop_does_not_take_a_traders_far_stop_for_the_trades_own(
    tmp_path: Path,
) -> None:
    # A stop a trader left by hand far below the trade's level (30,000 for a stop at 58,000) closes the
    # position only after a loss the signal never allowed: it does not confirm the trade's stop.
    from hit_server.blofin_sim.models import TpslParams, TpslSpec

    settings = paper_settings(tmp_path, monitor_websocket=False, monitor_poll_seconds=300)
    body = signal("s3-far-stop")
    async with running_server(settings) as server:
        await place_signal(server, body)
        run = await run_of(server, body)
        await remove_stops_by_hand(server)
        server.sim.place_tpsl(TpslParams(inst_id="BTC-USDT", side="sell", margin_mode="cross", size=None,
                                         tpsl=TpslSpec(sl_trigger=Decimal(30000))))

        confirmed = await server.service.executor.ensure_stop(run)
        triggers = sorted(t.spec.sl_trigger for t in live_stops(server))

    assert confirmed
    assert triggers == [Decimal(30000), Decimal(58000)]  # the trader's stop stays; the trade's is placed
