"""The simulated world: one BloFin simulator (the exchange, one market), one or more accounts on it, and
for each account its own journal file and the server processes that trade it, each of which can crash at
a chosen exchange call and be started again.

An account (`Account`) is what the fleet trades for a member (ARCHITECTURE.md, "The fleet"): its own key
on the shared simulator (the first account is the simulator's default one, so a one-account world is
the world as it was before the fleet), its own journal, its own server processes with that key (each a
paper server whose exchange is the shared simulator seen with the account's credentials), and its own
network faults: a fault step aimed at an account reaches only the requests of that account's processes,
as a member's broken connection would. Price moves stay the market's, for everyone.

A server process here is the real app (`hit_server.server.create_app`, its lifespan, its HTTP routes,
its trading service and position monitor) in paper mode, talking to the shared simulator through the
in-process wire. What makes it crashable is a `Gate` in front of its exchange: armed, the gate kills
the process at its n-th exchange request, either before the request reaches the exchange or after the
exchange carried it out (the reply is lost with the process). A killed process does nothing more: its
journal refuses every further transaction, its tasks are cancelled, and its monitor stops listening.
That is what a crash leaves behind: whatever the journal had committed and whatever the exchange had
done, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import httpx
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from hit_server.blofin_sim import SimConfig
from hit_server.blofin_sim import create_app as create_sim_app
from hit_server.blofin_sim.config import AccountSpec
from hit_server.blofin_sim.faults import FaultPlan
from hit_server.blofin_sim.middleware import ACCOUNT_SCOPE_KEY, SimMiddleware
from hit_server.server import create_app
from hit_server.settings import Settings
from hit_server.testing import TEST_API_KEY, paper_settings

log = logging.getLogger(__name__)

When = Literal["before", "after"]
# The starting balances of the accounts, by index (the first is the simulator's default account's): they
# differ so that each account's sizing from its own equity shows (some sized by the USD cap, some by risk)
BALANCES = (Decimal(100000), Decimal(3000), Decimal(12000), Decimal(40000), Decimal(800))


class Crash(BaseException):
    """A server process dies here. A BaseException, so that no `except Exception` in the server
    mistakes it for an error it could handle: like a killed process, it just stops."""


@dataclass
class Gate:
    """Stands between one server process and the exchange; kills the process when armed."""

    name: str
    dead: bool = False
    calls: int = 0
    crash_at: int | None = None  # the request number (of `calls`) that kills the process
    when: When = "before"
    on_crash: list[Callable[[], None]] = field(default_factory=list)

    def arm(self, after_calls: int, when: When) -> None:
        self.crash_at, self.when = self.calls + after_calls, when

    def kill(self) -> None:
        if not self.dead:
            self.dead = True
            for hook in self.on_crash:
                hook()

    def check(self, stage: When) -> None:
        if self.dead:
            raise Crash(self.name)
        if self.crash_at is not None and self.calls == self.crash_at and self.when == stage:
            self.kill()
            raise Crash(self.name)


class GatedExchange:
    """The simulator app as one process of one account sees it: every /api/ request passes the process's
    `Gate` and the account's own network faults; its `state` shows the account's engine and credentials
    (what paper mode reads from a simulator it is handed), the rest of the simulator shared.

    It also checks isolation where it can be seen best: a request of this process must act on this
    account's engine, never on another's (the engine the simulator chose from the request's signature
    is left in the request's scope); one that did not is written to the account's `strays`."""

    def __init__(self, app: FastAPI, gate: Gate, account: Account) -> None:
        self.app = app
        self.gate = gate
        self.account = account
        shared = app.state.sim_state
        self.state = SimpleNamespace(sim=account.sim, sim_state=_AccountSimState(shared, account))
        self._faulty = SimMiddleware(app, shared)  # how a simulator misbehaves, reused for this account

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith("/api/"):
            await self.app(scope, receive, send)
            return
        self.gate.calls += 1
        self.gate.check("before")
        try:
            fault = self.account.faults.take(path)
            if fault is None:
                await self.app(scope, receive, send)
            else:
                await self._faulty._misbehave(fault, scope, receive, send)
        finally:
            acted_on = scope.get(ACCOUNT_SCOPE_KEY)
            if acted_on is not None and acted_on is not self.account.sim:
                self.account.strays.append(f"{self.gate.name} of {self.account.name}: {scope.get('method')} "
                                           f"{path} acted on another account's engine")
        self.gate.check("after")


class _AccountSimState:
    """The simulator's `SimState` as one account's server reads it: `config` carries the account's key,
    secret and passphrase (paper mode signs with the credentials of the simulator it is handed), `sim`
    is the account's engine; everything else is the shared simulator's."""

    def __init__(self, shared: Any, account: Account) -> None:
        self._shared = shared
        self.sim = account.sim
        self.config = replace(shared.config, api_key=account.api_key, api_secret=account.api_secret,
                              passphrase=account.passphrase, accounts=())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shared, name)


def _dead_transaction(*_args: Any, **_kwargs: Any) -> Any:
    raise Crash("journal of a dead process")


@dataclass
class Process:
    """One running server process."""

    name: str
    app: FastAPI
    gate: Gate
    http: httpx.AsyncClient
    lifespan: contextlib.AbstractAsyncContextManager[Any]
    account: Account
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def alive(self) -> bool:
        return not self.gate.dead

    @property
    def monitor(self) -> Any:
        return self.app.state.monitor

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled():
            task.exception()  # a Crash ends a task of a dead process: seen, not "never retrieved"


@dataclass(eq=False)
class Account:
    """One member's account: its key on the shared simulator (`sim`: its engine), its journal (in
    `workdir`), its server processes and its own network faults."""

    index: int
    api_key: str
    api_secret: str
    passphrase: str
    balance: Decimal
    sim: Any
    settings: Settings
    faults: FaultPlan = field(default_factory=FaultPlan)
    processes: list[Process] = field(default_factory=list)
    started: int = 0
    # (from, to) loop times during which none of the account's server processes was alive (to=inf while
    # none is): the supervisor starts a crashed server again only between steps, and what a server should
    # have done while none ran is not the server's failure (invariant (a) leaves these spans out)
    downtime: list[tuple[float, float]] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)  # requests that acted on another account's engine

    @property
    def name(self) -> str:
        return f"account-{self.index}"

    @property
    def journal_path(self) -> Path:
        return self.settings.data_dir / "journal.db"

    def live(self) -> list[Process]:
        return [p for p in self.processes if p.alive]

    def exchange_works(self) -> bool:
        """No injected fault, lookup lag or refused batch item is in force for this account."""
        faults = self.faults
        return (not faults.pending and faults.random is None and not self.sim.lag.active
                and self.sim.item_faults is None)

    def heal(self) -> None:
        """Every fault and adversarial mode that keeps this account's exchange from working ends."""
        self.faults.clear()
        self.sim.lag.clear()
        self.sim.item_faults = None


