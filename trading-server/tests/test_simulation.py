"""The whole-system simulation (hit_server.simulation): its machinery, and a bounded set of seeds that
must all hold every money invariant (the long run is `python -m hit_server.simulation --seeds 2000`)."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hit_server.blofin_sim.models import OrderParams
from hit_server.simulation import driver
from hit_server.simulation.clock import run_virtual
from hit_server.simulation.driver import run_seed, run_steps
from hit_server.simulation.invariants import Watch
from hit_server.simulation.steps import ACCOUNT_OPS, Generator, generate
from hit_server.simulation.world import World

# The suite's share of the simulation: about 2 minutes of the 15 a CI run may take. The long runs are
# `python -m hit_server.simulation --seeds 2000` (and `--accounts 3`), or these variables set higher.
CI_SEEDS = int(os.environ.get("HIT_SIMULATION_SEEDS", "75"))
# Seeds run with three accounts on the one simulator (the fleet, issue #19): each costs about three
# one-account seeds and a fourth for the untouched account's run alone, so fewer, for the same total time.
FLEET_SEEDS = int(os.environ.get("HIT_SIMULATION_FLEET_SEEDS", "8"))
FLEET_ACCOUNTS = 3
# Seeds per test. Small enough that a test stays far below the suite's 120 s timeout on a busy machine:
# 25 seeds took ~18 s on a quiet one and over 120 s with both cores loaded (CPU hogs and another suite).
CHUNK = 5

MARKET_LONG: dict[str, Any] = {
    "op": "signal", "id": "held-1", "process": 0, "wait": 1.0,
    "body": {"side": "long", "symbol": "BTC-USDT", "entries": [], "stop_loss": "58000",
             "take_profits": ["62000", "64000"]},
}


def _sleep_and_say(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_virtual_clock_jumps_to_the_next_timer_and_still_waits_for_threads() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(3600)
        async with asyncio.timeout(5):
            await asyncio.gather(asyncio.sleep(1), asyncio.sleep(2))
        slept = await loop.run_in_executor(None, _sleep_and_say, 0.05)
        assert slept == 0.05
        return loop.time(), loop.clock_ms()  # type: ignore[attr-defined]

    started = time.monotonic()
    virtual, clock_ms = run_virtual(main(), epoch_s=1_000.0)
    assert virtual == pytest.approx(3602.0)
    assert clock_ms == pytest.approx(4_602_000, abs=1)
    assert time.monotonic() - started < 30  # an hour and more of virtual time, not of real time


def test_virtual_clock_stands_still_while_a_thread_works() -> None:
    """A timer due in 10 virtual seconds must not fire while a worker thread (50 ms of real time) is
    still at work: the clock ran ahead of a journal checkpoint once (seeds 55, 138, 273)."""
    async def main() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        first: list[str] = []
        loop.call_later(10, first.append, "timer")
        await loop.run_in_executor(None, _sleep_and_say, 0.05)
        first.append("thread")
        await asyncio.sleep(11)
        return first[0], loop.time()

    first, virtual = run_virtual(main())
    assert first == "thread"
    assert virtual == pytest.approx(11, abs=0.01)


def test_generator_is_a_function_of_the_seed() -> None:
    assert generate(7, 40) == generate(7, 40)
    assert generate(7, 40) != generate(8, 40)
    ops = {step["op"] for seed in range(30) for step in generate(seed, 60)}
    assert {"signal", "resend", "price", "faults", "crash", "second_process", "hand_cancel_stops"} <= ops


def test_accounts_change_only_who_a_step_is_about() -> None:
    """With several accounts a seed's steps are its one-account steps, each step about one account naming
    one, never the run's untouched account; with one account nothing names any (the runs of every seed
    are what they were before the fleet)."""
    for seed in range(20):
        alone, fleet = generate(seed, 60), generate(seed, 60, 3)
        assert alone == generate(seed, 60, 1)
        assert all("account" not in step for step in alone)
        assert [{k: v for k, v in step.items() if k != "account"} for step in fleet] == alone
        untouched = Generator(seed, 60, 3).untouched
        for step in fleet:
            assert ("account" in step) == (step["op"] in ACCOUNT_OPS)
            assert step.get("account") != untouched


def test_same_seed_same_run() -> None:
    first, second = run_seed(3, 40), run_seed(3, 40)
    assert (first.answers, first.violations) == (second.answers, second.violations)
    assert first.crashes == second.crashes
    assert first.simulated_s == pytest.approx(second.simulated_s)


def test_a_placed_trade_survives_a_hand_cancelled_stop() -> None:
    """The monitor puts back a stop the trader cancelled by hand, within the naked-window bound."""
    result = run_steps([MARKET_LONG, {"op": "hand_cancel_stops", "symbol": "BTC-USDT", "wait": 5.0}])
    assert result.answers == {"placed": 1}
    assert result.ok, result.violations


def test_watch_reports_a_position_left_without_its_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The invariants can fail: with the monitor kept from running, the naked position is reported."""
    monkeypatch.setitem(driver.SERVER_SETTINGS, "monitor_websocket", False)
    monkeypatch.setitem(driver.SERVER_SETTINGS, "monitor_poll_seconds", 300.0)
    monkeypatch.setitem(driver.SERVER_SETTINGS, "reconcile_minutes", 60.0)
    monkeypatch.setattr(driver, "SETTLE_ROUNDS", 0)
    result = run_steps([MARKET_LONG, {"op": "hand_cancel_stops", "symbol": "BTC-USDT", "wait": 5.0}])
    assert any(v.startswith("(a) the position on BTC-USDT") for v in result.violations), result.violations


