"""The orphan sweep (`orphans.reconcile_exchange`) against signals being carried out (issue #12,
defect 2): a signal's orders are committed before they are sent, with the signal not yet open, and
the sweep runs every RECONCILE_MINUTES whatever the signal path is doing. An order is an orphan only
once its signal is answered and no longer open.

The sweep is run at the exact moment that matters, deterministically: from inside the journal's
`finish`, after every order of the signal was sent and before its answer is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from hit_server.blofin_sim.models import OrderParams
from hit_server.journal.journal import SIGNALS
from hit_server.lifecycle.orphans import reconcile_exchange
from hit_server.testing import RunningServer, paper_settings, running_server, signal_events
from hit_server.testing import place_signal as place
from hit_server.testing import signal_body as signal
from hit_server.trading import ids


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    # no pushes and a far poll: the only sweep is the one the test runs
    settings = paper_settings(tmp_path, monitor_poll_seconds=60, monitor_websocket=False)
    async with running_server(settings) as running:
        yield running


async def set_signal(server: RunningServer, signal_id: str, **values: Any) -> None:
    query = update(SIGNALS).where(SIGNALS.c.signal_id == signal_id).values(**values)
    await server.service.journal.db.transaction(lambda conn: conn.execute(query))


def sweep_before_the_answer(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Run the orphan sweep inside `finish`, before the answer is committed; the counts it returned."""
    journal = server.service.journal
    original = journal.finish
    cancelled: list[int] = []

    async def finish(signal_id: str, **kwargs: Any) -> None:
        cancelled.append(await reconcile_exchange(server.monitor.lifecycle))
        await original(signal_id, **kwargs)

    monkeypatch.setattr(journal, "finish", finish)
    return cancelled


async def test_orphans_sweep_before_the_answer_leaves_the_fresh_targets(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    cancelled = sweep_before_the_answer(server, monkeypatch)

    await place(server, signal("orph-targets"))

    assert cancelled == [0]
    targets = [server.sim.orders_by_client_id[ids.take_profit_id("orph-targets", n)] for n in (1, 2, 3)]
    assert [t.state for t in targets] == ["live", "live", "live"]
    assert "orphan_cancelled" not in {e["type"] for e in await signal_events(server, "orph-targets")}


async def test_orphans_sweep_before_the_answer_leaves_the_resting_entry(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    cancelled = sweep_before_the_answer(server, monkeypatch)

    await place(server, signal("orph-entry", entries=["59500"]))

    assert cancelled == [0]
    assert server.sim.orders_by_client_id[ids.entry_id("orph-entry", 1)].state == "live"


async def test_orphans_order_of_a_signal_still_sending_is_left_alone(server: RunningServer) -> None:
    """A signal left "sending" (a crash before its answer) is resolved by lookup, never swept."""
    answer = await place(server, signal("orph-sending", entries=["59500"]))
    await set_signal(server, "orph-sending", state="sending", is_open=False)

    assert await reconcile_exchange(server.monitor.lifecycle) == 0
    entry = server.sim.orders_by_client_id[answer["orders"][0]["client_order_id"]]
    assert entry.state == "live" and entry.price == Decimal(59500)


async def test_orphans_order_of_a_finished_signal_is_cancelled(server: RunningServer) -> None:
    answer = await place(server, signal("orph-done", entries=["59500"]))
    await set_signal(server, "orph-done", is_open=False)  # as the monitor leaves a finished trade

    assert await reconcile_exchange(server.monitor.lifecycle) == 1
    assert server.sim.orders_by_client_id[answer["orders"][0]["client_order_id"]].state == "canceled"
    assert "orphan_cancelled" in {e["type"] for e in await signal_events(server, "orph-done")}


async def test_orphans_sweep_from_the_live_mirror_reads_nothing_and_still_cancels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fleet account's first reconciliation reads the account from its just-seeded mirror, not a
    second time by REST (the warm-up of hundreds of accounts on one IP paid every read twice)."""
    settings = paper_settings(tmp_path, monitor_poll_seconds=60)  # the simulator's pushes on
    async with running_server(settings) as server:
        mirror = server.service.mirror
        assert await mirror.wait_live(10), "the mirror is seeded"
        answer = await place(server, signal("orph-mirror", entries=["59500"]))
        await set_signal(server, "orph-mirror", is_open=False)
        server.sim.place_order(OrderParams(inst_id="ETH-USDT", side="buy", order_type="market",
                                           size=Decimal(1), margin_mode="cross", client_order_id="theirs"))
        [theirs] = mirror.positions("ETH-USDT")  # the foreign position reached the mirror

        async def no_read(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("read by REST although the mirror is live")

        monkeypatch.setattr(server.service.client, "pending_orders", no_read)
        monkeypatch.setattr(server.service.client, "positions", no_read)
        lifecycle = server.monitor.lifecycle
        assert await reconcile_exchange(lifecycle, reread=False) == 1
        assert theirs.position_id in lifecycle.foreign_reported  # seen in the mirror, reported
        assert server.sim.orders_by_client_id[answer["orders"][0]["client_order_id"]].state == "canceled"
        with pytest.raises(AssertionError, match="read by REST"):
            await reconcile_exchange(lifecycle)  # the timed reconciliation reads the exchange itself