class World:
    """The exchange, the accounts with their journals, and the processes; `start_process` / `crash` /
    `stop` them. `accounts`: how many (the first is the simulator's default account); `balances`: their
    starting balances (default `BALANCES`, in turn)."""

    def __init__(self, workdir: Path, clock_ms: Callable[[], int], accounts: int = 1,
                 balances: tuple[Decimal, ...] = BALANCES, **settings: Any) -> None:
        self.workdir = workdir
        keys = [_credentials() for _ in range(accounts)]
        amounts = [balances[n % len(balances)] for n in range(accounts)]
        api_key, api_secret, passphrase = keys[0]
        config = SimConfig(  # credentials made up for this run: the simulator only checks the signatures
            api_key=api_key, api_secret=api_secret, passphrase=passphrase, balance=amounts[0],
            rate_limit_per_min=0, trade_limit_per_10s=0,
        )
        self.sim_app = create_sim_app(config)
        self.sim_app.state.sim.clock_ms = clock_ms  # the other accounts' engines read the default's clock
        state = self.sim_app.state.sim_state
        state.accounts.add([AccountSpec(key, secret, phrase, balance)
                            for (key, secret, phrase), balance in zip(keys[1:], amounts[1:], strict=True)])
        self.accounts: list[Account] = []
        for n, ((key, secret, phrase), balance) in enumerate(zip(keys, amounts, strict=True)):
            data_dir = workdir if n == 0 else workdir / f"account-{n}"  # the first: where it always was
            data_dir.mkdir(parents=True, exist_ok=True)
            self.accounts.append(Account(n, key, secret, phrase, balance, state.account(key),
                                         paper_settings(data_dir, **settings)))

    @property
    def sim(self) -> Any:
        """The first account's engine (the simulator's default account)."""
        return self.sim_app.state.sim

    @property
    def sim_state(self) -> Any:
        return self.sim_app.state.sim_state

    @property
    def faults(self) -> FaultPlan:
        """The first account's network faults."""
        return self.accounts[0].faults

    @property
    def processes(self) -> list[Process]:
        return [p for account in self.accounts for p in account.processes]

    @property
    def downtime(self) -> list[tuple[float, float]]:
        """The first account's spans without a live server."""
        return self.accounts[0].downtime

    def exchange_works(self) -> bool:
        """No injected fault, lookup lag or refused batch item is in force for any account."""
        return all(account.exchange_works() for account in self.accounts)

    def heal(self) -> None:
        """Every fault and adversarial mode that keeps an exchange from working ends, for every account."""
        for account in self.accounts:
            account.heal()

    def live(self) -> list[Process]:
        return [p for p in self.processes if p.alive]

    async def start_process(self, account: Account | None = None) -> Process:
        """Start a server process for `account` (the first by default)."""
        account = account or self.accounts[0]
        account.started += 1
        name = f"process-{account.started}"
        gate = Gate(name if account.index == 0 else f"{account.name}/{name}")
        exchange = GatedExchange(self.sim_app, gate, account)
        app = create_app(account.settings, sim_app=exchange)  # type: ignore[arg-type]
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        db = app.state.service.journal.db
        gate.on_crash.append(lambda: setattr(db, "transaction", _dead_transaction))
        gate.on_crash.append(lambda: self._note_down(account))
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://hit.sim",
            headers={"X-API-Key": TEST_API_KEY}, timeout=3600.0,  # virtual seconds
        )
        process = Process(gate.name, app, gate, http, lifespan, account)
        account.processes.append(process)
        if account.downtime and account.downtime[-1][1] == math.inf:
            account.downtime[-1] = (account.downtime[-1][0], asyncio.get_running_loop().time())
        return process

    @staticmethod
    def _note_down(account: Account) -> None:
        """A process died: when it was the account's last one alive, a span without its server begins."""
        if not account.live() and not (account.downtime and account.downtime[-1][1] == math.inf):
            account.downtime.append((asyncio.get_running_loop().time(), math.inf))

    async def bury(self, process: Process) -> None:
        """Clean up after a process that died (or kill it now): its tasks, monitor and connections."""
        process.gate.kill()
        for task in list(process.tasks):
            task.cancel()
        await asyncio.gather(*process.tasks, return_exceptions=True)
        monitor = process.app.state.monitor
        if monitor is not None:
            task = monitor._task  # a crashed monitor's task holds the Crash; drop it
            if task is not None:
                while not task.done():  # one cancellation can be lost on Python 3.11 (monitor.stop)
                    task.cancel()
                    await asyncio.wait({task}, timeout=0.5)
                monitor._task = None
        with contextlib.suppress(BaseException):
            await process.lifespan.__aexit__(None, None, None)
        await process.http.aclose()
        if process in process.account.processes:
            process.account.processes.remove(process)

    async def stop(self, process: Process) -> None:
        """A clean shutdown (SIGTERM): requests in flight finish, then the lifespan ends."""
        process.gate.crash_at = None
        await asyncio.gather(*process.tasks, return_exceptions=True)
        await process.lifespan.__aexit__(None, None, None)
        await process.http.aclose()
        process.account.processes.remove(process)
        process.gate.dead = True

    async def close(self) -> None:
        for process in list(self.processes):
            await self.bury(process)


def _credentials() -> tuple[str, str, str]:
    """A key, secret and passphrase made up for one run: the simulator only checks the signatures."""
    return secrets.token_hex(16), secrets.token_hex(32), secrets.token_hex(12)
