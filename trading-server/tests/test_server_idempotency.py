"""At most once: retries, concurrency, lost replies and crashes never make a second entry (rule 1)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hit_server.exchange.blofin_models import OrderRequest
from hit_server.exchange.paper import build_simulator, generated_credentials
from hit_server.journal.journal import OrderRecord
from hit_server.testing import RunningServer, paper_settings, running_server
from hit_server.testing import signal_body as signal
from hit_server.trading import ids
from hit_shared.models import TradeSignal


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(paper_settings(tmp_path)) as running:
        yield running


def entries_at_sim(server: RunningServer | FastAPI, signal_id: str) -> list[Any]:
    sim = server.sim if isinstance(server, RunningServer) else server.state.sim
    prefix = ids.signal_prefix(signal_id)
    return [o for cid, o in sim.orders_by_client_id.items() if cid.startswith(prefix + "e")]


async def test_idempotency_sequential_retries_replay_the_same_answer(server: RunningServer) -> None:
    replies = [await server.http.post("/api/v1/signals", json=signal("seq")) for _ in range(3)]

    assert [r.status_code for r in replies] == [201, 200, 200]
    assert replies[0].json() == replies[1].json() == replies[2].json()
    assert len(entries_at_sim(server, "seq")) == 1


async def test_idempotency_fifty_concurrent_duplicates_make_one_entry(server: RunningServer) -> None:
    replies = await asyncio.gather(
        *(server.http.post("/api/v1/signals", json=signal("burst")) for _ in range(50))
    )

    codes = sorted(r.status_code for r in replies)
    assert codes == [200] * 49 + [201]
    assert len({r.text for r in replies}) == 1
    assert len(entries_at_sim(server, "burst")) == 1
    stats = (await server.http.get("/api/v1/stats")).json()
    assert (stats["signals_received"], stats["replayed"]) == (1, 49)


async def test_idempotency_same_id_with_another_body_is_a_conflict(server: RunningServer) -> None:
    first = await server.http.post("/api/v1/signals", json=signal("conflict"))
    second = await server.http.post("/api/v1/signals", json=signal("conflict", stop_loss="57000"))
    same_numbers = await server.http.post(
        "/api/v1/signals", json=signal("conflict", stop_loss=58000.0, take_profits=[62000, "64000.00", 66000])
    )

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "signal_conflict"
    assert same_numbers.status_code == 200  # the same prices written differently are the same body
    assert len(entries_at_sim(server, "conflict")) == 1


async def test_idempotency_dropped_reply_of_the_entry_leaves_exactly_one_order(server: RunningServer) -> None:
    await server.fault(kind="drop_reply", count=1, path="/api/v1/trade/order")

    reply = await server.http.post("/api/v1/signals", json=signal("dropped"))

    assert reply.status_code == 201
    assert reply.json()["status"] == "placed"
    (entry,) = entries_at_sim(server, "dropped")
    assert entry.state == "filled"
    assert server.sim.positions["BTC-USDT"].size == Decimal(reply.json()["size"])


async def _crash_after_sending(app: FastAPI, body: dict[str, Any], *, send: bool) -> None:
    """What a server killed between "sent" and "answered" leaves: a journal row in "sending" (and the
    entry on the exchange when `send`)."""
    service = app.state.service
    sig = TradeSignal.model_validate(body)
    entry = OrderRecord(ids.entry_id(sig.signal_id, 1), "entry", 1, sig.symbol, "buy", "market", Decimal(1))
    stop = OrderRecord(
        ids.stop_id(sig.signal_id),
        "stop_loss",
        1,
        sig.symbol,
        "sell",
        "attached",
        Decimal(1),
        trigger_price=sig.stop_loss,
        state="attached",
    )
    await service.journal.record_intent(
        sig.signal_id,
        body_hash=ids.body_hash(sig),
        body=sig.model_dump(mode="json"),
        symbol=sig.symbol,
        side="long",
        orders=[entry, stop],
        state="sending",
    )
    if send:
        await service.client.place_order(
            OrderRequest(
                inst_id=sig.symbol,
                side="buy",
                order_type="market",
                size=Decimal(1),
                margin_mode="cross",
                client_order_id=entry.client_order_id,
                sl_trigger_price=sig.stop_loss,
            )
        )


async def _answer_within(server: RunningServer, signal_id: str, seconds: float) -> httpx.Response:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        reply = await server.http.get(f"/api/v1/signals/{signal_id}")
        if reply.status_code == 200 or asyncio.get_running_loop().time() > deadline:
            return reply
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("sent", [True, False], ids=["entry-reached-exchange", "entry-never-sent"])
async def test_idempotency_restart_reconciles_a_signal_left_sending(tmp_path: Path, sent: bool) -> None:
    # A signal left "sending" is resolved once RECONCILE_GRACE_SECONDS old (another process may still be
    # carrying it out before that): by the restarted server's monitor, without a second restart.
    settings = paper_settings(tmp_path, reconcile_grace_seconds=4, monitor_poll_seconds=0.2)
    exchange = build_simulator(settings, generated_credentials())
    body = signal("crashed")
    async with running_server(settings, sim_app=exchange) as before:
        await _crash_after_sending(before.app, body, send=sent)

    async with running_server(settings, sim_app=exchange) as after:
        young = await after.http.get("/api/v1/signals/crashed")
        stored = await _answer_within(after, "crashed", seconds=30)
        retry = await after.http.post("/api/v1/signals", json=body)
        events = (await after.http.get("/api/v1/events")).json()["events"]

    assert young.status_code == 404  # no answer yet: too young to be declared anything
    assert stored.status_code == 200 and retry.status_code == 200
    assert retry.json() == stored.json()
    assert len(entries_at_sim(exchange, "crashed")) == (1 if sent else 0)
    if sent:
        assert stored.json()["status"] == "placed"
        assert exchange.state.sim.positions["BTC-USDT"].size == Decimal(1)
        assert "reconciled" in {e["type"] for e in events}
    else:
        assert stored.json()["status"] == "failed" and "nothing was placed" in stored.json()["reason"]
