"""The journal made unwritable under a running server, and at a start: the server refuses signals with
503 and a message, and NO order reaches the exchange (rule: never trade unrecorded).

How writes are made to fail, as root (root ignores permission bits, and there is no mount here): the
file-system "immutable" attribute (`chattr +i`), which the kernel enforces for root too. While the
server runs, the database file AND its WAL (`journal.db-wal`, already open) are made immutable, so
SQLite's next write fails with a disk I/O error; at a start, only the database file is, so SQLite
falls back to a read-only open and a write fails with "attempt to write a readonly database". The
flags are always cleared at the end. Needs `chattr` and CAP_LINUX_IMMUTABLE (root); the at-start case
is also covered in-process with SQLite's `?mode=ro` (trading-server/tests/test_api_errors.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


@contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    chattr = shutil.which("chattr")
    if chattr is None or os.geteuid() != 0:
        pytest.skip("making a file unwritable for root needs chattr and root (CI runs as root)")
    done: list[Path] = []
    try:
        for path in paths:
            subprocess.run([chattr, "+i", str(path)], check=True, capture_output=True)
            done.append(path)
        yield
    finally:
        for path in done:
            subprocess.run([chattr, "-i", str(path)], check=False, capture_output=True)


async def place_one(server: Any, signals: Any, signal_id: str, symbol: str) -> None:
    async with server.client() as http:
        ok = await http.post("/api/v1/signals", json=signals.market(signal_id, symbol))
    assert ok.status_code == 201 and ok.json()["status"] == "placed", ok.text  # it works before


def assert_refused(reply: Any) -> None:
    assert reply.status_code == 503, reply.text
    error = reply.json()["error"]
    assert error["code"] == "journal_unavailable"
    assert "journal" in error["message"]


async def test_fault_journal_unwritable_while_running_refuses_signals_and_sends_nothing(
    sim: Any, start_server: Any, signals: Any
) -> None:
    server = await start_server()
    await place_one(server, signals, "ro:before", "SOL-USDT")
    db = server.db_path
    wal = db.with_name(db.name + "-wal")
    assert wal.exists()
    orders_before = len((await sim.state()).orders)

    with immutable(db, wal):
        async with server.client() as http:
            reply = await http.post("/api/v1/signals", json=signals.market("ro:running", "BTC-USDT"))
            health = await http.get("/health")
        server.proc.stop()
    state = await sim.state()

    assert_refused(reply)
    assert health.status_code == 200  # reads still work: only writing is refused
    assert state.entry_orders("ro:running") == []
    assert len(state.orders) == orders_before


async def test_fault_journal_unwritable_at_start_refuses_signals_and_sends_nothing(
    sim: Any, start_server: Any, signals: Any
) -> None:
    first = await start_server()
    await place_one(first, signals, "ro:first", "SOL-USDT")
    first.proc.stop()  # SIGTERM: a clean stop, which folds the WAL into the database file
    orders_before = len((await sim.state()).orders)

    with immutable(first.db_path):
        server = await start_server(first.db_path, key=first.key, name="server-read-only")
        async with server.client() as http:
            reply = await http.post("/api/v1/signals", json=signals.market("ro:start", "BTC-USDT"))
            recorded = await http.get("/api/v1/signals/ro:first")
            retried = await http.post("/api/v1/signals", json=signals.market("ro:first", "SOL-USDT"))
        server.proc.stop()
    state = await sim.state()

    assert_refused(reply)
    assert recorded.status_code == 200 and recorded.json()["status"] == "placed"  # reads still work
    assert retried.status_code == 200 and retried.json() == recorded.json()  # a retry still gets its answer
    assert state.entry_orders("ro:start") == []
    assert len(state.orders) == orders_before
