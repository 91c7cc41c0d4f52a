"""The monitor after interruptions: a server restarted after the price moved, a position found without
its stop, the private WebSocket lost mid-trade (polling takes over and misses nothing)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from hit_server.blofin_sim import SimConfig, create_app
from hit_server.blofin_sim.loopback import serve_loopback
from hit_server.blofin_sim.models import OrderParams
from hit_server.blofin_sim.ws import hub_of
from hit_server.exchange.paper import build_simulator, generated_credentials
from hit_server.testing import paper_settings, running_server
from hit_server.testing import place_signal as place
from hit_server.testing import signal_body as signal
from hit_server.testing import until_event as until
from hit_server.testing import wait_until as wait
from hit_server.trading import ids


def sim_realized(sim: Any, symbol: str) -> Decimal:
    closed = [c.position for c in sim.position_history if c.position.inst_id == symbol]
    assert closed
    return sum((p.realized_pnl - p.fees for p in closed), Decimal(0))


def types(found: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in found]


async def test_lifecycle_restart_finds_what_happened_while_the_server_was_down(tmp_path: Path) -> None:
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05)
    exchange = build_simulator(settings, generated_credentials())
    sim = exchange.state.sim
    async with running_server(settings, sim_app=exchange) as server:
        await place(server, signal("lc-restart"))
        entry = sim.orders_by_client_id[ids.entry_id("lc-restart", 1)]
        await until(server, "lc-restart", "entry_filled")

    sim.set_price("BTC-USDT", Decimal(62100))  # TP1 fills while nobody watches
    async with running_server(settings, sim_app=exchange) as server:
        found = await until(server, "lc-restart", "stop_moved")
        assert types(found).count("take_profit_hit") == 1
        assert {t.spec.sl_trigger for t in sim.live_tpsl("BTC-USDT")} == {entry.average_price}

    sim.set_price("BTC-USDT", Decimal(59000))  # and the breakeven stop fires while it is down again
    async with running_server(settings, sim_app=exchange) as server:
        found = await until(server, "lc-restart", "closed")
        row = await server.service.journal.get_signal("lc-restart")

    assert types(found).count("entry_filled") == 1 and types(found).count("take_profit_hit") == 1
    assert next(e for e in found if e["type"] == "closed")["data"]["reason"] == "breakeven_stop"
    assert row is not None and row.realized_pnl is not None and not row.is_open
    assert Decimal(row.realized_pnl) == sim_realized(sim, "BTC-USDT")
    assert sim.open_orders("BTC-USDT") == [] and sim.live_tpsl("BTC-USDT") == []


async def test_lifecycle_stop_removed_on_the_exchange_is_restored_by_reconciliation(tmp_path: Path) -> None:
    # no pushes and a poll far away: only the reconciliation round can see it
    settings = paper_settings(tmp_path, monitor_poll_seconds=60, monitor_websocket=False,
                              reconcile_minutes=0.01)
    async with running_server(settings) as server:
        await place(server, signal("lc-naked"))
        for stop in server.sim.live_tpsl("BTC-USDT"):
            server.sim.cancel_tpsl(None, stop.tpsl_id, "")
        assert server.sim.live_tpsl("BTC-USDT") == []
        rounds = server.monitor.reconciliations

        found = await until(server, "lc-naked", "naked_position_repaired")

        assert server.monitor.reconciliations <= rounds + 1
        (stop,) = server.sim.live_tpsl("BTC-USDT")
        assert stop.spec.sl_trigger == Decimal(58000) and stop.size is None
        assert "had no stop" in found[-1]["message"]


async def test_lifecycle_position_injected_without_stop_gets_one(tmp_path: Path) -> None:
    settings = paper_settings(tmp_path, monitor_poll_seconds=60, monitor_websocket=False,
                              reconcile_minutes=0.01)
    async with running_server(settings) as server:
        await place(server, signal("lc-inject", entries=["59500"]))
        # a fill whose stop never reached the exchange: opened through the engine, no TP/SL
        server.sim.place_order(OrderParams(inst_id="BTC-USDT", side="buy", order_type="market",
                                           size=Decimal("0.1"), margin_mode="cross"))
        assert server.sim.live_tpsl("BTC-USDT") == []

        await until(server, "lc-inject", "naked_position_repaired")

        (stop,) = server.sim.live_tpsl("BTC-USDT")
        assert stop.spec.sl_trigger == Decimal(58000)


async def test_lifecycle_socket_lost_mid_trade_polling_misses_nothing(tmp_path: Path) -> None:
    config = SimConfig(api_key="lifecycle-sim-key-0001", api_secret="lifecycle-sim-secret-0001",
                       passphrase="lifecycle-pass", balance=Decimal(10000), rate_limit_per_min=0,
                       trade_limit_per_10s=0)
    sim_app = create_app(config)
    sim = sim_app.state.sim
    async with serve_loopback(sim_app) as served, httpx.AsyncClient(base_url=served.http_url) as control:
        settings = paper_settings(
            tmp_path, monitor_poll_seconds=0.2, blofin_base_url=served.http_url,
            blofin_api_key=config.api_key, blofin_api_secret=config.api_secret,
            blofin_passphrase=config.passphrase,
        )
        async with running_server(settings) as server:
            await wait(lambda: server.monitor.connected, "the private stream")
            await place(server, signal("lc-socket"))
            await until(server, "lc-socket", "entry_filled")

            (await control.post("/sim/ws/refuse", json={"seconds": 2.5})).raise_for_status()
            (await control.post("/sim/ws/drop")).raise_for_status()
            await wait(lambda: not server.monitor.connected, "the stream to drop")
            sim.set_price("BTC-USDT", Decimal(62100))
            found = await until(server, "lc-socket", "stop_moved")
            assert not server.monitor.connected  # seen by polling alone
            await wait(lambda: bool(hub_of(sim_app).refused_times), "a reconnection refused meanwhile")

            await wait(lambda: server.monitor.connected, "the stream to come back")
            sim.set_price("BTC-USDT", Decimal(64100))
            sim.set_price("BTC-USDT", Decimal(59000))
            found = await until(server, "lc-socket", "closed")
            row = await server.service.journal.get_signal("lc-socket")

    assert [e["data"]["target"] for e in found if e["type"] == "take_profit_hit"] == [1, 2]
    assert types(found).count("stop_moved") == 1 and types(found).count("closed") == 1
    assert row is not None and row.realized_pnl is not None
    assert Decimal(row.realized_pnl) == sim_realized(sim, "BTC-USDT")
    assert sim.open_orders("BTC-USDT") == [] and sim.live_tpsl("BTC-USDT") == []
