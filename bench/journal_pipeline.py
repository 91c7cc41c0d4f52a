"""What psycopg's pipeline mode would save a fleet worker's journal (issue #19): a measurement for a
decision, not the journal's code.

    .venv/bin/python bench/journal_pipeline.py [--accounts 250] [--jobs 750]
        [--modes journal,psycopg,pipeline]

A fleet job's journal work is 3 transactions in ~16 round trips to PostgreSQL (bench/journal_schemas.py's
`one_job`: the signal's read, the intent with its claim and 5 orders, the answer). Pipeline mode sends
the statements of a transaction without waiting for each answer, so each transaction would take 2 round
trips (one before the claim's decision or the answer's check, one to commit). Before moving the journal's
PostgreSQL path to another driver, this measures what that would save. The same job, per mode, on fresh
account schemas (the journal's own tables, `Database.in_schema`) over as many connections as a worker's
lanes (journal/db.py ACCOUNT_LANES), 32 jobs at once:

- `journal`: the journal as it is (SQLAlchemy over asyncpg, `lanes.py`), bench/journal_schemas.py's job;
- `psycopg`: the same statements written out by hand, on psycopg 3, one round trip each (the lane's
  BEGIN and search_path in one message, as `lanes.py` sends them): what the driver alone changes;
- `pipeline`: the same on psycopg in pipeline mode.

The hand-written transactions do what the journal's do, without its checks' branches (the claim is always
granted: every job has a symbol of its own). Measured per job, as bench/journal_schemas.py does: this
process's CPU, PostgreSQL's, and the wall time; a first pass (every account once) and `--jobs` more.
Prints ONE JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Json

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench` as a package
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # tools/postgres.py

import postgres

from bench.fanout import code_version, say
from bench.journal_schemas import measure_jobs, one_job
from hit_server.fleet.queue import conninfo
from hit_server.journal import db as journal_db
from hit_server.journal import tables  # noqa: F401 - every table an account's journal has
from hit_server.journal.db import Database, utcnow
from hit_server.journal.journal import Journal

MODES = ("journal", "psycopg", "pipeline")

READ = "SELECT signal_id, symbol FROM signals WHERE is_open IS true OR signal_id = %s"
INSERT_SIGNAL = (
    "INSERT INTO signals (signal_id, body_hash, body, symbol, side, state, is_open, replays, created_at,"
    " updated_at) VALUES (%s, %s, %s, %s, %s, %s, false, 0, %s, %s)"
)
LOCK = "UPDATE claim_locks SET changed_at = %s WHERE account = %s"
CLAIMS = (
    "SELECT claims.symbol, claims.signal_id,"
    " signals.is_open IS true OR signals.state IN ('sending', 'placing')"
    " FROM claims JOIN signals ON signals.signal_id = claims.signal_id WHERE claims.account = %s"
)
INSERT_CLAIM = "INSERT INTO claims (account, symbol, signal_id, created_at) VALUES (%s, %s, %s, %s)"
INSERT_ORDER = (
    "INSERT INTO orders (client_order_id, signal_id, role, seq, symbol, side, order_type, size, state,"
    " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
INSERT_STATE = (
    "INSERT INTO state_changes (signal_id, client_order_id, state, note, at) VALUES (%s, %s, %s, %s, %s)"
)
ANSWER = (
    "UPDATE signals SET state = %s, status = %s, reason = %s, response = %s, is_open = %s, updated_at = %s"
    " WHERE signal_id = %s AND response IS NULL"
)
RELEASE = "DELETE FROM claims WHERE signal_id = %s"
ORDER_STATE = "UPDATE orders SET order_id = %s, state = %s, updated_at = %s WHERE client_order_id = %s"
INSERT_EVENT = (
    "INSERT INTO events (type, signal_id, symbol, message, data, created_at) VALUES (%s, %s, %s, %s, %s, %s)"
)

# a statement, its parameters (a list of rows: executemany), and what it answered: (rowcount, rows)
Statement = tuple[str, Any]
Answer = tuple[int, list[Any] | None]


class Lane:
    """One psycopg connection in autocommit, one transaction at a time, knowing its search_path."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], pipelined: bool) -> None:
        self.conn = conn
        self.pipelined = pipelined
        self.lock = asyncio.Lock()
        self.path: str | None = None

    async def run(self, statements: Sequence[Statement]) -> list[Answer]:
        """The statements in order: in one pipeline sync, or one round trip each."""
        if not self.pipelined:
            return [await self._one(sql, params) for sql, params in statements]
        async with self.conn.pipeline() as pipeline:
            cursors = [await self._send(sql, params) for sql, params in statements]
            await pipeline.sync()
            return [(cur.rowcount, await cur.fetchall() if cur.description else None) for cur in cursors]

    def begin(self, schema: str) -> list[Statement]:
        """The statements that open a transaction under `schema` (a pipeline can't send two in one
        message; without one, the BEGIN and the SET go together as `lanes.py` sends them)."""
        if self.path == schema:
            return [("BEGIN", None)]
        self.path = schema  # rolled back with a failed transaction; this benchmark has none
        if self.pipelined:
            return [("BEGIN", None), (f"SET search_path TO {schema}", None)]
        return [(f"BEGIN; SET search_path TO {schema}", None)]

    async def _send(self, sql: str, params: Any) -> psycopg.AsyncCursor[Any]:
        cursor = self.conn.cursor()
        if isinstance(params, list):
            await cursor.executemany(sql, params)
        else:
            await cursor.execute(sql, params)
        return cursor

    async def _one(self, sql: str, params: Any) -> Answer:
        cursor = await self._send(sql, params)
        return cursor.rowcount, await cursor.fetchall() if cursor.description else None


