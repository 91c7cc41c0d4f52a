"""The journal's database layer: transactions, duplicates, and checkpoints off the event loop.

The journal tests run on SQLite and on PostgreSQL (`journal_url` in conftest.py: `./run.sh test` starts a
throwaway PostgreSQL and sets HIT_TEST_POSTGRES_URL; in CI a missing one is a failure, never a skip).
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hit_server.journal.db import Database
from hit_server.journal.journal import AnsweredElsewhere, DuplicateSignal, EventRecord, Journal, OrderRecord
from hit_server.testing import clean_env


@pytest.fixture
async def db(journal_url: str) -> AsyncIterator[Database]:
    # the older SQLite URL form (sqlite+aiosqlite) still works
    database = Database(journal_url.replace("sqlite:", "sqlite+aiosqlite:", 1))
    await database.create_schema()
    try:
        yield database
    finally:
        await database.dispose()


def order(cid: str, state: str = "sending") -> OrderRecord:
    return OrderRecord(cid, "entry", 1, "BTC-USDT", "buy", "market", Decimal("1.5"), state=state)


async def test_journal_intent_then_answer_round_trip(db: Database) -> None:
    journal = Journal(db)
    await journal.record_intent("s1", body_hash="h", body={"signal_id": "s1"}, symbol="BTC-USDT",
                                side="long", orders=[order("c1")], state="sending")
    sent = order("c1", state="filled")
    sent.order_id = "42"
    await journal.finish("s1", status="placed", reason=None, response={"status": "placed"},
                         orders=[sent], is_open=True, events=[EventRecord("placed", "ok", "s1")],
                         all_recorded=True)

    row = await journal.get_signal("s1")
    assert row is not None and row.state == "answered" and row.response == {"status": "placed"}
    assert [(o.state, o.order_id) for o in await journal.orders_of("s1")] == [("filled", "42")]
    assert await journal.open_symbols() == {"BTC-USDT"}
    counts = await journal.counts()
    assert (counts.received, counts.placed, counts.open_trades) == (1, 1, 1)
    assert [e.type for e in await journal.events(after=0, limit=10)] == ["placed"]


async def test_journal_a_settled_answer_is_never_overwritten_by_a_stale_one(db: Database) -> None:
    # Two processes reconcile one "unknown" signal: the first answers it (and its trade later closes);
    # the second, which read it before, must not store its own answer (found by the simulation, seed 188).
    journal = Journal(db)
    await journal.record_intent("s1", body_hash="h", body={}, symbol="BTC-USDT", side="long",
                                orders=[order("c1")], state="sending")
    await journal.finish("s1", status="failed", reason="unclear", response={"status": "failed"},
                         orders=[order("c1", state="unknown")], is_open=True, state="unknown")
    await journal.finish("s1", status="placed", reason=None, response={"status": "placed"},
                         orders=[order("c1", state="filled")], is_open=False, state="answered")

    with pytest.raises(AnsweredElsewhere):
        await journal.finish("s1", status="placed", reason="stale", response={"status": "stale"},
                             orders=[order("c1", state="live")], is_open=True,
                             events=[EventRecord("placed", "stale", "s1")], state="answered")

    row = await journal.get_signal("s1")
    assert row is not None and (row.response, row.is_open) == ({"status": "placed"}, False)
    assert [o.state for o in await journal.orders_of("s1")] == ["filled"]
    assert await journal.events(after=0, limit=10) == []


async def test_journal_a_fresh_order_id_goes_to_one_process_only(db: Database) -> None:
    # Two processes repairing one position's stop at once both want stop number 1: the journal gives it
    # to the first, and the second takes number 2 (found by the simulation, seed 68: one id sent twice).
    from hit_server.journal.journal import journal_fresh_order

    journal = Journal(db)
    await journal.record_intent("s1", body_hash="h", body={}, symbol="BTC-USDT", side="long", orders=[],
                                state="received")
    first = await journal_fresh_order(journal.reserve_order, "s1", lambda k: order(f"c{k}"), 1)
    second = await journal_fresh_order(journal.reserve_order, "s1", lambda k: order(f"c{k}"), 1)

    assert (first.client_order_id, second.client_order_id) == ("c1", "c2")
    assert not await journal.reserve_order("s1", order("c1"))
    assert [o.client_order_id for o in await journal.orders_of("s1")] == ["c1", "c2"]


async def test_journal_first_read_gives_the_row_of_a_known_signal_else_the_open_symbols(db: Database) -> None:
    journal = Journal(db)
    for sid, symbol, is_open in (("a", "BTC-USDT", True), ("b", "ETH-USDT", False), ("c", "SOL-USDT", True)):
        await journal.record_intent(sid, body_hash="h", body={}, symbol=symbol, side="long", orders=[],
                                    state="received")
        await journal.finish(sid, status="placed", reason=None, response={"status": "placed"}, orders=[],
                             is_open=is_open)

    row, ours = await journal.signal_or_open_symbols("b")
    assert row is not None and row.signal_id == "b" and row.response == {"status": "placed"}
    assert ours == set()  # a replay admits nothing
    assert await journal.signal_or_open_symbols("new") == (None, {"BTC-USDT", "SOL-USDT"})


async def test_journal_second_intent_for_a_signal_is_a_duplicate(db: Database) -> None:
    journal = Journal(db)
    await journal.record_intent("dup", body_hash="h", body={}, symbol="BTC-USDT", side="long",
                                orders=[order("c-dup")], state="sending")
    with pytest.raises(DuplicateSignal):
        await journal.record_intent("dup", body_hash="h", body={}, symbol="BTC-USDT", side="long",
                                    orders=[], state="sending")
    assert [o.client_order_id for o in await journal.orders_of("dup")] == ["c-dup"]  # none half-written


class CheckpointsWatched(Database):
    """A journal that notes each background checkpoint: the thread it ran on and the frames it copied."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.checkpoints: list[tuple[int, int]] = []

    def _checkpoint(self) -> int:
        copied = super()._checkpoint()
        self.checkpoints.append((threading.get_ident(), copied))
        return copied


