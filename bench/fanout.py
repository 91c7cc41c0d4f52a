"""The fleet (issue #19): one market signal fanned out to N simulated members' accounts.

    .venv/bin/python bench/fanout.py --accounts 1000 --workers 4 [--concurrency 32] [--statements 30]
        [--signals 2] [--keep]

What runs, every part its own process as in production, all on this machine's loopback:
- a throwaway PostgreSQL (`tools/postgres.py`; its max_connections raised for the fleet's pools);
- the BloFin simulator (`python -m hit_server.blofin_sim`, BloFin's real limits: 500 requests a minute
  and 1,500 in 5 minutes per IP, 30 trade requests per 10 s per key) serving N accounts with distinct
  keys and varied balances;
- the N accounts in the registry (the journal's `accounts` table, keys sealed with the master key the
  processes get), in egress groups g1..gW round-robin;
- the API server (`python -m hit_server`, FLEET on) and W workers (`python -m hit_server worker`),
  worker i trading group g<i> from 127.0.0.<i+1>: the simulator sees W distinct IPs.

Measured:
- `warm_up`: seconds until every worker logged ready (each builds all its accounts at start), then
  until every account's private stream is logged in at the simulator (BloFin lets an IP open one
  connection a second, so they trail the readiness) and its first read of the account has followed,
  then until every worker has learned its accounts' leverages (read with its IP's spare budget), and
  what all that sent per IP (requests, the peaks of BloFin's windows, 429s);
- `waited_for_ip_budget_s`: BloFin counts requests over a minute and 5 minutes per IP, so the warm-up
  spends the signal's budget; the signal is posted once the simulator's tallies show room for it;
- `signal`: one market signal with a stop and 3 take profits. From the POST (wall clock in ms on both
  sides, one machine), per account: its entry created at the simulator (`entry_ms`) and its job
  answered `placed` (`fanout_jobs.updated_at`, `placed_ms`): p50/p99/max, and when the last one was;
  the accounts' answers by status with the reasons; requests per IP and per account (trade-limited,
  per key) during the signal; 429s, suspended IPs, accounts over the trade limit, duplicate entries;
  PostgreSQL's transactions, connections opened, and pages found in its shared buffers or read in, per
  account-signal, counted until `--settle` seconds after the last answer (`postgres_per_account_signal`:
  the accounts' monitor passes after their fills, which wait until no job runs, fall in those seconds;
  `--shared-buffers` sets PostgreSQL's buffers for the run);
- `cpu_ms_per_account_signal`: each process's CPU time from the POST to the last answer, over the
  accounts (workers, simulator, PostgreSQL's server processes, the API server), with the machine's load
  and its speed meanwhile (`signal.machine_speed`: steps of a fixed Python loop per CPU microsecond, run
  at the lowest priority; this virtual machine's speed swings up to 1.5x, and every process's CPU with
  it);
- `model`: from those figures, the fleet needed for 10,000 accounts in under 2 s (IPs, workers, cores);
- with `--signals N`: `later_signals`, the same figures for N-1 more signals, each on another symbol,
  posted `--between` seconds after the previous one's last answer (once the IPs have room). The first
  signal after the workers' start meets cold caches in PostgreSQL (each connection learns the account
  tables it touches) and brand-new accounts' empty tables; a later one is what every other signal of a
  running fleet meets;
- with `--statements N`: `postgres_statements_per_account_signal`, PostgreSQL's N costliest statements
  during the signal and the `--settle` seconds after (pg_stat_statements, loaded into the throwaway
  cluster): calls, planning and execution ms per account-signal, each account schema's copies summed.

Prints ONE JSON object; progress goes to stderr. Everything started is stopped, and the work directory
deleted (`--keep`: kept, with every process's log), whatever happens; each phase has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from pydantic import SecretStr
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # tools/postgres.py, run as a script

import postgres

from hit_server.accounts.models import AccountCreate
from hit_server.accounts.store import AccountStore
from hit_server.blofin_sim.engine import DEFAULT_LEVERAGE as SIM_LEVERAGE
from hit_server.fleet.queue import conninfo
from hit_server.fleet.tables import FANOUT_JOBS
from hit_server.fleet.worker import IP_PER_5_MINUTES, IP_PER_MINUTE
from hit_server.journal.db import Database
from hit_server.testing import clean_env, free_port, paper_settings
from hit_server.trading import ids

SYMBOL = "ETH-USDT"
PER_IP_MINUTE = 500  # BloFin's limits, as the simulator applies them by default
PER_IP_5MIN = 1500
TRADE_PER_KEY_10S = 30
READY = "Fleet worker for egress group {group} ready"
LEARNED = "Fleet worker for egress group {group} learned the leverages"
ACTIVE = "Fleet worker is the active one of egress group {group} "
STREAM_SEED_S = 5.0  # after the last private stream is up: its account's first reads follow
ACCOUNT_READY = "Fleet: account "
REGISTER_AT_ONCE = 16
STOP_WAIT_S = 20.0


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---- pure helpers --------------------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p99 and max of `values` (nearest rank), rounded to 0.1."""
    if not values:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))], 1)

    return {"p50": rank(0.5), "p99": rank(0.99), "max": round(ordered[-1], 1)}


def entry_ids(client_ids: list[str], signal_id: str) -> list[str]:
    """The entries among an account's clientOrderIds for `signal_id`: the prefix, `e` and a number."""
    prefix = ids.signal_prefix(signal_id) + "e"
    return [c for c in client_ids if c.startswith(prefix) and c[len(prefix):].isdigit()]


def room_needed(accounts_per_ip: int, requests_per_account: float, ip_reserve: int) -> tuple[int, int]:
    """The requests one IP must have free in BloFin's minute and 5-minute windows for one signal to go
    out at once: what it needs, at most what a worker lets out in each window (`fleet/worker.py`, less
    its `--ip-reserve`)."""
    need = math.ceil(accounts_per_ip * requests_per_account)
    return min(need, IP_PER_MINUTE - ip_reserve), min(need, IP_PER_5_MINUTES - 3 * ip_reserve)


ACCESS_LINE = re.compile(r'(127\.0\.0\.\d+):\d+ - "([A-Z]+) ([^? ]+)')


def endpoints(log_text: str, ips: set[str]) -> Counter[str]:
    """Requests by method and path in a piece of the simulator's access log, from `ips` only."""
    found: Counter[str] = Counter()
    for match in ACCESS_LINE.finditer(log_text):
        if match[1] in ips:
            found[f"{match[2]} {match[3]}"] += 1
    return found


