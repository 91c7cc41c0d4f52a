"""Client-side rate limiting for BloFin, so callers wait instead of getting the IP banned.

BloFin allows per IP 500 requests a minute and 1500 per 5 minutes (a breach suspends the IP for 5
minutes or an hour), and per account 30 requests to its trading APIs (everything under
`/api/v1/trade/`, order lookups and pending-order listings included, as the simulator counts them) per
10 seconds.

Each limit is a sliding window of the requests BloFin may be counting: one counts from the moment it
is let through until a period after its answer came back (`RateLimiter.sending`). BloFin counts a
request from its arrival, which lies between those two moments however long it waited in between (in
the connection pool, on a loaded machine, on the network), so BloFin's count is never above ours and a
new request goes out only while ours is below the limit. Unlike a refilling token bucket, this never
lets `2 x limit` through across a window edge, which is what BloFin would punish. Waiters are served in
arrival order (one lock per window). Clock and sleep are injected so tests run on fake time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

TRADE_PREFIX = "/api/v1/trade/"

# Every window is kept this much longer than BloFin's: for the difference between BloFin's clock and
# ours over a period, and for a window that BloFin may close on a boundary of its own.
ARRIVAL_MARGIN_S = 0.5
# A window whose every slot is taken by requests still waiting for their answer looks again this often.
IN_FLIGHT_POLL_S = 0.05


class SlidingWindow:
    """At most `limit` requests counted at once, `limit` 0 meaning unlimited: those in flight (`begin`,
    not yet `end`) and those that ended less than `period` seconds ago."""

    def __init__(self, limit: int, period: float, *, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        if limit < 0 or period <= 0:
            raise ValueError(f"a rate window needs limit >= 0 and period > 0, got {limit}/{period}s")
        self.limit = limit
        self.period = period
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()  # when the ended requests ended, oldest first
        self.in_flight = 0
        self.lock = asyncio.Lock()

    def wait_needed(self, now: float) -> float:
        """Seconds until one more request may go out (0 when it may go now)."""
        if self.limit == 0:
            return 0.0
        while self._sent and self._sent[0] <= now - self.period:
            self._sent.popleft()
        over = len(self._sent) + self.in_flight - self.limit  # slots to free before one more
        if over < 0:
            return 0.0
        if over >= len(self._sent):  # in-flight requests hold the slots: wait for answers
            return IN_FLIGHT_POLL_S
        return self._sent[over] + self.period - now

    async def wait_for_slot(self) -> tuple[float, float]:
        """Wait (the caller holds `lock`) until a slot is free; returns (seconds waited, now)."""
        waited = 0.0
        while True:
            now = self._clock()
            wait = self.wait_needed(now)
            if wait <= 0:
                return waited, now
            await self._sleep(wait)
            waited += wait

    def record(self, now: float) -> None:
        """A request that went out and was answered at `now`."""
        if self.limit:
            self._sent.append(now)

    def begin(self) -> None:
        """A request goes out: counted until a period after its `end`."""
        if self.limit:
            self.in_flight += 1

    def end(self, now: float) -> None:
        """Its answer came (or it was given up) at `now`."""
        if self.limit:
            self.in_flight -= 1
            self._sent.append(now)

    def sent(self, now: float) -> list[float]:
        """The requests still counted, by when they ended (the clock's times, oldest first; those in
        flight as ending `now`)."""
        self.wait_needed(now)  # drops those out of the window
        return [*self._sent, *[now] * self.in_flight]

    def room_at(self, at: float) -> int | None:
        """How many more sends this window allowed at clock time `at` (None: unlimited)."""
        if self.limit == 0:
            return None
        return max(0, self.limit - sum(1 for sent in self._sent if at - self.period < sent <= at))

    def seed(self, times: list[float]) -> None:
        """Count sends made elsewhere (another process on this IP, before this one took over) at `times`."""
        if self.limit:
            self._sent = deque(sorted([*self._sent, *times]))

    async def acquire(self) -> float:
        """Wait for a slot and take it, for a request answered at once. Returns the seconds waited."""
        async with self.lock:
            waited, now = await self.wait_for_slot()
            self.record(now)
            return waited


class RateLimiter:
    """BloFin's REST limits for one account (one limiter per client; the client is per account). The
    IP's limits are the IP's: accounts traded from one process share them (`for_another_account`)."""

    def __init__(
        self,
        *,
        per_minute: int = 500,
        per_5_minutes: int = 1500,
        trade_per_10s: int = 30,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        margin = ARRIVAL_MARGIN_S
        self._overall = (
            SlidingWindow(per_minute, 60.0 + margin, clock=clock, sleep=sleep),
            SlidingWindow(per_5_minutes, 300.0 + margin, clock=clock, sleep=sleep),
        )
        self._trade = SlidingWindow(trade_per_10s, 10.0 + margin, clock=clock, sleep=sleep)
        self._clock = clock
        self._sleep = sleep

    def for_another_account(self) -> RateLimiter:
        """A limiter for another account sending from the same IP address: a trade window of its own,
        this one's per-IP windows (a fleet worker's accounts, issue #19)."""
        other = RateLimiter(
            per_minute=0, per_5_minutes=0, trade_per_10s=self._trade.limit,
            clock=self._clock, sleep=self._sleep,
        )
        other._overall = self._overall
        return other

    def ip_usage(self, wall_now: float) -> dict[int, int]:
        """This IP's sends still counted by its longest window, per wall-clock second: what a fleet
        worker hands to the next one to send from this IP (`fleet/lease.py`)."""
        now = self._clock()
        usage: dict[int, int] = {}
        for at in self._overall[1].sent(now) or self._overall[0].sent(now):
            second = int(wall_now - (now - at))
            usage[second] = usage.get(second, 0) + 1
        return usage

    def ip_share_used(self) -> float:
        """The largest share of its limit any of this IP's windows counts now (0.0 when unlimited): what
        a fleet worker's background reads look at before they spend the IP's budget."""
        now = self._clock()
        return max((len(window.sent(now)) / window.limit for window in self._overall if window.limit),
                   default=0.0)

    def seed_ip_usage(self, usage: dict[int, int], wall_now: float) -> None:
        """Count what another process sent from this IP (`ip_usage` of it) in this one's IP windows."""
        now = self._clock()
        times = [now - (wall_now - (second + 0.5)) for second, count in usage.items() for _ in range(count)]
        for window in self._overall:
            window.seed([at for at in times if at > now - window.period])

    def assume_ip_sent_all_it_could(self, until_wall: float, wall_now: float) -> int:
        """Another process may have sent from this IP, unrecorded, up to wall-clock time `until_wall`
        (a fleet worker that stopped without handing its usage over, `fleet/lease.py`): count as sent
        at that moment as many requests as the IP's windows still allowed then. Returns that count."""
        now = self._clock()
        at = now - (wall_now - until_wall)
        covering = [window for window in self._overall if window.limit and at > now - window.period]
        if not covering:  # long enough ago to count in no window any more
            return 0
        # bounded by every window at that moment (a window whose older sends were already dropped here
        # shows more room than it had: the guess only errs on the side of waiting longer)
        assumed = min(room for window in self._overall if (room := window.room_at(at)) is not None)
        for window in covering:
            window.seed([at] * assumed)
        return assumed

    @classmethod
    def unlimited(cls) -> RateLimiter:
        """No limits: for benchmarks and tests against the local simulator only."""
        return cls(per_minute=0, per_5_minutes=0, trade_per_10s=0)

    @staticmethod
    def is_trade(method: str, path: str) -> bool:
        """Counted against the per-account trading limit: reads of the trading APIs as well as writes."""
        del method  # the method does not matter: BloFin counts its trading APIs, not their writes
        return path.startswith(TRADE_PREFIX)

    @contextlib.asynccontextmanager
    async def sending(self, method: str, path: str) -> AsyncIterator[float]:
        """Wait until this request may be sent without breaking a limit, then count it until a period
        after the block ends (send it inside, and the block ends once its answer is in or it was given
        up). Yields the seconds waited.

        Locks are taken in one fixed order (trade, then overall), and a window counts the request from
        the moment the last wait ended, so none counts it later than it really leaves."""
        windows = ((self._trade,) if self.is_trade(method, path) else ()) + self._overall
        waited = 0.0
        async with contextlib.AsyncExitStack() as stack:
            for window in windows:
                await stack.enter_async_context(window.lock)
                spent, _ = await window.wait_for_slot()
                waited += spent
            for window in windows:
                window.begin()
        if waited > 0:
            log.info("rate limit: %s %s waited %.2f s", method, path, waited)
        try:
            yield waited
        finally:
            now = self._clock()
            for window in windows:
                window.end(now)

    async def acquire(self, method: str, path: str) -> float:
        """`sending` for a request answered at once (a test's, a count's). Returns the seconds waited."""
        async with self.sending(method, path) as waited:
            return waited


class ConnectionPacer:
    """BloFin accepts one new WebSocket connection per second per IP address. Every stream opened from
    one address (a fleet worker's accounts' private streams, its public stream) takes its turn here
    before connecting, so a worker starting or reconnecting hundreds of streams opens them one a second
    instead of being refused."""

    def __init__(self, interval_s: float = 1.0, *, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def turn(self) -> None:
        """Wait until this address may open its next connection, and take that turn."""
        async with self._lock:
            wait = self._next - self._clock()
            if wait > 0:
                await self._sleep(wait)
            self._next = self._clock() + self.interval_s

