"""BloFin's mark prices kept warm from its public WebSocket (issue #18), so that a signal's entry need
not wait for `GET /api/v1/market/mark-price`.

BloFin pushes no plain mark price: the latest one is the close of the current candle of the public
channel `mark-price-candle1m`, pushed at most once a second (and about that often even without a
change). `MarkPrices` keeps one connection to `/ws/public`, subscribes the watched symbols, and
remembers each symbol's last close and when it arrived. The server watches every live instrument from
the start (`WATCH_ALL_MARKS`), so even a signal's first symbol finds its mark warm.

BloFin's limits, kept here: a subscribe request's JSON is at most `max_request_bytes` (4096), so the
symbols go out in as few requests as fit under it (one for some 70 symbols, not one each); at most
`requests_per_hour` (480) requests per connection (a connection that would need more waits); at most
one new connection per `connect_interval_s` (1 s). BloFin refuses a whole request when one of its
instruments is unknown, so a refused request of several symbols is sent again as two halves, down to the
one symbol it refuses (a few more requests, instead of one each for every symbol all the time).

What the caller must know:
- `fresh(symbol)` is the mark only while it can be trusted: the socket is up, the symbol's subscription
  was acknowledged on this connection, and its last push arrived within `max_age_s` (by `clock`).
  Otherwise it is None and the caller reads the mark by REST. A lost connection makes every symbol
  un-fresh at once; after the reconnect each is fresh again from its next push.
- `watch(symbol)` and `watch_all(symbols)` never block and may be called before `start()`; watched
  symbols are subscribed again after every reconnect. A symbol BloFin refuses (60012) is logged and
  never fresh; it is tried again on the next connection.
- Any loss (refused handshake, closed socket, no pong) is followed by a reconnect after an exponential
  backoff with jitter; nothing is raised to the caller. A frame that isn't JSON, a push whose close
  isn't a positive number, or any other junk is logged and ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from hit_server.exchange.ratelimit import ConnectionPacer, SlidingWindow

log = logging.getLogger(__name__)
WIRE_LOG = logging.getLogger(__name__ + ".wire")

MARK_CANDLE = "mark-price-candle1m"
CLOSE = 4  # a candle row: [ts, open, high, low, close, confirm]
MAX_REQUEST_BYTES = 4096  # BloFin: a subscribe's channels at most 4096 bytes (held here to the whole JSON)
REQUESTS_PER_HOUR = 480  # BloFin (older docs): subscribe, unsubscribe and login requests per connection
CONNECT_INTERVAL_S = 1.0  # BloFin: one new connection per second per IP
HOUR_S = 3600.0


def public_ws_url(rest_url: str) -> str:
    """BloFin's public WebSocket beside its REST root (`https://host` -> `wss://host/ws/public`)."""
    scheme, _, rest = rest_url.partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest.rstrip('/')}/ws/public"


class StreamLost(Exception):
    """The connection is no longer trustworthy (no pong): reconnect."""


@dataclass(eq=False)
class _Request:
    """One subscribe request sent on the current connection: its symbols not answered yet, in order."""

    waiting: dict[str, None] = field(default_factory=dict)  # an ordered set


def subscribe_text(symbols: Iterable[str]) -> str:
    """The subscribe request for the mark-price candles of `symbols`, as sent (compact JSON)."""
    args = [{"channel": MARK_CANDLE, "instId": symbol} for symbol in symbols]
    return json.dumps({"op": "subscribe", "args": args}, separators=(",", ":"))


def batches(symbols: Iterable[str], max_bytes: int) -> list[list[str]]:
    """`symbols` in order, cut into requests whose JSON (`subscribe_text`) is at most `max_bytes` long;
    a symbol too long to fit any request goes alone (BloFin will refuse it, alone)."""
    empty = len(subscribe_text([]).encode())
    out: list[list[str]] = []
    current: list[str] = []
    size = empty
    for symbol in symbols:
        arg = len(json.dumps({"channel": MARK_CANDLE, "instId": symbol}, separators=(",", ":")).encode())
        added = arg + (1 if current else 0)  # the comma before every argument but the first
        if current and size + added > max_bytes:
            out.append(current)
            current, size, added = [], empty, arg
        current.append(symbol)
        size += added
    if current:
        out.append(current)
    return out


