"""One trade's whole life read from GET /api/v1/trades/{id}, with the trading server killed (SIGKILL)
in the middle of it: a limit entry that fills, TP1 and the stop moved to breakeven, the server killed,
TP2 filling while it is down, a restarted server on the same journal reading the trade as it stands,
then the last target closing it with the realised P&L the exchange booked. Real processes: the BloFin
simulator and the server in demo mode against it (fixtures in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx

from hit_shared.trades import TradeDetail

SIGNAL = {
    "signal_id": "kill9:life",
    "side": "long",
    "symbol": "BTC-USDT",
    "entries": ["59500"],
    "stop_loss": "58000",
    "take_profits": ["62000", "64000", "66000"],
}
QUICK = {"MONITOR_POLL_SECONDS": "0.2", "RECONCILE_GRACE_SECONDS": "5", "EXCHANGE_TIMEOUT_SECONDS": "2"}


async def view(http: httpx.AsyncClient) -> dict[str, Any]:
    reply = await http.get(f"/api/v1/trades/{SIGNAL['signal_id']}")
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    TradeDetail.model_validate(found)
    return found


async def view_when(
    http: httpx.AsyncClient, wait_for: Any, what: str, check: Callable[[dict[str, Any]], bool], within: float
) -> dict[str, Any]:
    """The trade's view once `check` holds (the test fails naming `what` after `within` seconds)."""
    seen: dict[str, Any] = {}

    async def holds() -> bool:
        seen.update(await view(http))
        return check(seen)

    await wait_for(holds, within, what)
    return seen


def targets(found: dict[str, Any]) -> list[str]:
    return [t["state"] for t in found["targets"]]


def cash(state: Any) -> Decimal:
    """The simulator account's cash balance: it moves by each fill's P&L net of its fee."""
    return Decimal(state.data["balance"]["details"][0]["balance"])


async def test_trade_view_reads_each_stage_across_a_kill_9(
    sim: Any, start_server: Any, wait_for: Any
) -> None:
    cash_before = cash(await sim.state())
    server = await start_server(**QUICK)
    async with server.client() as http:
        placed = await http.post("/api/v1/signals", json=SIGNAL)
        assert placed.status_code == 201 and placed.json()["status"] == "placed", placed.text
        pending = await view(http)
        assert (pending["state"], pending["filled_size"], targets(pending)) == ("pending", "0", ["open"] * 3)

        await sim.set_price("BTC-USDT", Decimal(59400))
        opened = await view_when(http, wait_for, "the entry fill", lambda v: v["avg_entry"] is not None, 20)
        entry = (await sim.state()).order(f"{placed.json()['orders'][0]['client_order_id']}")
        assert entry is not None and opened["state"] == "open"
        assert Decimal(opened["avg_entry"]) == Decimal(entry["averagePrice"])
        assert Decimal(opened["filled_size"]) == Decimal(placed.json()["size"])

        await sim.set_price("BTC-USDT", Decimal(62100))
        moved = await view_when(http, wait_for, "breakeven", lambda v: v["stop"]["at_breakeven"], 20)
        assert targets(moved) == ["hit", "open", "open"]
        assert Decimal(moved["stop"]["price"]) == Decimal(opened["avg_entry"])

    server.proc.kill9()
    await sim.set_price("BTC-USDT", Decimal(64100))  # TP2 fills while the server is dead
    again = await start_server(
        server.db_path, port=server.port, key=server.key, name="server-restarted", **QUICK
    )
    async with again.client() as http:
        after = await view(http)  # straight after the start: the journal's record, never a guess
        assert after["state"] == "open" and after["stop"] == moved["stop"]
        assert (after["filled_size"], after["avg_entry"], after["opened_at"]) == (
            moved["filled_size"],
            moved["avg_entry"],
            moved["opened_at"],
        )
        assert targets(after) in (["hit", "open", "open"], ["hit", "hit", "open"])
        caught_up = await view_when(http, wait_for, "TP2", lambda v: targets(v)[1] == "hit", 40)
        assert caught_up["state"] == "open" and caught_up["stop"] == moved["stop"]

        await sim.set_price("BTC-USDT", Decimal(66100))
        closed = await view_when(http, wait_for, "the close", lambda v: v["state"] == "closed", 40)
        listed = (await http.get("/api/v1/trades", params={"state": "closed"})).json()

    state = await sim.state()
    assert state.positions == [] and state.naked_positions() == []
    assert closed["exit_reason"] == "targets" and targets(closed) == ["hit", "hit", "hit"]
    assert Decimal(closed["realized_pnl"]) == cash(state) - cash_before > 0
    assert Decimal(closed["fees"]) > 0 and closed["closed_at"] >= closed["opened_at"]
    assert [t["signal_id"] for t in listed["trades"]] == [SIGNAL["signal_id"]]
    assert [e["type"] for e in closed["events"]].count("take_profit_hit") == 3  # each reported once
