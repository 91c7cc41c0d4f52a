"""Virtual time for the whole-system simulation: an asyncio event loop whose clock jumps ahead.

Everything the simulation runs (the server's HTTP app, its journal on SQLite, the position monitor and
the BloFin simulator reached in-process) lives on one event loop and touches no socket. So whenever
every task is waiting for a timer, nothing can happen until that timer fires, and the loop may as well
move its clock straight to it instead of sleeping. A monitor that polls every 5 s, a client that waits
2 s for a reply that never comes and an hour of price moves then cost only the work they do.

Only the loop's clock is virtual (`loop.time()`, which `asyncio.sleep`, `asyncio.timeout` and
`call_later` use). Wall-clock reads (`time.time`, `datetime.now`) stay real; the simulation gives the
exchange simulator the virtual clock (`VirtualTimeLoop.clock_ms`).

While work runs on a worker thread (`run_in_executor`, e.g. the journal's background checkpoint) the
clock stands still: the loop waits on its real selector for the thread's wake-up, as any loop does.
Jumping ahead meanwhile would let timers fire "after" a wait that never happened (found by the
simulation, seeds 55, 138, 273: a server shutting down waited for a checkpoint that took 10 ms of real
time, during which the clock ran 900 s ahead).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    """A selector that, asked to wait `timeout` seconds, looks for ready events without waiting and,
    finding none, moves the loop's virtual clock `timeout` seconds ahead."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        assert self.loop is not None  # noqa: S101 - set by the loop that owns this selector
        if self.loop.threads_at_work:
            return super().select(timeout)  # real time: a thread's wake-up is on its way
        ready = super().select(0)
        if ready or timeout is None or timeout <= 0:
            if not ready and timeout is None:
                return super().select(None)  # nothing scheduled: only a thread's wake-up can come
            return ready
        self.loop.advance(timeout)
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time. `loop.time()` starts at 0, like a monotonic clock (a large start
    would leave the loop's clock resolution below a float's precision, and a timer due "now" would
    never be due); `clock_ms()` is that time counted from `epoch_s` (e.g. the real time at start)."""

    def __init__(self, epoch_s: float = 0.0) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self
        self._now = 0.0
        self._epoch_s = epoch_s
        self.threads_at_work = 0

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> asyncio.Future[Any]:  # type: ignore[override]
        future = super().run_in_executor(executor, func, *args)
        self.threads_at_work += 1
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, _future: asyncio.Future[Any]) -> None:
        self.threads_at_work -= 1

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def clock_ms(self) -> int:
        """The virtual time in milliseconds, for the exchange simulator's clock."""
        return int((self._epoch_s + self._now) * 1000)


def run_virtual(main: Coroutine[Any, Any, T], epoch_s: float = 0.0) -> T:
    """Run `main` to completion on a fresh virtual-time loop, then close the loop."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(epoch_s)) as runner:
        return runner.run(main)
