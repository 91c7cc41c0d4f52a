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
from collections.abc import Callable
from dataclasses import dataclass, replace

from hit_server.risk import MarketView

RELEASED_KEPT_S = 600.0  # a market read older than this would be refused anyway (it would be stale)


@dataclass
class _Reservation:
    symbol: str
    released_at: float | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The moment a market read started."""

    started: float


class Admission:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._reservations: dict[str, _Reservation] = {}

    def snapshot(self) -> Snapshot:
        """Call right before reading the market for a signal."""
        return Snapshot(self._clock())

    def with_reservations(self, market: MarketView, snapshot: Snapshot) -> MarketView:
        """The market as `assess` must see it: plus every reservation this read may not show yet."""
        pending = {
            r.symbol
            for r in self._reservations.values()
            if r.released_at is None or r.released_at >= snapshot.started
        }
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
        self._reservations[signal_id] = _Reservation(symbol)

    def release(self, signal_id: str) -> None:
        """Call once the trade's outcome is stored (visible to any market read that starts later)."""
        reservation = self._reservations.get(signal_id)
        if reservation is not None and reservation.released_at is None:
            reservation.released_at = self._clock()

    def _prune(self) -> None:
        horizon = self._clock() - RELEASED_KEPT_S
        stale = [
            sid
            for sid, r in self._reservations.items()
            if r.released_at is not None and r.released_at < horizon
        ]
        for signal_id in stale:
            del self._reservations[signal_id]
