"""Statements run straight on the driver's cursor (`prepared.py`: SQLite's, asyncpg's) give what SQLAlchemy
would give, inside the same transaction: on SQLite, on PostgreSQL's own pool (SQLAlchemy begins the
transaction) and on an account's lane (the lane begins it by hand, and the statements go to asyncpg's
connection itself: `test_the_same_on_an_account_lane`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg as asyncpg_driver
import pytest
from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.exc import IntegrityError

from hit_server.journal.db import Database, as_utc
from hit_server.journal.journal import OPEN_SYMBOLS, SIGNALS, STATE_CHANGES
from hit_server.journal.prepared import prepare

AT = datetime(2026, 11, 24, 5, 6, 7, 891011, tzinfo=UTC)


def signal(sid: str, symbol: str, *, is_open: bool) -> dict[str, object]:
    return {
        "signal_id": sid, "body_hash": "h", "body": {"signal_id": sid}, "symbol": symbol, "side": "long",
        "state": "answered", "status": "placed", "reason": None, "response": None, "is_open": is_open,
        "replays": 0, "realized_pnl": None, "created_at": AT, "updated_at": AT, "closed_at": None,
    }


async def test_prepared_select_gives_the_same_column_as_sqlalchemy(db: Database) -> None:
    rows = [signal("a", "BTC-USDT", is_open=True), signal("b", "ETH-USDT", is_open=False),
            signal("c", "BTC-USDT", is_open=True), signal("d", "SOL-USDT", is_open=True)]
    await db.transaction(lambda conn: db.write(conn, insert(SIGNALS), rows))
    by_id = select(SIGNALS.c.symbol).where(SIGNALS.c.signal_id == bindparam("sid"))

    def both(conn: Connection) -> list[tuple[list[object], list[object]]]:
        return [
            (sorted(db.column(conn, OPEN_SYMBOLS)), sorted(conn.scalars(OPEN_SYMBOLS))),
            (db.column(conn, by_id, {"sid": "b"}), list(conn.scalars(by_id, {"sid": "b"}))),
            (db.column(conn, by_id, {"sid": "zz"}), list(conn.scalars(by_id, {"sid": "zz"}))),
        ]

    pairs = await db.transaction(both)
    assert [fast for fast, _ in pairs] == [["BTC-USDT", "SOL-USDT"], ["ETH-USDT"], []]
    assert all(fast == reference for fast, reference in pairs)


async def test_prepared_select_of_a_column_needing_conversion_goes_through_sqlalchemy(db: Database) -> None:
    await db.transaction(lambda conn: db.write(conn, insert(SIGNALS), signal("a", "BTC-USDT", is_open=True)))
    created = select(SIGNALS.c.created_at)
    assert prepare(sqlite.dialect(), created, ()) is None  # text in SQLite, a datetime in Python
    stored = await db.transaction(lambda conn: db.column(conn, created))
    assert [as_utc(at) for at in stored] == [AT]


async def test_prepared_writes_store_what_sqlalchemy_stores(db: Database) -> None:
    """JSON, datetimes with their zone, NULLs, booleans: a row written on the cursor reads back as one
    written by SQLAlchemy."""
    fast, slow = signal("fast", "BTC-USDT", is_open=True), signal("slow", "BTC-USDT", is_open=True)
    for row in (fast, slow):
        row["body"] = {"nested": [1, "two", None], "price": "0.000123"}
        row["response"] = {"status": "placed", "orders": [{"cid": "x"}]}

    def write(conn: Connection) -> None:
        db.write(conn, insert(SIGNALS), fast)
        conn.execute(insert(SIGNALS), slow)

    await db.transaction(write)
    rows = await db.transaction(lambda conn: {
        r.signal_id: r._asdict() for r in conn.execute(select(SIGNALS).order_by(SIGNALS.c.signal_id))
    })
    fast_row, slow_row = rows["fast"], rows["slow"]
    assert {**fast_row, "signal_id": "slow"} == slow_row
    assert fast_row["body"] == fast["body"] and as_utc(fast_row["created_at"]) == AT


async def test_prepared_write_is_undone_with_its_transaction(db: Database) -> None:
    """The cursor's statements belong to the transaction they run in, even as its first statement: a
    transaction that fails after them leaves nothing of them."""

    def write_then_fail(conn: Connection) -> None:
        db.write(conn, insert(STATE_CHANGES), {"signal_id": "s", "client_order_id": None, "state": "x",
                                               "note": None, "at": AT})
        raise RuntimeError("after the write")

    with pytest.raises(RuntimeError):
        await db.transaction(write_then_fail)
    assert await db.transaction(lambda conn: list(conn.scalars(select(STATE_CHANGES.c.id)))) == []


async def test_prepared_write_of_a_known_key_raises_sqlalchemys_integrity_error(db: Database) -> None:
    row = signal("a", "BTC-USDT", is_open=True)
    await db.transaction(lambda conn: db.write(conn, insert(SIGNALS), row))
    with pytest.raises(IntegrityError):
        await db.transaction(lambda conn: db.write(conn, insert(SIGNALS), row))


async def test_prepared_write_missing_a_parameter_lets_sqlalchemy_fill_its_default(db: Database) -> None:
    """No `at` given: the column's Python default (utcnow) applies, as with Connection.execute."""
    await db.transaction(lambda conn: db.write(conn, insert(STATE_CHANGES), {"signal_id": "s", "state": "x"}))
    stamps = await db.transaction(lambda conn: list(conn.scalars(select(STATE_CHANGES.c.at))))
    assert len(stamps) == 1 and stamps[0] is not None


