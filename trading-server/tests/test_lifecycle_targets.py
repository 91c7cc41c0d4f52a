"""Take profits refused for now are placed later (issue #12, defect 4).

A 429 (after the client's own retries) means the exchange did not accept the order: it is not a
refusal of the order itself. The target is kept ("pending", its intent journaled) and the position
monitor sends it at a later pass, for as long as the position is open. Only a definitive refusal is
"failed"."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hit_server.blofin_sim.faults import Fault
from hit_server.testing import RunningServer, paper_settings, running_server
from hit_server.testing import place_signal as place
from hit_server.testing import signal_body as signal
from hit_server.testing import wait_until as wait
from hit_server.trading import ids

PLACE_ORDER = "/api/v1/trade/order"
BATCH = "/api/v1/trade/batch-orders"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05)
    async with running_server(settings) as running:
        yield running


@pytest.fixture
async def quiet_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """No pushes and a far poll: the test runs the monitor's passes itself."""
    settings = paper_settings(tmp_path, monitor_poll_seconds=60, monitor_websocket=False)
    async with running_server(settings) as running:
        yield running


def rate_limit_exactly(server: RunningServer, monkeypatch: pytest.MonkeyPatch, path: str) -> dict[str, Any]:
    """While `switch["on"]`, every request to exactly `path` is answered 429 (the simulator's fault
    paths are prefixes, and `/api/v1/trade/order` is a prefix of the order reads too)."""
    plan = server.app.state.sim_app.state.sim_state.faults
    original = plan.take
    switch: dict[str, Any] = {"on": True, "refused": 0}

    def take(requested: str) -> Fault | None:
        if switch["on"] and requested == path:
            switch["refused"] += 1
            return Fault(kind="http_429")
        return original(requested)

    monkeypatch.setattr(plan, "take", take)
    return switch


async def test_lifecycle_targets_rate_limited_at_the_answer_are_placed_by_the_monitor(
    server: RunningServer,
) -> None:
    await server.fault(kind="http_429", count=20, path=BATCH)  # more than the client retries

    answer = await place(server, signal("tgt-429"))

    tp_ids = [ids.take_profit_id("tgt-429", n) for n in (1, 2, 3)]
    assert not any(c in server.sim.orders_by_client_id for c in tp_ids)
    await server.sim_http.delete("/sim/faults")
    await wait(lambda: all(c in server.sim.orders_by_client_id for c in tp_ids), "the targets")
    targets = [o for o in answer["orders"] if o["role"] == "take_profit"]
    assert {o["state"] for o in targets} == {"pending"}  # not accepted: kept to be sent again
    placed = [server.sim.orders_by_client_id[c] for c in tp_ids]
    assert [o.state for o in placed] == ["live", "live", "live"]
    assert sum(o.size for o in placed) == Decimal(answer["size"])


async def test_lifecycle_targets_rate_limited_in_a_pass_are_sent_at_the_next(
    quiet_server: RunningServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = quiet_server
    answer = await place(server, signal("tgt-429-pass", entries=["59000", "59800"], stop_loss="57000"))
    rungs = [o["client_order_id"] for o in answer["orders"] if o["role"] == "entry"]
    await server.set_price("BTC-USDT", "59700")  # one rung fills: the monitor places its targets
    filled = sum(server.sim.orders_by_client_id[c].filled_size for c in rungs)
    assert 0 < filled < Decimal(answer["size"])
    switch = rate_limit_exactly(server, monkeypatch, PLACE_ORDER)
    lifecycle = server.monitor.lifecycle

    await lifecycle.sync_all()

    assert switch["refused"] > 0
    assert [o for o in server.sim.open_orders("BTC-USDT") if o.reduce_only] == []
    records = await server.service.journal.orders_of("tgt-429-pass")
    refused = [r for r in records if r.role == "take_profit" and r.state == "pending"
               and r.client_order_id != ids.take_profit_id("tgt-429-pass", r.seq)]
    assert sum(r.size for r in refused) == filled  # kept, with their intent journaled

    switch["on"] = False
    await lifecycle.sync_all()

    targets = [o for o in server.sim.open_orders("BTC-USDT") if o.reduce_only]
    assert sum(t.size for t in targets) == filled
    assert {t.client_order_id for t in targets} == {r.client_order_id for r in refused}  # the same ids
