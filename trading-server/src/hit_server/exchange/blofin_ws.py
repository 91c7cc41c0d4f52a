"""BloFin's private WebSocket, client side: one long-lived, self-healing stream of account pushes.

`PrivateStream.run()` connects, logs in (signed by `BloFinAuth.ws_login_args`), subscribes, and hands
each push to `on_event(channel, rows)` until `stop()`. Any loss (refused handshake, closed socket, no
pong, login or subscription refused) is followed by a reconnect after an exponential backoff with
jitter; a session that got as far as its subscriptions restarts the backoff.

What the caller must know:
- `on_state(True)` is called once every subscription is acknowledged: from then on no push is missed
  until `on_state(False)`. Pushes between a loss and the next `on_state(True)` are lost for good, so
  a caller re-reads orders and positions by REST on every `on_state(True)` (and polls while it is
  False). A push for `positions` may be a full snapshot (on subscribe) or one changed position.
- `rows` is always a list of dicts: the `account` channel's single object arrives as a list of one.
- An exception raised by a callback is logged with its traceback and the stream goes on.
- A refused login (60009: wrong key, passphrase, secret, or a skewed clock) is logged once at ERROR,
  then retried on the same growing backoff, never in a tight loop; nothing secret is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from hit_server.exchange.blofin_auth import BloFinAuth, mask
from hit_server.exchange.ratelimit import ConnectionPacer

log = logging.getLogger(__name__)

OnEvent = Callable[[str, list[dict[str, Any]]], Awaitable[None]]
OnState = Callable[[bool], Awaitable[None]]


class _NoFrameTrace(logging.LoggerAdapter[logging.Logger]):
    """The logger handed to websockets, with DEBUG always off: its frame traces would print the login
    frame (API key, passphrase, signature). INFO and above pass through to
    `hit_server.exchange.blofin_ws.wire`."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


WIRE_LOG = _NoFrameTrace(logging.getLogger(__name__ + ".wire"), {})


class StreamError(Exception):
    """The session can't go on (unexpected reply, refused subscription, no pong): reconnect."""