def test_a_step_that_never_finishes_is_reported_not_run_forever(monkeypatch: pytest.MonkeyPatch) -> None:
    """Liveness is an invariant too: a step stuck for good (seed 163 once: a server whose clean shutdown
    waited forever for its monitor) ends the run with a (g) violation instead of hanging the suite."""
    async def stuck(self: driver.Driver, step: dict[str, Any]) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(driver.Driver, "_op_restart", stuck)
    started = time.monotonic()
    result = run_steps([MARKET_LONG, {"op": "restart", "process": 0, "wait": 0.0}])
    assert result.violations == [f"(g) step 2 (restart) did not finish within {driver.STEP_LIMIT_S:g} s of "
                                 "simulated time"]
    assert time.monotonic() - started < 60


def test_watch_reports_an_order_sent_twice() -> None:
    """A duplicate clientOrderId the exchange accepts again is caught, whoever sent it."""
    async def main() -> list[str]:
        with tempfile.TemporaryDirectory() as tmp:
            world = World(Path(tmp), asyncio.get_running_loop().clock_ms)  # type: ignore[attr-defined]
            await world.start_process()
            world.sim.duplicate_window_ms = 0
            cid = "0123456789abcdef01234567e1"
            for _ in range(2):
                world.sim.place_order(OrderParams(
                    inst_id="BTC-USDT", side="buy", order_type="limit", size=Decimal(1),
                    price=Decimal(50000), margin_mode="cross", client_order_id=cid,
                ))
            watch = Watch(Path(tmp) / "journal.db")
            watch.after_step(world.sim, 0.0, True)
            await world.close()
            return watch.violations

    violations = run_virtual(main())
    assert any("reached the exchange 2 times" in v for v in violations), violations
    assert any("without being recorded in the journal" in v for v in violations), violations


FLEET_STEPS: list[dict[str, Any]] = [
    {"op": "faults", "account": 1, "probability": 0.3, "kinds": ["http_5xx", "drop_reply", "timeout"],
     "seed": 7, "wait": 0.0},
    {"op": "crash", "account": 1, "process": 0, "after_calls": 2, "when": "before", "wait": 0.0},
    MARKET_LONG,
    {"op": "signal", "id": "held-2", "process": 0, "wait": 1.0, "body": {
        "side": "short", "symbol": "ETH-USDT", "entries": ["3030"], "stop_loss": "3150",
        "take_profits": ["2900", "2800"]}},
    {"op": "hand_cancel_stops", "account": 0, "symbol": "BTC-USDT", "wait": 0.0},
    {"op": "price", "symbol": "ETH-USDT", "price": "3035", "wait": 3.0},
    {"op": "hand_close", "account": 0, "symbol": "BTC-USDT", "wait": 2.0},
    {"op": "price", "symbol": "BTC-USDT", "price": "61000", "wait": 5.0},
]


