"""GET /api/v1/trades, /trades/{id}, /account and /pnl over HTTP against the in-process simulator: each
trade walked through its life by the simulator's price and read at every stage from the trade view.

The figures the view shows are checked against the simulator's own (its closed positions' realised P&L
and fees, its entry fills, its account), never against numbers the test computes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hit_server.exchange.paper import build_simulator, generated_credentials
from hit_server.lifecycle.pnl_report import periods
from hit_server.testing import RunningServer, paper_settings, running_server
from hit_server.testing import place_signal as place
from hit_server.testing import signal_body as signal
from hit_server.testing import until_event as until
from hit_server.trading import ids
from hit_shared.trades import PnlPeriod, TradeDetail, TradesPage

WAIT_S = 10.0


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(paper_settings(tmp_path, monitor_poll_seconds=0.05)) as running:
        yield running


async def trade(server: RunningServer, signal_id: str) -> dict[str, Any]:
    reply = await server.http.get(f"/api/v1/trades/{signal_id}")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    TradeDetail.model_validate(body)  # the bot's model reads it
    return body


async def trades(server: RunningServer, **params: Any) -> dict[str, Any]:
    reply = await server.http.get("/api/v1/trades", params=params)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    TradesPage.model_validate(body)
    return body


async def until_state(server: RunningServer, signal_id: str, state: str) -> dict[str, Any]:
    """The trade's view once its state is `state` (AssertionError after WAIT_S)."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        found = await trade(server, signal_id)
        if found["state"] == state:
            return found
        assert asyncio.get_running_loop().time() < deadline, f"{signal_id} never {state}: {found}"
        await asyncio.sleep(0.05)


def sim_closed(server: RunningServer, symbol: str) -> tuple[Decimal, Decimal]:
    """The simulator's realised P&L net of fees, and its fees, over the symbol's closed positions."""
    closed = [c.position for c in server.sim.position_history if c.position.inst_id == symbol]
    assert closed, "the simulator has no closed position"
    return sum((p.realized_pnl - p.fees for p in closed), Decimal(0)), sum(
        (p.fees for p in closed), Decimal(0)
    )


def target_states(view: dict[str, Any]) -> list[str]:
    return [t["state"] for t in view["targets"]]


def d(value: Any) -> Decimal:
    return Decimal(str(value))


# -- whole lives -------------------------------------------------------------------------------------


async def test_trade_view_limit_entry_fills_tp1_moves_the_stop_to_breakeven_then_all_targets_close_it(
    server: RunningServer,
) -> None:
    answer = await place(
        server, signal("tv-life", entries=["59500"], source={"channel": "c1", "message": "m1"})
    )

    pending = await trade(server, "tv-life")
    assert pending["state"] == "pending" and d(pending["filled_size"]) == 0 and pending["avg_entry"] is None
    assert pending["stop"] == {"price": "58000", "at_breakeven": False} and pending["opened_at"] is None
    planned = [o for o in answer["orders"] if o["role"] == "take_profit"]
    assert [(t["number"], d(t["price"]), d(t["size"]), t["state"]) for t in pending["targets"]] == [
        (n, d(o["price"]), d(o["size"]), "open") for n, o in enumerate(planned, start=1)
    ]
    assert pending["source"]["channel"] == "c1" and pending["mode"] == "paper" and pending["leverage"] == 5
    assert pending["realized_pnl"] is None and pending["exit_reason"] is None and pending["closed_at"] is None

    await server.set_price("BTC-USDT", "59400")
    await until(server, "tv-life", "entry_filled")
    entry = server.sim.orders_by_client_id[ids.entry_id("tv-life", 1)]
    opened = await until_state(server, "tv-life", "open")
    assert d(opened["filled_size"]) == entry.filled_size == d(answer["size"])
    assert d(opened["avg_entry"]) == entry.average_price
    assert opened["opened_at"] is not None and opened["opened_at"] >= opened["created_at"]

    await server.set_price("BTC-USDT", "62100")
    await until(server, "tv-life", "stop_moved")
    after_tp1 = await trade(server, "tv-life")
    assert after_tp1["state"] == "open" and target_states(after_tp1) == ["hit", "open", "open"]
    (stop,) = server.sim.live_tpsl("BTC-USDT")
    assert d(after_tp1["stop"]["price"]) == stop.spec.sl_trigger == entry.average_price
    assert after_tp1["stop"]["at_breakeven"] is True

    await server.set_price("BTC-USDT", "64100")
    await until(server, "tv-life", "take_profit_hit", 2)
    assert target_states(await trade(server, "tv-life")) == ["hit", "hit", "open"]
    await server.set_price("BTC-USDT", "66100")
    closed = await until_state(server, "tv-life", "closed")

    pnl, fees = sim_closed(server, "BTC-USDT")
    assert closed["exit_reason"] == "targets" and target_states(closed) == ["hit", "hit", "hit"]
    assert d(closed["realized_pnl"]) == pnl > 0 and d(closed["fees"]) == fees > 0
    assert closed["closed_at"] >= closed["opened_at"] and "last target" in closed["reason"]
    assert [e["type"] for e in closed["events"]].count("take_profit_hit") == 3
    assert {o["client_order_id"] for o in closed["orders"]} >= {
        ids.entry_id("tv-life", 1),
        *(ids.take_profit_id("tv-life", n) for n in (1, 2, 3)),
    }
    listed = (await trades(server))["trades"]
    assert [t["signal_id"] for t in listed] == ["tv-life"]
    assert {k: v for k, v in closed.items() if k not in ("orders", "events")} == listed[0]


