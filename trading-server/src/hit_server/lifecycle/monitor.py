"""The position monitor: a background task of the server's lifespan that runs lifecycle passes.

When a pass runs:
- at once (after MAX_GAP_S, and once the signals being carried out have ended, at most SIGNAL_WAIT_S
  later) when the account changes: pushes of BloFin's private WebSocket (`orders`,
  `positions`, `orders-algo`, through `blofin_ws.PrivateStream`, which reconnects with backoff; an
  `account` push, the balance alone, only updates the mirror), or, in paper mode
  with the in-process simulator (reached through `inprocess.InProcessHttp`: no socket), the
  simulator's own change events through a small adapter (`SimFeed`);
- every MONITOR_POLL_SECONDS while the socket is down: REST polling is the fallback, and the first
  pass after a reconnect re-reads everything, so a loss misses nothing;
- every 6 x MONITOR_POLL_SECONDS while the socket is up (prices and timeouts are not pushed);
- reconciliation (`reconcile_exchange`) at start and every RECONCILE_MINUTES. With `seed_wait_s` (a
  fleet account: hundreds share one IP's budget) the one at start waits that long for the account
  mirror's first seed and reads the account from it, not again by REST.
Before every pass, signals left unresolved (an unclear exchange outcome, a journal failure) are
looked up on the exchange (`reconcile.reconcile_pending`: lookups only, never a resend, never a
signal this process is carrying out); one found placed is managed by that same pass. While any is
left unresolved the monitor polls every MONITOR_POLL_SECONDS even when pushes flow.
A pass is a full comparison of the journal with the account (`passes.py`). The pushes also keep the
account mirror (`exchange/mirror.py`) current, so a pass a push woke reads the account from the mirror,
without a request (a stop-out is known, evented and its leftovers cancelled well within a second);
a timed pass, and one while the mirror is not live, re-reads it by REST, which bounds what a lost push
could hide. A pass that fails is logged and the next one retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from hit_server.api.http_errors import JournalUnavailable
from hit_server.exchange.blofin_auth import BloFinAuth
from hit_server.exchange.blofin_errors import BloFinError
from hit_server.exchange.blofin_ws import PrivateStream
from hit_server.exchange.mirror import AccountMirror
from hit_server.exchange.paper import Exchange, configured_credentials
from hit_server.exchange.ratelimit import ConnectionPacer
from hit_server.journal.trade_book import TradeBook
from hit_server.lifecycle.notify import WebhookRelay
from hit_server.lifecycle.orphans import reconcile_exchange
from hit_server.lifecycle.passes import Lifecycle
from hit_server.settings import Settings
from hit_server.trading.reconcile import reconcile_pending
from hit_server.trading.service import TradingService

log = logging.getLogger(__name__)

QUIET_FACTOR = 6  # poll this many times less often while pushes arrive
MAX_GAP_S = 0.1  # pushes arriving within this gap are handled by one pass
# How long a pass waits for the signals this process is carrying out on the account to end: their own
# pushes (the entry filled, its stop, the targets) would otherwise wake passes that find nothing to do
# (the trade is the signal's until it is answered), one per burst. A stop-out of another trade
# meanwhile is acted on that much later at most.
SIGNAL_WAIT_S = 0.5
STOP_CHECK_S = 0.5  # how often stopping the monitor checks that its task has ended
PRIVATE_CHANNELS = ("orders", "positions", "orders-algo", "account")


class Feed(Protocol):
    """Where account changes come from: `connected` while pushes flow; `start(wake)` / `stop()`."""

    @property
    def connected(self) -> bool: ...

    async def start(self, monitor: PositionMonitor) -> None: ...

    async def stop(self) -> None: ...


class SimFeed:
    """The in-process simulator's change events: the engine calls subscribers synchronously, with the
    same channels and rows as BloFin's pushes. A change made on the server's own thread (its requests
    reach the simulator in-process) reaches the account mirror before the request that made it returns,
    so the mirror is never behind the simulator as the server sees it; one made from another thread
    (a test driving the engine) is handed to the loop."""

    def __init__(self, sim: Any, mirror: AccountMirror) -> None:
        self.sim = sim
        self.mirror = mirror
        self._callback: Any = None

    @property
    def connected(self) -> bool:
        return self._callback is not None

    async def start(self, monitor: PositionMonitor) -> None:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()

        def deliver(event: Any) -> None:
            self.mirror.push(event.channel, [event.data])
            monitor.woken_by(event.channel)

        def changed(event: object) -> None:
            if threading.get_ident() == loop_thread:
                deliver(event)
            else:
                loop.call_soon_threadsafe(deliver, event)

        self._callback = changed
        self.sim.subscribe(changed)
        self.mirror.connected()

    async def stop(self) -> None:
        if self._callback is not None:
            with contextlib.suppress(ValueError):
                self.sim.subscribers.remove(self._callback)
            self._callback = None
        await self.mirror.stop()


class StreamFeed:
    """BloFin's private WebSocket; every push and every (re)connection wakes the monitor."""

    def __init__(self, url: str, auth: BloFinAuth, mirror: AccountMirror,
                 pacer: ConnectionPacer | None = None) -> None:
        self.url = url
        self.auth = auth
        self.mirror = mirror
        self.pacer = pacer
        self.stream: PrivateStream | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self.stream is not None and self.stream.connected

    async def start(self, monitor: PositionMonitor) -> None:
        async def on_event(channel: str, rows: list[dict[str, Any]]) -> None:
            self.mirror.push(channel, rows)
            monitor.woken_by(channel)

        async def on_state(connected: bool) -> None:
            if connected:
                self.mirror.connected()
                monitor.wake()  # pushes between the loss and now are lost: re-read everything
            else:
                self.mirror.disconnected()
                log.warning("Position monitor: private stream down, polling every %g s", monitor.poll_s)
                monitor.wake()  # a pass now, by REST, and the polling starts (not after the quiet wait)

        self.stream = PrivateStream(self.url, self.auth, channels=PRIVATE_CHANNELS, on_event=on_event,
                                    on_state=on_state, pacer=self.pacer)
        self._task = asyncio.create_task(self.stream.run())

    async def stop(self) -> None:
        if self.stream is not None:
            await self.stream.stop()
        if self._task is not None:
            await self._task
        await self.mirror.stop()


