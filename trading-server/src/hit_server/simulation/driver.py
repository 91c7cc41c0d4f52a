"""Runs the steps of a simulation against the real server and the simulator, checking the invariants.

`run_seed(seed)` generates the steps of a seed and runs them on a virtual-time loop; `run_steps(steps)`
runs a given list (a reproduction); `minimize(steps)` leaves steps out while the run still breaks the
same invariant, for a short reproduction to keep as a regression test. Each takes `accounts`: with
several, the world holds that many accounts side by side (the fleet), every signal goes to each, a step
about one account acts on the one it names, and each account no step names is run a second time alone
with the same signals and prices, for invariant (j).

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
from hit_server.simulation.invariants import JournalView, Watch, differences, outcome
from hit_server.simulation.steps import ACCOUNT_OPS, Step, generate
from hit_server.simulation.world import Account, Process, World

SETTLE_ROUNDS = 12
SETTLE_ROUND_S = 20.0  # 12 rounds outlast RECONCILE_GRACE_SECONDS (120 s), after which absence is proof
STREAM_BACK_AFTER_S = 20.0
ACTION_RETRY_S = 30.0  # how long the bot retries a request answered 503 (hit_bot.trading_client)
ACTION_RETRY_WAIT_S = 1.0
# No step takes longer than this much simulated time (a request's deadline, a shutdown): one that does
# is a liveness failure (a server that never finishes stopping), reported rather than run forever.
STEP_LIMIT_S = 900.0
# With several accounts, each step's work runs out before the next step (`Driver._run_out`): a step's
# moment then has one meaning, so the untouched account's run alone meets each step as it did beside
# the others (invariant (j)). One account keeps steps at one moment truly at once (its races).
RUN_OUT_S = 0.001
SERVER_SETTINGS: dict[str, Any] = {
    "monitor_poll_seconds": 1.0,
    "max_open_positions": 50,
    "max_position_size_usd": Decimal(5000),
}


@dataclass
class Untouched:
    """An account no step named, what its trades came to when the last step ended (`outcome`), and when
    the run's moments were, in simulated seconds from its start: enough to meet the same signals and
    prices alone at the same times (`Driver.run_alone`) and compare."""

    index: int
    balance: Decimal
    start: float  # when its server started
    step_times: list[float]  # when each step began
    end: float  # when the last step's wait ended
    outcome: dict[str, Any]


@dataclass
class RunResult:
    """What one run did and found."""

    seed: int | None
    steps: list[Step]
    violations: list[str]
    simulated_s: float = 0.0
    signals: int = 0
    crashes: int = 0
    answers: dict[str, int] = field(default_factory=dict)  # status -> count, at the end (every account's)
    accounts: int = 1
    untouched: list[Untouched] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def reproduction(self) -> str:
        """How to run this again, in one command."""
        accounts = f" --accounts {self.accounts}" if self.accounts > 1 else ""
        if self.seed is not None:
            return f"python -m hit_server.simulation --seed {self.seed} --steps {len(self.steps)}{accounts}"
        return f"run_steps(<the steps printed below>, accounts={self.accounts})"


@dataclass
class Books:
    """What the driver keeps of one account: its watch, the answers its signals got, its trader's
    actions."""

    account: Account
    watch: Watch
    answers: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    # (Idempotency-Key, the request) -> the answers it got, in the order they came (503s left out)
    action_answers: dict[tuple[str, str], list[tuple[int, Any]]] = field(default_factory=dict)
    action_requests: dict[str, tuple[str, str, dict[str, Any]]] = field(default_factory=dict)  # key -> last

    def label(self, violation: str, accounts: int) -> str:
        """The violation, naming the account when there are several ("(a) account-2: the position...")."""
        return violation if accounts < 2 else f"{violation[:4]}{self.account.name}: {violation[4:]}"


class Driver:
    def __init__(self, steps: list[Step], workdir: Path, seed: int | None, accounts: int = 1) -> None:
        self.steps = steps
        self.workdir = workdir
        self.seed = seed
        self.accounts = accounts
        self.bodies: dict[str, dict[str, Any]] = {}
        self.violations: list[str] = []
        self.crashes = 0
        # the accounts no step names: nothing is done to them but what is done to everyone (signals,
        # prices), so nothing done to the others may show in their trades (invariant (j))
        named = {int(step.get("account", 0)) % accounts for step in steps if step["op"] in ACCOUNT_OPS}
        self.untouched = [n for n in range(accounts) if n not in named] if accounts > 1 else []
        self.starts: list[float] = []  # when each account's first server started (from the run's start)
        self.step_times: list[float] = []

    async def run(self) -> RunResult:
        loop = asyncio.get_running_loop()
        random.seed(self.seed or 0)  # the exchange client's retry jitter draws from it
        clock_ms = getattr(loop, "clock_ms", lambda: int(loop.time() * 1000))
        self.world = World(self.workdir, clock_ms, self.accounts, **SERVER_SETTINGS)
        self.books = [Books(account, Watch(account.journal_path)) for account in self.world.accounts]
        for books in self.books:
            books.watch.watch_stops(books.account.sim, loop.time)
        started = loop.time()
        clock.use_source(lambda: datetime.fromtimestamp(clock_ms() / 1000, UTC))
        untouched: list[Untouched] = []
        try:
            for account in self.world.accounts:
                self.starts.append(loop.time() - started)
                await self.world.start_process(account)
            await self._run_out()
            for n, step in enumerate(self.steps, 1):
                self.step_times.append(loop.time() - started)
                if not await self._within_limit(f"step {n} ({step['op']})", self._do(step)):
                    break
                await asyncio.sleep(float(step.get("wait", 0)))
                await self._run_out()
                await self._after_step()
            else:
                end = loop.time() - started
                for index in self.untouched:
                    books = self.books[index]
                    untouched.append(Untouched(
                        index, books.account.balance, self.starts[index], self.step_times, end,
                        outcome(books.account.sim, books.account.journal_path, books.answers),
                    ))
                await self._within_limit("settling", self._settle())
        finally:
            await self.world.close()
            clock.use_source(None)
        statuses: dict[str, int] = {}
        violations = list(self.violations)
        for books in self.books:
            for answer in books.answers.values():
                key = "none" if answer is None else str(answer.get("status"))
                statuses[key] = statuses.get(key, 0) + 1
            violations += [books.label(v, self.accounts) for v in books.watch.violations]
            violations += [f"(j) {stray}" for stray in books.account.strays]
        return RunResult(
            seed=self.seed, steps=self.steps, violations=violations, simulated_s=loop.time() - started,
            signals=len(self.bodies), crashes=self.crashes, answers=statuses, accounts=self.accounts,
            untouched=untouched,
        )

    async def run_alone(self, alone: Untouched) -> dict[str, Any]:
        """The same signals, resends and price moves, at the same simulated times, met by the untouched
        account `alone` (its balance) by itself: the world without the other accounts and everything
        done to them. What its trades came to when the last step ended (`outcome`)."""
        loop = asyncio.get_running_loop()
        random.seed(self.seed or 0)
        clock_ms = getattr(loop, "clock_ms", lambda: int(loop.time() * 1000))
        self.world = World(self.workdir, clock_ms, 1, (alone.balance,), **SERVER_SETTINGS)
        account = self.world.accounts[0]
        self.books = [Books(account, Watch(account.journal_path))]
        started = loop.time()
        clock.use_source(lambda: datetime.fromtimestamp(clock_ms() / 1000, UTC))
        try:
            await asyncio.sleep(max(0.0, started + alone.start - loop.time()))
            await self.world.start_process(account)
            await asyncio.sleep(RUN_OUT_S)
            for at, step in zip(alone.step_times, self.steps, strict=True):
                if step["op"] in ACCOUNT_OPS:
                    continue
                await asyncio.sleep(max(0.0, started + at - loop.time()))
                await self._do({**step, "account": 0})
                await asyncio.sleep(RUN_OUT_S)
            await asyncio.sleep(max(0.0, started + alone.end - loop.time()))
            return outcome(account.sim, account.journal_path, self.books[0].answers)
        finally:
            await self.world.close()
            clock.use_source(None)

    async def _run_out(self) -> None:
        """With several accounts: let everything the last step started run until it waits for time to pass
        (a moment of simulated time, which passes only when nothing is left to run now)."""
        if self.accounts > 1:
            await asyncio.sleep(RUN_OUT_S)

    async def _within_limit(self, what: str, work: Awaitable[None]) -> bool:
        try:
            async with asyncio.timeout(STEP_LIMIT_S):
                await work
        except TimeoutError:
            self.violations.append(f"(g) {what} did not finish within {STEP_LIMIT_S:g} s of simulated time")
            return False
        return True

    # -- steps --------------------------------------------------------------------------------------

    def _books(self, step: Step) -> Books:
        """The books of the account the step is about (the first when it names none)."""
        return self.books[int(step.get("account", 0)) % len(self.books)]

    def _account(self, step: Step) -> Account:
        return self._books(step).account

    @staticmethod
    def _process_of(account: Account, step: Step) -> Process:
        live = account.live()
        return live[int(step.get("process", 0)) % len(live)]

    def _process(self, step: Step) -> Process:
        return self._process_of(self._account(step), step)

    async def _do(self, step: Step) -> None:
        op = step["op"]
        handler = getattr(self, f"_op_{op}")
        await handler(step)

    async def _op_signal(self, step: Step) -> None:
        """The signal goes to every account, as the fan-out sends it (each to one of its live processes)."""
        body = {"signal_id": step["id"], **step["body"]}
        self.bodies[step["id"]] = body
        for books in self.books:
            books.answers.setdefault(step["id"], None)
            process = self._process_of(books.account, step)
            process.spawn(self._post(books, process, body))

    async def _op_resend(self, step: Step) -> None:
        body = self.bodies.get(step["id"])
        if body is not None:
            for books in self.books:
                process = self._process_of(books.account, step)
                process.spawn(self._post(books, process, body))

    async def _post(self, books: Books, process: Process, body: dict[str, Any]) -> None:
        try:
            reply = await process.http.post("/api/v1/signals", json=body)
        except asyncio.CancelledError:
            raise
        except BaseException:  # the process died while answering (a Crash, possibly grouped)
            if process.alive:
                raise
            return
        if reply.status_code >= 500 and reply.status_code != 503:
            problem = f"(f) {body['signal_id']} was answered HTTP {reply.status_code}: {reply.text[:300]}"
            self.violations.append(books.label(problem, self.accounts))
        if reply.status_code in (200, 201):
            books.answers[body["signal_id"]] = reply.json()

    async def _op_action(self, step: Step) -> None:
        """A trader's action on the trade open on the step's symbol (on the step's signal if none is), in
        the step's account."""
        books = self._books(step)
        open_here = sorted(
            sid for sid, row in JournalView.read(books.account.journal_path).signals.items()
            if row["symbol"] == step["symbol"] and row["is_open"] and row["status"] == "placed"
        )
        signal_id = open_here[0] if open_here else step["id"]
        side = self.bodies.get(signal_id, {}).get("side", "long")
        request = (step["kind"], signal_id, self._action_body(books.account, step, side))
        books.action_requests[step["key"]] = request
        process = self._process(step)
        process.spawn(self._act(books, process, step["key"], *request))

    async def _op_action_again(self, step: Step) -> None:
        """The last request sent under this Idempotency-Key, sent again."""
        books = self._books(step)
        request = books.action_requests.get(step["key"])
        if request is not None:
            process = self._process(step)
            process.spawn(self._act(books, process, step["key"], *request))

    @staticmethod
    def _action_body(account: Account, step: Step, side: str) -> dict[str, Any]:
        """The request's body, its prices from the step's offsets and the market now."""
        args = step["args"]
        if step["kind"] not in ("stop", "targets") or args.get("breakeven"):
            return dict(args)
        mark = account.sim.price(step["symbol"])
        tick = account.sim.instruments[step["symbol"]].tick_size
        profit = Decimal(1) if side == "long" else Decimal(-1)

        def at(offset_pct: float) -> str:
            price = mark * (1 + profit * Decimal(str(offset_pct)) / 100)
            return str(max(tick, (price / tick).to_integral_value() * tick))

        if step["kind"] == "stop":
            return {"price": at(-args["offset_pct"])}
        return {"targets": [at(offset) for offset in args["offsets_pct"]]}

    async def _act(self, books: Books, process: Process, key: str, kind: str, signal_id: str,
                   body: dict[str, Any]) -> None:
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
            self.violations.append(books.label(f"(f) {kind} on {signal_id} was answered HTTP "
                                               f"{reply.status_code}: {reply.text[:300]}", self.accounts))
        if reply.status_code == 503:  # still busy or unclear after the bot's retries: it gave up
            return
        request = f"{kind} {signal_id} {json.dumps(body, sort_keys=True)}"
        answers = books.action_answers.setdefault((key, request), [])
        answers.append((reply.status_code, reply.json()))
        if answers[-1] != answers[0]:
            self.violations.append(books.label(f"(i) Idempotency-Key {key} ({request}) was answered "
                                               f"{answers[0]} and later {answers[-1]}", self.accounts))

    async def _op_price(self, step: Step) -> None:
        """The market moves, for every account."""
        self.world.sim.set_price(step["symbol"], Decimal(step["price"]))

    async def _op_faults(self, step: Step) -> None:
        faults = self._account(step).faults
        probability = float(step.get("probability", 0))
        if probability <= 0:
            faults.set_random(None)
            return
        faults.set_random(RandomFaults(
            probability=probability, kinds=tuple(step["kinds"]), seconds=float(step.get("seconds", 3.0)),
            path="/api/v1/", seed=int(step.get("seed", 0)),
        ))

    async def _op_fault(self, step: Step) -> None:
        """A counted fault on one path (for written reproductions; the generator uses `faults`)."""
        self._account(step).faults.add(Fault(
            kind=step["kind"], count=int(step.get("count", 1)), path=str(step.get("path", "")),
            seconds=float(step.get("seconds", 0)),
        ))

    async def _op_lag(self, step: Step) -> None:
        sim = self._account(step).sim
        if int(step["ms"]) <= 0:
            sim.lag.clear()
        else:
            sim.lag.set(int(step["ms"]), int(step.get("lookups", 0)))

    async def _op_duplicate_window(self, step: Step) -> None:
        self._account(step).sim.duplicate_window_ms = step["ms"]

    async def _op_item_faults(self, step: Step) -> None:
        probability = float(step["probability"])
        self._account(step).sim.item_faults = None if probability <= 0 else ItemFaults(
            probability=probability, code=str(step["code"]), seed=int(step["seed"])
        )

    async def _op_partial_fills(self, step: Step) -> None:
        fraction = step.get("fraction")
        self._account(step).sim.partial_fraction = None if fraction is None else Decimal(fraction)

    async def _op_crash(self, step: Step) -> None:
        self._process(step).gate.arm(int(step["after_calls"]), step["when"])

    async def _op_second_process(self, step: Step) -> None:
        account = self._account(step)
        if len(account.live()) < 2:
            await self.world.start_process(account)

    async def _op_restart(self, step: Step) -> None:
        process = self._process(step)
        await self.world.stop(process)
        await self.world.start_process(process.account)

    async def _op_sweep(self, step: Step) -> None:
        process = self._process(step)
        monitor = process.monitor
        if monitor is not None:
            process.spawn(monitor._guarded(monitor.reconcile))  # as the monitor runs it

    async def _op_hand_cancel_stops(self, step: Step) -> None:
        sim = self._account(step).sim
        for tpsl in sim.live_tpsl(step["symbol"]):
            if tpsl.spec.sl_trigger is not None:
                sim.cancel_tpsl(step["symbol"], tpsl.tpsl_id, "")

    async def _op_hand_close(self, step: Step) -> None:
        sim = self._account(step).sim
        position = sim.positions.get(step["symbol"])
        if position is not None:
            with contextlib.suppress(SimError):
                sim.close_position(step["symbol"], position.margin_mode, "")

    async def _op_hand_leverage(self, step: Step) -> None:
        """The trader changes the symbol's leverage on the exchange (refused while cross orders rest)."""
        with contextlib.suppress(SimError):
            self._account(step).sim.set_leverage(step["symbol"], int(step["leverage"]), "cross")

    async def _op_hand_transfer(self, step: Step) -> None:
        """Funds moved out of (or into) the futures account, with no push: the server's account mirror
        holds the old balance until its next read."""
        sim = self._account(step).sim
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
        for account in self.world.accounts:
            if not account.live():
                await self.world.start_process(account)  # the supervisor starts the account's server again
        loop = asyncio.get_running_loop()
        for books in self.books:
            account = books.account
            books.watch.after_step(account.sim, loop.time(), account.exchange_works(), account.downtime)

    async def _settle(self) -> None:
        """Faults stop; requests in flight finish; the monitor gets its passes; then the settled checks."""
        self.world.heal()
        for process in self.world.processes:
            process.gate.crash_at = None
        await self._after_step()
        for process in self.world.live():
            await asyncio.gather(*process.tasks, return_exceptions=True)
        self.violations += self._untouched_problems()
        problems: list[str] = []
        for _ in range(SETTLE_ROUNDS):
            for process in self.world.live():
                monitor = process.monitor
                await monitor._guarded(monitor.reconcile)  # as the monitor runs it
            await asyncio.sleep(SETTLE_ROUND_S)
            await self._ask_again()
            await self._after_step()
            problems = []
            for books in self.books:
                found = books.watch.settled_problems(books.account.sim, books.answers)
                found += self._unanswered_actions(books)
                problems += [books.label(problem, self.accounts) for problem in found]
            if not problems:
                break
        self.violations += problems
        for process in self.world.live():
            task = process.monitor._task
            if task is None or task.done():
                self.violations.append(f"(g) the position monitor of {process.name} stopped")

    def _untouched_problems(self) -> list[str]:
        """(j) an account no step named is not touched by what is done to the others: its one server never
        died, and every signal it was sent has its final answer from that first request (no retry needed),
        before the run settles. (Its stops are held to (a) without excuse: its exchange always works.)"""
        problems = []
        for n in self.untouched:
            books = self.books[n]
            account = books.account
            if account.started != 1 or not account.live():
                problems.append(f"(j) {account.name}, which no step touched, lost its server")
            for signal_id, answer in books.answers.items():
                if answer is None or answer.get("status") not in ("placed", "rejected", "failed"):
                    problems.append(f"(j) {account.name}, which no step touched, has no final answer for "
                                    f"{signal_id} ({answer})")
        return problems

    async def _ask_again(self) -> None:
        """The bot asks once more for every signal (same body), and the trader once more for every action
        (same key, same request), as the API asks of a client that got no final answer."""
        for books in self.books:
            process = books.account.live()[0]
            for body in self.bodies.values():
                await self._post(books, process, body)
            for key, request in books.action_requests.items():
                await self._act(books, process, key, *request)

    @staticmethod
    def _unanswered_actions(books: Books) -> list[str]:
        """(i) every action has its final answer once the run has settled."""
        answered = {key for key, _ in books.action_answers}
        return [f"(i) the action under Idempotency-Key {key} ({kind} on {signal_id}) has no final answer"
                for key, (kind, signal_id, _) in books.action_requests.items() if key not in answered]


async def _run(steps: list[Step], seed: int | None, accounts: int) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="hit-sim-") as tmp:
        return await Driver(steps, Path(tmp), seed, accounts).run()


