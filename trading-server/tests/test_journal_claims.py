"""Claims: one open trade per symbol per account and MAX_OPEN_POSITIONS held by the journal's database,
whatever the process (defect 5), on SQLite and on PostgreSQL (`journal_url` in conftest.py)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Connection, select, update

from hit_server.journal.claims import Claim, ClaimRefused
from hit_server.journal.db import CLAIMS_TABLE, DEFAULT_ACCOUNT, SIGNALS_TABLE, Database
from hit_server.journal.journal import Journal
from hit_server.journal.trade_book import CLOSED, TradeBook


def claim(symbol: str, max_open: int = 10) -> Claim:
    return Claim(DEFAULT_ACCOUNT, symbol, max_open)


async def intent(journal: Journal, signal_id: str, symbol: str, *, max_open: int = 10,
                 claimed: bool = True) -> None:
    await journal.record_intent(signal_id, body_hash="h", body={}, symbol=symbol, side="long", orders=[],
                                state="sending", claim=claim(symbol, max_open) if claimed else None)


async def answer(
    journal: Journal, signal_id: str, *, status: str, is_open: bool, state: str = "answered"
) -> None:
    await journal.finish(signal_id, status=status, reason=None, response={"status": status}, orders=[],
                         is_open=is_open, state=state)


async def claims(db: Database) -> dict[str, str]:
    def read(conn: Connection) -> dict[str, str]:
        rows = conn.execute(select(CLAIMS_TABLE.c.symbol, CLAIMS_TABLE.c.signal_id))
        return {str(symbol): str(signal_id) for symbol, signal_id in rows}

    return await db.transaction(read)


async def test_journal_claim_refused_while_another_signal_holds_the_symbol(db: Database) -> None:
    journal = Journal(db)
    await intent(journal, "first", "BTC-USDT")
    with pytest.raises(ClaimRefused) as refused:
        await intent(journal, "second", "BTC-USDT")
    assert refused.value.claimed == {"BTC-USDT"}
    assert await journal.get_signal("second") is None  # nothing recorded for the refused signal
    assert await claims(db) == {"BTC-USDT": "first"}


@pytest.mark.parametrize(
    ("status", "is_open", "state", "released"),
    [
        ("failed", False, "answered", True),  # refused by the exchange, nothing open
        ("placed", True, "answered", False),  # the trade is open
        ("failed", True, "unknown", False),  # not settled: when in doubt, the symbol stays taken
    ],
)
async def test_journal_claim_lasts_while_the_signal_is_open(
    db: Database, status: str, is_open: bool, state: str, released: bool
) -> None:
    journal = Journal(db)
    await intent(journal, "first", "BTC-USDT")
    await answer(journal, "first", status=status, is_open=is_open, state=state)
    if released:
        await intent(journal, "second", "BTC-USDT")
        assert await claims(db) == {"BTC-USDT": "second"}
    else:
        with pytest.raises(ClaimRefused):
            await intent(journal, "second", "BTC-USDT")


async def test_journal_claim_released_when_the_monitor_closes_the_trade(db: Database) -> None:
    journal = Journal(db)
    await intent(journal, "first", "BTC-USDT")
    await answer(journal, "first", status="placed", is_open=True)
    book = TradeBook(db)
    [trade] = await book.open_trades()  # the monitor reads a trade before it saves it
    trade.state = CLOSED
    await book.save(trade)
    await intent(journal, "second", "BTC-USDT")
    assert await claims(db) == {"BTC-USDT": "second"}


async def test_journal_claim_of_a_signal_ended_without_release_does_not_block_its_symbol(
    db: Database,
) -> None:
    journal = Journal(db)
    await intent(journal, "first", "BTC-USDT")
    await answer(journal, "first", status="placed", is_open=True)

    def close_without_release(conn: Connection) -> None:  # a writer that doesn't know claims
        conn.execute(update(SIGNALS_TABLE).where(SIGNALS_TABLE.c.signal_id == "first").values(is_open=False))

    await db.transaction(close_without_release)
    await intent(journal, "second", "BTC-USDT")
    assert await claims(db) == {"BTC-USDT": "second"}


async def test_journal_claims_count_against_max_open_positions(db: Database) -> None:
    journal = Journal(db)
    await intent(journal, "a", "BTC-USDT", max_open=2)
    await intent(journal, "b", "ETH-USDT", max_open=2)
    with pytest.raises(ClaimRefused) as refused:
        await intent(journal, "c", "SOL-USDT", max_open=2)
    assert refused.value.claimed == {"BTC-USDT", "ETH-USDT"}
    await answer(journal, "a", status="failed", is_open=False)
    await intent(journal, "c", "SOL-USDT", max_open=2)
    assert set(await claims(db)) == {"ETH-USDT", "SOL-USDT"}


async def test_journal_start_claims_the_open_signals_of_an_older_journal(journal_url: str) -> None:
    first_run = Database(journal_url)
    await first_run.create_schema()
    journal = Journal(first_run)
    # written as a server without claims wrote them
    await intent(journal, "open", "BTC-USDT", claimed=False)
    await answer(journal, "open", status="placed", is_open=True)
    await intent(journal, "in-flight", "ETH-USDT", claimed=False)  # "sending": orders may be out
    await intent(journal, "over", "SOL-USDT", claimed=False)
    await answer(journal, "over", status="failed", is_open=False)
    await intent(journal, "open-too", "BTC-USDT", claimed=False)  # two on one symbol (the defect)
    await answer(journal, "open-too", status="placed", is_open=True)
    await first_run.dispose()

    restarted = Database(journal_url)
    await restarted.create_schema()
    try:
        assert await claims(restarted) == {"BTC-USDT": "open", "ETH-USDT": "in-flight"}
        journal = Journal(restarted)
        for symbol in ("BTC-USDT", "ETH-USDT"):
            with pytest.raises(ClaimRefused):
                await intent(journal, f"new-{symbol}", symbol)
        await intent(journal, "new-SOL", "SOL-USDT")
    finally:
        await restarted.dispose()


async def test_journal_concurrent_claims_of_two_processes_hold_both_limits(journal_url: str) -> None:
    """Two databases (as two processes have) claiming at once: one per symbol, and at most max_open."""
    one, two = Database(journal_url), Database(journal_url)
    await one.create_schema()
    await two.create_schema()
    journals = [Journal(one), Journal(two)]

    async def attempt(n: int, symbol: str, max_open: int) -> bool:
        try:
            await intent(journals[n % 2], f"s{n}-{symbol}", symbol, max_open=max_open)
        except ClaimRefused:
            return False
        return True

    try:
        same_symbol = await asyncio.gather(*(attempt(n, "BTC-USDT", 10) for n in range(8)))
        assert sum(same_symbol) == 1
        symbols = ["ETH-USDT", "SOL-USDT", "LINK-USDT", "DOGE-USDT", "XRP-USDT", "ADA-USDT"]
        many = await asyncio.gather(*(attempt(n, symbol, 4) for n, symbol in enumerate(symbols)))
        assert sum(many) == 3  # BTC-USDT's claim is the fourth
        assert len(await claims(one)) == 4
    finally:
        await one.dispose()
        await two.dispose()


async def test_two_readers_making_a_new_trades_row_at_once_both_get_it(db: Database) -> None:
    """The position monitor's pass and a trader's action both read the open trades, and the first read
    of a placed signal makes its trade's row. On PostgreSQL their transactions interleave: both saw no
    row, both inserted it, and the loser's request was an unhandled error (a 500 for the action; seen in
    a CI run of test_actions_and_their_keys_on_every_journal). Both must get the trade."""
    journal = Journal(db)
    book = TradeBook(db)
    for n in range(12):
        symbol = f"S{n}-USDT"
        await intent(journal, f"race-{n}", symbol, max_open=50)
        await answer(journal, f"race-{n}", status="placed", is_open=True)
        seen = await asyncio.gather(*(book.open_trades() for _ in range(4)))
        assert all(f"race-{n}" in {t.signal_id for t in trades} for trades in seen)
