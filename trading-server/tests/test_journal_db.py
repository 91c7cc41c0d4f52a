"""The journal's database layer: transactions, duplicates, and checkpoints off the event loop."""

from __future__ import annotations

import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from hit_server.db import Database
from hit_server.journal import DuplicateSignal, EventRecord, Journal, OrderRecord


def order(cid: str, state: str = "sending") -> OrderRecord:
    return OrderRecord(cid, "entry", 1, "BTC-USDT", "buy", "market", Decimal("1.5"), state=state)


async def test_journal_intent_then_answer_round_trip(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'j.db'}")
    await db.create_schema()
    journal = Journal(db)
    try:
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
    finally:
        await db.dispose()


async def test_journal_second_intent_for_a_signal_is_a_duplicate(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'j.db'}")
    await db.create_schema()
    journal = Journal(db)
    try:
        await journal.record_intent("dup", body_hash="h", body={}, symbol="BTC-USDT", side="long",
                                    orders=[order("c-dup")], state="sending")
        with pytest.raises(DuplicateSignal):
            await journal.record_intent("dup", body_hash="h", body={}, symbol="BTC-USDT", side="long",
                                        orders=[], state="sending")
        assert [o.client_order_id for o in await journal.orders_of("dup")] == ["c-dup"]  # none half-written
    finally:
        await db.dispose()


class OftenCheckpointed(Database):
    CHECKPOINT_EVERY = 5


class NeverCheckpointed(Database):
    CHECKPOINT_EVERY = 10**9


@pytest.mark.parametrize(
    ("kind", "at_least", "at_most"), [(OftenCheckpointed, 4, 12), (NeverCheckpointed, 0, 0)]
)
async def test_journal_background_checkpoints_copy_the_log_into_the_database_file(
    tmp_path: Path, kind: type[Database], at_least: int, at_most: int
) -> None:
    path = tmp_path / "j.db"
    db = kind(f"sqlite:///{path}")
    await db.create_schema()
    journal = Journal(db)
    try:
        for n in range(12):
            await journal.record_intent(f"cp{n}", body_hash="h", body={}, symbol="BTC-USDT", side="long",
                                        orders=[], state="received")
        await db.checkpoint_done()
        # the database file alone (without its write-ahead log) holds what checkpoints copied into it
        alone = tmp_path / "alone.db"
        shutil.copy(path, alone)
        with sqlite3.connect(alone) as conn:
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            copied = conn.execute("SELECT count(*) FROM signals").fetchone()[0] if "signals" in tables else 0
    finally:
        await db.dispose()
    assert at_least <= copied <= at_most