async def test_trade_view_stop_out_is_closed_stopped_out_with_the_exchanges_loss(
    server: RunningServer,
) -> None:
    await place(server, signal("tv-stop"))
    assert (await trade(server, "tv-stop"))["state"] == "open"  # filled at the answer
    await until(server, "tv-stop", "entry_filled")
    entry = server.sim.orders_by_client_id[ids.entry_id("tv-stop", 1)]
    assert d((await trade(server, "tv-stop"))["avg_entry"]) == entry.average_price

    await server.set_price("BTC-USDT", "57000")
    closed = await until_state(server, "tv-stop", "closed")

    pnl, fees = sim_closed(server, "BTC-USDT")
    assert closed["exit_reason"] == "stopped_out" and closed["stop"] == {
        "price": "58000",
        "at_breakeven": False,
    }
    assert d(closed["realized_pnl"]) == pnl < 0 and d(closed["fees"]) == fees
    assert target_states(closed) == ["cancelled", "cancelled", "cancelled"]


async def test_trade_view_tp1_then_the_breakeven_stop_is_stopped_out_at_breakeven(
    server: RunningServer,
) -> None:
    await place(server, signal("tv-be"))
    await server.set_price("BTC-USDT", "62100")
    await until(server, "tv-be", "stop_moved")
    await server.set_price("BTC-USDT", "59000")
    closed = await until_state(server, "tv-be", "closed")

    entry = server.sim.orders_by_client_id[ids.entry_id("tv-be", 1)]
    assert closed["exit_reason"] == "stopped_out" and closed["stop"]["at_breakeven"] is True
    assert d(closed["stop"]["price"]) == entry.average_price
    assert target_states(closed) == ["hit", "cancelled", "cancelled"]
    assert d(closed["realized_pnl"]) == sim_closed(server, "BTC-USDT")[0]


async def test_trade_view_unfilled_entry_ended_by_the_stop_is_cancelled(server: RunningServer) -> None:
    await place(server, signal("tv-none", entries=["59500"]))
    server.sim.prices["BTC-USDT"] = Decimal(57900)  # a gap past the entry without a fill
    await until(server, "tv-none", "entries_cancelled")

    cancelled = await trade(server, "tv-none")

    assert cancelled["state"] == "cancelled" and cancelled["exit_reason"] == "entries_cancelled"
    assert d(cancelled["filled_size"]) == 0 and cancelled["opened_at"] is None
    assert cancelled["realized_pnl"] is None and cancelled["fees"] is None and cancelled["closed_at"]
    assert "reached the stop" in cancelled["reason"]
    assert target_states(cancelled) == ["cancelled", "cancelled", "cancelled"]


async def test_trade_view_signal_the_exchange_refused_is_failed(server: RunningServer) -> None:
    await server.fault(kind="error_code", code="103003", count=1, path="/api/v1/trade/order")
    reply = await server.http.post("/api/v1/signals", json=signal("tv-failed"))
    assert reply.json()["status"] == "failed"

    failed = await trade(server, "tv-failed")

    assert failed["state"] == "failed" and failed["reason"] == reply.json()["reason"]
    assert d(failed["filled_size"]) == 0 and failed["exit_reason"] is None and failed["closed_at"] is None
    assert target_states(failed) == ["cancelled", "cancelled", "cancelled"]
    assert [t["signal_id"] for t in (await trades(server, state="failed"))["trades"]] == ["tv-failed"]