def per_account(counts: Counter[str], accounts: int) -> dict[str, float]:
    return {k: round(v / accounts, 2) for k, v in counts.most_common()}


def tally_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Requests and refusals of each client (IP or key) between two views of the simulator's limits."""
    out = {}
    for name, now in after.items():
        was = before.get(name, {})
        out[name] = {"requests": now["requests"] - was.get("requests", 0),
                     "refused": now["refused"] - was.get("refused", 0)}
    return out


def minutes_to_send(requests: float) -> float:
    """The least minutes one IP needs to send `requests` within BloFin's limits: 500 a minute up to
    the 5-minute window's 1,500 (3 minutes), then the 5-minute window's 300 a minute."""
    if requests <= PER_IP_5MIN:
        return requests / PER_IP_MINUTE
    return PER_IP_5MIN / PER_IP_MINUTE + (requests - PER_IP_5MIN) / (PER_IP_5MIN / 5)


def fleet_model(
    requests_per_account_signal: float, idle_requests_per_account_minute: float,
    trade_limited_per_account_signal: float, worker_cpu_ms: float, postgres_cpu_ms: float,
    warm_requests_per_account: float | None, accounts: int = 10_000, seconds: float = 2.0,
) -> dict[str, Any]:
    """The fleet for `accounts` accounts' signal within `seconds`, from the measured costs.

    IPs: with A accounts on an IP, one signal and the accounts' background reads must fit BloFin's
    minute (A x (signal + idle a minute) <= 500; a 2-s burst is inside one minute, whatever the speed)
    and its 5 minutes (A x (signal + 5 x idle a minute) <= 1,500, one signal per 5 minutes). Cores:
    the workers' and PostgreSQL's CPU per account-signal times the accounts, within `seconds` (the
    simulator is the exchange, not ours; the API server does one fan-out per signal). One worker
    process is one event loop: at most one core."""
    signal, idle = requests_per_account_signal, idle_requests_per_account_minute
    by_minute = PER_IP_MINUTE / (signal + idle) if signal + idle else math.inf
    by_5min = PER_IP_5MIN / (signal + 5 * idle) if signal + 5 * idle else math.inf
    per_ip = math.floor(min(by_minute, by_5min))
    ips = math.ceil(accounts / per_ip) if per_ip else None
    per_worker = math.floor(seconds * 1000 / worker_cpu_ms) if worker_cpu_ms > 0 else None
    workers = math.ceil(accounts / per_worker) if per_worker else None
    model: dict[str, Any] = {
        "for": f"{accounts:,} accounts, every one placed within {seconds:g} s of the signal",
        "requests_per_account_signal": round(signal, 2),
        "idle_requests_per_account_minute": round(idle, 2),
        "trade_limited_per_account_signal": round(trade_limited_per_account_signal, 2),
        "per_ip_budget": {
            "per_minute": PER_IP_MINUTE, "per_5_minutes": PER_IP_5MIN,
            "accounts_per_ip": per_ip,
            "accounts_per_ip_if_2_requests_and_no_idle_reads": PER_IP_MINUTE // 2,
            "meaning": (f"one IP carries at most {per_ip} accounts: {signal:.2f} requests per account "
                        f"for the signal plus {idle:.2f} a minute while idle must fit {PER_IP_MINUTE} a "
                        f"minute and {PER_IP_5MIN} in 5 minutes (at 2 requests and no idle reads: "
                        f"{PER_IP_MINUTE // 2})"),
        },
        "trade_limit_per_key": f"{TRADE_PER_KEY_10S} per 10 s: {trade_limited_per_account_signal:.2f} per "
                               "signal, far under it",
        "cpu_ms_per_account_signal": {
            "workers": round(worker_cpu_ms, 2), "postgres": round(postgres_cpu_ms, 2),
        },
        "ips_needed": ips,
        "worker_cores_needed": round(accounts * worker_cpu_ms / 1000 / seconds, 1),
        "postgres_cores_needed": round(accounts * postgres_cpu_ms / 1000 / seconds, 1),
        "accounts_per_worker_within": per_worker,
        "workers_needed": max(workers or 0, ips or 0),
    }
    if warm_requests_per_account and ips:
        requests = math.ceil(accounts / ips) * warm_requests_per_account
        model["warm_up_per_ip"] = {
            "requests_per_account": round(warm_requests_per_account, 2),
            "requests": round(requests),
            "minutes_at_least": round(minutes_to_send(requests), 1),
        }
    return model


def code_version() -> str:
    """The commit measured, and the files of the trading path changed in the work tree, if any."""
    root = Path(__file__).resolve().parents[1]

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=root, capture_output=True, text=True,  # noqa: S603, S607
                              check=False, timeout=30)
        return done.stdout

    changed = [line[3:] for line in git("status", "--porcelain", "trading-server/src").splitlines()]
    head = git("rev-parse", "--short", "HEAD").strip()
    return f"{head} + uncommitted: {', '.join(changed)}" if changed else head


# ---- processes -----------------------------------------------------------------------------------------


def proc_cpu(pid: int, *, children: bool = False) -> float:
    """CPU seconds (user + system) of process `pid` so far; with `children`, those of its children that
    ended (and were waited for) too. 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(entry.name))
    return found


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


# A fixed piece of Python run at the lowest priority while a signal is carried out: how many of its
# steps a CPU microsecond ran (`machine_speed`). On this virtual machine the same loop runs up to 1.5x
# faster or slower from one second to the next (a neighbour's load), and every process's CPU per
# account-signal swings with it: the figure tells a slow run from a slow change. At nice 19 it takes ~1.5%
# of a busy machine.
SPEED_PROBE = """
import os, signal, sys, time
os.nice(19)
chunks, began = 0, time.process_time()
def report(*_):
    print(chunks, time.process_time() - began, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, report)
while True:
    total = 0
    for step in range(10_000):
        total += step
    chunks += 1
"""
PROBE_STEPS = 10_000


class SpeedProbe:
    """SPEED_PROBE in a process of its own, from `start()` to `stop()` (its steps per CPU microsecond, None
    if it did not run long enough to tell)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SPEED_PROBE],  # noqa: S603 - fixed code
                                     stdout=subprocess.PIPE, text=True)

    def stop(self) -> float | None:
        if self.proc is None:
            return None
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            return None
        finally:
            self.proc = None
        try:
            chunks, seconds = int(out.split()[0]), float(out.split()[1])
        except (ValueError, IndexError):
            return None
        return round(chunks * PROBE_STEPS / (seconds * 1e6), 2) if seconds > 0.01 else None


