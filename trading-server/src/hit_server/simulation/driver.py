"""Runs the steps of a simulation against the real server and the simulator, checking the invariants.

`run_seed(seed)` generates the steps of a seed and runs them on a virtual-time loop; `run_steps(steps)`
runs a given list (a reproduction); `minimize(steps)` leaves steps out while the run still breaks the
same invariant, for a short reproduction to keep as a regression test.

The server's wall clock (`hit_server.clock`) and the exchange simulator's follow the loop's virtual
time for the length of a run, so ages, timeouts and grace periods pass as the simulated time does.

The server runs with its defaults except: MONITOR_POLL_SECONDS=1 (the 2-second naked-window bound of
invariant (a) is a promise made with the monitor polling at least that often when the exchange's
change feed is lost) and a large MAX_OPEN_POSITIONS (so signals compete per symbol, not for slots).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hit_server import clock
from hit_server.blofin_sim.adversity import ItemFaults
from hit_server.blofin_sim.errors import SimError
from hit_server.blofin_sim.faults import Fault, RandomFaults
from hit_server.simulation.clock import run_virtual
from hit_server.simulation.invariants import JournalView, Watch
from hit_server.simulation.steps import Step, generate
from hit_server.simulation.world import Process, World

SETTLE_ROUNDS = 12
SETTLE_ROUND_S = 20.0  # 12 rounds outlast RECONCILE_GRACE_SECONDS (120 s), after which absence is proof
STREAM_BACK_AFTER_S = 20.0
ACTION_RETRY_S = 30.0  # how long the bot retries a request answered 503 (hit_bot.trading_client)
ACTION_RETRY_WAIT_S = 1.0
# No step takes longer than this much simulated time (a request's deadline, a shutdown): one that does
# is a liveness failure (a server that never finishes stopping), reported rather than run forever.
STEP_LIMIT_S = 900.0
SERVER_SETTINGS: dict[str, Any] = {
    "monitor_poll_seconds": 1.0,
    "max_open_positions": 50,
    "max_position_size_usd": Decimal(5000),
}


@dataclass
class RunResult:
    """What one run did and found."""

    seed: int | None
    steps: list[Step]
    violations: list[str]
    simulated_s: float = 0.0
    signals: int = 0
    crashes: int = 0
    answers: dict[str, int] = field(default_factory=dict)  # status -> count, at the end

    @property
    def ok(self) -> bool:
        return not self.violations

    def reproduction(self) -> str:
        """How to run this again, in one command."""
        if self.seed is not None:
            return f"python -m hit_server.simulation --seed {self.seed} --steps {len(self.steps)}"
        return "run_steps(<the steps printed below>)"


class Driver:
    def __init__(self, steps: list[Step], workdir: Path, seed: int | None) -> None:
        self.steps = steps
        self.workdir = workdir
        self.seed = seed
        self.bodies: dict[str, dict[str, Any]] = {}
        self.answers: dict[str, dict[str, Any] | None] = {}
        self.violations: list[str] = []
        self.crashes = 0
        # (Idempotency-Key, the request) -> the answers it got, in the order they came (503s left out)
        self.action_answers: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        self.action_requests: dict[str, tuple[str, str, dict[str, Any]]] = {}  # key -> the last request

    async def run(self) -> RunResult:
        loop = asyncio.get_running_loop()
        random.seed(self.seed or 0)  # the exchange client's retry jitter draws from it
        clock_ms = getattr(loop, "clock_ms", lambda: int(loop.time() * 1000))
        self.world = World(self.workdir, clock_ms, **SERVER_SETTINGS)
        self.watch = Watch(self.workdir / "journal.db")
        self.watch.watch_stops(self.world.sim, loop.time)
        started = loop.time()
        clock.use_source(lambda: datetime.fromtimestamp(clock_ms() / 1000, UTC))
        try:
            await self.world.start_process()
            for n, step in enumerate(self.steps, 1):
                if not await self._within_limit(f"step {n} ({step['op']})", self._do(step)):
                    break
                await asyncio.sleep(float(step.get("wait", 0)))
                await self._after_step()
            else:
                await self._within_limit("settling", self._settle())
        finally:
            await self.world.close()
            clock.use_source(None)
        statuses: dict[str, int] = {}
        for answer in self.answers.values():
            key = "none" if answer is None else str(answer.get("status"))
            statuses[key] = statuses.get(key, 0) + 1
        return RunResult(
            seed=self.seed, steps=self.steps, violations=self.violations + self.watch.violations,
            simulated_s=loop.time() - started, signals=len(self.bodies), crashes=self.crashes,
            answers=statuses,
        )

    async def _within_limit(self, what: str, work: Awaitable[None]) -> bool:
        try:
            async with asyncio.timeout(STEP_LIMIT_S):
                await work
        except TimeoutError:
            self.violations.append(f"(g) {what} did not finish within {STEP_LIMIT_S:g} s of simulated time")
            return False
        return True

    # -- steps --------------------------------------------------------------------------------------

    def _process(self, step: Step) -> Process:
        live = self.world.live()
        return live[int(step.get("process", 0)) % len(live)]

    async def _do(self, step: Step) -> None:
        op = step["op"]
        handler = getattr(self, f"_op_{op}")
        await handler(step)

    async def _op_signal(self, step: Step) -> None:
        body = {"signal_id": step["id"], **step["body"]}
        self.bodies[step["id"]] = body
        self.answers.setdefault(step["id"], None)
        process = self._process(step)
        process.spawn(self._post(process, body))

    async def _op_resend(self, step: Step) -> None:
        body = self.bodies.get(step["id"])
        if body is not None:
            process = self._process(step)
            process.spawn(self._post(process, body))

    async def _post(self, process: Process, body: dict[str, Any]) -> None:
        try:
            reply = await process.http.post("/api/v1/signals", json=body)
        except asyncio.CancelledError:
            raise
        except BaseException:  # the process died while answering (a Crash, possibly grouped)
            if process.alive:
                raise
            return
        if reply.status_code >= 500 and reply.status_code != 503:
            self.violations.append(f"(f) {body['signal_id']} was answered HTTP {reply.status_code}: "
                                   f"{reply.text[:300]}")
        if reply.status_code in (200, 201):
            self.answers[body["signal_id"]] = reply.json()

    async def _op_action(self, step: Step) -> None:
        """A trader's action on the trade open on the step's symbol (on the step's signal if none is)."""
        open_here = sorted(
            sid for sid, row in JournalView.read(self.watch.journal_path).signals.items()
            if row["symbol"] == step["symbol"] and row["is_open"] and row["status"] == "placed"
        )
        signal_id = open_here[0] if open_here else step["id"]
        side = self.bodies.get(signal_id, {}).get("side", "long")
        request = (step["kind"], signal_id, self._action_body(step, side))
        self.action_requests[step["key"]] = request
        process = self._process(step)
        process.spawn(self._act(process, step["key"], *request))

    async def _op_action_again(self, step: Step) -> None:
        """The last request sent under this Idempotency-Key, sent again."""
        request = self.action_requests.get(step["key"])
        if request is not None:
            process = self._process(step)
            process.spawn(self._act(process, step["key"], *request))

    def _action_body(self, step: Step, side: str) -> dict[str, Any]:
        """The request's body, its prices from the step's offsets and the market now."""
        args = step["args"]
        if step["kind"] not in ("stop", "targets") or args.get("breakeven"):
            return dict(args)
        mark = self.world.sim.price(step["symbol"])
        tick = self.world.sim.instruments[step["symbol"]].tick_size
        profit = Decimal(1) if side == "long" else Decimal(-1)

        def at(offset_pct: float) -> str:
            price = mark * (1 + profit * Decimal(str(offset_pct)) / 100)
            return str(max(tick, (price / tick).to_integral_value() * tick))

        if step["kind"] == "stop":
            return {"price": at(-args["offset_pct"])}
        return {"targets": [at(offset) for offset in args["offsets_pct"]]}

    async def _act(self, process: Process, key: str, kind: str, signal_id: str, body: dict[str, Any]) -> None:
        """Send one action, and again under the same key while it is answered 503 (busy or unclear), for
        up to ACTION_RETRY_S as the bot does (`hit_bot.trading_client`): an action left half done (a
        target cancelled, its replacement not placed yet) is finished by that retry. Every answer a key
        gets for one request must be the same."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + ACTION_RETRY_S
        while True:
            try:
                reply = await process.http.post(f"/api/v1/trades/{signal_id}/{kind}", json=body,
                                                headers={"Idempotency-Key": key})
            except asyncio.CancelledError:
                raise
            except BaseException:  # the process died while answering
                if process.alive:
                    raise
                return
            if reply.status_code != 503 or loop.time() >= give_up:
                break
            await asyncio.sleep(ACTION_RETRY_WAIT_S)
        if reply.status_code >= 500 and reply.status_code != 503:
            self.violations.append(f"(f) {kind} on {signal_id} was answered HTTP {reply.status_code}: "
                                   f"{reply.text[:300]}")
        if reply.status_code == 503:  # still busy or unclear after the bot's retries: it gave up
            return
        request = f"{kind} {signal_id} {json.dumps(body, sort_keys=True)}"
        answers = self.action_answers.setdefault((key, request), [])
        answers.append((reply.status_code, reply.json()))
        if answers[-1] != answers[0]:
            self.violations.append(f"(i) Idempotency-Key {key} ({request}) was answered {answers[0]} and "
                                   f"later {answers[-1]}")

    async def _op_price(self, step: Step) -> None:
        self.world.sim.set_price(step["symbol"], Decimal(step["price"]))

    async def _op_faults(self, step: Step) -> None:
        probability = float(step.get("probability", 0))
        if probability <= 0:
            self.world.faults.set_random(None)
            return
        self.world.faults.set_random(RandomFaults(
            probability=probability, kinds=tuple(step["kinds"]), seconds=float(step.get("seconds", 3.0)),
            path="/api/v1/", seed=int(step.get("seed", 0)),
        ))

    async def _op_fault(self, step: Step) -> None:
        """A counted fault on one path (for written reproductions; the generator uses `faults`)."""
        self.world.faults.add(Fault(kind=step["kind"], count=int(step.get("count", 1)),
                                    path=str(step.get("path", "")), seconds=float(step.get("seconds", 0))))

    async def _op_lag(self, step: Step) -> None:
        if int(step["ms"]) <= 0:
            self.world.sim.lag.clear()
        else:
            self.world.sim.lag.set(int(step["ms"]), int(step.get("lookups", 0)))

    async def _op_duplicate_window(self, step: Step) -> None:
        self.world.sim.duplicate_window_ms = step["ms"]

    async def _op_item_faults(self, step: Step) -> None:
        probability = float(step["probability"])
        self.world.sim_state.item_faults = None if probability <= 0 else ItemFaults(
            probability=probability, code=str(step["code"]), seed=int(step["seed"])
        )

    async def _op_partial_fills(self, step: Step) -> None:
        fraction = step.get("fraction")
        self.world.sim.partial_fraction = None if fraction is None else Decimal(fraction)

    async def _op_crash(self, step: Step) -> None:
        self._process(step).gate.arm(int(step["after_calls"]), step["when"])

    async def _op_second_process(self, step: Step) -> None:
        if len(self.world.live()) < 2:
            await self.world.start_process()

    async def _op_restart(self, step: Step) -> None:
        process = self._process(step)
        await self.world.stop(process)
        await self.world.start_process()

    async def _op_sweep(self, step: Step) -> None:
        process = self._process(step)
        monitor = process.monitor
        if monitor is not None:
            process.spawn(monitor._guarded(monitor.reconcile))  # as the monitor runs it

    async def _op_hand_cancel_stops(self, step: Step) -> None:
        sim = self.world.sim
        for tpsl in sim.live_tpsl(step["symbol"]):
            if tpsl.spec.sl_trigger is not None:
                sim.cancel_tpsl(step["symbol"], tpsl.tpsl_id, "")

    async def _op_hand_close(self, step: Step) -> None:
        sim = self.world.sim
        position = sim.positions.get(step["symbol"])
        if position is not None:
            with contextlib.suppress(SimError):
                sim.close_position(step["symbol"], position.margin_mode, "")

    async def _op_hand_leverage(self, step: Step) -> None:
        """The trader changes the symbol's leverage on the exchange (refused while cross orders rest)."""
        with contextlib.suppress(SimError):
            self.world.sim.set_leverage(step["symbol"], int(step["leverage"]), "cross")

    async def _op_hand_transfer(self, step: Step) -> None:
        """Funds moved out of (or into) the futures account, with no push: the server's account mirror
        holds the old balance until its next read."""
        sim = self.world.sim
        sim.cash -= sim.cash * Decimal(step["fraction"])

    async def _op_stream_drop(self, step: Step) -> None:
        process = self._process(step)
        monitor = process.monitor
        feed = None if monitor is None else monitor.feed
        if feed is None or not feed.connected:
            return
        await feed.stop()

        async def back() -> None:
            await asyncio.sleep(STREAM_BACK_AFTER_S)
            if process.alive:
                await feed.start(monitor)

        process.spawn(back())

    # -- between steps ------------------------------------------------------------------------------

    async def _after_step(self) -> None:
        for process in list(self.world.processes):
            if not process.alive:
                self.crashes += 1
                await self.world.bury(process)
        if not self.world.live():
            await self.world.start_process()  # the supervisor starts the server again
        loop = asyncio.get_running_loop()
        self.watch.after_step(self.world.sim, loop.time(), self.world.exchange_works(), self.world.downtime)

    async def _settle(self) -> None:
        """Faults stop; requests in flight finish; the monitor gets its passes; then the settled checks."""
        self.world.heal()
        for process in self.world.processes:
            process.gate.crash_at = None
        await self._after_step()
        for process in self.world.live():
            await asyncio.gather(*process.tasks, return_exceptions=True)
        problems: list[str] = []
        for _ in range(SETTLE_ROUNDS):
            for process in self.world.live():
                monitor = process.monitor
                await monitor._guarded(monitor.reconcile)  # as the monitor runs it
            await asyncio.sleep(SETTLE_ROUND_S)
            await self._ask_again()
            await self._after_step()
            problems = self.watch.settled_problems(self.world.sim, self.answers) + self._unanswered_actions()
            if not problems:
                break
        self.violations += problems
        for process in self.world.live():
            task = process.monitor._task
            if task is None or task.done():
                self.violations.append(f"(g) the position monitor of {process.name} stopped")

    async def _ask_again(self) -> None:
        """The bot asks once more for every signal (same body), and the trader once more for every action
        (same key, same request), as the API asks of a client that got no final answer."""
        process = self.world.live()[0]
        for body in self.bodies.values():
            await self._post(process, body)
        for key, request in self.action_requests.items():
            await self._act(process, key, *request)

    def _unanswered_actions(self) -> list[str]:
        """(i) every action has its final answer once the run has settled."""
        answered = {key for key, _ in self.action_answers}
        return [f"(i) the action under Idempotency-Key {key} ({kind} on {signal_id}) has no final answer"
                for key, (kind, signal_id, _) in self.action_requests.items() if key not in answered]


async def _run(steps: list[Step], seed: int | None) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="hit-sim-") as tmp:
        return await Driver(steps, Path(tmp), seed).run()


def run_steps(steps: list[Step], seed: int | None = None) -> RunResult:
    """Run these steps on a fresh world and virtual clock."""
    return run_virtual(_run(steps, seed), epoch_s=time.time())


def run_seed(seed: int, length: int = 60) -> RunResult:
    return run_steps(generate(seed, length), seed)


def _same_failure(result: RunResult, letters: set[str]) -> bool:
    return any(v[:3] in letters for v in result.violations)


def minimize(steps: list[Step], violations: list[str]) -> list[Step]:
    """A shorter list of steps that still breaks one of the same invariants (by their letter)."""
    letters = {v[:3] for v in violations}
    current = list(steps)
    chunk = max(1, len(current) // 2)
    while chunk >= 1:
        start = 0
        while start < len(current):
            candidate = current[:start] + current[start + chunk:]
            if candidate and _same_failure(run_steps(candidate), letters):
                current = candidate
            else:
                start += chunk
        chunk //= 2
    return current