# -- how a trade ended: by hand, by the halt, for safety ---------------------------------------------


async def test_trade_view_exit_reasons_manual_and_halt(server: RunningServer) -> None:
    await place(server, signal("tv-hand", symbol="ETH-USDT", stop_loss="2900", take_profits=["3100"]))
    await place(server, signal("tv-halt"))
    await until_state(server, "tv-hand", "open")
    await until_state(server, "tv-halt", "open")

    server.sim.close_position("ETH-USDT", "cross", "")  # a trader, on the exchange
    by_hand = await until_state(server, "tv-hand", "closed")
    halt = await server.http.post("/api/v1/halt", json={"reason": "enough", "close_positions": True})
    assert halt.json()["closed_positions"] == 1
    halted = await until_state(server, "tv-halt", "closed")

    assert by_hand["exit_reason"] == "manual" and halted["exit_reason"] == "halt"
    assert d(halted["realized_pnl"]) == sim_closed(server, "BTC-USDT")[0]
    assert "halt" in halted["reason"] and "halt_close" in [e["type"] for e in halted["events"]]


async def test_trade_view_position_whose_stop_cannot_be_restored_is_closed_for_safety(tmp_path: Path) -> None:
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05)
    async with running_server(settings) as server:
        await place(server, signal("tv-safety"))
        await until_state(server, "tv-safety", "open")
        await server.fault(kind="error_code", code="102038", count=20, path="/api/v1/trade/order-tpsl")
        for stop in server.sim.live_tpsl("BTC-USDT"):  # the stop removed on the exchange
            server.sim.cancel_tpsl(None, stop.tpsl_id, "")

        closed = await until_state(server, "tv-safety", "closed")

    assert closed["exit_reason"] == "closed_for_safety" and "stop could not be kept" in closed["reason"]
    assert d(closed["realized_pnl"]) == sim_closed(server, "BTC-USDT")[0]


# -- filters, paging, errors -------------------------------------------------------------------------


