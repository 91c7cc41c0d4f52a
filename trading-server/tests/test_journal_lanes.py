"""An account's journal on its lane (`journal/lanes.py`, issue #19): the schema is the lane connection's
own search_path, sent with a BEGIN only when it changes, and reads of one statement run without a
transaction. Whatever fails, is cancelled or is cut, a statement never runs under another account's
schema. Two accounts share one lane in every test here, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from hit_server.api.http_errors import JournalUnavailable
from hit_server.fleet.journals import schema_name
from hit_server.journal.db import Database
from hit_server.journal.journal import DuplicateSignal, Journal

pytestmark = pytest.mark.asyncio

SIGNAL_IDS = text("SELECT signal_id FROM signals")
BACKEND = text("SELECT pg_backend_pid()")


async def _db(url: str) -> AsyncIterator[tuple[Database, Journal, Journal]]:
    db = Database(url, pool_size=2, account_lanes=1)  # both accounts on the one lane
    try:
        await db.create_schema()
        a, b = (Journal(db.in_schema(schema_name(name))) for name in ("anna", "ben"))
        for journal in (a, b):
            await journal.db.create_schema()
        yield db, a, b
    finally:
        await db.dispose()


@pytest.fixture
async def lane(fresh_postgres: str) -> AsyncIterator[tuple[Database, Journal, Journal]]:
    async for made in _db(fresh_postgres):
        yield made


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the lanes send as plain SQL (BEGIN, SET, COMMIT, ROLLBACK): asyncpg's `execute` without
    arguments, recorded and then run as usual."""
    seen: list[str] = []
    plain = asyncpg.Connection.execute

    async def recorded(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        if not args:
            seen.append(query)
        return await plain(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "execute", recorded)
    return seen


async def intent(journal: Journal, signal_id: str) -> None:
    await journal.record_intent(signal_id, body_hash="h", body={}, symbol="BTC-USDT", side="long", orders=(),
                                state="received")


async def ids(journal: Journal) -> set[str]:
    return await journal.db.read(lambda conn: set(conn.scalars(SIGNAL_IDS)))


async def halts(journal: Journal) -> int:
    return int(await journal.db.read(lambda conn: conn.scalar(text("SELECT count(*) FROM halt"))))


async def one_signal_each(a: Journal, b: Journal) -> int:
    """a1 in A's journal, then b1 in B's (the lane's path is B's after it); the lane's backend pid."""
    await intent(a, "a1")
    await intent(b, "b1")
    return int(await b.db.read(lambda conn: conn.scalar(BACKEND)))


async def test_the_schema_goes_with_the_begin_and_only_when_the_lane_has_another(
    lane: tuple[Database, Journal, Journal], sent: list[str]
) -> None:
    _, a, b = lane
    sent.clear()
    await intent(a, "a1")
    await intent(a, "a2")
    assert await ids(a) == {"a1", "a2"}
    await intent(b, "b1")
    assert await ids(a) == {"a1", "a2"}
    assert await ids(b) == {"b1"}
    path_a, path_b = 'SET search_path TO "account_anna"', 'SET search_path TO "account_ben"'
    assert sent == [
        f"BEGIN; {path_a}", "COMMIT",  # the lane had no path of A's
        "BEGIN", "COMMIT",  # it has now: nothing but the BEGIN
        # A's read: no message at all but its statement
        f"BEGIN; {path_b}", "COMMIT",
        path_a,  # a read alone sets the path by itself, outside any transaction
        path_b,
    ]


async def test_a_rolled_back_transaction_leaves_no_schema_behind(
    lane: tuple[Database, Journal, Journal], sent: list[str]
) -> None:
    """A's transaction that set A's path and failed was rolled back, its SET with it: the lane's path is
    B's again, and A's next read must set A's, not take B's rows for A's."""
    _, a, b = lane
    await one_signal_each(a, b)
    with pytest.raises(DuplicateSignal):
        await intent(a, "a1")  # BEGIN with A's SET, the duplicate key, ROLLBACK
    assert await ids(a) == {"a1"}
    assert await ids(b) == {"b1"}

    def fails_after_a_write(conn: Connection) -> None:
        conn.execute(text("INSERT INTO halt (id, halted) VALUES (1, true)"))
        raise ValueError("the work's own failure")

    with pytest.raises(ValueError, match="own failure"):
        await a.db.transaction(fails_after_a_write)
    assert await halts(a) == 0
    assert await ids(b) == {"b1"}
    assert sent.count("ROLLBACK") == 2


async def test_a_commit_that_postgresql_answers_with_rollback_is_an_error(
    lane: tuple[Database, Journal, Journal],
) -> None:
    """A statement failed inside the work, which swallowed it and went on: PostgreSQL rolls the whole
    transaction back at COMMIT, and the journal says so rather than reporting it written."""
    _, a, _ = lane

    def swallows(conn: Connection) -> None:
        conn.execute(text("INSERT INTO halt (id, halted) VALUES (1, true)"))
        try:
            conn.execute(text("SELECT * FROM no_such_table"))
        except SQLAlchemyError:
            pass

    with pytest.raises(JournalUnavailable):
        await a.db.transaction(swallows)
    assert await halts(a) == 0
    await intent(a, "a1")  # the lane works on
    assert await ids(a) == {"a1"}


async def test_a_cancelled_transaction_closes_its_connection_and_the_next_one_sets_the_schema(
    lane: tuple[Database, Journal, Journal], sent: list[str]
) -> None:
    db, a, b = lane
    before = await one_signal_each(a, b)

    def sleeps(conn: Connection) -> None:
        conn.execute(text("INSERT INTO halt (id, halted) VALUES (1, true)"))
        conn.execute(text("SELECT pg_sleep(30)"))

    task = asyncio.create_task(a.db.transaction(sleeps))
    sleeping = text(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'"
    )
    await until(db, lambda c: c.scalar(sleeping) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sent.clear()
    assert await ids(b) == {"b1"}  # B's path again, on a new connection
    assert sent == ['SET search_path TO "account_ben"']
    assert await b.db.read(lambda conn: conn.scalar(BACKEND)) != before
    assert await halts(a) == 0
    assert await ids(a) == {"a1"}


async def test_a_connection_the_server_ended_is_replaced_and_given_the_schema_again(
    lane: tuple[Database, Journal, Journal], sent: list[str]
) -> None:
    db, a, b = lane
    pid = await one_signal_each(a, b)
    await db.transaction(lambda c: c.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}))
    sent.clear()
    for _ in range(2):  # the first statement on the cut connection may fail; the next has a new one
        try:
            seen = await ids(b)
            break
        except JournalUnavailable:
            continue
    assert seen == {"b1"}
    assert sent[-1] == 'SET search_path TO "account_ben"'
    assert await b.db.read(lambda conn: conn.scalar(BACKEND)) != pid
    assert await ids(a) == {"a1"}


