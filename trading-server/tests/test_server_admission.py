"""Risk limits that span signals must hold under concurrency: signals with different ids arriving at
once on the same symbol (or past MAX_OPEN_POSITIONS) must not all pass the check before any is recorded,
in one server process and across two processes on one journal (the database is the guard), on SQLite
and on PostgreSQL."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from hit_server.testing import RunningServer, paper_settings, running_server

ALREADY_OPEN = "a trade of ours is already open on this symbol"  # the risk engine's sentence


def market_long(signal_id: str, symbol: str, stop: str, target: str) -> dict[str, Any]:
    return {
        "signal_id": signal_id,
        "side": "long",
        "symbol": symbol,
        "entries": [],
        "stop_loss": stop,
        "take_profits": [target],
    }


async def test_server_admits_one_trade_per_symbol_when_signals_race(tmp_path: Path) -> None:
    async with running_server(paper_settings(tmp_path)) as server:
        bodies = [market_long(f"race-{n}", "BTC-USDT", "58000", "61000") for n in range(8)]
        replies = await asyncio.gather(*(server.http.post("/api/v1/signals", json=b) for b in bodies))
        statuses = [reply.json()["status"] for reply in replies]
        assert statuses.count("placed") == 1, statuses
        assert statuses.count("rejected") == 7
        entries = [o for o in server.sim.orders.values() if o.inst_id == "BTC-USDT" and not o.reduce_only]
        assert len(entries) == 1


async def test_server_keeps_max_open_positions_when_signals_race(tmp_path: Path) -> None:
    async with running_server(paper_settings(tmp_path, max_open_positions=2)) as server:
        bodies = [
            market_long("mop-1", "BTC-USDT", "58000", "61000"),
            market_long("mop-2", "ETH-USDT", "2900", "3050"),
            market_long("mop-3", "SOL-USDT", "145", "153"),
            market_long("mop-4", "LINK-USDT", "14.5", "15.3"),
        ]
        replies = await asyncio.gather(*(server.http.post("/api/v1/signals", json=b) for b in bodies))
        statuses = [reply.json()["status"] for reply in replies]
        assert statuses.count("placed") == 2, statuses
        assert len([p for p in server.sim.positions.values() if p.size != 0]) == 2


def make_market(symbols: frozenset[str] = frozenset()):
    from datetime import UTC, datetime
    from decimal import Decimal

    from hit_server.risk.engine import MarketView

    return MarketView(None, Decimal(1), Decimal(1000), Decimal(1000), len(symbols), symbols, False,
                      datetime.now(UTC))


def test_admission_reservation_counts_for_reads_that_started_before_its_release() -> None:
    from hit_server.trading.admission import Admission

    now = [0.0]
    admission = Admission(clock=lambda: now[0])
    early = admission.snapshot()
    admission.reserve("a", "BTC-USDT")
    now[0] = 1.0
    admission.release("a")
    now[0] = 2.0
    late = admission.snapshot()
    seen_early = admission.with_reservations(make_market(), early)
    assert seen_early.symbols_with_open_trade == {"BTC-USDT"}
    assert seen_early.open_positions == 1
    assert admission.with_reservations(make_market(), late).open_positions == 0


def test_admission_does_not_count_a_trade_twice_when_the_read_already_shows_it() -> None:
    from hit_server.trading.admission import Admission

    admission = Admission(clock=lambda: 0.0)
    snap = admission.snapshot()
    admission.reserve("a", "BTC-USDT")
    seen = admission.with_reservations(make_market(frozenset({"BTC-USDT"})), snap)
    assert seen.open_positions == 1


# -- two server processes on one journal and one account (defect 5) ----------------------------------


@asynccontextmanager
async def two_servers(tmp_path: Path, journal_url: str, **settings: Any) -> AsyncIterator[
    tuple[RunningServer, RunningServer]
]:
    """Two apps with their own lifespans (as two processes would have), one journal database and one
    exchange (the first app's in-process simulator, passed to the second)."""
    first_settings = paper_settings(tmp_path / "one", database_url=journal_url, **settings)
    second_settings = paper_settings(tmp_path / "two", database_url=journal_url, **settings)
    async with running_server(first_settings) as first:
        async with running_server(second_settings, sim_app=first.app.state.sim_app) as second:
            yield first, second


def answers(replies: list[httpx.Response]) -> list[dict[str, Any]]:
    assert all(reply.status_code in (200, 201) for reply in replies), [r.text for r in replies]
    return [reply.json() for reply in replies]


async def test_server_two_processes_on_one_journal_place_one_trade_per_symbol(
    tmp_path: Path, journal_url: str
) -> None:
    symbols = {"BTC-USDT": ("58000", "61000"), "ETH-USDT": ("2900", "3050"), "SOL-USDT": ("145", "153")}
    async with two_servers(tmp_path, journal_url) as (first, second):
        posts = [
            server.http.post("/api/v1/signals", json=market_long(f"{name}-{symbol}", symbol, stop, target))
            for symbol, (stop, target) in symbols.items()
            for name, server in (("one", first), ("two", second))
        ]
        replies = answers(list(await asyncio.gather(*posts)))
        for symbol in symbols:
            mine = [a for a in replies if a["symbol"] == symbol]
            assert sorted(a["status"] for a in mine) == ["placed", "rejected"], mine
            rejected = next(a for a in mine if a["status"] == "rejected")
            assert rejected["reason"] == f"{symbol}: {ALREADY_OPEN}"
            entries = [o for o in first.sim.orders.values() if o.inst_id == symbol and not o.reduce_only]
            assert len(entries) == 1, symbol


async def test_server_two_processes_on_one_journal_keep_max_open_positions(
    tmp_path: Path, journal_url: str
) -> None:
    async with two_servers(tmp_path, journal_url, max_open_positions=2) as (first, second):
        posts = [
            first.http.post("/api/v1/signals", json=market_long("mop-1", "BTC-USDT", "58000", "61000")),
            second.http.post("/api/v1/signals", json=market_long("mop-2", "ETH-USDT", "2900", "3050")),
            first.http.post("/api/v1/signals", json=market_long("mop-3", "SOL-USDT", "145", "153")),
            second.http.post("/api/v1/signals", json=market_long("mop-4", "LINK-USDT", "14.5", "15.3")),
        ]
        statuses = [a["status"] for a in answers(list(await asyncio.gather(*posts)))]
        assert statuses.count("placed") == 2, statuses
        assert len([p for p in first.sim.positions.values() if p.size != 0]) == 2