async def test_trade_view_filters_and_pages(server: RunningServer) -> None:
    await place(server, signal("f-1"))  # open
    await place(
        server, signal("f-2", symbol="ETH-USDT", entries=["2950"], stop_loss="2900", take_profits=["3100"])
    )  # pending
    before_third = datetime.now(UTC)
    await place(server, signal("f-3", symbol="SOL-USDT", stop_loss="145", take_profits=["155"]))  # open
    rejected = await server.http.post("/api/v1/signals", json=signal("f-4", symbol="NOPE-USDT"))
    assert rejected.json()["status"] == "rejected"
    await until_state(server, "f-3", "open")

    everything = await trades(server)
    opened = await trades(server, state="open")
    pending = await trades(server, state="pending")
    eth = await trades(server, symbol="eth-usdt")
    recent = await trades(server, since=before_third.isoformat())
    naive = await trades(server, since=before_third.replace(tzinfo=None).isoformat())
    page = await trades(server, limit=2, offset=1)

    assert [t["signal_id"] for t in everything["trades"]] == ["f-3", "f-2", "f-1"] and everything[
        "total"
    ] == 3
    assert [t["signal_id"] for t in opened["trades"]] == ["f-3", "f-1"] and opened["total"] == 2
    assert [t["signal_id"] for t in pending["trades"]] == ["f-2"]
    assert [t["signal_id"] for t in eth["trades"]] == ["f-2"] and eth["total"] == 1
    assert [t["signal_id"] for t in recent["trades"]] == ["f-3"] == [t["signal_id"] for t in naive["trades"]]
    assert [t["signal_id"] for t in page["trades"]] == ["f-2", "f-1"]
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)
    assert (await trades(server, state="closed"))["total"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"symbol": "ETHUSDT"}, "symbol"),
        ({"symbol": "eth usdt"}, "symbol"),
        ({"state": "placed"}, "state"),
        ({"since": "yesterday"}, "since"),
        ({"since": "0001-01-01T00:00:00+05:00"}, "since"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
async def test_trade_view_refuses_filters_it_cannot_read(
    server: RunningServer, params: dict[str, Any], field: str
) -> None:
    reply = await server.http.get("/api/v1/trades", params=params)

    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["code"] == "invalid_request" and field in reply.json()["error"]["message"]


async def test_trade_view_unknown_or_rejected_signal_is_404_in_the_error_shape(server: RunningServer) -> None:
    await server.http.post("/api/v1/signals", json=signal("rej-1", symbol="NOPE-USDT"))

    unknown = await server.http.get("/api/v1/trades/nope")
    rejected = await server.http.get("/api/v1/trades/rej-1")
    bad_id = await server.http.get("/api/v1/trades/not a valid id")

    for reply in (unknown, rejected):
        assert reply.status_code == 404 and set(reply.json()) == {"error"}
        assert reply.json()["error"]["code"] == "not_found"
    assert "was rejected" in rejected.json()["error"]["message"]
    assert bad_id.status_code == 422 and bad_id.json()["error"]["code"] == "invalid_request"
    assert (await server.http.get("/api/v1/signals/rej-1")).json()["status"] == "rejected"  # still there


async def test_trade_view_states_filters_and_pnl_on_every_journal(tmp_path: Path, journal_url: str) -> None:
    """The state is one SQL expression (filter, count and page agree): the same answers on SQLite and
    PostgreSQL."""
    settings = paper_settings(tmp_path, database_url=journal_url, monitor_poll_seconds=0.05)
    async with running_server(settings) as server:
        await server.fault(kind="error_code", code="103003", count=1, path="/api/v1/trade/order")
        assert (await server.http.post("/api/v1/signals", json=signal("j-failed"))).json()[
            "status"
        ] == "failed"
        await place(server, signal("j-closed", symbol="SOL-USDT", stop_loss="145", take_profits=["155"]))
        await place(server, signal("j-open", symbol="ETH-USDT", stop_loss="2900", take_profits=["3100"]))
        await place(server, signal("j-pending", entries=["59500"]))
        await server.set_price("SOL-USDT", "156")
        closed = await until_state(server, "j-closed", "closed")
        listed = {
            s: await trades(server, state=s) for s in ("failed", "closed", "open", "pending", "cancelled")
        }
        symbol = await trades(server, symbol="sol-usdt")
        day = (await server.http.get("/api/v1/pnl")).json()

    assert {s: [t["signal_id"] for t in page["trades"]] for s, page in listed.items()} == {
        "failed": ["j-failed"],
        "closed": ["j-closed"],
        "open": ["j-open"],
        "pending": ["j-pending"],
        "cancelled": [],
    }
    assert [t["signal_id"] for t in symbol["trades"]] == ["j-closed"]
    assert symbol["trades"][0] == {k: v for k, v in closed.items() if k not in ("orders", "events")}
    assert day["buckets"][0]["closed_trades"] == 1 and d(day["realized_pnl"]) == d(closed["realized_pnl"])


# -- a restart mid-trade -----------------------------------------------------------------------------


async def test_trade_view_reads_the_same_after_a_restart_mid_trade(tmp_path: Path) -> None:
    """The server stopped after TP1 and the breakeven move: the restarted server's view is the one it
    left; then TP2 fills, and the breakeven stop fires while the server is down again: the next server
    reads the trade to its close."""
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05)
    exchange = build_simulator(settings, generated_credentials())
    sim = exchange.state.sim
    async with running_server(settings, sim_app=exchange) as server:
        await place(server, signal("tv-restart", entries=["59500"]))
        await server.set_price("BTC-USDT", "59400")
        await server.set_price("BTC-USDT", "62100")
        await until(server, "tv-restart", "stop_moved")
        before = await trade(server, "tv-restart")

    async with running_server(settings, sim_app=exchange) as server:
        again = await trade(server, "tv-restart")
        await server.set_price("BTC-USDT", "64100")
        await until(server, "tv-restart", "take_profit_hit", 2)
        after_tp2 = await trade(server, "tv-restart")

    sim.set_price("BTC-USDT", Decimal(59000))  # the breakeven stop fires while nobody watches
    async with running_server(settings, sim_app=exchange) as server:
        closed = await until_state(server, "tv-restart", "closed")
        pnl = sim_closed(server, "BTC-USDT")[0]

    assert again == before and before["state"] == "open" and before["stop"]["at_breakeven"] is True
    assert target_states(before) == ["hit", "open", "open"] and target_states(after_tp2) == [
        "hit",
        "hit",
        "open",
    ]
    assert closed["exit_reason"] == "stopped_out" and closed["stop"] == before["stop"]
    assert target_states(closed) == ["hit", "hit", "cancelled"] and d(closed["realized_pnl"]) == pnl
    assert (closed["filled_size"], closed["avg_entry"], closed["opened_at"]) == (
        before["filled_size"],
        before["avg_entry"],
        before["opened_at"],
    )