async def test_a_write_whose_connection_breaks_fails_whole_and_the_next_has_a_new_connection(
    lane: tuple[Database, Journal, Journal], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal's constant writes go to asyncpg itself on a lane (`prepared.py`). The connection
    breaking under one (asyncpg's own error for it, raised once at the signal's row): the transaction
    fails as the journal being unavailable, writes nothing, and the pool replaces the connection."""
    _, a, b = lane
    pid = await one_signal_each(a, b)
    plain = asyncpg.Connection.execute
    broken: list[str] = []

    async def breaks_once(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        if args and not broken and query.startswith("INSERT INTO signals"):
            broken.append(query)
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle")
        return await plain(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "execute", breaks_once)
    with pytest.raises(JournalUnavailable):
        await intent(b, "b2")
    assert broken
    await intent(b, "b3")
    assert await ids(b) == {"b1", "b3"}
    assert await b.db.read(lambda conn: conn.scalar(BACKEND)) != pid


async def test_many_accounts_on_one_lane_at_once_each_write_and_read_their_own(fresh_postgres: str) -> None:
    """Eight accounts' transactions and reads interleaved on one lane, some failing on purpose: every
    account's journal holds exactly its own signals."""
    db = Database(fresh_postgres, pool_size=1, account_lanes=1)
    try:
        await db.create_schema()
        journals = {f"m{i}": Journal(db.in_schema(schema_name(f"m{i}"))) for i in range(8)}
        for journal in journals.values():
            await journal.db.create_schema()

        async def account(name: str, journal: Journal) -> None:
            for n in range(6):
                await intent(journal, f"{name}-{n}")
                if n % 2:
                    with pytest.raises(DuplicateSignal):
                        await intent(journal, f"{name}-{n}")
                assert await ids(journal) == {f"{name}-{k}" for k in range(n + 1)}

        await asyncio.gather(*(account(name, journal) for name, journal in journals.items()))
        for name, journal in journals.items():
            assert await ids(journal) == {f"{name}-{k}" for k in range(6)}
    finally:
        await db.dispose()


async def until(db: Database, check: Callable[[Connection], bool], within: float = 20.0) -> None:
    """Poll `check` in a transaction of the database's own until it holds (or fail after `within` s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await db.transaction(check):
        assert loop.time() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


async def test_a_view_over_a_pool_that_begins_its_own_transactions_is_refused(fresh_postgres: str) -> None:
    """A lane sends its own BEGIN and COMMIT: over a pool whose driver begins transactions as well, the
    two would overlap, so such a view refuses to run anything."""
    db = Database(fresh_postgres, pool_size=1)
    try:
        view = Database(fresh_postgres, schema="account_x", engine=db._async)
        with pytest.raises(RuntimeError, match="autocommit"):
            await view.transaction(lambda conn: conn.scalar(BACKEND))
    finally:
        await db.dispose()