class MarkPrices:
    """The latest mark price of each watched symbol, from one self-healing public WebSocket."""

    def __init__(
        self,
        url: str | None,
        *,
        max_age_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        ping_interval: float = 20.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        open_timeout: float = 10.0,
        rng: random.Random | None = None,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        requests_per_hour: int = REQUESTS_PER_HOUR,
        connect_interval_s: float = CONNECT_INTERVAL_S,
        pacer: ConnectionPacer | None = None,
    ) -> None:
        self.url = url
        self.max_age_s = max_age_s
        self.clock = clock
        self.ping_interval = ping_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.open_timeout = open_timeout
        self.max_request_bytes = max_request_bytes
        self.requests_per_hour = requests_per_hour
        self.connect_interval_s = connect_interval_s
        self.pacer = pacer  # shared with the other streams of this IP (a fleet worker's), or None
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._watched: dict[str, None] = {}  # an ordered set
        # on the current connection:
        self._unsent: dict[str, None] = {}  # watched, not asked for yet (an ordered set)
        self._halves: deque[list[str]] = deque()  # halves of a refused request, each sent on its own
        self._acked: set[str] = set()
        self._pending: deque[_Request] = deque()  # sent and not wholly answered, in the order sent
        self._asked: dict[str, _Request] = {}  # each symbol awaiting an answer -> its request
        self.requests_sent = 0  # subscribe requests since start (for tests and logs)
        self._marks: dict[str, tuple[Decimal, float]] = {}  # symbol -> (close, `clock` at arrival)
        self._wake = asyncio.Event()  # a symbol to subscribe, or stop
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connected = False

    def __repr__(self) -> str:
        return f"MarkPrices(url={self.url!r}, watched={len(self._watched)}, connected={self._connected})"

    @property
    def connected(self) -> bool:
        """True while the socket is open (whatever its subscriptions)."""
        return self._connected

    async def start(self) -> None:
        """Start the background task that keeps the stream up; a no-op without a url or when running."""
        if self.url is None or (self._task is not None and not self._task.done()):
            return
        self._stop.clear()
        self._task = asyncio.create_task(self._run(self.url), name="mark-prices")

    async def stop(self) -> None:
        """Close the socket, end the task and wait for it; nothing is fresh afterwards."""
        self._stop.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        self._lost()

    def watch(self, symbol: str) -> None:
        """Keep `symbol`'s mark from now on (subscribed at once when connected, else on connecting)."""
        self.watch_all((symbol,))

    def watch_all(self, symbols: Iterable[str]) -> None:
        """`watch` each of `symbols`; those not watched yet go out together, in as few requests as fit."""
        added = False
        for symbol in symbols:
            if symbol not in self._watched:
                self._watched[symbol] = None
                self._unsent[symbol] = None
                added = True
        if added:
            self._wake.set()

    @property
    def watched(self) -> int:
        """How many symbols are watched."""
        return len(self._watched)

    def fresh(self, symbol: str) -> Decimal | None:
        """The latest mark if it can be trusted now (see the module docstring), else None."""
        if not self._connected or symbol not in self._acked:
            return None
        mark = self._marks.get(symbol)
        if mark is None or self.clock() - mark[1] > self.max_age_s:
            return None
        return mark[0]

    def backoff_delay(self, failures: int) -> float:
        """Seconds before the next attempt after `failures` failed sessions in a row (0: after a good one)."""
        base: float = min(self.backoff_max, self.backoff_initial * 2.0 ** max(failures - 1, 0))
        return base * self._rng.uniform(0.5, 1.0)

    # ---- the connection loop -----------------------------------------------------------------------
    async def _run(self, url: str) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            attempted = loop.time()
            session = asyncio.create_task(self._session(url))
            stopping = asyncio.create_task(self._stop.wait())
            await asyncio.wait({session, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for task in (session, stopping):
                task.cancel()
            results = await asyncio.gather(session, stopping, return_exceptions=True)
            if self._stop.is_set():
                break
            if isinstance(results[0], Exception):  # a bug, not a connection problem: say so, go on
                log.error("BloFin public stream: session failed unexpectedly", exc_info=results[0])
            failures = 0 if results[0] is True else failures + 1
            delay = max(self.backoff_delay(failures), attempted + self.connect_interval_s - loop.time())
            log.info("BloFin public stream: reconnecting in %.2f s", delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop.wait()
        self._lost()

    async def _session(self, url: str) -> bool:
        """One connection from handshake to loss; True when the handshake succeeded."""
        reached = False
        if self.pacer is not None:
            await self.pacer.turn()
        try:
            async with connect(url, ping_interval=None, open_timeout=self.open_timeout, close_timeout=2,
                               logger=WIRE_LOG) as ws:
                reached = self._connected = True
                log.info("BloFin public stream connected")
                await self._serve(ws)
        except ConnectionClosed as exc:
            log.warning("BloFin public stream closed (code %s, %r)", exc.rcvd.code if exc.rcvd else None,
                        exc.rcvd.reason if exc.rcvd else "")
        except (OSError, TimeoutError, WebSocketException, StreamLost) as exc:
            log.warning("BloFin public stream lost: %s: %s", type(exc).__name__, exc)
        finally:
            self._lost()
        return reached

    async def _serve(self, ws: ClientConnection) -> None:
        """Read and subscribe side by side until either ends; raises the loss that ended it."""
        tasks = [asyncio.create_task(self._listen(ws)), asyncio.create_task(self._subscribe(ws))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()

    async def _subscribe(self, ws: ClientConnection) -> None:
        """Subscribe every watched symbol, batched, now and whenever `watch` adds some or a refused
        request is to be sent again in halves; within the connection's request budget."""
        budget = SlidingWindow(self.requests_per_hour, HOUR_S, clock=time.monotonic)
        self._unsent = dict.fromkeys(self._watched)
        while True:
            self._wake.clear()
            while self._halves or self._unsent:
                if self._halves:
                    requests = [self._halves.popleft()]
                else:
                    requests = batches(self._unsent, self.max_request_bytes)
                    self._unsent = {}
                for symbols in requests:
                    wait = budget.wait_needed(time.monotonic())
                    if wait > 0:
                        log.warning("BloFin public stream: %d subscribe requests sent within the hour; the "
                                    "next waits %.0f s", self.requests_per_hour, wait)
                    await budget.acquire()
                    request = _Request(dict.fromkeys(symbols))
                    self._pending.append(request)
                    for symbol in symbols:
                        self._asked[symbol] = request
                    self.requests_sent += 1
                    await ws.send(subscribe_text(symbols))
            await self._wake.wait()

    async def _listen(self, ws: ClientConnection) -> None:
        """Handle frames; after `ping_interval` of silence send `ping`, and give up after as long again."""
        awaiting_pong = False
        while True:
            try:
                # asyncio.timeout, not wait_for: wait_for runs recv() as a task of its own, and when the
                # stream is stopped as a frame arrives, Python 3.11 could wait for that task for ever (a
                # test's shutdown hung so, about one run in ten on a loaded machine)
                async with asyncio.timeout(self.ping_interval):
                    raw = await ws.recv()
            except TimeoutError:
                if awaiting_pong:
                    raise StreamLost(f"no pong within {self.ping_interval:g} s") from None
                await ws.send("ping")
                awaiting_pong = True
                continue
            awaiting_pong = False
            self._handle(raw)

    def _lost(self) -> None:
        if self._connected:
            log.info("BloFin public stream disconnected")
        self._connected = False
        self._acked.clear()
        self._pending.clear()
        self._asked.clear()
        self._halves.clear()
        self._marks.clear()

    # ---- frames ------------------------------------------------------------------------------------
    def _handle(self, raw: str | bytes) -> None:
        if raw in ("pong", b"pong"):
            return
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError):
            log.warning("BloFin public stream: ignoring a frame that is not JSON")
            return
        if not isinstance(message, dict):
            log.warning("BloFin public stream: ignoring a frame that is not a JSON object")
            return
        event = message.get("event")
        if event == "subscribe":
            self._acknowledged(message.get("arg"))
        elif event == "error":
            self._refused(message)
        elif event is None:
            self._push(message.get("arg"), message.get("data"))

    def _acknowledged(self, arg: Any) -> None:
        symbol = arg.get("instId") if isinstance(arg, dict) and arg.get("channel") == MARK_CANDLE else None
        if not isinstance(symbol, str) or symbol not in self._watched:
            log.warning("BloFin public stream: ignoring an acknowledgement of nothing asked for")
            return
        self._acked.add(symbol)
        request = self._asked.pop(symbol, None)
        if request is not None:
            request.waiting.pop(symbol, None)
        self._answered()

    def _answered(self) -> None:
        """Forget the oldest requests once each of their symbols is acknowledged."""
        while self._pending and not self._pending[0].waiting:
            self._pending.popleft()

    def _refused(self, message: dict[str, Any]) -> None:
        """BloFin answers requests in order and an error names no instrument: it is the oldest request
        not wholly answered. Of several symbols, each half is sent again on its own; one is given up."""
        self._answered()
        request = self._pending.popleft() if self._pending else None
        symbols = list(request.waiting) if request is not None else []
        for symbol in symbols:
            self._asked.pop(symbol, None)
        what = symbols[0] if len(symbols) == 1 else f"a request of {len(symbols)} symbols" if symbols \
            else "a request"
        log.warning("BloFin public stream: %s refused (code %s: %s)", what,
                    str(message.get("code"))[:20], str(message.get("msg"))[:200])
        if len(symbols) > 1:
            middle = len(symbols) // 2
            self._halves.extend((symbols[:middle], symbols[middle:]))
            self._wake.set()

    def _push(self, arg: Any, data: Any) -> None:
        symbol = arg.get("instId") if isinstance(arg, dict) and arg.get("channel") == MARK_CANDLE else None
        if not isinstance(symbol, str) or symbol not in self._watched:
            log.warning("BloFin public stream: ignoring a push of no watched mark-price candle")
            return
        row = data[-1] if isinstance(data, list) and data else None
        close = _positive(row[CLOSE]) if isinstance(row, list) and len(row) > CLOSE else None
        if close is None:
            log.warning("BloFin public stream: ignoring a %s push without a positive close", symbol)
            return
        self._marks[symbol] = (close, self.clock())


def _positive(value: Any) -> Decimal | None:
    """`value` as a finite Decimal above zero, from a string as BloFin sends prices; else None."""
    if not isinstance(value, str):
        return None
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() and number > 0 else None