async def _run_alone(steps: list[Step], seed: int | None, alone: Untouched) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hit-sim-") as tmp:
        return await Driver(steps, Path(tmp), seed).run_alone(alone)


def run_steps(steps: list[Step], seed: int | None = None, accounts: int = 1) -> RunResult:
    """Run these steps on a fresh world of `accounts` accounts and a fresh virtual clock; then, for each
    account no step touched, the same signals and prices against it alone, to compare (invariant (j))."""
    epoch = time.time()
    result = run_virtual(_run(steps, seed, accounts), epoch_s=epoch)
    for alone in result.untouched:
        by_itself = run_virtual(_run_alone(steps, seed, alone), epoch_s=epoch)
        found = differences(alone.outcome, by_itself)
        if found:
            result.violations.append(
                f"(j) account-{alone.index}, which no step touched, came out otherwise beside the others "
                f"than alone with the same signals and prices (beside, alone): {json.dumps(found)[:800]}"
            )
    return result


def run_seed(seed: int, length: int = 60, accounts: int = 1) -> RunResult:
    return run_steps(generate(seed, length, accounts), seed, accounts)


def _same_failure(result: RunResult, letters: set[str]) -> bool:
    return any(v[:3] in letters for v in result.violations)


def minimize(steps: list[Step], violations: list[str], accounts: int = 1) -> list[Step]:
    """A shorter list of steps that still breaks one of the same invariants (by their letter), in a
    world of as many accounts."""
    letters = {v[:3] for v in violations}
    current = list(steps)
    chunk = max(1, len(current) // 2)
    while chunk >= 1:
        start = 0
        while start < len(current):
            candidate = current[:start] + current[start + chunk:]
            if candidate and _same_failure(run_steps(candidate, accounts=accounts), letters):
                current = candidate
            else:
                start += chunk
        chunk //= 2
    return current