LEASE_LOST_EXIT = 75  # a worker that lost its egress group's lease exits so, to be started again


@dataclass
class Processes:
    """The subprocesses this bench started; `stop_all` ends each of them by its own id. Like a process
    supervisor, `check` starts again a worker that exited with LEASE_LOST_EXIT (up to `restarts` times
    each) and counts it in `starts`."""

    restarts: int = 3
    started: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    specs: dict[str, tuple[list[str], dict[str, str], Path]] = field(default_factory=dict)
    starts: Counter[str] = field(default_factory=Counter)
    exits: list[str] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as sink:
            proc = subprocess.Popen(  # noqa: S603 - our own modules, fixed arguments
                [sys.executable, *argv], env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=log.parent,
            )
        self.started[name] = proc
        self.specs[name] = (argv, env, log)
        self.starts[name] += 1
        return proc

    def check(self) -> None:
        for name, proc in list(self.started.items()):
            if proc.poll() is None:
                continue
            if proc.returncode == LEASE_LOST_EXIT and self.starts[name] <= self.restarts:
                stamp = time.strftime("%H:%M:%S")
                self.exits.append(f"{stamp} {name} exited {proc.returncode}: started again")
                say(self.exits[-1])
                self.start(name, *self.specs[name])
                continue
            raise SystemExit(f"{name} exited with {proc.returncode} (see its log)")

    def stop_all(self) -> None:
        """The workers and the API server first, then the simulator (so nobody logs it gone)."""
        last = [p for name, p in self.started.items() if name == "simulator"]
        for group in ([p for p in self.started.values() if p not in last], last):
            for proc in group:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_WAIT_S
            for proc in group:
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


# ---- PostgreSQL ----------------------------------------------------------------------------------------


def placed_by_group(members: list[Member], placed_ms: dict[str, float]) -> dict[str, float | None]:
    """When each egress group's last account was placed (s from the POST; None: none was)."""
    times: dict[str, list[float]] = {}
    for member in members:
        times.setdefault(member.group, [])
        if member.name in placed_ms:
            times[member.group].append(placed_ms[member.name])
    return {group: round(max(ms) / 1000, 2) if ms else None for group, ms in sorted(times.items())}


def buffers_size(text: str) -> str:
    """A shared_buffers size as PostgreSQL writes one (`512MB`, `1GB`), checked: ALTER SYSTEM takes text."""
    if re.fullmatch(r"[1-9][0-9]{0,5}(kB|MB|GB)", text) is None:
        raise argparse.ArgumentTypeError("a size such as 512MB or 1GB")
    return text


def postgres_ready(url: str, max_connections: int, *, statements: bool = False,
                   shared_buffers: str | None = None) -> Path:
    """Raise the throwaway cluster's max_connections to `max_connections` (tools/postgres.py sets 50; the
    API server and each worker keep SQLAlchemy's pool of up to 15 and the queue's of 4), with
    `statements` load pg_stat_statements, with `shared_buffers` set PostgreSQL's buffers (its default is
    128MB), and restart it. Returns its data directory."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        current = int(conn.execute("SHOW max_connections").fetchone()[0])  # type: ignore[index]
        data = Path(str(conn.execute("SHOW data_directory").fetchone()[0]))  # type: ignore[index]
        if current >= max_connections and not statements and shared_buffers is None:
            return data
        conn.execute(f"ALTER SYSTEM SET max_connections = {max(current, int(max_connections))}")
        if shared_buffers is not None:
            conn.execute(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'")
        if statements:
            conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    binaries = postgres.find_binaries()
    if binaries is None:
        raise SystemExit("PostgreSQL's pg_ctl is not found: cannot raise max_connections")
    is_root = os.geteuid() == 0
    restart = [binaries.program("pg_ctl"), "restart", "--pgdata", str(data), "--mode", "fast", "--wait",
               "--log", str(data.parent / "server.log")]
    command = postgres.as_server_user(restart, is_root=is_root)
    subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=data.parent)  # noqa: S603
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        now = conn.execute("SHOW max_connections").fetchone()[0]  # type: ignore[index]
        if statements:  # its settings are known once it is loaded
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
            conn.execute("SELECT pg_reload_conf()")
        buffers = conn.execute("SHOW shared_buffers").fetchone()[0]  # type: ignore[index]
    say(f"PostgreSQL max_connections {current} -> {now}, shared_buffers {buffers}"
        + (", pg_stat_statements on" if statements else ""))
    return data


def statements_reset(url: str) -> None:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


def top_statements(url: str, count: int, per: int) -> list[dict[str, Any]]:
    """The `count` statements that took PostgreSQL the most time (planning and execution) since the last
    reset, each schema's copy of a statement summed under one text (schema names replaced by `S`); calls
    and milliseconds per account-signal (`per` account-signals)."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT regexp_replace(query, '\"?account_[a-z0-9_-]+\"?\\.', 'S.', 'g') AS q,"
            " sum(calls), sum(total_plan_time), sum(total_exec_time), sum(rows)"
            " FROM pg_stat_statements GROUP BY q"
            " ORDER BY sum(total_plan_time) + sum(total_exec_time) DESC LIMIT %s", (count,),
        ).fetchall()
    return [{"statement": " ".join(str(q).split())[:240], "calls": round(float(calls) / per, 2),
             "plan_ms": round(float(plan) / per, 4), "exec_ms": round(float(exe) / per, 4),
             "rows": round(float(n) / per, 2)} for q, calls, plan, exe, n in rows]


