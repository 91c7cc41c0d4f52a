"""The simulated world: one BloFin simulator (the exchange), one journal file, and the server processes
that run against them, each of which can crash at a chosen exchange call and be started again.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from hit_server.blofin_sim import SimConfig
from hit_server.blofin_sim import create_app as create_sim_app
from hit_server.server import create_app
from hit_server.testing import TEST_API_KEY, paper_settings

log = logging.getLogger(__name__)

When = Literal["before", "after"]


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
    """The simulator app as one process sees it: every /api/ request passes its `Gate`."""

    def __init__(self, app: FastAPI, gate: Gate) -> None:
        self.app = app
        self.state = app.state  # the server reads the simulator's state through its app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/api/"):
            await self.app(scope, receive, send)
            return
        self.gate.calls += 1
        self.gate.check("before")
        await self.app(scope, receive, send)
        self.gate.check("after")


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


class World:
    """The exchange, the journal, and the processes; `start_process` / `crash` / `stop` them."""

    def __init__(self, workdir: Path, clock_ms: Callable[[], int], **settings: Any) -> None:
        self.workdir = workdir
        config = SimConfig(  # credentials made up for this run: the simulator only checks the signatures
            api_key=secrets.token_hex(16), api_secret=secrets.token_hex(32), passphrase=secrets.token_hex(12),
            rate_limit_per_min=0, trade_limit_per_10s=0,
        )
        self.sim_app = create_sim_app(config)
        self.sim_app.state.sim.clock_ms = clock_ms
        self.settings = paper_settings(workdir, **settings)
        self.processes: list[Process] = []
        self._started = 0
        # (from, to) loop times during which no server process was alive (to=inf while none is): the
        # supervisor starts a crashed server again only between steps, and what a server should have
        # done while none ran is not the server's failure (invariant (a) leaves these spans out)
        self.downtime: list[tuple[float, float]] = []

    @property
    def sim(self) -> Any:
        return self.sim_app.state.sim

    @property
    def sim_state(self) -> Any:
        return self.sim_app.state.sim_state

    @property
    def faults(self) -> Any:
        return self.sim_state.faults

    def exchange_works(self) -> bool:
        """No injected fault, lookup lag or refused batch item is in force."""
        faults = self.faults
        return (not faults.pending and faults.random is None and not self.sim.lag.active
                and self.sim_state.item_faults is None)

    def heal(self) -> None:
        """Every fault and adversarial mode that keeps the exchange from working ends."""
        self.faults.clear()
        self.sim.lag.clear()
        self.sim_state.item_faults = None

    def live(self) -> list[Process]:
        return [p for p in self.processes if p.alive]

    async def start_process(self) -> Process:
        self._started += 1
        gate = Gate(f"process-{self._started}")
        app = create_app(self.settings, sim_app=GatedExchange(self.sim_app, gate))  # type: ignore[arg-type]
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        db = app.state.service.journal.db
        gate.on_crash.append(lambda: setattr(db, "transaction", _dead_transaction))
        gate.on_crash.append(self._note_down)
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://hit.sim",
            headers={"X-API-Key": TEST_API_KEY}, timeout=3600.0,  # virtual seconds
        )
        process = Process(gate.name, app, gate, http, lifespan)
        self.processes.append(process)
        if self.downtime and self.downtime[-1][1] == math.inf:
            self.downtime[-1] = (self.downtime[-1][0], asyncio.get_running_loop().time())
        return process

    def _note_down(self) -> None:
        """A process died: when it was the last one alive, a span without any server begins."""
        if not self.live() and not (self.downtime and self.downtime[-1][1] == math.inf):
            self.downtime.append((asyncio.get_running_loop().time(), math.inf))

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
        if process in self.processes:
            self.processes.remove(process)

    async def stop(self, process: Process) -> None:
        """A clean shutdown (SIGTERM): requests in flight finish, then the lifespan ends."""
        process.gate.crash_at = None
        await asyncio.gather(*process.tasks, return_exceptions=True)
        await process.lifespan.__aexit__(None, None, None)
        await process.http.aclose()
        self.processes.remove(process)
        process.gate.dead = True

    async def close(self) -> None:
        for process in list(self.processes):
            await self.bury(process)