def test_prepared_only_what_fits() -> None:
    assert prepare(sqlite.dialect(), insert(SIGNALS).returning(SIGNALS.c.signal_id), ["signal_id"]) is None
    assert prepare(postgresql.dialect(), insert(STATE_CHANGES), ["signal_id", "state"]) is None  # pyformat
    on_asyncpg = prepare(asyncpg.dialect(), insert(STATE_CHANGES), ["signal_id", "state", "note", "at"])
    assert on_asyncpg is not None and "$2" in on_asyncpg.sql and "RETURNING" not in on_asyncpg.sql
    prepared = prepare(sqlite.dialect(), OPEN_SYMBOLS, ())
    assert prepared is not None and prepared.values({}) == []


async def test_prepared_write_of_no_rows_writes_nothing(db: Database) -> None:
    await db.transaction(lambda conn: db.write(conn, insert(STATE_CHANGES), []))
    assert await db.transaction(lambda conn: list(conn.scalars(select(STATE_CHANGES.c.id)))) == []


async def test_prepared_update_says_how_many_rows_it_changed(db: Database) -> None:
    """The optimistic guards (a signal answered once, a lease taken once) read this count."""
    await db.transaction(lambda conn: db.write(conn, insert(SIGNALS), signal("a", "BTC-USDT", is_open=True)))
    close = update(SIGNALS).where(SIGNALS.c.signal_id == bindparam("sid"))
    close = close.values(is_open=bindparam("now_open"))
    counts = await db.transaction(lambda conn: [
        db.write(conn, close, {"sid": "a", "now_open": False}),
        db.write(conn, close, {"sid": "nobody", "now_open": False}),
    ])
    assert counts == [1, 0]
    assert await db.transaction(lambda conn: db.column(conn, OPEN_SYMBOLS)) == []


