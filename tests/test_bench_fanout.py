"""The helpers of bench/fanout.py: what it counts as an entry and as a percentile, its model, and its
reading of PostgreSQL's costliest statements."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench` as a package

from bench.fanout import (
    Member,
    SpeedProbe,
    buffers_size,
    conninfo,
    endpoints,
    entry_ids,
    fleet_model,
    minutes_to_send,
    percentiles,
    placed_by_group,
    postgres,
    postgres_ready,
    proc_cpu,
    room_needed,
    statements_reset,
    top_statements,
)
from hit_server.trading import ids


def test_entries_are_the_signals_e_numbers_only() -> None:
    prefix = ids.signal_prefix("s-1")
    others = [f"{prefix}t1", f"{prefix}sl", f"{prefix}e1x", ids.entry_id("s-2", 1)]
    found = entry_ids([f"{prefix}e1", *others, f"{prefix}e2"], "s-1")
    assert found == [f"{prefix}e1", f"{prefix}e2"]


def test_the_speed_probe_counts_its_steps_per_cpu_microsecond_and_ends() -> None:
    probe = SpeedProbe()
    probe.start()
    proc = probe.proc
    assert proc is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc_cpu(proc.pid) < 0.05:  # until it has run a while
        time.sleep(0.05)
    speed = probe.stop()
    assert speed is not None and 0.1 < speed < 10_000
    assert proc.poll() is not None and probe.proc is None
    assert probe.stop() is None  # stopped once


def test_percentiles_by_nearest_rank() -> None:
    assert percentiles([float(v) for v in range(1, 101)]) == {"p50": 50.0, "p99": 99.0, "max": 100.0}
    assert percentiles([]) == {"p50": None, "p99": None, "max": None}


def test_each_group_is_done_when_its_last_account_was_placed() -> None:
    members = [Member(f"m{i}", "k", "s", "p", "1000", f"g{i % 3 + 1}") for i in range(6)]
    placed = {"m0": 1200.0, "m3": 2500.4, "m1": 900.0}  # g2's m4 not placed; g3 none at all
    assert placed_by_group(members, placed) == {"g1": 2.5, "g2": 0.9, "g3": None}


def test_room_is_what_the_signal_needs_at_most_what_a_worker_sends_in_each_window() -> None:
    assert room_needed(25, 2, 20) == (50, 50)
    assert room_needed(250, 2, 20) == (480, 500)
    assert room_needed(2500, 2, 20) == (480, 1440)
    assert room_needed(250, 2, 0) == (500, 500)  # a worker alone on its address: BloFin's own limits
    assert room_needed(2500, 2, 0) == (500, 1500)


def test_endpoints_of_the_worker_ips_only() -> None:
    log = ('INFO:     127.0.0.2:5000 - "POST /api/v1/trade/order HTTP/1.1" 200 OK\n'
           'INFO:     127.0.0.1:5001 - "GET /sim/state?api_key=k HTTP/1.1" 200 OK\n'
           'INFO:     127.0.0.3:5002 - "GET /api/v1/account/balance?x=1 HTTP/1.1" 200 OK\n')
    assert endpoints(log, {"127.0.0.2", "127.0.0.3"}) == Counter(
        {"POST /api/v1/trade/order": 1, "GET /api/v1/account/balance": 1})


def test_an_ip_sends_1500_in_3_minutes_then_300_a_minute() -> None:
    assert minutes_to_send(500) == 1.0
    assert minutes_to_send(1500) == 3.0
    assert minutes_to_send(2100) == 5.0


def test_the_model_at_two_requests_and_no_idle_reads() -> None:
    model = fleet_model(2.0, 0.0, 2.0, worker_cpu_ms=10.0, postgres_cpu_ms=5.0,
                        warm_requests_per_account=None)
    assert model["per_ip_budget"]["accounts_per_ip"] == 250
    assert model["ips_needed"] == 40
    assert model["worker_cores_needed"] == 50.0  # 10,000 x 10 ms within 2 s
    assert model["accounts_per_worker_within"] == 200
    assert model["workers_needed"] == 50
    idle = fleet_model(2.0, 4.0, 2.0, worker_cpu_ms=10.0, postgres_cpu_ms=5.0, warm_requests_per_account=8.0)
    assert idle["per_ip_budget"]["accounts_per_ip"] == 68  # 1,500 / (2 + 5 x 4): the 5-minute window
    assert idle["ips_needed"] == 148
    assert idle["warm_up_per_ip"]["requests"] == 68 * 8  # ceil(10,000 / 148 IPs) accounts x 8


def test_the_costliest_statements_count_every_account_schemas_copy_as_one() -> None:
    """`--statements`: a throwaway cluster of its own (the bench restarts it with pg_stat_statements);
    the same statement on two account schemas is one line, its calls summed, per account-signal."""
    environ = {k: v for k, v in os.environ.items() if k != postgres.URL_VARIABLE}
    with postgres.test_database(environ, lambda _: None) as url:
        assert url is not None, "PostgreSQL is installed by the test setup"
        postgres_ready(url, 60, statements=True)
        with psycopg.connect(conninfo(url), autocommit=True) as conn:
            for schema in ("account_m-1", "account_m2"):
                conn.execute(f'CREATE SCHEMA "{schema}"')
                conn.execute(f'CREATE TABLE "{schema}".orders (id int primary key)')
            statements_reset(url)
            select = sql.SQL("SELECT id FROM {}.orders WHERE id = %s")
            for schema in ("account_m-1", "account_m2", "account_m2"):
                conn.execute(select.format(sql.Identifier(schema)), (7,))
        top = top_statements(url, 5, per=2)
    folded = [line for line in top if "orders" in line["statement"]]
    assert [line["statement"] for line in folded] == ["SELECT id FROM S.orders WHERE id = $1"], top
    assert folded[0]["calls"] == 1.5  # 3 calls over 2 account-signals


def test_a_shared_buffers_size_is_taken_only_as_postgresql_writes_one() -> None:
    """It goes into ALTER SYSTEM as text: anything but a plain size is refused before that."""
    assert [buffers_size(size) for size in ("1GB", "512MB", "65536kB")] == ["1GB", "512MB", "65536kB"]
    for wrong in ("0MB", "1 GB", "1gb", "1GB'; SELECT 1; --", "", "1TB", "-1MB"):
        with pytest.raises(argparse.ArgumentTypeError):
            buffers_size(wrong)
