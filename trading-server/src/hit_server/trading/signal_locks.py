"""One asyncio lock per signal_id in flight: a signal is carried out, replayed or reconciled by one
task of a process at a time (`TradingService.submit`, `reconcile.reconcile_pending`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class SignalLocks:
    """One asyncio.Lock per signal_id in flight, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._idle = asyncio.Event()  # set while no lock is held or waited for
        self._idle.set()

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        self._idle.clear()
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
            if not self._locks:
                self._idle.set()

    @property
    def idle(self) -> bool:
        """Whether no signal is being carried out, replayed or reconciled in this process."""
        return not self._locks

    async def until_idle(self, within: float) -> None:
        """Wait until `idle`, at most `within` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._idle.wait()

    def busy(self, key: str) -> bool:
        """Whether someone in this process holds or waits for this signal_id's lock (is carrying
        the signal out, or replaying it)."""
        return key in self._locks