async def test_prepared_rows_give_every_column_as_sqlalchemy_does(db: Database) -> None:
    """`rows` (a signal's first read, KNOWN_OR_OPEN) on the cursor; a SELECT with one column that needs a
    conversion (a datetime) goes through SQLAlchemy whole, whichever column it is."""
    rows = [signal("a", "BTC-USDT", is_open=True), signal("b", "ETH-USDT", is_open=False),
            signal("c", "SOL-USDT", is_open=True)]
    await db.transaction(lambda conn: db.write(conn, insert(SIGNALS), rows))
    both = select(SIGNALS.c.signal_id, SIGNALS.c.symbol).where(SIGNALS.c.signal_id != bindparam("sid"))
    assert prepare(sqlite.dialect(), both, ["sid"]) is not None
    fast = await db.transaction(lambda conn: sorted(tuple(r) for r in db.rows(conn, both, {"sid": "c"})))
    assert fast == [("a", "BTC-USDT"), ("b", "ETH-USDT")]
    dated = select(SIGNALS.c.signal_id, SIGNALS.c.created_at)
    assert prepare(sqlite.dialect(), dated, ()) is None
    stored = await db.transaction(lambda conn: db.rows(conn, dated))
    assert {(sid, as_utc(at)) for sid, at in stored} == {("a", AT), ("b", AT), ("c", AT)}


@asynccontextmanager
async def account_journal(url: str) -> AsyncIterator[Database]:
    """An account's journal on PostgreSQL (`Database.in_schema`, its tables made), over its lane."""
    database = Database(url)
    try:
        await database.create_schema()
        view = database.in_schema("account_prepared")
        await view.create_schema()
        yield view
    finally:
        await database.dispose()


async def test_on_an_account_lane_the_statements_go_to_asyncpg_itself(
    fresh_postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lane's constant statements (a write, many rows, a read) reach asyncpg's connection itself, not
    through SQLAlchemy's adapter cursor (which would begin nothing there anyway)."""
    async with account_journal(fresh_postgres) as view:
        seen: list[str] = []
        for name in ("execute", "executemany", "fetch"):
            plain = getattr(asyncpg_driver.Connection, name)

            async def recorded(self: Any, query: str, *args: Any, _plain: Any = plain, _name: str = name,
                               **kwargs: Any) -> Any:
                if args or _name == "fetch":  # not the lane's own BEGIN and COMMIT
                    seen.append(f"{_name} {query.split()[0]}")
                return await _plain(self, query, *args, **kwargs)

            monkeypatch.setattr(asyncpg_driver.Connection, name, recorded)
        states = [{"signal_id": "s", "client_order_id": None, "state": f"x{n}", "note": None, "at": AT}
                  for n in range(3)]

        def work(conn: Connection) -> list[object]:
            view.write(conn, insert(SIGNALS), signal("a", "BTC-USDT", is_open=True))
            view.write(conn, insert(STATE_CHANGES), states)
            return view.column(conn, OPEN_SYMBOLS)

        assert await view.transaction(work) == ["BTC-USDT"]
        assert seen == ["execute INSERT", "executemany INSERT", "fetch SELECT"]


CHECKS: list[Callable[[Database], Awaitable[None]]] = [
    test_prepared_select_gives_the_same_column_as_sqlalchemy,
    test_prepared_writes_store_what_sqlalchemy_stores,
    test_prepared_write_is_undone_with_its_transaction,
    test_prepared_write_of_a_known_key_raises_sqlalchemys_integrity_error,
    test_prepared_write_missing_a_parameter_lets_sqlalchemy_fill_its_default,
    test_prepared_write_of_no_rows_writes_nothing,
    test_prepared_update_says_how_many_rows_it_changed,
    test_prepared_rows_give_every_column_as_sqlalchemy_does,
]


@pytest.mark.parametrize("check", CHECKS, ids=[check.__name__.removeprefix("test_") for check in CHECKS])
async def test_the_same_on_an_account_lane(
    check: Callable[[Database], Awaitable[None]], fresh_postgres: str
) -> None:
    """Each check above on an account's journal (`Database.in_schema`): the lane sends its transaction by
    hand, and the statements go to asyncpg's connection itself."""
    async with account_journal(fresh_postgres) as view:
        await check(view)