class OftenCheckpointed(CheckpointsWatched):
    CHECKPOINT_EVERY = 5


class NeverCheckpointed(CheckpointsWatched):
    CHECKPOINT_EVERY = 10**9


async def twelve_signals_then_the_checkpoint(db: Database) -> None:
    """Twelve signals' intents, then wait for the background checkpoint, if one runs."""
    journal = Journal(db)
    for n in range(12):
        await journal.record_intent(f"cp{n}", body_hash="h", body={}, symbol="BTC-USDT", side="long",
                                    orders=[], state="received")
    await db.checkpoint_done()


async def test_journal_background_checkpoints_copy_the_log_into_the_database_file(tmp_path: Path) -> None:
    """Every CHECKPOINT_EVERY transactions a passive checkpoint copies the log into the database file, on a
    worker thread, never on the event loop's. (The file alone is not read here: between a checkpoint and
    the next write, SQLite promises a consistent database only through its log.)"""
    db = OftenCheckpointed(f"sqlite:///{tmp_path / 'j.db'}")
    await db.create_schema()
    try:
        await twelve_signals_then_the_checkpoint(db)
    finally:
        await db.dispose()
    # 12 transactions and more (the schema's) every 5: one or two checkpoints, two unless the first
    # was still running when the tenth transaction asked for the next
    assert 1 <= len(db.checkpoints) <= 3, db.checkpoints
    assert all(thread != threading.get_ident() for thread, _ in db.checkpoints)
    assert sum(copied for _, copied in db.checkpoints) > 0


async def test_journal_without_background_checkpoints_leaves_the_log_alone(tmp_path: Path) -> None:
    """SQLite's own checkpoint waits for a log of BACKSTOP_CHECKPOINT_PAGES: a dozen signals copy nothing."""
    path = tmp_path / "j.db"
    db = NeverCheckpointed(f"sqlite:///{path}")
    await db.create_schema()
    try:
        await twelve_signals_then_the_checkpoint(db)
        assert db.checkpoints == []
        wal = path.with_name(path.name + "-wal")
        assert wal.stat().st_size > 0  # every transaction is still in the log
    finally:
        await db.dispose()


class WritesThroughSQLAlchemy(Database):
    """The same journal with every write through `Connection.execute` (the reference for the fast path)."""

    def write(self, conn, statement, params):  # type: ignore[no-untyped-def]
        conn.execute(statement, params)


def stored_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608 - fixed names
            for table in ("signals", "orders", "state_changes", "events")
        }


