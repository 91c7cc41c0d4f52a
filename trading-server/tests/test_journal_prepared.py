"""Statements run straight on SQLite's cursor (`prepared.py`) give what SQLAlchemy would give."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from hit_server.journal.db import Database
from hit_server.journal.journal import OPEN_SYMBOLS, SIGNALS, STATE_CHANGES
from hit_server.journal.prepared import prepare

AT = datetime(2026, 11, 24, 5, 6, 7, 891011, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'j.db'}")
    await database.create_schema()
    try:
        yield database
    finally:
        await database.dispose()


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
    assert await db.transaction(lambda conn: db.column(conn, created)) == [AT.replace(tzinfo=None)]


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
    assert prepare(postgresql.dialect(), insert(STATE_CHANGES), ["signal_id", "state"]) is None  # not qmark
    prepared = prepare(sqlite.dialect(), OPEN_SYMBOLS, ())
    assert prepared is not None and prepared.values({}) == []


async def test_prepared_write_of_no_rows_writes_nothing(db: Database) -> None:
    await db.transaction(lambda conn: db.write(conn, insert(STATE_CHANGES), []))
    assert await db.transaction(lambda conn: list(conn.scalars(select(STATE_CHANGES.c.id)))) == []
