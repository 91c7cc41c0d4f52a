"""Signals left unresolved (an unclear exchange outcome, a journal failure) are resolved by the running
server, by lookups only, without waiting for a restart; their stored answer tells what is known."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hit_server.exchange.blofin_models import OrderRequest
from hit_server.journal.db import as_utc
from hit_server.journal.journal import OrderRecord
from hit_server.testing import RunningServer, paper_settings, running_server, wait_until
from hit_server.testing import signal_body as signal
from hit_server.trading import ids
from hit_shared.models import TradeSignal

WITHIN = 30.0  # seconds: generous for a busy machine; every wait ends as soon as its condition holds
TPSL_LISTING = "/api/v1/trade/orders-tpsl-pending"
TPSL_WRITE = "/api/v1/trade/order-tpsl"  # a prefix: also the TP/SL lookup (order-tpsl-detail)
CLOSE = "/api/v1/trade/close-position"


def live_targets(server: RunningServer, symbol: str = "BTC-USDT") -> list[Any]:
    return [
        o for o in server.sim.orders_by_client_id.values()
        if o.inst_id == symbol and o.reduce_only and o.state == "live"
    ]


def live_stops(server: RunningServer, symbol: str = "BTC-USDT") -> list[Any]:
    return [
        t for t in server.sim.tpsl_orders.values()
        if t.inst_id == symbol and t.state == "live" and t.spec.sl_trigger is not None
    ]


def held(server: RunningServer, symbol: str = "BTC-USDT") -> Decimal:
    position = server.sim.positions.get(symbol)
    return Decimal(0) if position is None else abs(position.size)


def managed_or_closed(server: RunningServer) -> bool:
    """The position is protected and has its targets, or it is gone."""
    return held(server) == 0 or (bool(live_stops(server)) and len(live_targets(server)) == 3)


async def stored(server: RunningServer, signal_id: str) -> dict[str, Any]:
    reply = await server.http.get(f"/api/v1/signals/{signal_id}")
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


async def journal_state(server: RunningServer, signal_id: str) -> str | None:
    row = await server.service.journal.get_signal(signal_id)
    return None if row is None else row.state


async def until_state(server: RunningServer, signal_id: str, state: str) -> None:
    states: list[str | None] = []

    async def check() -> bool:
        states.append(await journal_state(server, signal_id))
        return states[-1] == state

    deadline = asyncio.get_running_loop().time() + WITHIN
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"{signal_id} never {state}: {states[-5:]}"
        await asyncio.sleep(0.05)


async def _post_with_failing_writes(server: RunningServer, signal_id: str) -> dict[str, Any]:
    """A market entry that fills without its attached stop (the exchange failed to attach it), after
    which the stop cannot be confirmed or placed and the close fails (5xx on every try); the answer,
    and the exchange recovers right after it."""
    server.sim.attached_tpsl_lost = 1
    for path in (TPSL_LISTING, TPSL_WRITE, CLOSE):
        await server.fault(kind="http_5xx", count=1000, path=path)
    reply = await server.http.post("/api/v1/signals", json=signal(signal_id))
    assert reply.status_code == 201, reply.text
    assert held(server) > 0  # the exchange holds the position
    await server.sim_http.delete("/sim/faults")
    answer: dict[str, Any] = reply.json()
    return answer


async def test_reconcile_answer_after_failed_writes_does_not_claim_a_close_that_did_not_happen(
    tmp_path: Path,
) -> None:
    async with running_server(paper_settings(tmp_path, monitor_poll_seconds=0.2)) as server:
        answer = await _post_with_failing_writes(server, "d3-answer")

    assert answer["status"] == "failed"
    assert "closed at market" not in answer["reason"], answer["reason"]  # it was not
    assert "could not be confirmed" in answer["reason"], answer["reason"]


async def test_reconcile_filled_entry_whose_writes_failed_is_managed_without_restart(tmp_path: Path) -> None:
    async with running_server(paper_settings(tmp_path, monitor_poll_seconds=0.2)) as server:
        await _post_with_failing_writes(server, "d3-managed")
        await wait_until(lambda: managed_or_closed(server), "the position managed or closed", within=WITHIN)
        await until_state(server, "d3-managed", "answered")
        final = await stored(server, "d3-managed")

    if held(server) > 0:
        assert final["status"] == "placed", final
        assert sum(o.size for o in live_targets(server)) == held(server)
        assert live_stops(server)
    else:
        assert final["status"] == "failed" and "closed at market" in final["reason"], final


async def _left_sending(server: RunningServer, body: dict[str, Any]) -> None:
    """What a journal failure after the entry leaves: the intent in "sending", the entry filled."""
    service = server.service
    sig = TradeSignal.model_validate(body)
    entry = OrderRecord(ids.entry_id(sig.signal_id, 1), "entry", 1, sig.symbol, "buy", "market", Decimal(1))
    stop = OrderRecord(
        ids.stop_id(sig.signal_id), "stop_loss", 1, sig.symbol, "sell", "attached", Decimal(1),
        trigger_price=sig.stop_loss, state="attached",
    )
    target = OrderRecord(
        ids.take_profit_id(sig.signal_id, 1), "take_profit", 1, sig.symbol, "sell", "limit", Decimal(1),
        price=sig.take_profits[0], state="pending",
    )
    await service.journal.record_intent(
        sig.signal_id, body_hash=ids.body_hash(sig), body=sig.model_dump(mode="json"), symbol=sig.symbol,
        side="long", orders=[entry, stop, target], state="sending",
    )
    await service.client.place_order(OrderRequest(
        inst_id=sig.symbol, side="buy", order_type="market", size=Decimal(1), margin_mode="cross",
        client_order_id=entry.client_order_id, sl_trigger_price=sig.stop_loss,
    ))


async def test_reconcile_signal_left_sending_is_resolved_once_old_enough_without_restart(
    tmp_path: Path,
) -> None:
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.2, reconcile_grace_seconds=4)
    body = signal("d3-sending", take_profits=["62000"])
    async with running_server(settings) as server:
        await _left_sending(server, body)
        passes = server.monitor.lifecycle.passes
        await wait_until(lambda: server.monitor.lifecycle.passes >= passes + 2, "two monitor passes")
        young = await journal_state(server, "d3-sending")  # another process may still be carrying it out

        await until_state(server, "d3-sending", "answered")
        await wait_until(lambda: len(live_targets(server)) == 1, "the target placed", within=WITHIN)
        final = await stored(server, "d3-sending")

    assert young == "sending"
    assert final["status"] == "placed", final
    assert live_stops(server) and held(server) == Decimal(1)


async def test_reconcile_never_touches_a_signal_this_process_is_carrying_out(tmp_path: Path) -> None:
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.2, reconcile_grace_seconds=4)
    body = signal("d3-in-flight", take_profits=["62000"])
    async with running_server(settings) as server:
        async with server.service.signal_locks.hold("d3-in-flight"):  # as `submit` holds it
            await _left_sending(server, body)
            row = await server.service.journal.get_signal("d3-in-flight")
            assert row is not None
            old = as_utc(row.created_at) + timedelta(seconds=4.5)
            await wait_until(lambda: datetime.now(UTC) > old, "the grace period over", within=WITHIN)
            # several passes past the grace period: still left to the one carrying it out
            passes = server.monitor.lifecycle.passes
            await wait_until(lambda: server.monitor.lifecycle.passes >= passes + 3, "three passes")
            held_back = await journal_state(server, "d3-in-flight")
        await until_state(server, "d3-in-flight", "answered")

    assert held_back == "sending"


def driven_settings(tmp_path: Path, grace: float) -> Any:
    """A monitor that runs a pass only when woken (no feed, polling every 300 s): the test decides
    when a pass runs, so a fault injected for the entry meets the entry and nothing else."""
    return paper_settings(
        tmp_path, monitor_websocket=False, monitor_poll_seconds=300, reconcile_grace_seconds=grace
    )


async def run_passes(server: RunningServer, count: int) -> None:
    for _ in range(count):
        await run_pass(server)


async def run_pass(server: RunningServer) -> None:
    before = server.monitor.lifecycle.passes
    server.monitor.wake()
    await wait_until(lambda: server.monitor.lifecycle.passes > before, "a monitor pass")


async def _entry_lost(server: RunningServer, body: dict[str, Any]) -> dict[str, Any]:
    """BloFin says the entry's clientOrderId is taken while its lookup finds nothing: the entry's fate
    is unknown, the way a lagging lookup looks from the client."""
    await wait_until(lambda: server.monitor.lifecycle.passes >= 1, "the monitor's first pass")
    await server.fault(kind="error_code", code="102002", count=1, path="/api/v1/trade/order")
    reply = await server.http.post("/api/v1/signals", json=body)
    assert reply.status_code == 201, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


async def test_reconcile_entry_not_found_then_landing_later_is_adopted(tmp_path: Path) -> None:
    """Suspicion: an entry declared "not found" that lands later (lookup lag) becomes unmanaged."""
    body = signal("lag-entry")
    async with running_server(driven_settings(tmp_path, grace=120)) as server:
        answer = await _entry_lost(server, body)
        await run_passes(server, 2)
        sig = TradeSignal.model_validate(body)
        size = Decimal(answer["size"])
        # ... and then the entry shows up on the exchange after all.
        await server.service.client.place_order(OrderRequest(
            inst_id=sig.symbol, side="buy", order_type="market", size=size, margin_mode="cross",
            client_order_id=ids.entry_id(sig.signal_id, 1), sl_trigger_price=sig.stop_loss,
        ))
        for _ in range(4):
            await run_passes(server, 1)
        state = await journal_state(server, "lag-entry")
        final = await stored(server, "lag-entry")
        events = [e["type"] for e in (await server.http.get("/api/v1/events")).json()["events"]
                  if e["signal_id"] == "lag-entry"]

    assert len(live_targets(server)) == 3  # the late entry is managed
    assert live_stops(server) and held(server) == size
    assert state == "answered" and final["status"] == "placed", final
    assert "reconciled" in events
    assert answer["status"] == "failed"
    assert "nothing was left open" not in answer["reason"], answer["reason"]  # absence was not proven


async def test_reconcile_entry_never_found_is_failed_once_the_grace_period_ends(tmp_path: Path) -> None:
    async with running_server(driven_settings(tmp_path, grace=4)) as server:
        answer = await _entry_lost(server, signal("lag-never"))
        first = await journal_state(server, "lag-never")
        await run_passes(server, 1)
        young = await journal_state(server, "lag-never")
        row = await server.service.journal.get_signal("lag-never")
        assert row is not None
        old = as_utc(row.created_at) + timedelta(seconds=4.5)
        await wait_until(lambda: datetime.now(UTC) > old, "the grace period over", within=WITHIN)
        await run_passes(server, 1)
        final = await stored(server, "lag-never")
        row = await server.service.journal.get_signal("lag-never")

    assert answer["status"] == "failed"
    assert (first, young) == ("unknown", "unknown")  # still looked up: absence not proven yet
    assert final["status"] == "failed" and "nothing was placed" in final["reason"], final
    assert row is not None and row.state == "answered" and not row.is_open
    assert held(server) == 0


async def test_reconcile_market_entry_hidden_by_lookup_lag_is_never_left_unmanaged(tmp_path: Path) -> None:
    """The simulator's lookup lag: the entry is accepted and fills, its reply is lost and its lookups
    find nothing for a while. The position is closed while the entry's fate is unknown; once the entry
    shows up it is adopted, and the monitor ends the trade with its exit recorded."""
    async with running_server(driven_settings(tmp_path, grace=120)) as server:
        await wait_until(lambda: server.monitor.lifecycle.passes >= 1, "the monitor's first pass")
        (await server.sim_http.post("/sim/lag", json={"ms": 0, "lookups": 8})).raise_for_status()
        await server.fault(kind="drop_reply", count=1, path="/api/v1/trade/order")
        reply = await server.http.post("/api/v1/signals", json=signal("lag-market"))
        answer = reply.json()
        held_after_answer = held(server)
        first = await journal_state(server, "lag-market")
        for _ in range(12):
            await run_pass(server)
            row = await server.service.journal.get_signal("lag-market")
            if row is not None and row.state == "answered" and not row.is_open:
                break
        final = await stored(server, "lag-market")
        row = await server.service.journal.get_signal("lag-market")
        events = [e["type"] for e in (await server.http.get("/api/v1/events")).json()["events"]
                  if e["signal_id"] == "lag-market"]

    assert answer["status"] == "failed" and first == "unknown"
    assert "nothing was left open" not in answer["reason"], answer["reason"]
    assert held_after_answer == 0 and held(server) == 0  # closed for safety, nothing reopened
    assert final["status"] == "placed", final  # the entry did reach the exchange
    assert row is not None and row.state == "answered" and not row.is_open  # followed to its end
    assert "reconciled" in events and "closed" in events, events
    assert not live_targets(server) and not live_stops(server)


async def test_reconcile_entries_hidden_past_the_grace_while_their_position_lives_are_not_failed(
    tmp_path: Path,
) -> None:
    """Found by the simulation (seed 1794): the entry's lookups kept lagging past the grace while its
    position lived, and the signal was answered "failed, nothing was placed". A position on the signal's
    side of its symbol is evidence enough: the signal stays unresolved, its stop kept, until a lookup
    finds the entry."""
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.2, reconcile_grace_seconds=4)
    body = signal("d3-hidden", take_profits=["62000"])
    async with running_server(settings) as server:
        # the entry's lookups lag (for orders accepted from now on) far past the grace
        (await server.sim_http.post("/sim/lag", json={"ms": 0, "lookups": 10_000})).raise_for_status()
        await _left_sending(server, body)
        for stop in live_stops(server):  # and the stop is gone: only the reconciliation can restore it
            await server.service.client.cancel_tpsl(stop.inst_id, tpsl_id=stop.tpsl_id)
        row = await server.service.journal.get_signal("d3-hidden")
        assert row is not None
        old = as_utc(row.created_at) + timedelta(seconds=4.5)
        await wait_until(lambda: datetime.now(UTC) > old, "the grace period over", within=WITHIN)
        passes = server.monitor.lifecycle.passes
        await wait_until(lambda: server.monitor.lifecycle.passes >= passes + 3, "three passes past the grace")
        hidden = await journal_state(server, "d3-hidden")
        protected = bool(live_stops(server))

        (await server.sim_http.delete("/sim/lag")).raise_for_status()
        await until_state(server, "d3-hidden", "answered")
        final = await stored(server, "d3-hidden")

    assert hidden == "sending" and protected
    assert final["status"] == "placed", final
    assert held(server) == Decimal(1)
