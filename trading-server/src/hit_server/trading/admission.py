"""Admission of concurrent signals: the limits that span signals (one trade per symbol,
MAX_OPEN_POSITIONS) must hold when signals with different ids arrive at once.

Reading the market is slow (exchange calls, the journal), so it is not done under a lock. Instead,
a signal the risk engine accepts *reserves* its symbol in a synchronous step (no await between the
check and the reservation, so no other signal can interleave). Each market read starts a `Snapshot`;
a reservation counts against every snapshot that started before the reservation was released, i.e.
before its trade was visible on the exchange and in the journal. So a read that is too old to show
a trade still sees its reservation, and a read new enough to show the trade does not count it twice.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from hit_server.risk.engine import MarketView

RELEASED_KEPT_S = 600.0  # a market read older than this would be refused anyway (it would be stale)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The moment a market read started."""

    started: float


class Admission:
    """Reservations not yet released, by signal_id, and released ones in the order of their release
    (the clock is monotonic), so a market read only looks at those released after it started: the
    cost of a check follows the signals in flight, not how many passed in the last RELEASED_KEPT_S."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._held: dict[str, str] = {}  # signal_id -> symbol
        self._released: deque[tuple[float, str]] = deque()  # (released at, symbol), oldest first

    def snapshot(self) -> Snapshot:
        """Call right before reading the market for a signal."""
        return Snapshot(self._clock())

    def with_reservations(self, market: MarketView, snapshot: Snapshot) -> MarketView:
        """The market as `assess` must see it: plus every reservation this read may not show yet."""
        pending = set(self._held.values())
        for released_at, symbol in reversed(self._released):
            if released_at < snapshot.started:
                break
            pending.add(symbol)
        unseen = pending - market.symbols_with_open_trade
        if not unseen:
            return market
        return replace(
            market,
            symbols_with_open_trade=market.symbols_with_open_trade | unseen,
            open_positions=market.open_positions + len(unseen),
        )

    def reserve(self, signal_id: str, symbol: str) -> None:
        """Must follow `with_reservations` + `assess` without an await in between."""
        self._prune()
        self._held[signal_id] = symbol

    def release(self, signal_id: str) -> None:
        """Call once the trade's outcome is stored (visible to any market read that starts later)."""
        symbol = self._held.pop(signal_id, None)
        if symbol is not None:
            self._released.append((self._clock(), symbol))

    def _prune(self) -> None:
        horizon = self._clock() - RELEASED_KEPT_S
        while self._released and self._released[0][0] < horizon:
            self._released.popleft()