def ws_url(rest_url: str) -> str:
    """BloFin's private WebSocket beside its REST root (`https://host` -> `wss://host/ws/private`)."""
    scheme, _, rest = rest_url.partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest.rstrip('/')}/ws/private"


class PositionMonitor:
    def __init__(
        self, lifecycle: Lifecycle, service: TradingService, feed: Feed | None, settings: Settings
    ) -> None:
        self.lifecycle = lifecycle
        self.service = service
        self.feed = feed
        self.poll_s = settings.monitor_poll_seconds
        self.reconcile_s = settings.reconcile_minutes * 60
        self.reconciliations = 0
        self.seed_wait_s = 0.0  # how long the first reconciliation waits for the mirror's seed (above)
        self.signal_wait_s = SIGNAL_WAIT_S
        # What else a pass waits for before it runs, beside the account's own signals: a fleet worker's
        # jobs (`fleet/traders.py`), which go first while a fan-out is carried out.
        self.yield_to: Callable[[], Awaitable[None]] | None = None
        self.unresolved = 0  # signals the last round could not resolve yet
        self.relay: WebhookRelay | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"PositionMonitor(connected={self.connected}, passes={self.lifecycle.passes})"

    @property
    def connected(self) -> bool:
        return self.feed is not None and self.feed.connected

    def wake(self) -> None:
        self._wake.set()

    def woken_by(self, channel: str) -> None:
        """A push on `channel`: a pass, unless it only tells the balance (no pass reads it, and BloFin
        pushes it at a regular interval: every account of a fleet would run a pass every few seconds)."""
        if channel != "account":
            self.wake()

    async def start(self) -> None:
        if self.feed is not None:
            await self.feed.start(self)
        self._task = asyncio.create_task(self._run(), name="position-monitor")

    async def stop(self) -> None:
        task = self._task
        if task is not None:
            # Cancelled until it has ended: on Python 3.11 a cancellation that meets an expiring
            # asyncio.timeout can be lost (the timeout takes it for its own), and then the server's
            # shutdown waited for the monitor forever (found by the simulation, seed 163).
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=STOP_CHECK_S)
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.feed is not None:
            await self.feed.stop()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        mirror = self.lifecycle.mirror
        seeded = self.seed_wait_s > 0 and mirror is not None and await mirror.wait_live(self.seed_wait_s)
        await self._guarded(functools.partial(self.reconcile, reread=not seeded))
        due = loop.time() + self.reconcile_s
        while True:
            quiet = self.connected and not self.unresolved
            interval = self.poll_s * (QUIET_FACTOR if quiet else 1)
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can lose a cancellation that
            # arrives as its timeout fires, and then stopping the monitor never returns
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, min(interval, due - loop.time()))):
                    await self._wake.wait()
            pushed = self._wake.is_set()
            await asyncio.sleep(min(self.poll_s, MAX_GAP_S))  # a burst of pushes makes one pass
            await self.service.signal_locks.until_idle(self.signal_wait_s)  # so do a signal's own
            if self.yield_to is not None:
                await self.yield_to()
            self._wake.clear()
            if loop.time() >= due:
                await self._guarded(self.reconcile)
                due = loop.time() + self.reconcile_s
            else:
                await self._guarded(self.resolve)
                # a pass a push woke reads the account mirror; a timed one re-reads the exchange
                await self._guarded(functools.partial(self.lifecycle.sync_all, reread=not pushed))

    async def resolve(self) -> None:
        """Look up the signals left unresolved (see `reconcile.py`), without waiting for a restart."""
        _, self.unresolved = await reconcile_pending(self.service)

    async def reconcile(self, *, reread: bool = True) -> None:
        """Resolve the unresolved signals, compare the journal with the exchange both ways (see
        `orphans.py`), then a full pass; the account read by REST, or with `reread=False` from the
        account mirror when it is live (its seed was just read)."""
        self.reconciliations += 1
        await self.resolve()
        await reconcile_exchange(self.lifecycle, reread=reread)
        await self.lifecycle.sync_all(reread=reread)

    @staticmethod
    async def _guarded(step: Any) -> None:
        try:
            await step()
        except (BloFinError, JournalUnavailable) as exc:
            log.warning("Position monitor: pass failed (%s); retrying at the next one", type(exc).__name__)
        except Exception:
            log.exception("Position monitor: unexpected error in a pass; retrying at the next one")