def test_accounts_side_by_side_keep_to_their_own_trades() -> None:
    """Three accounts get the same two signals; one has faults and a crash, one a trader's hand, the third
    nothing: each holds every invariant on its own journal and engine, each is sized from its own
    equity, and the third comes out exactly as it does alone (invariant (j))."""
    result = run_steps(FLEET_STEPS, accounts=3)
    assert result.ok, result.violations
    assert result.crashes >= 1
    assert [alone.index for alone in result.untouched] == [2]
    assert result.untouched[0].outcome["answers"] == {"held-1": "placed", "held-2": "placed"}
    assert result.answers == {"placed": 6}


def test_a_hand_that_reaches_another_account_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Invariant (j) can fail: a trader's hand closing the position on every account, not only its own,
    changes the untouched account's trades, which then differ from its run alone."""
    async def close_everywhere(self: driver.Driver, step: dict[str, Any]) -> None:
        for books in self.books:
            sim = books.account.sim
            position = sim.positions.get(step["symbol"])
            if position is not None:
                sim.close_position(step["symbol"], position.margin_mode, "")

    monkeypatch.setattr(driver.Driver, "_op_hand_close", close_everywhere)
    result = run_steps(FLEET_STEPS, accounts=3)
    reported = "(j) account-2, which no step touched, came out otherwise"
    assert any(v.startswith(reported) for v in result.violations), result.violations


def test_a_request_signed_for_another_account_is_reported() -> None:
    """Invariant (j) on each request: a server of account 1 that signs with account 0's key acts on account
    0's engine, and its gate says so from its first request (reading its balance as it starts)."""
    async def main() -> list[str]:
        with tempfile.TemporaryDirectory() as tmp:
            world = World(Path(tmp), asyncio.get_running_loop().clock_ms, 2)  # type: ignore[attr-defined]
            first, second = world.accounts
            second.api_key, second.api_secret = first.api_key, first.api_secret
            second.passphrase = first.passphrase
            await world.start_process(second)  # it reads its balance and positions as it starts
            await world.close()
            return second.strays

    strays = run_virtual(main())
    assert strays and all("acted on another account's engine" in stray for stray in strays), strays


# Runs the simulation found breaking an invariant, shrunk by `python -m hit_server.simulation --seed N
# --minimize`; each failed on the code of its day and must hold from now on.
REGRESSIONS: dict[str, list[dict[str, Any]]] = {
    # seed 3: two processes on one journal each followed the BTC trade and each reported its close
    # (counted twice in /stats); fixed by saving trades under optimistic concurrency (trade_book.py)
    "two processes report a close once": [
        {"op": "signal", "id": "sim-3-2", "process": 0, "wait": 27.508, "body": {
            "side": "long", "symbol": "SOL-USDT", "entries": ["152.016"], "stop_loss": "140.228",
            "take_profits": ["162.732", "171.232", "183.033", "196.212"]}},
        {"op": "second_process", "wait": 0.606},
        {"op": "signal", "id": "sim-3-3", "process": 1, "wait": 1.768, "body": {
            "side": "short", "symbol": "BTC-USDT", "entries": [], "stop_loss": "61017.9",
            "take_profits": ["59172.3", "58721.4", "57485.6"]}},
        {"op": "price", "symbol": "BTC-USDT", "price": "56267.2", "wait": 2.808},
    ],
    # seed 15: a market entry answered 503 (not carried out) was left "unknown": the grace before
    # absence counts as proof passed on the real clock only; fixed by one server clock (clock.py)
    "an entry that never arrived is answered failed after the grace": [
        {"op": "faults", "probability": 0, "wait": 5.0},  # the start's sweep reads orders-pending first
        {"op": "fault", "kind": "http_5xx", "path": "/api/v1/trade/order", "wait": 0.0},
        {"op": "signal", "id": "sim-15-8", "process": 0, "wait": 1.0, "body": {
            "side": "short", "symbol": "SOL-USDT", "entries": [], "stop_loss": "155.985",
            "take_profits": ["149.319", "145.355", "142.950"]}},
    ],
    # seed 125: the trader cancelled the stop, the server crashed in its next pass (repairing it) and
    # the supervisor started it again only 15 s later; invariant (a) charged the server for the time no
    # server ran. Fixed in the simulation: time without a live server process is not counted (World)
    "a naked window while no server runs is not the server's": [
        {"op": "signal", "id": "sim-125-3", "process": 0, "wait": 0.0, "body": {
            "side": "long", "symbol": "BTC-USDT", "entries": [], "stop_loss": "55161.0",
            "take_profits": ["62472.7", "66207.5", "73274.5"], "leverage": 3}},
        {"op": "sweep", "process": 0, "wait": 0.289},
        {"op": "crash", "process": 0, "after_calls": 1, "when": "before", "wait": 0.0},
        {"op": "hand_cancel_stops", "symbol": "BTC-USDT", "wait": 0.0},
        {"op": "price", "symbol": "BTC-USDT", "price": "65646.1", "wait": 15.137},
    ],
    # seed 319: a targets action cancelled TP1 and its process crashed before placing the new targets;
    # its retry under the same key was refused (the price had passed a new target meanwhile), leaving the
    # position short of targets. Fixed: a retry of a begun replacement finishes it (action_targets.py)
    "a targets replacement cut off by a crash is finished by its retry": [
        {"op": "faults", "probability": 0.28, "kinds": ["http_429", "timeout", "http_5xx"], "seed": 991211,
         "wait": 1.276},
        {"op": "signal", "id": "sim-319-1", "process": 0, "wait": 0.0, "body": {
            "side": "short", "symbol": "SOL-USDT", "entries": [], "stop_loss": "153.947",
            "take_profits": ["148.566", "142.712", "140.627", "138.511", "133.940"]}},
        {"op": "price", "symbol": "DOGE-USDT", "price": "0.15637", "wait": 1.419},
        {"op": "action", "kind": "targets", "symbol": "SOL-USDT", "id": "sim-319-1", "key": "key-319-1",
         "process": 1, "args": {"offsets_pct": [2.745, 5.789, 6.862]}, "wait": 0.0},
        {"op": "crash", "process": 0, "after_calls": 6, "when": "before", "wait": 4.615},
        {"op": "price", "symbol": "SOL-USDT", "price": "141.145", "wait": 22.606},
    ],
}


