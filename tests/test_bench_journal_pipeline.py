"""bench/journal_pipeline.py on the run's PostgreSQL: its hand-written transactions write what the journal's
own job writes (so the modes compare the same work), and the benchmark measures every mode end to end."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench` as a package

from bench.journal_pipeline import MODES, Lane, psycopg_job
from bench.journal_schemas import one_job
from hit_server.fleet.queue import conninfo
from hit_server.journal.db import Database
from hit_server.journal.journal import Journal

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("signals", "orders", "state_changes", "claims", "events")


@pytest.fixture
async def base(postgres_url: str) -> AsyncIterator[Database]:
    database = Database(postgres_url)
    await database.create_schema()
    yield database
    await database.dispose()


async def _written(url: str, schema: str) -> dict[str, object]:
    """What a schema's journal holds: rows per table, the orders' states and the signals' states."""
    async with await psycopg.AsyncConnection.connect(conninfo(url), autocommit=True) as conn:
        await conn.execute(f'SET search_path TO "{schema}"')
        held: dict[str, object] = {}
        for table in TABLES:
            cursor = await conn.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - our table names
            row = await cursor.fetchone()
            held[table] = row[0] if row else None
        cursor = await conn.execute("SELECT state, order_id FROM orders ORDER BY seq")
        held["orders_now"] = await cursor.fetchall()
        cursor = await conn.execute("SELECT state, status, is_open, response IS NOT NULL FROM signals")
        held["signal_now"] = await cursor.fetchall()
        cursor = await conn.execute("SELECT state, note FROM state_changes ORDER BY id")
        held["state_changes"] = await cursor.fetchall()
        return held


@pytest.mark.parametrize("pipelined", [False, True])
async def test_the_written_out_job_writes_what_the_journal_job_writes(
    base: Database, postgres_url: str, pipelined: bool
) -> None:
    url = postgres_url
    tag = secrets.token_hex(3)
    ours, theirs = f"account_pipetest{tag}_journal", f"account_pipetest{tag}_psycopg"
    for schema in (ours, theirs):
        await base.in_schema(schema).create_schema()
    await one_job(Journal(base.in_schema(ours)), 7)
    conn = await psycopg.AsyncConnection.connect(conninfo(url), autocommit=True)
    try:
        await psycopg_job(Lane(conn, pipelined), f'"{theirs}"', 7)
    finally:
        await conn.close()
    by_journal, written_out = await _written(url, ours), await _written(url, theirs)
    assert by_journal["signals"] == 1 and by_journal["orders"] == 5  # the job did write
    assert written_out == by_journal


def test_the_pipeline_benchmark_measures_every_mode(postgres_url: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "journal_pipeline.py"), "--accounts", "4", "--jobs", "60"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modes = json.loads(done.stdout)["modes"]
    assert list(modes) == list(MODES)
    for measured in modes.values():
        assert measured["first_pass"]["jobs"] == 4 and measured["later_jobs"]["jobs"] == 60
        assert measured["later_jobs"]["client_cpu_ms_per_job"] > 0
