"""Issue #19 end to end: one signal fanned out to several accounts through the job queue (procrastinate
on a real PostgreSQL), traded by a worker (in this process) on the fleet simulator over loopback sockets,
each account from its own source address... as a fleet does it:

- every enabled account gets exactly one entry, with its stop on the exchange, sized from its own equity;
- a job delivered again (a requeue, a worker's retry) sends nothing new: the account's journal replays;
- a disabled account gets no job; an account whose symbol is blocked answers `rejected` with the reason;
- an operator reads the fan-out's progress and each account's trades through the API;
- workers killed with SIGKILL mid-fan-out and started again leave every account traded exactly once,
  protected, and nothing stuck on the queue (the chaos test at the end).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import insert, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from hit_server.accounts.models import AccountCreate
from hit_server.accounts.store import AccountStore
from hit_server.blofin_sim import SimConfig
from hit_server.blofin_sim import create_app as create_sim_app
from hit_server.blofin_sim.engine import DEFAULT_LEVERAGE as SIM_LEVERAGE
from hit_server.blofin_sim.faults import Fault
from hit_server.blofin_sim.loopback import serve_loopback
from hit_server.fleet.tables import FANOUT_JOBS, FANOUTS
from hit_server.fleet.worker import UNCLAIMED_AFTER_S, Worker
from hit_server.journal.db import Database, utcnow
from hit_server.server import create_app
from hit_server.settings import Settings
from hit_server.testing import BASE_URL, TEST_API_KEY, paper_settings
from hit_server.trading import ids

MASTER = "ZmFrZS1idXQtd2VsbC1mb3JtZWQtbWFzdGVyLWtleSE="
KEY, SECRET, PASSPHRASE = f"fleet-{secrets.token_hex(8)}", secrets.token_hex(16), secrets.token_hex(8)


@dataclass(frozen=True)
class Member:
    name: str
    api_key: str
    api_secret: str
    passphrase: str
    balance: str

    def sim_row(self) -> dict[str, str]:
        return {"api_key": self.api_key, "api_secret": self.api_secret, "passphrase": self.passphrase,
                "balance": self.balance}


def members(count: int) -> list[Member]:
    return [
        Member(f"m{i}", f"member-{i}-{secrets.token_hex(6)}", secrets.token_hex(16), secrets.token_hex(8),
               str(1000 * (i + 1)))
        for i in range(count)
    ]


async def until(condition: Callable[[], Any], what: str, within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {within} s: {what}")


@dataclass
class Fleet:
    http: httpx.AsyncClient  # the API server
    sim_app: Any
    settings: Settings
    members: list[Member]
    worker: Worker

    def account(self, member: Member) -> Any:
        """The simulated exchange account of `member`."""
        return self.sim_app.state.sim_state.account(member.api_key)

    def entries(self, member: Member, signal_id: str) -> list[Any]:
        prefix = ids.signal_prefix(signal_id)
        return [o for cid, o in self.account(member).orders_by_client_id.items()
                if cid.startswith(prefix) and "e" in cid[len(prefix):len(prefix) + 1]]

    async def progress(self, signal_id: str) -> dict[str, Any]:
        reply = await self.http.get(f"/api/v1/fanouts/{signal_id}")
        assert reply.status_code == 200, reply.text
        found: dict[str, Any] = reply.json()
        return found


@asynccontextmanager
async def running_fleet(
    tmp_path: Path, url: str, team: list[Member], **accounts: dict[str, Any]
) -> AsyncIterator[Fleet]:
    """The simulator (with `team`'s accounts), the API server with FLEET on, the accounts registered in
    egress group g1 (`accounts`: their settings by name), and one worker of g1, its accounts warm."""
    sim_app = create_sim_app(SimConfig(api_key=KEY, api_secret=SECRET, passphrase=PASSPHRASE))
    async with serve_loopback(sim_app) as loopback, httpx.AsyncClient(base_url=loopback.http_url) as sim_http:
        added = await sim_http.post("/sim/accounts", json={"accounts": [m.sim_row() for m in team]})
        assert added.status_code == 200, added.text
        settings = paper_settings(
            tmp_path, blofin_base_url=loopback.http_url, blofin_api_key=KEY, blofin_api_secret=SECRET,
            blofin_passphrase=PASSPHRASE, database_url=url, fleet=True, hit_master_key=SecretStr(MASTER),
        )
        db = Database(url)
        await db.create_schema()
        store = AccountStore(db, settings)
        for member in team:
            await store.add(AccountCreate.model_validate({
                "name": member.name, "api_key": member.api_key, "api_secret": member.api_secret,
                "passphrase": member.passphrase, "egress_group": "g1", **accounts.get(member.name, {}),
            }))
        await db.dispose()
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            stop = asyncio.Event()
            worker = Worker(settings, "g1", source_address="127.0.0.2", concurrency=8, on_lease_lost=stop.set)
            running = asyncio.create_task(worker.run(stop))
            try:
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
                    headers={"X-API-Key": TEST_API_KEY}, timeout=30,
                ) as http:
                    enabled = sum(1 for m in team if accounts.get(m.name, {}).get("enabled", True))
                    await until(lambda: len(worker.traders) == enabled or running.done(),
                                "the worker's accounts warm")
                    assert not running.done(), running
                    yield Fleet(http, sim_app, settings, team, worker)
            finally:
                stop.set()
                await asyncio.wait_for(running, 30)


def market_signal(signal_id: str, price: Decimal, symbol: str = "ETH-USDT") -> dict[str, Any]:
    return {
        "signal_id": signal_id, "symbol": symbol, "side": "long", "entries": [],
        "stop_loss": str(price * Decimal("0.97")),
        "take_profits": [str(price * Decimal(f)) for f in ("1.02", "1.04", "1.06")],
    }


async def test_one_signal_places_one_protected_trade_on_every_enabled_account(
    tmp_path: Path, fresh_postgres: str
) -> None:
    team = members(4)
    settings_of = {"m2": {"blocked_symbols": ["ETH-USDT"]}, "m3": {"enabled": False}}
    async with running_fleet(tmp_path, fresh_postgres, team, **settings_of) as fleet:
        price = fleet.sim_app.state.sim.price("ETH-USDT")
        reply = await fleet.http.post("/api/v1/signals", json=market_signal("fan-1", price))
        assert reply.status_code == 201, reply.text
        assert reply.json()["status"] == "placed"  # the server's own account, as before

        async def answered_of(signal_id: str) -> dict[str, Any] | None:
            seen = await fleet.progress(signal_id)
            return seen if seen["by_status"].get("queued", 0) == 0 else None

        seen = await until(lambda: answered_of("fan-1"), "every account answered")
        assert seen["total"] == 3  # m3 is disabled: no job
        assert seen["by_status"] == {"placed": 2, "rejected": 1}, seen
        assert [(o["account"], o["status"]) for o in seen["not_placed"]] == [("m2", "rejected")]
        assert "not traded by this account" in seen["not_placed"][0]["reason"]

        sizes = []
        for member in team[:2]:
            account = fleet.account(member)
            entries = fleet.entries(member, "fan-1")
            assert len(entries) == 1, (member.name, entries)
            stops = [t for t in account.live_tpsl("ETH-USDT") if t.spec.sl_trigger is not None]
            assert stops, f"{member.name}: its position has its stop"
            sizes.append(entries[0].size)
        assert sizes[1] > sizes[0]  # sized from each account's own equity (m1 holds twice m0's)
        for member in team[2:]:
            assert fleet.entries(member, "fan-1") == []

        trades = await fleet.http.get("/api/v1/trades", params={"account": "m0"})
        assert trades.status_code == 200 and [t["signal_id"] for t in trades.json()["trades"]] == ["fan-1"]
        missing = await fleet.http.get("/api/v1/trades", params={"account": "nobody"})
        assert missing.status_code == 404

        # the dashboard's Fleet page: the fan-out's progress and each account's open trades
        form = {"password": TEST_API_KEY, "next": "/dashboard/now"}
        login = await fleet.http.post("/dashboard/login", data=form)
        assert login.status_code == 303
        board = await fleet.http.get("/dashboard/fleet")
        assert board.status_code == 200, board.text
        row = board.text.split('<table id="fanouts">')[1].split("</table>")[0]
        assert "fan-1" in row and "<td>3</td><td>2</td><td>0</td>" in row  # 3 accounts, 2 placed, 0 waiting
        accounts = board.text.split('<table id="accounts">')[1].split("</table>")[0]
        assert accounts.count("<tr><td>m") == 4 and "disabled" in accounts
        assert 'href="/dashboard/fleet"' in (await fleet.http.get("/dashboard/now")).text

        # the same jobs delivered again: each account's journal replays, nothing new is sent
        queue = fleet.worker.queue
        await queue.defer([("fan-1", m.name, "g1") for m in team[:2]])

        async def drained() -> bool:
            rows = await fleet.worker.db.transaction(lambda c: c.exec_driver_sql(
                "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')").scalar())
            return rows == 0

        await until(drained, "the delivered-again jobs ran")
        for member in team[:2]:
            assert len(fleet.entries(member, "fan-1")) == 1
        assert (await fleet.progress("fan-1"))["by_status"] == {"placed": 2, "rejected": 1}

        # a job run late (its group had no worker for minutes) of a signal that gave no posted_at: its age
        # is counted from the fan-out, so it is refused as too old, never traded late
        late = fleet.settings.max_signal_age_seconds + 30
        fanned_at = utcnow() - timedelta(seconds=late)
        btc = fleet.sim_app.state.sim.price("BTC-USDT")
        await fleet.worker.db.transaction(lambda c: (
            c.execute(insert(FANOUTS).values(signal_id="late-1", symbol="BTC-USDT", accounts=1,
                                             body=market_signal("late-1", btc, "BTC-USDT"),
                                             created_at=fanned_at)),
            c.execute(insert(FANOUT_JOBS).values(signal_id="late-1", account="m0", egress_group="g1",
                                                 status="queued", attempts=0, created_at=fanned_at,
                                                 updated_at=fanned_at)),
        ))
        await queue.defer([("late-1", "m0", "g1")])
        seen = await until(lambda: answered_of("late-1"), "the late job answered")
        assert seen["by_status"] == {"rejected": 1}, seen
        assert "older than the" in seen["not_placed"][0]["reason"]
        assert fleet.entries(team[0], "late-1") == []


async def test_a_worker_learns_its_accounts_leverages_so_a_first_signal_sets_none(
    tmp_path: Path, fresh_postgres: str
) -> None:
    """Once ready, the worker reads every account's leverage on every live instrument with its IP's spare
    budget, the symbols signalled lately first. A first signal on a symbol whose leverage is already the
    plan's then sends no set-leverage (one request and one round trip less per account); one whose plan
    asks for another still sets it. Here every set-leverage is refused: m0 (plan 3x, the simulated
    accounts' own) is placed without one, m1 (plan 5x) is refused for it."""
    team = members(2)
    async with running_fleet(tmp_path, fresh_postgres, team, m0={"max_leverage": 3}) as fleet:
        worker, mode = fleet.worker, fleet.settings.margin_mode
        live = sorted(symbol for symbol, inst in worker.public.cached_instruments.items() if inst.is_live)
        assert len(live) > 20  # more than one read per account

        def learned() -> bool:
            return all(trader.service.executor.known_leverage(symbol, mode) == SIM_LEVERAGE
                       for trader in worker.traders.started() for symbol in live)

        await until(learned, "every account's leverage on every live instrument learned")
        assert len(worker.traders.started()) == 2

        recent = [("r1", "SOL-USDT"), ("r2", "XRP-USDT"), ("r3", "XRP-USDT"), ("r4", "NOPE-USDT")]
        await worker.db.transaction(lambda c: c.execute(insert(FANOUTS), [
            {"signal_id": sid, "symbol": symbol, "body": {}, "accounts": 0} for sid, symbol in recent
        ]))
        order = await worker._symbols_to_learn()
        assert order[:2] == ["XRP-USDT", "SOL-USDT"]  # the most signalled first; an unknown one never
        assert sorted(order) == live

        refused = Fault(kind="error_code", code="152002", count=100, path="/api/v1/account/set-leverage")
        fleet.sim_app.state.sim_state.faults.add(refused)
        price = fleet.sim_app.state.sim.price("ETH-USDT")
        reply = await fleet.http.post("/api/v1/signals", json=market_signal("fan-lev", price))
        assert reply.status_code == 201, reply.text
        seen = await until(lambda: answered(fleet, "fan-lev", 2), "both accounts answered")
        assert seen["by_status"].get("placed") == 1, seen
        assert [o["account"] for o in seen["not_placed"]] == ["m1"], seen
        assert "leverage" in seen["not_placed"][0]["reason"]
        assert len(fleet.entries(team[0], "fan-lev")) == 1 and fleet.entries(team[1], "fan-lev") == []


async def test_the_accounts_monitor_passes_wait_until_the_worker_has_carried_its_jobs_out(
    tmp_path: Path, fresh_postgres: str
) -> None:
    """A fan-out's jobs go first: an account's monitor pass (its trade taken in after its fills) waits
    until the worker runs no job, so the passes of the accounts answered first do not take the CPU the
    others' entries wait for. Here m1's job is held open after it has traded while m0 has answered and
    its fills were pushed: m0's pass, which ran 0.1 s after its pushes before, runs once m1's job ends.
    Then every account has had its pass."""
    team = members(2)
    async with running_fleet(tmp_path, fresh_postgres, team) as fleet:
        worker = fleet.worker
        traders = {trader.account.name: trader for trader in worker.traders.started()}
        # each monitor's first reconciliation, at start, is not a pass a push wakes: under way first
        await until(lambda: all(t.monitor.lifecycle.passes >= 1 for t in traders.values()),
                    "every account's first pass begun")
        # whether a job ran when an account's pass was let go (a pass let go before the fan-out's jobs
        # were fetched may still be reading when they run: that is not a pass that went first)
        jobs_at_pass: list[tuple[str, bool]] = []
        for name, trader in traders.items():
            gate = trader.monitor.yield_to
            assert gate is not None

            async def watched(_name: str = name, _gate: Any = gate) -> None:
                await _gate()
                jobs_at_pass.append((_name, bool(worker.queue.running)))

            trader.monitor.yield_to = watched
        passes = {name: trader.monitor.lifecycle.passes for name, trader in traders.items()}
        trade, release = worker._trade, asyncio.Event()

        async def m1_held(signal_id: str, account: str) -> tuple[str, str | None] | None:
            outcome = await trade(signal_id, account)
            if account == "m1":
                await release.wait()
            return outcome

        worker._trade = m1_held  # type: ignore[method-assign]
        price = fleet.sim_app.state.sim.price("ETH-USDT")
        reply = await fleet.http.post("/api/v1/signals", json=market_signal("fan-first", price))
        assert reply.status_code == 201, reply.text

        async def m0_answered() -> bool:
            return bool((await fleet.progress("fan-first"))["by_status"].get("placed") == 1)

        await until(m0_answered, "m0 answered")
        await until(lambda: "ETH-USDT" in traders["m0"].service.mirror.held_symbols(), "m0's fill pushed")
        assert worker.queue.running  # m1's job, held
        await asyncio.sleep(1.0)  # ten times what m0's pass waited after its pushes before
        release.set()
        seen = await until(lambda: answered(fleet, "fan-first", 2), "both accounts answered")
        assert seen["by_status"] == {"placed": 2}, seen
        await until(lambda: all(t.monitor.lifecycle.passes > passes[n] for n, t in traders.items()),
                    "a pass of each account after the fan-out")
        assert jobs_at_pass and not any(busy for _, busy in jobs_at_pass), jobs_at_pass
        assert {name for name, _ in jobs_at_pass} == {"m0", "m1"}


async def answered(fleet: Fleet, signal_id: str, total: int) -> dict[str, Any] | None:
    """The fan-out's progress once `total` accounts answered (none queued), else None."""
    seen = await fleet.progress(signal_id)
    return seen if seen["total"] == total and seen["by_status"].get("queued", 0) == 0 else None


# -- chaos: four worker processes, two per egress group (one active, one standing by), each group on its
# own loopback address, trade a signal fanned out to many accounts; the simulator answers take-profit
# batches late so that jobs are in flight when the fault strikes: the active workers killed with SIGKILL
# (and started again), or the database cut off for 5 s. Either way every account is then traded exactly
# once with its stop on the exchange, every job answered `placed`, nothing is left on the queue, and the
# simulator refused nothing (no IP or key over a limit).

CHAOS_ACCOUNTS = 24
WORKER_CONCURRENCY = 4
GROUPS = {"g1": "127.0.0.2", "g2": "127.0.0.3"}


def worker_env(tmp_path: Path, database_url: str, sim_url: str) -> dict[str, str]:
    return {
        **os.environ, "DATABASE_URL": database_url, "BLOFIN_BASE_URL": sim_url, "HIT_MASTER_KEY": MASTER,
        "TRADING_MODE": "paper", "LOG_DIR": str(tmp_path / "logs"), "DATA_DIR": str(tmp_path),
        "EXCHANGE_TIMEOUT_SECONDS": "2", "RECONCILE_GRACE_SECONDS": "4", "LOG_LEVEL": "INFO",
        "API_KEYS": TEST_API_KEY,
    }


def start_worker(env: dict[str, str], group: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "hit_server", "worker", "--egress", group, "--source-address", GROUPS[group],
         "--concurrency", str(WORKER_CONCURRENCY)],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )


def group_of(index: int) -> str:
    return "g1" if index % 2 == 0 else "g2"


async def register(url: str, settings: Any, team: list[Member]) -> None:
    db = Database(url)
    await db.create_schema()
    store = AccountStore(db, settings)
    for index, member in enumerate(team):
        await store.add(AccountCreate.model_validate({
            "name": member.name, "api_key": member.api_key, "api_secret": member.api_secret,
            "passphrase": member.passphrase, "egress_group": group_of(index),
        }))
    await db.dispose()


def said(log: Path, words: str) -> bool:
    return log.exists() and words in log.read_text()


@dataclass
class Chaos:
    http: httpx.AsyncClient
    sim_app: Any
    team: list[Member]
    env: dict[str, str]
    logs: list[Path]
    groups: list[str]
    workers: list[subprocess.Popen[bytes]]
    active: list[int]  # the index of each group's active worker at the start

    async def progress(self, signal_id: str) -> dict[str, Any] | None:
        reply = await self.http.get(f"/api/v1/fanouts/{signal_id}")
        return reply.json() if reply.status_code == 200 else None  # 503 while the database is away

    async def some_placed(self, signal_id: str) -> bool:
        seen = await self.progress(signal_id)
        return seen is not None and 0 < seen["by_status"].get("placed", 0) < len(self.team)

    async def all_answered(self, signal_id: str) -> dict[str, Any] | None:
        seen = await self.progress(signal_id)
        return seen if seen is not None and "queued" not in seen["by_status"] else None

    async def check_every_account_traded_once_and_protected(
        self, signal_id: str, url: str, *, cut_short: int = 0
    ) -> None:
        """Every account answered: `placed` with one entry and its stop on the exchange, or (at most
        `cut_short` of them: the jobs running in the workers that were killed) `failed` because its worker
        died after the intent was recorded and before the entry reached the exchange, with nothing on the
        exchange. (The standby looks the entry up after the grace and finds none: it answers the truth and
        never sends a second time.)"""
        seen = await until(lambda: self.all_answered(signal_id), "every account answered", within=180)
        failed = {o["account"] for o in seen["not_placed"] if o["status"] == "failed"
                  and o["reason"].endswith("before the entry reached the exchange; nothing was placed")}
        assert len(failed) <= cut_short, seen
        expected = {"placed": len(self.team) - len(failed)}
        if failed:
            expected["failed"] = len(failed)
        assert seen["by_status"] == expected, seen
        # A job whose end procrastinate could not write (the database away) stays `doing` after its
        # account answered, until its worker hands it back and runs it again (the account's journal
        # replays the answer): nothing is stuck once that has happened, well within this bound.
        db = Database(url)
        try:
            await until(lambda: nothing_left_on_the_queue(db), "nothing left todo or doing on the queue",
                        within=UNCLAIMED_AFTER_S + 90)
        finally:
            await db.dispose()
        after = await self.progress(signal_id)
        assert after is not None and after["by_status"] == expected, after  # a job run again changed nothing
        state = self.sim_app.state.sim_state
        limits = state.limits.view(self.sim_app.state.sim.clock_ms())
        for address in GROUPS.values():  # one sender per IP, its budget handed over: never a 429
            assert limits["ips"][address]["refused"] == 0, limits["ips"][address]
        assert limits["suspendedIps"] == []
        assert all(key["refused"] == 0 for key in limits["keys"].values())
        prefix = ids.signal_prefix(signal_id)
        for member in self.team:
            account = state.account(member.api_key)
            entries = [c for c in account.orders_by_client_id if c.startswith(prefix + "e")]
            if member.name in failed:
                assert entries == [] and account.positions.get("ETH-USDT") is None, member.name
                continue
            assert len(entries) == 1, (member.name, entries)
            position = account.positions.get("ETH-USDT")
            assert position is not None and position.size > 0, member.name
            stops = [t for t in account.live_tpsl("ETH-USDT") if t.spec.sl_trigger is not None]
            assert stops, f"{member.name}: a position without its stop"


async def nothing_left_on_the_queue(db: Database) -> bool:
    left = await db.transaction(lambda c: c.exec_driver_sql(
        "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')").scalar())
    return left == 0


@asynccontextmanager
async def chaos_fleet(tmp_path: Path, url: str) -> AsyncIterator[Chaos]:
    """The simulator with CHAOS_ACCOUNTS accounts (take-profit batches 0.5 s late), the API server with
    FLEET on, and four worker processes, once one per group is active and the other standing by."""
    team = members(CHAOS_ACCOUNTS)
    sim_app = create_sim_app(SimConfig(api_key=KEY, api_secret=SECRET, passphrase=PASSPHRASE))
    async with serve_loopback(sim_app) as loopback, httpx.AsyncClient(base_url=loopback.http_url) as sim_http:
        rows = [m.sim_row() for m in team]
        assert (await sim_http.post("/sim/accounts", json={"accounts": rows})).is_success
        settings = paper_settings(
            tmp_path, blofin_base_url=loopback.http_url, blofin_api_key=KEY, blofin_api_secret=SECRET,
            blofin_passphrase=PASSPHRASE, database_url=url, fleet=True, hit_master_key=SecretStr(MASTER),
        )
        await register(url, settings, team)
        env = worker_env(tmp_path, url, loopback.http_url)
        logs = [tmp_path / f"worker-{i}.log" for i in range(4)]
        groups = ["g1", "g1", "g2", "g2"]
        workers = [start_worker(env, group, log) for group, log in zip(groups, logs, strict=True)]
        app = create_app(settings)
        try:
            async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
                headers={"X-API-Key": TEST_API_KEY}, timeout=30,
            ) as http:
                await until(lambda: sum(said(log, "ready:") for log in logs) == 2
                            and sum(said(log, "standby") for log in logs) == 2,
                            "two workers active (one per group), two standing by", within=120)
                active = [i for i, log in enumerate(logs) if said(log, "ready:")]
                assert sorted(groups[i] for i in active) == ["g1", "g2"]
                fault = {"kind": "delay", "seconds": 0.5, "count": 10_000,
                         "path": "/api/v1/trade/batch-orders"}
                assert (await sim_http.post("/sim/faults", json=fault)).is_success
                yield Chaos(http, sim_app, team, env, logs, groups, workers, active)
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    worker.kill()