# Found by the simulation with three accounts (seed 47, `--accounts 3`: a faulted account's partial close),
# shrunk by hand to one account and no faults. A partial close closes half at market, then cancels the
# targets to re-split them over what is left; its process dies just after the exchange cancelled the
# second target (request 23, carried out), before the journal recorded the cancels or the new targets.
# The restarted process's first monitor pass finds both targets cancelled on the exchange and writes them
# "canceled"; the retried close (same Idempotency-Key) found its close sent and no resting target to
# re-split, and placed nothing: the 41.7 contracts left kept their stop and no target, for good
# (invariant (d)). Fixed: a resumed close re-splits the latest cancelled target of each number too
# (action_kit.py `_replace_targets`, `resumed`); 81fbfd5 had mended only the retry that comes before
# that pass (test_simulation_partial_close_crash.py).
REGRESSIONS["a partial close cut off by a crash after cancelling a target keeps the rest covered"] = [
    MARKET_LONG,
    {"op": "crash", "process": 0, "after_calls": 8, "when": "after", "wait": 0.0},
    {"op": "action", "kind": "close", "symbol": "BTC-USDT", "id": "held-1", "key": "close-half",
     "process": 0, "args": {"fraction": "0.5"}, "wait": 5.0},
]


@pytest.mark.parametrize("name", REGRESSIONS)
def test_simulation_regression_holds(name: str) -> None:
    result = run_steps(REGRESSIONS[name])
    assert result.signals > 0
    assert result.ok, result.violations


# Seeds of the CI range that once broke an invariant, and the defect each found (all fixed; the seeds
# run below like every other): 130 (a fill batch's id derived twice, at two sizes, after a crash),
# 170 (a second process's stale pass ended a filled trade and cancelled its targets), 188 (a stale
# reconciliation re-opened a signal whose trade had closed).


@pytest.mark.parametrize("first", range(0, CI_SEEDS, CHUNK))
def test_simulation_seeds_hold_every_invariant(first: int) -> None:
    failures = []
    for seed in range(first, min(first + CHUNK, CI_SEEDS)):
        result = run_seed(seed)
        if not result.ok:
            failures.append(f"seed {seed}: {result.violations}\n  again: {result.reproduction()} --show")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("seed", range(FLEET_SEEDS))
def test_simulation_seeds_hold_every_invariant_with_several_accounts(seed: int) -> None:
    """The fleet's accounts side by side on one market: every invariant per account, and isolation (j)."""
    result = run_seed(seed, accounts=FLEET_ACCOUNTS)
    assert result.ok, f"seed {seed}: {result.violations}\n  again: {result.reproduction()} --show"
