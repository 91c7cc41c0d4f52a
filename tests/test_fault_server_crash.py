"""The trading server killed with SIGKILL in the middle of a burst, then started again on the same
journal: nothing lost (every signal ends with a stored answer once retried with the same signal_id),
nothing doubled (one entry per signal_id at the simulator, no clientOrderId twice, no position larger
than its one signal's size). Real processes; fixtures in tests/conftest.py."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx

KILL_AFTER_ANSWERS = 4
CONCURRENCY = 4


async def burst_until_killed(
    server: Any, bodies: list[dict[str, Any]], answers: dict[str, httpx.Response]
) -> None:
    """Post the bodies, CONCURRENCY at a time; SIGKILL the server once KILL_AFTER_ANSWERS came back."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            try:
                reply = await http.post("/api/v1/signals", json=body)
            except httpx.TransportError:
                continue  # the server died under it: the outcome is unknown to us
            answers[body["signal_id"]] = reply
            if len(answers) >= KILL_AFTER_ANSWERS:
                server.proc.kill9()

    async with server.client(timeout=20) as http:
        await asyncio.gather(*(worker(http) for _ in range(CONCURRENCY)))


async def test_fault_server_killed_mid_burst_loses_nothing_and_doubles_nothing(
    sim: Any, start_server: Any, signals: Any
) -> None:
    server = await start_server()
    bodies = [signals.market(f"crash:{n}:{symbol}", symbol) for n, symbol in enumerate(signals.symbols())]
    before: dict[str, httpx.Response] = {}
    await burst_until_killed(server, bodies, before)
    assert not server.proc.alive
    state_at_crash = await sim.state()

    # Signals the kill left "sending" are resolved once RECONCILE_GRACE_SECONDS old (a live process might
    # still be carrying them out before that); here the old process is known dead, so the grace is short.
    again = await start_server(server.db_path, port=server.port, key=server.key, name="server-restarted",
                               RECONCILE_GRACE_SECONDS="5", EXCHANGE_TIMEOUT_SECONDS="2")
    async with again.client() as http:
        after = {b["signal_id"]: await signals.post_until_answered(http, b) for b in bodies}
        stored = {sid: await http.get(f"/api/v1/signals/{sid}") for sid in after}
    state = await sim.state()

    assert KILL_AFTER_ANSWERS <= len(before) < len(bodies)  # the kill did land mid-burst
    assert all(r.status_code in (200, 201) for r in after.values()), {
        sid: (r.status_code, r.text) for sid, r in after.items() if r.status_code not in (200, 201)}
    for sid, first in before.items():  # answered before the crash: the same answer, replayed
        if first.status_code == 201:
            assert after[sid].status_code == 200 and after[sid].json() == first.json()
    for sid, reply in stored.items():
        assert reply.status_code == 200 and reply.json() == after[sid].json()
    assert state.duplicate_client_ids() == []
    for body in bodies:
        answer: dict[str, Any] = after[body["signal_id"]].json()
        entries = state.entry_orders(body["signal_id"])
        assert len(entries) <= 1, (body["signal_id"], entries)
        if answer["status"] == "placed":
            assert len(entries) == 1
            assert state.position_size(body["symbol"]) == Decimal(answer["size"])
        else:
            assert answer["reason"], answer
    sent_at_crash = {o["clientOrderId"] for o in state_at_crash.orders}
    assert sent_at_crash <= {o["clientOrderId"] for o in state.orders}
    assert state.naked_positions() == []