def postgres_activity(url: str) -> dict[str, int]:
    """The fleet database's transactions and connections opened so far, and its pages found in
    PostgreSQL's shared buffers and read from outside them (pg_stat_database: a backend reports its
    counts when its transaction ends, at most once a second, so read a few seconds after)."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        row = conn.execute("SELECT xact_commit + xact_rollback, sessions, blks_hit, blks_read"
                           " FROM pg_stat_database WHERE datname = current_database()").fetchone()
    assert row is not None  # noqa: S101 - the database we are connected to has its row
    return {"transactions": int(row[0]), "connections_opened": int(row[1]), "pages_in_buffers": int(row[2]),
            "pages_read_in": int(row[3])}


def postgres_cpu(data: Path) -> float:
    """CPU seconds of the cluster: the postmaster, its live children and those that ended."""
    try:
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return proc_cpu(postmaster, children=True) + sum(proc_cpu(pid) for pid in children_of(postmaster))


# ---- the fleet -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    name: str
    api_key: str
    api_secret: str
    passphrase: str
    balance: str
    group: str


def make_members(count: int, workers: int) -> list[Member]:
    """`count` accounts with distinct made-up keys, balances from 1,000 to ~20,000 USDT, in groups
    g1..g<workers> round-robin."""
    return [
        Member(f"m{i:05d}", f"fleet-{i}-{secrets.token_hex(8)}", secrets.token_hex(16), secrets.token_hex(8),
               str(1000 + 97 * (i % 200)), f"g{i % workers + 1}")
        for i in range(count)
    ]


async def register(url: str, workdir: Path, master_key: str, members: list[Member]) -> None:
    settings = paper_settings(workdir, database_url=url, fleet=True, hit_master_key=SecretStr(master_key))
    db = Database(url)
    try:
        await db.create_schema()
        store = AccountStore(db, settings)
        gate = asyncio.Semaphore(REGISTER_AT_ONCE)

        async def add(member: Member) -> None:
            async with gate:
                await store.add(AccountCreate.model_validate({
                    "name": member.name, "api_key": member.api_key, "api_secret": member.api_secret,
                    "passphrase": member.passphrase, "egress_group": member.group,
                }))

        await asyncio.gather(*(add(m) for m in members))
    finally:
        await db.dispose()


async def until(condition: Callable[[], Any], what: str, within: float, procs: Processes,
                every: float = 0.2, progress: Callable[[], str] | None = None) -> Any:
    """Poll `condition` (sync or async) until it is truthy; SystemExit after `within` s or when one of
    our processes died. `progress` is said every 15 s."""
    deadline = time.monotonic() + within
    next_word = time.monotonic() + 15
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        procs.check()
        if time.monotonic() > deadline:
            raise SystemExit(f"not within {within:g} s: {what}")
        if progress is not None and time.monotonic() > next_word:
            say(f"... {what}: {progress()}")
            next_word += 15
        await asyncio.sleep(every)


def signal_body(signal_id: str, price: Decimal, symbol: str = SYMBOL) -> dict[str, Any]:
    """A market signal (no entry price) with a stop 3% under the mark and 3 take profits."""
    return {
        "signal_id": signal_id, "symbol": symbol, "side": "long", "entries": [],
        "stop_loss": str(price * Decimal("0.97")),
        "take_profits": [str(price * Decimal(f)) for f in ("1.02", "1.04", "1.06")],
    }


@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path
    url: str
    pg_data: Path
    procs: Processes = field(default_factory=Processes)
    result: dict[str, Any] = field(default_factory=dict)
    idle_cpu_per_s: dict[str, float] = field(default_factory=dict)

    @property
    def groups(self) -> dict[str, str]:
        return {f"g{i}": f"127.0.0.{i + 1}" for i in range(1, self.args.workers + 1)}

    async def run(self) -> None:
        args = self.args
        members = make_members(args.accounts, args.workers)
        master_key = base64.b64encode(secrets.token_bytes(32)).decode()
        default_keys = (f"bench-{secrets.token_hex(8)}", secrets.token_hex(16), secrets.token_hex(8))
        api_key = secrets.token_hex(20)
        sim_port, api_port = free_port(), free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        self.result.update({
            "benchmark": "one signal fanned out to a fleet of simulated BloFin accounts",
            "accounts": args.accounts, "workers": args.workers, "worker_concurrency": args.concurrency,
            "plan_leverage": args.plan_leverage, "sim_account_leverage": SIM_LEVERAGE,
            "ip_reserve": args.ip_reserve, "postgres_shared_buffers": args.shared_buffers or "its default",
            "cpu_count": os.cpu_count(), "load_at_start": load(), "code": code_version(),
        })

        say(f"simulator on {sim_url} with {args.accounts} accounts")
        self.procs.start("simulator", [
            "-m", "hit_server.blofin_sim", "--host", "127.0.0.1", "--port", str(sim_port),
            "--api-key", default_keys[0], "--api-secret", default_keys[1], "--passphrase", default_keys[2],
        ], clean_env(), self.workdir / "simulator.log")
        async with httpx.AsyncClient(base_url=sim_url, timeout=120) as sim:
            await until(lambda: self._answers(sim, "/sim/accounts"), "the simulator answers", 60, self.procs)
            rows = [{"api_key": m.api_key, "api_secret": m.api_secret, "passphrase": m.passphrase,
                     "balance": m.balance} for m in members]
            added = await sim.post("/sim/accounts", json={"accounts": rows})
            added.raise_for_status()
            say(f"simulator: {added.json()['data']}")

            began = time.monotonic()
            await asyncio.wait_for(register(self.url, self.workdir, master_key, members), args.phase_deadline)
            self.result["registry_s"] = round(time.monotonic() - began, 1)
            say(f"registry: {args.accounts} accounts in {self.result['registry_s']} s")

            env = clean_env(
                TRADING_MODE="paper", FLEET="true", DATABASE_URL=self.url, BLOFIN_BASE_URL=sim_url,
                BLOFIN_API_KEY=default_keys[0], BLOFIN_API_SECRET=default_keys[1],
                BLOFIN_PASSPHRASE=default_keys[2], HIT_MASTER_KEY=master_key, API_KEYS=api_key,
                HOST="127.0.0.1", RATE_LIMIT_PER_MINUTE="1000000", LOG_LEVEL="INFO",
                DEFAULT_LEVERAGE=str(args.plan_leverage),
            )
            self.procs.start("api server", ["-m", "hit_server"], self._env(env, "api", PORT=str(api_port)),
                             self.workdir / "api" / "out.log")
            warm_began = time.monotonic()
            warm_cpu0 = machine_busy()
            logs = {}
            for group, address in self.groups.items():
                logs[group] = self.workdir / group / "out.log"
                self.procs.start(f"worker {group}", [
                    "-m", "hit_server", "worker", "--egress", group, "--source-address", address,
                    "--concurrency", str(args.concurrency), "--ip-reserve", str(args.ip_reserve),
                ], self._env(env, group), logs[group])
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{api_port}", headers={"X-API-Key": api_key}, timeout=60
            ) as api:
                await until(lambda: self._answers(api, "/health"), "the API server healthy", 120, self.procs)
                await self._warm_up(sim, logs, warm_began, warm_cpu0)
                await self._wait_for_room(sim)
                await self._idle(sim)
                await self._signal(sim, api, members, SYMBOL, self.result)
                for symbol in await self._later_symbols(sim):
                    say(f"next signal on {symbol} in {args.between:g} s (the monitors' passes after the "
                        "last one run meanwhile), once the IPs have room")
                    await asyncio.sleep(args.between)
                    await self._wait_for_room(sim)
                    later: dict[str, Any] = {"symbol": symbol}
                    self.result.setdefault("later_signals", []).append(later)
                    await self._signal(sim, api, members, symbol, later)

    def _env(self, base: dict[str, str], name: str, **more: str) -> dict[str, str]:
        (self.workdir / name).mkdir(exist_ok=True)
        return {**base, "LOG_DIR": str(self.workdir / name / "logs"), "DATA_DIR": str(self.workdir / name),
                **more}

    @staticmethod
    async def _answers(http: httpx.AsyncClient, path: str) -> bool:
        try:
            return (await http.get(path)).status_code == 200
        except httpx.TransportError:
            return False

    async def _limits(self, sim: httpx.AsyncClient) -> dict[str, Any]:
        reply = await sim.get("/sim/state")
        reply.raise_for_status()
        limits: dict[str, Any] = reply.json()["data"]["limits"]
        return limits

    def _ip_line(self, limits: dict[str, Any]) -> str:
        return ", ".join(
            f"{ip}: {v['requests']} req (1 min {v['lastMinute']}, 5 min {v['last5Minutes']}, "
            f"429 {v['refused']})"
            for ip, v in limits["ips"].items() if ip in self.groups.values()
        )

    async def _warm_up(self, sim: httpx.AsyncClient, logs: dict[str, Path], began: float,
                       cpu0: tuple[float, float]) -> None:
        ready_at: dict[str, float] = {}
        seen: dict[str, int] = {}
        last_limits: dict[str, Any] = {"ips": {}}

        async def all_ready() -> bool:
            """Every worker ready, or its IP suspended (it can't be ready within BloFin's hour)."""
            nonlocal last_limits
            last_limits = await self._limits(sim)
            for group, log in logs.items():
                text = log.read_text(errors="replace") if log.exists() else ""
                seen[group] = text.count(ACCOUNT_READY)
                starts = self.procs.starts[f"worker {group}"]
                # its latest process is ready: the log is appended to across restarts, and a process
                # that lost its lease before it was ready never said so
                latest = text.rfind(ACTIVE.format(group=group))
                if group not in ready_at and latest >= 0 and text.rfind(READY.format(group=group)) > latest:
                    ready_at[group] = time.monotonic() - began
                    say(f"worker {group} ready after {ready_at[group]:.1f} s (start {starts})")
            suspended = {g for g, ip in self.groups.items() if ip in last_limits["suspendedIps"]}
            return all(group in ready_at or group in suspended for group in logs)

        per_worker = math.ceil(self.args.accounts / self.args.workers)
        within = self.args.warm_deadline or 240 + 2.0 * per_worker
        await until(all_ready, "every worker ready", within, self.procs, every=0.5,
                    progress=lambda: f"accounts ready {seen}; {self._ip_line(last_limits)}")
        streams_at = await self._streams_up(sim, per_worker, began)
        learned_at = await self._leverages_learned(logs, began)
        busy1 = machine_busy()
        limits = await self._limits(sim)
        if limits["suspendedIps"]:
            say(f"suspended IPs: {limits['suspendedIps']}: their workers are not waited for")
        ips = {ip: v for ip, v in limits["ips"].items() if ip in self.groups.values()}
        warm_requests = sum(v["requests"] for v in ips.values())
        errors = sum((log.read_text(errors="replace")).count("could not be started") for log in logs.values())
        self.result["warm_up"] = {
            "seconds_until_all_ready": round(max(ready_at.values()), 1) if ready_at else None,
            "seconds_until_streams_up": streams_at,
            "seconds_until_leverages_learned": learned_at,
            "groups_not_ready": sorted(set(logs) - set(ready_at)),
            "suspended_ips": limits["suspendedIps"],
            "seconds_by_group": {g: round(s, 1) for g, s in sorted(ready_at.items())},
            "accounts_not_started": errors,
            "worker_restarts": list(self.procs.exits),
            "requests_per_account": round(warm_requests / self.args.accounts, 2),
            "requests_per_account_by_endpoint": per_account(
                endpoints(self._sim_log_since(0), set(self.groups.values())), self.args.accounts),
            "per_ip": {ip: {k: v[k] for k in ("requests", "refused", "peakPerMinute", "peakPer5Minutes",
                                              "suspensions", "suspendedUntilMs")} for ip, v in ips.items()},
            "machine_busy_cores": round((busy1[0] - cpu0[0]) / max(1e-9, busy1[1] - cpu0[1])
                                        * (os.cpu_count() or 1), 2),
            "load": load(),
        }
        say(f"warm-up: {self.result['warm_up']}")

    async def _streams_up(self, sim: httpx.AsyncClient, per_worker: int, began: float) -> float | None:
        """Seconds from the start until every account's private stream is logged in at the simulator
        and its seed (four reads, through the IP's limiter) has had STREAM_SEED_S to follow; None when
        some are still not up after `--streams-deadline` (the figures then include them as they are)."""
        counted: dict[str, int] = {}

        async def all_up() -> bool:
            reply = await sim.get("/sim/accounts")
            reply.raise_for_status()
            rows = [r for r in reply.json()["data"] if not r["default"]]
            counted["up"] = sum(1 for r in rows if r["privateStreams"] > 0)
            return bool(counted["up"] >= self.args.accounts)

        within = self.args.streams_deadline or 60 + 1.5 * per_worker
        try:
            await until(all_up, "every account's private stream logged in", within, self.procs, every=2.0,
                        progress=lambda: f"{counted.get('up', 0)} of {self.args.accounts} up")
        except SystemExit as exc:
            say(f"{exc}: going on with {counted.get('up', 0)} up")
            return None
        up_at = round(time.monotonic() - began, 1)
        say(f"every private stream up after {up_at} s")
        await asyncio.sleep(STREAM_SEED_S)
        return up_at

    async def _leverages_learned(self, logs: dict[str, Path], began: float) -> float | None:
        """Seconds from the start until every worker has learned its accounts' leverages (read with its
        IP's spare budget once it is ready); None when some have not within `--leverage-deadline`."""
        def logged() -> int:
            return sum(log.exists() and LEARNED.format(group=group) in log.read_text(errors="replace")
                       for group, log in logs.items())

        async def all_learned() -> bool:
            return logged() == len(logs)

        try:
            await until(all_learned, "every worker's leverages learned", self.args.leverage_deadline,
                        self.procs, every=2.0, progress=lambda: f"{logged()} of {len(logs)} workers")
        except SystemExit as exc:
            say(f"{exc}: going on")
            return None
        learned_at = round(time.monotonic() - began, 1)
        say(f"every worker's leverages learned after {learned_at} s")
        return learned_at

    async def _wait_for_room(self, sim: httpx.AsyncClient) -> None:
        """Until every worker's IP has room, in BloFin's minute and 5-minute windows, for the signal's
        requests (`--requests-per-account` each: the warm path's 2, the entry and the targets)."""
        per_ip = math.ceil(self.args.accounts / self.args.workers)
        minute, five = room_needed(per_ip, self.args.requests_per_account, self.args.ip_reserve)
        began = time.monotonic()
        last: dict[str, Any] = {"ips": {}}

        async def room() -> bool:
            nonlocal last
            last = await self._limits(sim)
            views = [last["ips"].get(ip, {"lastMinute": 0, "last5Minutes": 0}) for ip in self.groups.values()
                     if ip not in last["suspendedIps"]]
            return all(v["lastMinute"] + minute <= PER_IP_MINUTE and v["last5Minutes"] + five <= PER_IP_5MIN
                       for v in views)

        say(f"waiting until each IP has room for {minute} requests in a minute and {five} in 5 minutes")
        try:
            await until(room, "room in every IP's budget", self.args.room_deadline, self.procs, every=1.0,
                        progress=lambda: self._ip_line(last))
            met = True
        except SystemExit as exc:
            say(f"{exc}: posting the signal anyway")
            met = False
        waited = {"waited_for_ip_budget_s": round(time.monotonic() - began, 1), "ip_budget_room_met": met,
                  "ip_budget_room_wanted": {"per_minute": minute, "per_5_minutes": five}}
        if "signal" not in self.result:  # before the first signal (a later one's wait is its own)
            self.result.update(waited)
        else:
            self.result.setdefault("later_waits", []).append(waited)

    def _sim_log_at(self) -> int:
        return (self.workdir / "simulator.log").stat().st_size

    def _sim_log_since(self, offset: int, until: int | None = None) -> str:
        with (self.workdir / "simulator.log").open("rb") as log:
            log.seek(offset)
            return log.read(None if until is None else until - offset).decode(errors="replace")

    async def _idle(self, sim: httpx.AsyncClient) -> None:
        """What the warm fleet costs while no signal comes: CPU per process and requests per IP over
        `--idle` seconds (subtracted from the signal's CPU as its background)."""
        seconds = self.args.idle
        if seconds <= 0:
            self.idle_cpu_per_s = dict.fromkeys(self._cpu(), 0.0)
            return
        say(f"measuring the idle fleet for {seconds:g} s")
        offset, before = self._sim_log_at(), await self._limits(sim)
        cpu0, began = self._cpu(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, wall, after = self._cpu(), time.monotonic() - began, await self._limits(sim)
        self.idle_cpu_per_s = {name: (cpu1[name] - cpu0[name]) / wall for name in cpu0}
        worker_ips = set(self.groups.values())
        delta = tally_delta(before["ips"], after["ips"])
        self.result["idle"] = {
            "seconds": round(wall, 1),
            "requests_per_ip_per_minute": {ip: round(d["requests"] * 60 / wall, 1)
                                           for ip, d in delta.items() if ip in worker_ips},
            "requests_by_endpoint": dict(endpoints(self._sim_log_since(offset), worker_ips).most_common()),
            "cpu_ms_per_account_per_s": {name: round(v * 1000 / self.args.accounts, 3)
                                         for name, v in self.idle_cpu_per_s.items()},
            "load": load(),
        }
        say(f"idle: {self.result['idle']}")

    async def _later_symbols(self, sim: httpx.AsyncClient) -> list[str]:
        """The symbols of the signals after the first (`--signals`): others than the first's, by name."""
        prices = (await sim.get("/sim/state")).json()["data"]["prices"]
        return sorted(symbol for symbol in prices if symbol != SYMBOL)[: self.args.signals - 1]

    async def _signal(self, sim: httpx.AsyncClient, api: httpx.AsyncClient, members: list[Member],
                      symbol: str, into: dict[str, Any]) -> None:
        """Post one signal on `symbol` and write what it took into `into` (the result itself for the
        first; the later ones' own entries)."""
        state = (await sim.get("/sim/state")).json()["data"]
        price = Decimal(state["prices"][symbol])
        signal_id = f"fanout-bench-{secrets.token_hex(6)}"
        before = await self._limits(sim)
        log_before = self._sim_log_at()
        cpu_before = self._cpu()
        activity_before = postgres_activity(self.url)
        if self.args.statements:
            statements_reset(self.url)
        busy0 = machine_busy()
        load0 = load()
        posted_ms = time.time() * 1000
        reply = await api.post("/api/v1/signals", json=signal_body(signal_id, price, symbol))
        answered_ms = time.time() * 1000 - posted_ms
        if reply.status_code not in (200, 201):
            raise SystemExit(f"the signal was refused: {reply.status_code} {reply.text[:300]}")
        say(f"signal {signal_id} posted: the server's own account {reply.json().get('status')} in "
            f"{answered_ms:.0f} ms; waiting for every account")
        probe = SpeedProbe()
        probe.start()

        progress: dict[str, Any] = {}

        async def answered() -> bool:
            nonlocal progress
            seen = await api.get(f"/api/v1/fanouts/{signal_id}")
            if seen.status_code != 200:
                return False
            progress = seen.json()
            return bool(progress["total"] == len(members) and not progress["by_status"].get("queued"))

        within = self.args.signal_deadline or 120 + 0.2 * len(members)
        timed_out = None
        try:
            await until(answered, "every account answered", within, self.procs, every=0.1,
                        progress=lambda: str(progress.get("by_status")))
        except SystemExit as exc:
            timed_out = str(exc)
        finally:
            all_answered_s = (time.time() * 1000 - posted_ms) / 1000
            speed = probe.stop()
        cpu_after = self._cpu()
        busy1 = machine_busy()
        after = await self._limits(sim)
        log_after = self._sim_log_at()
        say(f"answered after {all_answered_s:.2f} s: {progress.get('by_status')}")
        await asyncio.sleep(self.args.settle)
        settled = await self._limits(sim)
        activity = postgres_activity(self.url)

        placed_ms = await self._placed_times(signal_id, posted_ms)
        entries = await self._entries(sim, members, signal_id, posted_ms)
        entry_times = list(entries["first_entry_ms"].values())
        ip_delta = tally_delta(before["ips"], after["ips"])
        key_delta = tally_delta(before["keys"], after["keys"])
        settled_delta = tally_delta(after["ips"], settled["ips"])
        member_keys = {m.api_key for m in members}
        worker_ips = set(self.groups.values())
        fleet_requests = sum(d["requests"] for ip, d in ip_delta.items() if ip in worker_ips)
        trade_requests = [key_delta.get(k, {"requests": 0})["requests"] for k in member_keys]
        over_limit = sorted(k for k in member_keys
                            if key_delta.get(k, {}).get("refused", 0)
                            or after["keys"].get(k, {}).get("peakPer10s", 0) > TRADE_PER_KEY_10S)
        reasons = Counter(f"{o['status']}: {o['reason']}" for o in progress.get("not_placed", []))
        cpu = {name: round((cpu_after[name] - cpu_before[name]) * 1000 / len(members), 3)
               for name in cpu_before}
        worker_cpu = sum(v for k, v in cpu.items() if k.startswith("worker"))
        net = {name: round((cpu_after[name] - cpu_before[name] - self.idle_cpu_per_s[name] * all_answered_s)
                           * 1000 / len(members), 3) for name in cpu_before}
        net_workers = sum(v for k, v in net.items() if k.startswith("worker"))
        by_endpoint = endpoints(self._sim_log_since(log_before, log_after), worker_ips)
        into["signal"] = {
            "signal_id": signal_id,
            "server_own_account": {
                "status": reply.json().get("status"), "answered_ms": round(answered_ms, 1),
            },
            "all_answered_s": round(all_answered_s, 2),
            "timed_out": timed_out,
            "by_status": progress.get("by_status"),
            "not_placed_reasons": dict(reasons.most_common(10)),
            "entry_ms": {**percentiles(entry_times), "accounts": len(entry_times)},
            "placed_ms": {**percentiles(list(placed_ms.values())), "accounts": len(placed_ms)},
            "all_entries_in_s": round(max(entry_times) / 1000, 2) if entry_times else None,
            "all_placed_in_s": round(max(placed_ms.values()) / 1000, 2) if placed_ms else None,
            # a worker done early runs its accounts' monitor passes while the others still place
            "all_placed_in_s_by_group": placed_by_group(members, placed_ms),
            "accounts_without_entry": len(members) - len(entries["first_entry_ms"]),
            "duplicate_entries": entries["duplicates"],
            "requests_per_ip": {ip: d for ip, d in ip_delta.items() if d["requests"] or d["refused"]},
            "requests_per_ip_in_the_next_s": {"seconds": self.args.settle, **{
                ip: d["requests"] for ip, d in settled_delta.items() if d["requests"]}},
            "requests_per_account_signal": round(fleet_requests / len(members), 2),
            "requests_per_account_signal_by_endpoint": per_account(by_endpoint, len(members)),
            "trade_limited_per_account": {
                "mean": round(sum(trade_requests) / len(members), 2), "max": max(trade_requests, default=0),
                "min": min(trade_requests, default=0),
            },
            "http_429s": sum(d["refused"] for d in [*ip_delta.values(), *key_delta.values()]),
            "suspended_ips": after["suspendedIps"],
            "accounts_over_trade_limit": len(over_limit),
            "ips_over_a_limit": sorted(ip for ip in worker_ips if after["ips"].get(ip, {}).get("refused", 0)),
            "peak_per_ip_minute": {ip: after["ips"].get(ip, {}).get("peakPerMinute")
                                   for ip in sorted(worker_ips)},
            "peak_per_ip_5_minutes": {ip: after["ips"].get(ip, {}).get("peakPer5Minutes")
                                      for ip in sorted(worker_ips)},
            # the signal's and the next `settle` seconds' (the monitors' passes after the fills)
            "postgres_per_account_signal": {
                name: round((activity[name] - activity_before[name]) / len(members), 2) for name in activity
            },
            "load_before_after": [load0, load()],
            "machine_busy_cores": round((busy1[0] - busy0[0]) / max(1e-9, busy1[1] - busy0[1])
                                        * (os.cpu_count() or 1), 2),
            "machine_speed": speed,
        }
        if self.args.statements:  # the signal's and the next `settle` seconds'
            into["postgres_statements_per_account_signal"] = top_statements(
                self.url, self.args.statements, len(members))
        into["cpu_ms_per_account_signal"] = {**cpu, "workers": round(worker_cpu, 3)}
        into["worker_restarts"] = list(self.procs.exits)
        into["cpu_ms_per_account_signal_net_of_idle"] = {**net, "workers": round(net_workers, 3)}
        into["target"] = {
            "all_placed_within_s": 10.0,
            "met": bool(placed_ms and len(placed_ms) == len(members)
                        and max(placed_ms.values()) <= 10_000 and not entries["duplicates"]),
        }
        # the model from the groups whose IP was not suspended when the signal came (a suspended IP's
        # accounts send nothing and would lower every figure per account)
        healthy = {g: ip for g, ip in self.groups.items() if ip not in before["suspendedIps"]}
        served = [m for m in members if m.group in healthy] or members
        warm = self.result.get("warm_up", {}).get("requests_per_account")
        idle_rates = self.result.get("idle", {}).get("requests_per_ip_per_minute", {})
        idle_per_minute = sum(rate for ip, rate in idle_rates.items() if ip in healthy.values())
        served_requests = sum(d["requests"] for ip, d in ip_delta.items() if ip in healthy.values())
        # the balance reads in the window are the accounts' background refresh (every ~15 s), not the
        # signal's: the signal's requests are the others (an idle window's rate is too bursty to subtract)
        balance_reads = endpoints(self._sim_log_since(log_before, log_after), set(healthy.values()))[
            "GET /api/v1/account/balance"]
        net_requests = served_requests - balance_reads
        served_trade = [key_delta.get(m.api_key, {"requests": 0})["requests"] for m in served]
        served_workers_cpu = sum(net[f"worker_{g}"] for g in healthy) * len(members) / len(served)
        into["signal"]["requests_per_account_signal_but_balance_reads"] = round(
            net_requests / len(served), 2)
        into["model"] = {
            "from_groups": sorted(healthy), "accounts": len(served),
            **fleet_model(net_requests / len(served), idle_per_minute / len(served),
                          sum(served_trade) / len(served), served_workers_cpu, net["postgres"], warm),
        }
        say(f"signal: {json.dumps(into['signal'])}")

    def _cpu(self) -> dict[str, float]:
        out = {name.replace(" ", "_"): proc_cpu(proc.pid) for name, proc in self.procs.started.items()}
        out["postgres"] = postgres_cpu(self.pg_data)
        return out

    async def _placed_times(self, signal_id: str, posted_ms: float) -> dict[str, float]:
        """Each account answered `placed`: ms from the POST to its fanout_jobs row's update."""
        db = Database(self.url)
        try:
            rows = await db.transaction(lambda conn: conn.execute(
                select(FANOUT_JOBS.c.account, FANOUT_JOBS.c.updated_at)
                .where(FANOUT_JOBS.c.signal_id == signal_id).where(FANOUT_JOBS.c.status == "placed")
            ).all())
        finally:
            await db.dispose()
        return {account: at.timestamp() * 1000 - posted_ms for account, at in rows}

    async def _entries(self, sim: httpx.AsyncClient, members: list[Member], signal_id: str,
                       posted_ms: float) -> dict[str, Any]:
        """Each account's entry orders at the simulator: its first one's creation (ms from the POST) and
        how many accounts hold more than one."""
        first: dict[str, float] = {}
        duplicates = 0
        gate = asyncio.Semaphore(16)

        async def one(member: Member) -> None:
            nonlocal duplicates
            async with gate:
                reply = await sim.get("/sim/state", params={"api_key": member.api_key})
            orders = reply.json()["data"]["orders"]
            found = entry_ids([o["clientOrderId"] for o in orders], signal_id)
            if len(found) > 1 or len(set(found)) != len(found):
                duplicates += 1
            times = [int(o["createTime"]) for o in orders if o["clientOrderId"] in found]
            if times:
                first[member.name] = min(times) - posted_ms

        await asyncio.gather(*(one(m) for m in members))
        return {"first_entry_ms": first, "duplicates": duplicates}


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4, help="worker processes, one egress group (IP) each")
    parser.add_argument("--concurrency", type=int, default=32, help="jobs each worker runs at once")
    parser.add_argument("--plan-leverage", type=int, default=SIM_LEVERAGE,
                        help="DEFAULT_LEVERAGE of the fleet (default: the simulated accounts' own, so no "
                             "account must set it first: members who traded before)")
    parser.add_argument("--requests-per-account", type=float, default=2.0,
                        help="the signal's requests per account the IPs must have room for before it goes")
    parser.add_argument("--warm-deadline", type=float, default=0.0,
                        help="seconds for every worker to be ready (0: 240 + 2 per account of a worker)")
    parser.add_argument("--room-deadline", type=float, default=330.0,
                        help="seconds to wait for room in the IPs' budget before the signal goes anyway")
    parser.add_argument("--signal-deadline", type=float, default=0.0,
                        help="seconds for every account to answer (0: 120 + 0.2 per account)")
    parser.add_argument("--phase-deadline", type=float, default=900.0, help="seconds for the registry")
    parser.add_argument("--streams-deadline", type=float, default=0.0,
                        help="seconds after readiness for every account's private stream to be up "
                             "(0: 60 + 1.5 per account of a worker)")
    parser.add_argument("--idle", type=float, default=10.0,
                        help="seconds of the warm fleet without a signal measured before it (its background)")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds after the last answer whose requests are counted apart")
    parser.add_argument("--leverage-deadline", type=float, default=900.0,
                        help="seconds after the streams for every worker to learn its accounts' leverages")
    parser.add_argument("--ip-reserve", type=int, default=0,
                        help="each worker's --ip-reserve (default 0: a worker's address is its own here; the "
                             "API server's account sends from 127.0.0.1)")
    parser.add_argument("--restarts", type=int, default=3,
                        help="times a worker that lost its group's lease (exit 75) is started again")
    parser.add_argument("--shared-buffers", type=buffers_size, default=None,
                        help="PostgreSQL's shared_buffers for the run, e.g. 1GB (default: its own, 128MB)")
    parser.add_argument("--statements", type=int, default=0,
                        help="N > 0: PostgreSQL's N costliest statements of the signal (pg_stat_statements)")
    parser.add_argument("--signals", type=int, default=1,
                        help="signals posted one after another, each on its own symbol (the first is the one "
                             "after the workers' start; the later ones meet every cache warm)")
    parser.add_argument("--between", type=float, default=60.0,
                        help="seconds from one signal's last answer to the next signal (then it waits for "
                             "room in the IPs' budget as well)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) and say where")
    args = parser.parse_args()
    if not 1 <= args.workers <= 250:
        parser.error("--workers: 1 to 250 (127.0.0.2 ...)")
    # SIGTERM, and SIGINT even when started in the background (where the shell ignores it), stop the
    # bench through its cleanup: every process stopped, the database and the work directory deleted
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="hit-fanout-"))
    result: dict[str, Any] = {}
    code = 0
    say(f"load average {load()} on {os.cpu_count()} cores")
    try:
        with postgres.test_database({k: v for k, v in os.environ.items() if k != postgres.URL_VARIABLE},
                                    say) as url:
            if url is None:
                raise SystemExit("no PostgreSQL could be had (see above)")
            pg_data = postgres_ready(url, 40 * (args.workers + 1) + 40, statements=args.statements > 0,
                                     shared_buffers=args.shared_buffers)
            bench = Bench(args, workdir, url, pg_data, procs=Processes(restarts=args.restarts), result=result)
            try:
                asyncio.run(bench.run())
            finally:
                bench.procs.stop_all()
    except (SystemExit, KeyboardInterrupt, Exception) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        say(f"stopped: {result['error']}")
        code = 1
    finally:
        result["load_at_end"] = load()
        if args.keep:
            say(f"logs kept in {workdir}")
            result["workdir"] = str(workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main())