class LoginRefused(StreamError):
    """BloFin refused the login: credentials or clock are wrong. Reconnecting won't fix it by itself."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"login refused (code {code}: {msg})")
        self.code = code


class PrivateStream:
    """Pushes of BloFin's private channels for one API key. Run one `run()` task per instance."""

    def __init__(
        self,
        url: str,
        auth: BloFinAuth,
        *,
        channels: Sequence[str] = ("orders", "positions", "orders-algo"),
        on_event: OnEvent,
        on_state: OnState | None = None,
        ping_interval: float = 20.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        reply_timeout: float = 10.0,
        rng: random.Random | None = None,
        pacer: ConnectionPacer | None = None,
    ) -> None:
        """`pacer`: the connections of the streams opened from one IP address take turns (BloFin: one
        new connection per second per IP); None: this stream is the only one it opens often."""
        self.url = url
        self.pacer = pacer
        self.auth = auth
        self.channels = tuple(channels)
        self.on_event = on_event
        self.on_state = on_state
        self.ping_interval = ping_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.reply_timeout = reply_timeout
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._stop = asyncio.Event()
        self._finished: asyncio.Event | None = None
        self._connected = False
        self._login_refusals = 0

    def __repr__(self) -> str:
        return f"PrivateStream(url={self.url!r}, channels={self.channels!r}, connected={self._connected})"

    @property
    def connected(self) -> bool:
        """True from the last subscription's acknowledgement until the connection is lost."""
        return self._connected

    async def run(self) -> None:
        """Keep the stream up until `stop()`; returns then (never raises for a connection problem)."""
        if self._finished is not None and not self._finished.is_set():
            raise RuntimeError("PrivateStream.run() is already running")
        self._finished = asyncio.Event()
        try:
            await self._run()
        finally:
            self._finished.set()

    async def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            session = asyncio.create_task(self._session())
            stopping = asyncio.create_task(self._stop.wait())
            await asyncio.wait({session, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for task in (session, stopping):
                task.cancel()
            results = await asyncio.gather(session, stopping, return_exceptions=True)
            if self._stop.is_set():
                break
            if isinstance(results[0], Exception):  # a bug, not a connection problem: say so, go on
                log.error("BloFin private stream: session failed unexpectedly", exc_info=results[0])
            failures = 0 if results[0] is True else failures + 1
            delay = self.backoff_delay(failures)
            log.info("BloFin private stream: reconnecting in %.2f s", delay)
            with contextlib.suppress(TimeoutError):  # not wait_for: see monitor.PositionMonitor._run
                async with asyncio.timeout(delay):
                    await self._stop.wait()
        if self._connected:
            await self._set_state(False)

    async def stop(self) -> None:
        """Make `run()` close the socket and return, and wait for that: no callback runs afterwards.
        A stopped stream stays stopped (a later `run()` returns at once): make a new one to restart."""
        self._stop.set()
        if self._finished is not None:
            await self._finished.wait()

    def backoff_delay(self, failures: int) -> float:
        """Seconds before the next attempt after `failures` failed sessions in a row (0: after a good one)."""
        base: float = min(self.backoff_max, self.backoff_initial * 2.0 ** max(failures - 1, 0))
        return base * self._rng.uniform(0.5, 1.0)

    # ---- one connection ----------------------------------------------------------------------------
    async def _session(self) -> bool:
        """One connection from handshake to loss; True when it got as far as its subscriptions."""
        reached = False
        if self.pacer is not None:
            await self.pacer.turn()
        try:
            async with connect(self.url, ping_interval=None, open_timeout=self.reply_timeout,
                               close_timeout=2, logger=WIRE_LOG) as ws:
                await self._login(ws)
                early = await self._subscribe(ws)
                reached = True
                await self._set_state(True)
                for message in early:
                    await self._dispatch(message)
                await self._listen(ws)
        except LoginRefused as exc:
            self._report_refusal(exc)
        except ConnectionClosed as exc:
            log.warning("BloFin private stream closed (code %s, %r)", exc.rcvd.code if exc.rcvd else None,
                        exc.rcvd.reason if exc.rcvd else "")
        except (OSError, TimeoutError, WebSocketException, StreamError) as exc:
            log.warning("BloFin private stream lost: %s: %s", type(exc).__name__, exc)
        finally:
            if self._connected:
                await self._set_state(False)
        return reached

    async def _login(self, ws: ClientConnection) -> None:
        await ws.send(json.dumps({"op": "login", "args": [self.auth.ws_login_args()]}))
        async with asyncio.timeout(self.reply_timeout):
            reply = await self._next_message(ws)
        if reply.get("event") == "login" and reply.get("code") == "0":
            if self._login_refusals:
                log.info("BloFin private stream: login accepted again")
            self._login_refusals = 0
            return
        if reply.get("event") == "error":
            raise LoginRefused(str(reply.get("code")), str(reply.get("msg"))[:200])
        raise StreamError(f"unexpected reply to login: event {reply.get('event')!r}")

    async def _subscribe(self, ws: ClientConnection) -> list[dict[str, Any]]:
        """Subscribe to every channel; pushes that arrive before the last ack are returned for later."""
        await ws.send(json.dumps({"op": "subscribe", "args": [{"channel": c} for c in self.channels]}))
        waiting = set(self.channels)
        early: list[dict[str, Any]] = []
        async with asyncio.timeout(self.reply_timeout):
            while waiting:
                message = await self._next_message(ws)
                event = message.get("event")
                if event == "subscribe":
                    arg = message.get("arg")
                    waiting.discard(arg.get("channel") if isinstance(arg, dict) else None)
                elif event == "error":
                    raise StreamError(f"subscription refused (code {message.get('code')})")
                else:
                    early.append(message)
        return early

    async def _listen(self, ws: ClientConnection) -> None:
        """Dispatch pushes; after `ping_interval` of silence send `ping`, and give up after as long again."""
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
                    raise StreamError(f"no pong within {self.ping_interval:g} s") from None
                await ws.send("ping")
                awaiting_pong = True
                continue
            awaiting_pong = False
            message = _parse(raw)
            if message is not None:
                await self._dispatch(message)

    async def _next_message(self, ws: ClientConnection) -> dict[str, Any]:
        while True:
            message = _parse(await ws.recv())
            if message is not None:
                return message

    # ---- callbacks ---------------------------------------------------------------------------------
    async def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("event") == "error":
            code, text = message.get("code"), str(message.get("msg"))[:200]
            log.warning("BloFin private stream error %s: %s", code, text)
            return
        if "event" in message:
            return
        arg, data = message.get("arg"), message.get("data")
        channel = arg.get("channel") if isinstance(arg, dict) else None
        rows = [data] if isinstance(data, dict) else data
        if not isinstance(channel, str) or not isinstance(rows, list):
            log.warning("BloFin private stream: ignoring a push without channel or data")
            return
        try:
            await self.on_event(channel, [row for row in rows if isinstance(row, dict)])
        except Exception:
            log.exception("BloFin private stream: on_event failed for a %s push", channel)

    async def _set_state(self, connected: bool) -> None:
        self._connected = connected
        log.info("BloFin private stream %s", "connected" if connected else "disconnected")
        if self.on_state is None:
            return
        try:
            await self.on_state(connected)
        except Exception:
            log.exception("BloFin private stream: on_state failed")

    def _report_refusal(self, exc: LoginRefused) -> None:
        self._login_refusals += 1
        if self._login_refusals == 1:
            log.error(
                "BloFin private stream: %s for key %s; check the API key, secret, passphrase and the "
                "clock. Retrying with backoff (up to %g s).",
                exc, mask(self.auth.credentials.api_key), self.backoff_max,
            )
        else:
            log.debug("BloFin private stream: login refused again (%d in a row)", self._login_refusals)


def _parse(raw: str | bytes) -> dict[str, Any] | None:
    """A JSON object from a frame; None for `pong` and for anything that is not a JSON object."""
    if raw in ("pong", b"pong"):
        return None
    try:
        message = json.loads(raw)
    except ValueError:
        log.warning("BloFin private stream: ignoring a frame that is not JSON")
        return None
    return message if isinstance(message, dict) else None