async def psycopg_job(lane: Lane, schema: str, number: int) -> None:
    """`one_job`'s three transactions, written out."""
    signal_id, symbol, now = f"bench-{secrets.token_hex(6)}", f"S{number}-USDT", utcnow()
    order_ids = [f"{signal_id}-{seq}" for seq in range(5)]
    async with lane.lock:
        reading = [] if lane.path == schema else [(f"SET search_path TO {schema}", None)]
        lane.path = schema
        await lane.run([*reading, (READ, (signal_id,))])
        # the intent: what the claim's decision needs, then the claim, the orders and the commit
        opened = lane.begin(schema)
        answers = await lane.run([
            *opened,
            (INSERT_SIGNAL,
             (signal_id, "h", Json({"signal_id": signal_id}), symbol, "long", "sending", now, now)),
            (LOCK, (now, "default")),
            (CLAIMS, ("default",)),
        ])
        if answers[len(opened) + 1][0] != 1:
            raise RuntimeError("the account's claim lock is missing")
        await lane.run([
            (INSERT_CLAIM, ("default", symbol, signal_id, now)),
            (INSERT_ORDER, [(order_id, signal_id, "entry" if seq == 0 else "take_profit", seq, symbol, "buy",
                             "market", "1", "sending", now, now) for seq, order_id in enumerate(order_ids)]),
            (INSERT_STATE, (signal_id, None, "sending", None, now)),
            ("COMMIT", None),
        ])
        # the answer: written, checked that it was this one's to write, then committed
        opened = lane.begin(schema)
        answers = await lane.run([
            *opened,
            (ANSWER, ("answered", "placed", None, Json({"status": "placed"}), False, now, signal_id)),
            (RELEASE, (signal_id,)),
            (ORDER_STATE, [("1", "live", now, order_id) for order_id in order_ids]),
            (INSERT_STATE, [(signal_id, order_id, "live", None, now) for order_id in order_ids]
             + [(signal_id, None, "answered", "placed", now)]),
            (INSERT_EVENT, ("placed", signal_id, symbol, "placed", Json({}), now)),
        ])
        if answers[len(opened)][0] != 1:
            raise RuntimeError("answered elsewhere")
        await lane.run([("COMMIT", None)])


async def mode_jobs(url: str, base: Database, mode: str, accounts: int) -> tuple[
    Callable[[int], Awaitable[None]], list[Lane]
]:
    """Fresh account schemas, and the job of `mode` over them."""
    names = [f"account_pipe{secrets.token_hex(3)}_{n}" for n in range(accounts)]
    views = [base.in_schema(name) for name in names]
    for view in views:
        await view.create_schema()
    if mode == "journal":
        journals = [Journal(view) for view in views]
        return (lambda number: one_job(journals[number % accounts], number)), []
    lanes = [
        Lane(await psycopg.AsyncConnection.connect(conninfo(url), autocommit=True), mode == "pipeline")
        for _ in range(journal_db.ACCOUNT_LANES)
    ]

    def job(number: int) -> Awaitable[None]:
        account = number % accounts
        return psycopg_job(lanes[account % len(lanes)], f'"{names[account]}"', number)

    return job, lanes


async def run(url: str, args: argparse.Namespace) -> dict[str, object]:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None  # noqa: S101 - PostgreSQL always answers it
    pg_data = Path(row[0])
    base = Database(url)
    results: dict[str, object] = {}
    try:
        await base.create_schema()
        for mode in args.modes:
            job, lanes = await mode_jobs(url, base, mode, args.accounts)
            try:
                first = await measure_jobs(job, args.accounts, pg_data)
                later = await measure_jobs(job, args.jobs, pg_data)
            finally:
                for lane in lanes:
                    await lane.conn.close()
            results[mode] = {"first_pass": first, "later_jobs": later}
            say(f"{mode}: {results[mode]}")
    finally:
        await base.dispose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=250,
                        help="account schemas (a worker's share of 1,000)")
    parser.add_argument("--jobs", type=int, default=750, help="jobs after the first pass")
    parser.add_argument("--modes", type=lambda text: text.split(","), default=list(MODES),
                        help=f"comma-separated, run in this order: {', '.join(MODES)}")
    args = parser.parse_args()
    if unknown := set(args.modes) - set(MODES):
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    result: dict[str, object] = {
        "benchmark": "a fleet job's journal transactions, one round trip a statement or pipelined",
        "accounts": args.accounts, "lanes": journal_db.ACCOUNT_LANES, "code": code_version(),
    }
    with postgres.test_database(dict(os.environ), say) as url:
        if url is None:
            raise SystemExit("no PostgreSQL could be had (see above)")
        result["modes"] = asyncio.run(run(url, args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