def _feed(
    settings: Settings, exchange: Exchange, mirror: AccountMirror, pacer: ConnectionPacer | None
) -> Feed | None:
    if not settings.monitor_websocket:
        return None
    if exchange.sim_app is not None:
        return SimFeed(exchange.sim_app.state.sim, mirror)
    url = settings.exchange_url
    if url is None:
        return None
    return StreamFeed(ws_url(url), BloFinAuth(configured_credentials(settings)), mirror, pacer)


@asynccontextmanager
async def open_monitor(
    settings: Settings, service: TradingService, exchange: Exchange, *, pacer: ConnectionPacer | None = None,
    seed_wait_s: float = 0.0,
) -> AsyncIterator[PositionMonitor]:
    """The monitor (and the webhook relay, when DISCORD_WEBHOOK_URL is set), stopped on exit. `pacer`:
    the turns of the connections opened from this IP (a fleet worker's accounts' streams);
    `seed_wait_s`: `PositionMonitor.seed_wait_s`."""
    lifecycle = Lifecycle(
        service.client, service.journal, TradeBook(service.journal.db), settings, service.mirror
    )
    monitor = PositionMonitor(lifecycle, service, _feed(settings, exchange, service.mirror, pacer), settings)
    monitor.seed_wait_s = seed_wait_s
    relay_task: asyncio.Task[None] | None = None
    if settings.discord_webhook_url is not None:
        relay = monitor.relay = WebhookRelay(settings.discord_webhook_url, service.journal)
        after = await service.journal.last_event_id()
        relay_task = asyncio.create_task(relay.run(after), name="webhook-relay")
    await monitor.start()
    try:
        yield monitor
    finally:
        await monitor.stop()
        if relay_task is not None:
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task
