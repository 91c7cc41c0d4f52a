"""A fleet worker's journal work alone (issue #19): many account schemas on one PostgreSQL, one process.

    .venv/bin/python bench/journal_schemas.py [--accounts 250] [--jobs 1500] [--lanes 15 | 0] [--plain]
        [--restart]

What a fleet job writes to its account's journal, without the exchange, the queue or the other processes
of bench/fanout.py: `--accounts` account schemas (`Database.in_schema`, over `--lanes` connections), then
jobs spread over them, 32 at once, each one signal's 3 transactions (`signal_or_open_symbols`,
`record_intent` with 5 orders and the symbol's claim, `finish`). Two passes: every account once (its
tables meet PostgreSQL's connections for the first time), then `--jobs` more. `--plain`: every statement
through SQLAlchemy's execution, none on the driver's cursor (`journal/prepared.py` off), to weigh that.
`--restart`: then new connections, as a worker started again has, and every account once more
(`restart_pass`: its tables hold rows now, so this is what the first signal after a worker's restart costs,
against the first pass's accounts that never traded).

Measured per job: this process's CPU (`client_cpu_ms_per_job`), PostgreSQL's (its server processes, from
/proc) and the wall time. A throwaway PostgreSQL (`tools/postgres.py`) unless HIT_TEST_POSTGRES_URL names
one. Prints ONE JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench` as a package
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # tools/postgres.py

import postgres

from bench.fanout import code_version, postgres_cpu, say
from hit_server.fleet.queue import conninfo
from hit_server.journal import db as journal_db
from hit_server.journal import tables  # noqa: F401 - every table an account's journal has
from hit_server.journal.claims import Claim
from hit_server.journal.db import Database
from hit_server.journal.journal import EventRecord, Journal, OrderRecord

AT_ONCE = 32  # a worker's default concurrency


async def one_job(journal: Journal, number: int) -> None:
    """One signal's journal work as a fleet job does it: the read, the intent, the answer."""
    signal_id = f"bench-{secrets.token_hex(6)}"
    symbol = f"S{number}-USDT"  # a symbol of its own: the claim is always granted
    await journal.signal_or_open_symbols(signal_id)
    orders = [
        OrderRecord(f"{signal_id}-{seq}", "entry" if seq == 0 else "take_profit", seq, symbol, "buy",
                    "market", Decimal(1))
        for seq in range(5)
    ]
    await journal.record_intent(signal_id, body_hash="h", body={"signal_id": signal_id}, symbol=symbol,
                                side="long", orders=orders, state="sending",
                                claim=Claim("default", symbol, 10**9))
    for order in orders:
        order.state, order.order_id = "live", "1"
    await journal.finish(signal_id, status="placed", reason=None, response={"status": "placed"},
                         orders=orders, is_open=False,
                         events=[EventRecord("placed", "placed", signal_id, symbol)], all_recorded=True)


async def measure(journals: list[Journal], jobs: int, pg_data: Path) -> dict[str, float]:
    return await measure_jobs(lambda number: one_job(journals[number % len(journals)], number), jobs, pg_data)


async def measure_jobs(
    run_job: Callable[[int], Awaitable[None]], jobs: int, pg_data: Path
) -> dict[str, float]:
    """`jobs` jobs (`run_job(number)`), AT_ONCE at a time: CPU per job of this process and PostgreSQL's."""
    gate = asyncio.Semaphore(AT_ONCE)

    async def job(number: int) -> None:
        async with gate:
            await run_job(number)

    cpu0, pg0, wall0 = time.process_time(), postgres_cpu(pg_data), time.perf_counter()
    await asyncio.gather(*(job(n) for n in range(jobs)))
    cpu1, pg1, wall1 = time.process_time(), postgres_cpu(pg_data), time.perf_counter()
    return {
        "jobs": jobs,
        "client_cpu_ms_per_job": round((cpu1 - cpu0) * 1000 / jobs, 3),
        "postgres_cpu_ms_per_job": round((pg1 - pg0) * 1000 / jobs, 3),
        "wall_s": round(wall1 - wall0, 2),
    }


async def run(url: str, args: argparse.Namespace) -> dict[str, object]:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None  # noqa: S101 - PostgreSQL always answers it
    pg_data = Path(row[0])
    base = Database(url, account_lanes=max(1, args.lanes))
    pool = None
    try:
        await base.create_schema()
        tag = secrets.token_hex(3)
        names = [f"account_bench{tag}_{n}" for n in range(args.accounts)]
        if args.lanes:
            views = [base.in_schema(name) for name in names]
        else:  # as before the lanes: every account over the database's own pool, any connection each time
            pool = journal_db._postgres_engine(url, journal_db.POOL_SIZE, autocommit=True)  # as a lane is
            views = [Database(url, schema=name, engine=pool) for name in names]
        for view in views:
            await view.create_schema()
        journals = [Journal(view) for view in views]
        first = await measure(journals, args.accounts, pg_data)
        say(f"first pass: {first}")
        later = await measure(journals, args.jobs, pg_data)
        say(f"later jobs: {later}")
        result: dict[str, object] = {"first_pass": first, "later_jobs": later}
        if args.restart:
            await base.dispose()  # a disposed engine opens new connections on its next use
            if pool is not None:
                await pool.dispose()
            result["restart_pass"] = await measure(journals, args.accounts, pg_data)
            say(f"restart pass: {result['restart_pass']}")
        return result
    finally:
        await base.dispose()
        if pool is not None:
            await pool.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=250,
                        help="account schemas (a worker's share of 1,000)")
    parser.add_argument("--jobs", type=int, default=1500, help="jobs after the first pass")
    parser.add_argument("--lanes", type=int, default=journal_db.ACCOUNT_LANES,
                        help="connections the account journals share (Database account_lanes); 0: as before "
                             "the lanes, any connection of the database's pool of 15 for any account")
    parser.add_argument("--plain", action="store_true",
                        help="every statement through SQLAlchemy's execution (journal/prepared.py off)")
    parser.add_argument("--restart", action="store_true",
                        help="then every account once more over new connections (a worker's restart)")
    args = parser.parse_args()
    if args.plain:
        journal_db.DRIVERS_PREPARED = frozenset()
    result: dict[str, object] = {
        "benchmark": "a fleet job's journal transactions over many account schemas",
        "accounts": args.accounts, "lanes": args.lanes, "prepared": not args.plain, "at_once": AT_ONCE,
        "code": code_version(),
    }
    with postgres.test_database(dict(os.environ), say) as url:
        if url is None:
            raise SystemExit("no PostgreSQL could be had (see above)")
        result.update(asyncio.run(run(url, args)))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