async def test_journal_sqlite_fast_writes_store_the_same_rows_as_sqlalchemy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SQLite writes that skip SQLAlchemy's execution store byte-for-byte what it would store."""
    from datetime import UTC, datetime

    from hit_server.journal import journal as journal_module

    moment = datetime(2026, 11, 24, 5, 6, 7, 891011, tzinfo=UTC)
    monkeypatch.setattr(journal_module, "utcnow", lambda: moment)
    paths = []
    for kind in (Database, WritesThroughSQLAlchemy):
        path = tmp_path / f"{kind.__name__}.db"
        database = kind(f"sqlite:///{path}")
        await database.create_schema()
        journal = Journal(database)
        target = OrderRecord("c-2", "take_profit", 1, "BTC-USDT", "sell", "limit", Decimal("0.5"),
                             price=Decimal("65000.10"), state="pending")
        first = [order("c-1"), target]
        body = {"signal_id": "s1", "prices": ["1.5", None]}
        await journal.record_intent("s1", body_hash="h" * 64, body=body, symbol="BTC-USDT", side="long",
                                    orders=first, state="sending")
        first[0].state, first[0].order_id = "filled", "900"
        first[1].state = "live"
        await journal.finish("s1", status="placed", reason=None, response={"status": "placed", "n": 1},
                             orders=[*first, order("c-3", state="unknown")], is_open=True,
                             events=[EventRecord("placed", "placed", "s1", "BTC-USDT", {"code": "x"})])
        await journal.add_or_update_orders("s1", [order("c-3", state="filled")])
        await journal.add_events([EventRecord("closed", "closed", "s1", "BTC-USDT")])
        await database.dispose()
        paths.append(path)

    fast, reference = (stored_rows(path) for path in paths)
    assert fast == reference
    assert len(fast["orders"]) == 3 and len(fast["state_changes"]) == 6 and len(fast["events"]) == 2


async def test_journal_sqlite_fast_write_of_a_known_signal_is_still_a_duplicate(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'j.db'}")
    await database.create_schema()
    journal = Journal(database)
    await journal.record_intent("dup", body_hash="h", body={}, symbol="BTC-USDT", side="long", orders=[],
                                state="received")
    with pytest.raises(DuplicateSignal):
        await journal.record_intent("dup", body_hash="h", body={}, symbol="BTC-USDT", side="long",
                                    orders=[], state="received")
    await database.dispose()


def test_server_program_with_an_unreachable_database_says_so_in_one_line(tmp_path: Path) -> None:
    """A PostgreSQL journal that does not answer stops the server before it starts: one line naming the
    database without its password, never a traceback (uvicorn's startup failure printed one)."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = clean_env(
        DATABASE_URL=f"postgresql+asyncpg://hit:pw-never-shown@127.0.0.1:{port}/journal",
        DATA_DIR=str(tmp_path),
        LOG_DIR=str(tmp_path / "logs"),
        API_KEYS="key-for-the-unreachable-db-test-00001",
    )
    command = [sys.executable, "-m", "hit_server"]
    done = subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("The trading server cannot start: its database postgresql+asyncpg://hit:***@")
    assert "pw-never-shown" not in done.stderr + done.stdout and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
async def test_postgres_connection_the_server_closed_is_replaced_before_a_transaction_uses_it(
    fresh_postgres: str, driver: str
) -> None:
    """The pool hands out no connection PostgreSQL has ended (a restart, pg_terminate_backend, the fleet's
    cut-off test): the next transaction runs on a new one instead of failing. With asyncpg no ping per
    checkout pays for that (issue #19): its connection knows it was closed; another driver keeps
    SQLAlchemy's ping."""
    from sqlalchemy import event, make_url, text

    from hit_server.testing import wait_until

    url = make_url(fresh_postgres).set(drivername=f"postgresql+{driver}")
    db = Database(url.render_as_string(hide_password=False), pool_size=1)
    admin = Database(fresh_postgres, pool_size=1)
    handed_out: list[Any] = []  # the driver's connections the pool handed out
    assert db._async is not None
    event.listen(db._async.sync_engine, "checkout",
                 lambda _conn, record, _proxy: handed_out.append(record.driver_connection))

    def backend(conn: Any) -> int:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

    try:
        first = await db.transaction(backend)
        ended = await admin.transaction(
            lambda conn: conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar_one()
        )
        assert ended is True
        if driver == "asyncpg":
            await wait_until(handed_out[-1].is_closed, "the client to see its connection closed")
        second = await db.transaction(backend)
        assert second != first
    finally:
        await db.dispose()
        await admin.dispose()