# -- account and P&L ---------------------------------------------------------------------------------


async def test_account_is_the_exchanges_equity_margin_and_unrealised_pnl(server: RunningServer) -> None:
    await place(server, signal("acc-1"))
    await server.set_price("BTC-USDT", "61000")

    reply = await server.http.get("/api/v1/account")

    assert reply.status_code == 200, reply.text
    account, sim = reply.json(), server.sim.account()
    assert (account["mode"], account["currency"], account["open_positions"]) == ("paper", "USDT", 1)
    assert d(account["equity"]) == sim.equity and d(account["available_margin"]) == sim.available
    assert d(account["frozen"]) == sim.frozen
    positions = (await server.http.get("/api/v1/positions")).json()["positions"]
    assert d(account["unrealized_pnl"]) == sim.unrealized_pnl == d(positions[0]["unrealizedPnl"]) > 0


async def test_account_is_503_when_the_exchange_cannot_be_read(server: RunningServer) -> None:
    await server.fault(kind="http_5xx", count=50, path="/api/v1/account/balance")

    reply = await server.http.get("/api/v1/account")

    assert reply.status_code == 503 and reply.json()["error"]["code"] == "exchange_unavailable"


async def test_pnl_counts_closed_trades_per_period_as_the_exchange_reported_them(
    server: RunningServer,
) -> None:
    await place(server, signal("p-win"))
    await place(server, signal("p-loss", symbol="ETH-USDT", stop_loss="2900", take_profits=["3100"]))
    await place(server, signal("p-open", symbol="SOL-USDT", stop_loss="145", take_profits=["155"]))
    await server.set_price("BTC-USDT", "66100")  # every target
    await server.set_price("ETH-USDT", "2890")  # the stop
    won = await until_state(server, "p-win", "closed")
    lost = await until_state(server, "p-loss", "closed")

    day = (await server.http.get("/api/v1/pnl", params={"period": "day"})).json()
    week = (await server.http.get("/api/v1/pnl", params={"period": "week", "count": 3})).json()
    month = (await server.http.get("/api/v1/pnl", params={"period": "month", "count": 1})).json()
    bad = await server.http.get("/api/v1/pnl", params={"period": "year"})

    pnl = sim_closed(server, "BTC-USDT")[0] + sim_closed(server, "ETH-USDT")[0]
    fees = sim_closed(server, "BTC-USDT")[1] + sim_closed(server, "ETH-USDT")[1]
    assert d(won["realized_pnl"]) > 0 > d(lost["realized_pnl"])
    for report, count in ((day, 7), (week, 3), (month, 1)):
        assert len(report["buckets"]) == count
        today = report["buckets"][0]
        assert (today["closed_trades"], today["wins"], today["losses"]) == (2, 1, 1)
        assert d(today["realized_pnl"]) == pnl == d(report["realized_pnl"])
        assert d(today["fees"]) == fees == d(report["fees"])
        assert all(b["closed_trades"] == 0 for b in report["buckets"][1:])
        assert (
            datetime.fromisoformat(today["start"]) <= datetime.now(UTC) < datetime.fromisoformat(today["end"])
        )
    stats = (await server.http.get("/api/v1/stats")).json()
    assert d(stats["realized_pnl"]) == pnl and (stats["wins"], stats["losses"]) == (1, 1)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    assert "period" in bad.json()["error"]["message"]


def test_pnl_periods_are_utc_days_iso_weeks_and_calendar_months() -> None:
    now = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)  # a Wednesday

    days = periods(PnlPeriod.DAY, 2, now)
    weeks = periods(PnlPeriod.WEEK, 2, now)
    months = periods(PnlPeriod.MONTH, 3, now)

    assert days == [
        (datetime(2026, 3, 4, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC)),
        (datetime(2026, 3, 3, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC)),
    ]
    assert weeks == [
        (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)),
        (datetime(2026, 2, 23, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)),
    ]
    assert months == [
        (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
        (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)),
    ]
    assert periods(PnlPeriod.MONTH, 1, datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == [
        (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    ]
    assert periods(PnlPeriod.DAY, 1, now + timedelta(hours=9))[0][0] == datetime(2026, 3, 5, tzinfo=UTC)
