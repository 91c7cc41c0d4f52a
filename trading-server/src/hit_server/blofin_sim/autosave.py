"""Keeping a simulator's saved account (`persist.py`) current while it runs, off the request path.

The engine calls its subscribers inside every change, i.e. inside the request that made it; the
subscriber here only marks the account dirty. A background task writes the file within `interval_s`
of a change (one write for any number of changes in between) and once more on `close()`, so a clean
stop loses nothing and a crash loses at most the last fraction of a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

from .engine import Simulator
from .models import SimEvent
from .persist import Encoder, write_atomically

log = logging.getLogger(__name__)

SAVE_INTERVAL_S = 0.25  # a change reaches the file within this (plus the time of one write)
LOOP_SHARE_FACTOR = 9  # the pause after a save, in multiples of the time it held the event loop


class AutoSave:
    """Writes the simulator's account to `path` soon after changes and on `close()`.

    The text is built on the event loop (a consistent picture: the in-process simulator changes only
    on the loop) and written by a worker thread. The pause after a save is at least
    LOOP_SHARE_FACTOR times what building the text took, so saving holds the event loop, and the
    requests waiting on it, for at most a tenth of the time however large the account grows."""

    def __init__(self, sim: Simulator, path: Path, *, interval_s: float = SAVE_INTERVAL_S) -> None:
        self.sim = sim
        self.path = path
        self.interval_s = interval_s
        self.dirty = False
        self.saves = 0
        self.pause_s = interval_s
        self._encoder = Encoder()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _changed(self, _event: SimEvent) -> None:
        self.dirty = True  # inside the request that made the change: nothing more

    async def start(self) -> None:
        """Write the account now (an unwritable place fails here, at start), then follow changes."""
        await self.save()
        self.sim.subscribe(self._changed)
        self._task = asyncio.create_task(self._run(), name="paper-exchange-autosave")

    async def _run(self) -> None:
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.pause_s):
                    await self._closing.wait()
            if self.dirty and not self._closing.is_set():
                await self._save_or_warn()

    async def _save_or_warn(self) -> None:
        try:
            await self.save()
        except OSError as exc:
            self.dirty = True
            log.error("The paper exchange could not be saved to %s (%s); retrying", self.path, exc)

    async def save(self) -> None:
        self.dirty = False
        started = time.perf_counter()
        text = self._encoder.dumps(self.sim)
        self.pause_s = max(self.interval_s, LOOP_SHARE_FACTOR * (time.perf_counter() - started))
        await asyncio.to_thread(write_atomically, self.path, text)
        self.saves += 1

    async def close(self) -> None:
        """Stop following changes and write the account a last time (prices included: a price move
        alone is no event)."""
        self._closing.set()
        if self._task is not None:
            await self._task
        with contextlib.suppress(ValueError):
            self.sim.subscribers.remove(self._changed)
        await self._save_or_warn()