async def post_signal(chaos: Chaos, signal_id: str) -> None:
    price = chaos.sim_app.state.sim.price("ETH-USDT")
    reply = await chaos.http.post("/api/v1/signals", json=market_signal(signal_id, price))
    assert reply.status_code == 201, reply.text


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_workers_killed_mid_fan_out_leave_every_account_traded_once_and_protected(
    tmp_path: Path, fresh_postgres: str
) -> None:
    async with chaos_fleet(tmp_path, fresh_postgres) as chaos:
        await post_signal(chaos, "chaos-1")
        await until(lambda: chaos.some_placed("chaos-1"), "a few accounts placed, most not yet", within=60)
        for i in chaos.active:  # the active worker of each group dies mid-job; its standby takes over
            chaos.workers[i].send_signal(signal.SIGKILL)
            chaos.workers[i].wait(10)
        for i in chaos.active:
            chaos.workers[i] = start_worker(chaos.env, chaos.groups[i], chaos.logs[i])  # now a standby
        in_flight = len(chaos.active) * WORKER_CONCURRENCY
        await chaos.check_every_account_traded_once_and_protected(
            "chaos-1", fresh_postgres, cut_short=in_flight
        )


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_the_database_cut_off_for_5_s_mid_fan_out_loses_and_doubles_nothing(
    tmp_path: Path, fresh_postgres: str
) -> None:
    """Every connection to the fleet's database is closed and none is accepted for 5 s (the outage's
    length is the fault itself, not a wait), while jobs are in flight."""
    name = make_url(fresh_postgres).database
    # the cluster's maintenance database: ours can't be altered from a connection to it
    maintenance = make_url(fresh_postgres).set(database="postgres")
    admin = create_async_engine(maintenance, isolation_level="AUTOCOMMIT")
    try:
        async with chaos_fleet(tmp_path, fresh_postgres) as chaos:
            await post_signal(chaos, "outage-1")
            await until(lambda: chaos.some_placed("outage-1"), "a few accounts placed", within=60)
            async with admin.connect() as conn:
                await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                kill = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db"
                await conn.execute(text(kill), {"db": name})
                await asyncio.sleep(5)
                await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            await chaos.check_every_account_traded_once_and_protected("outage-1", fresh_postgres)
            assert all(worker.poll() is None for worker in chaos.workers), "a worker died of the outage"
    finally:
        await admin.dispose()
