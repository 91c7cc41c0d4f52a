"""A trade's lease (`journal/trade_lease.py`), once on SQLite and once on PostgreSQL: taken in one
statement whether its row exists or not, refused while another process holds it, free again once given
back (alone or with the trade's save) or lapsed; of many processes taking a new lease at once, one gets it."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from hit_server.journal.db import Database
from hit_server.journal.journal import SIGNALS
from hit_server.journal.trade_book import OPEN, Trade, TradeBook
from hit_server.journal.trade_lease import LEASES, TradeLeases

from .test_journal_prepared import signal


async def holder_of(db: Database, signal_id: str) -> list[object]:
    return await db.transaction(lambda conn: list(conn.execute(
        select(LEASES.c.holder, LEASES.c.until).where(LEASES.c.signal_id == signal_id)
    )))


async def test_a_lease_is_taken_by_one_process_at_a_time(db: Database) -> None:
    one, two = TradeLeases(db, holder="one"), TradeLeases(db, holder="two")
    assert await one.take("t1")  # no row yet: made
    assert not await two.take("t1")  # held
    assert await one.take("t1")  # its own: taken again
    assert [row[0] for row in await holder_of(db, "t1")] == ["one"]
    await one.give_back("t1")
    assert await two.take("t1")
    assert not await one.take("t1")
    lapsing = TradeLeases(db, holder="lapsing", seconds=0)
    assert await lapsing.take("t2")
    assert await two.take("t2")  # lapsed: taken over
    assert [row[0] for row in await holder_of(db, "t2")] == ["two"]


async def test_a_lease_given_back_twice_is_written_once_and_never_frees_anothers(db: Database) -> None:
    one, two = TradeLeases(db, holder="one", seconds=0), TradeLeases(db, holder="two")
    assert await one.take("t1")
    assert await two.take("t1")  # one's lapsed
    await one.give_back("t1")  # one's holder no longer matches: two keeps it
    assert not await TradeLeases(db, holder="three").take("t1")
    await two.give_back("t1")
    await two.give_back("t1")  # nothing more to give back
    assert await TradeLeases(db, holder="three").take("t1")


async def test_the_save_that_gives_the_lease_back_frees_it_for_another_process(db: Database) -> None:
    await db.transaction(lambda conn: conn.execute(SIGNALS.insert(), signal("t1", "BTC-USDT", is_open=True)))
    book = TradeBook(db)
    [trade] = await book.open_trades()
    assert isinstance(trade, Trade) and trade.state == OPEN
    assert await book.lease_unless_moved_on(trade)
    other = TradeLeases(db, holder="other")
    assert not await other.take("t1")
    trade.stop_price = trade.stop_price + 1
    await book.save(trade, give_back=True)
    assert await other.take("t1")  # free at once, with no give_back of its own
    await book.leases.give_back("t1")  # the monitor's own give_back after the save: nothing to do
    assert [row[0] for row in await holder_of(db, "t1")] == ["other"]
    assert trade.version == 1


async def test_of_many_processes_taking_a_new_lease_at_once_one_gets_it(db: Database) -> None:
    takers = [TradeLeases(db, holder=f"p{n}") for n in range(8)]
    for round_ in range(5):
        got = await asyncio.gather(*(taker.take(f"race-{round_}") for taker in takers))
        assert sum(got) == 1, got
        [(holder, _)] = await holder_of(db, f"race-{round_}")
        assert holder == takers[got.index(True)].holder
