"""The simulator's public WebSocket, `/ws/public`: BloFin's `mark-price-candle1m` channel, no login.

BloFin pushes no plain mark price; the latest one is the close of the current mark-price candle. A
subscription is acknowledged, then answered with the current candle at once, then with a push on every
change of that instrument's price (the engine's `price_listeners`: the hub only updates the candle and
enqueues, see `ws_base.py`), and with the current candle again every `SimConfig.public_repush_s` even
without a change, as BloFin pushes about once a second, so a client can judge freshness by arrival.
Unlike BloFin, a change is pushed at once (tests move a price and act on it right away).

A push: `{"arg": {"channel": "mark-price-candle1m", "instId": ...}, "data": [[ts, o, h, l, c, "0"]]}`,
`ts` the candle's opening minute (ms). The finished candle of a past minute (confirm "1") is not pushed.
A request may carry many arguments (BloFin's clients subscribe hundreds of instruments in a few requests);
one unknown channel or instrument refuses the whole request, as does a request over BloFin's 4096
bytes. An unknown channel or instrument, a login or anything else is answered with BloFin's 60012 error.

`POST /sim/ws/drop` and `/sim/ws/refuse` (in `ws.py`) act on these sockets too. `public_hub_of(app)`
gives the hub (`idle_timeout_s`, `queue_size`, `repush_s`, `refused_times`, `request_sizes` are for tests).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, WebSocket

from .catalog import fmt
from .ws_base import Connection, invalid

if TYPE_CHECKING:
    from .app import SimState
    from .engine import Simulator

router = APIRouter()

MARK_CANDLE = "mark-price-candle1m"
MINUTE_MS = 60_000
IDLE_TIMEOUT_S = 30.0
QUEUE_SIZE = 1000
MAX_REQUEST_BYTES = 4096  # BloFin's limit on a subscribe request


@dataclass
class Candle:
    ts: int  # opening minute, ms
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal

    def move(self, price: Decimal) -> None:
        self.high, self.low, self.close = max(self.high, price), min(self.low, price), price

    def row(self) -> list[str]:
        return [str(self.ts), fmt(self.open), fmt(self.high), fmt(self.low), fmt(self.close), "0"]


class MarkCandles:
    """The current one-minute mark-price candle of each instrument, from the engine's prices."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._candles: dict[str, Candle] = {}

    def current(self, inst_id: str, price: Decimal | None = None) -> Candle:
        """The candle of this minute closed at `price` (default: the engine's price now)."""
        price = self.sim.prices[inst_id] if price is None else price
        opened = self.sim.clock_ms() // MINUTE_MS * MINUTE_MS
        candle = self._candles.get(inst_id)
        if candle is None or candle.ts != opened:
            candle = self._candles[inst_id] = Candle(opened, price, price, price, price)
        else:
            candle.move(price)
        return candle


def candle_push(inst_id: str, candle: Candle) -> str:
    arg = {"channel": MARK_CANDLE, "instId": inst_id}
    return json.dumps({"arg": arg, "data": [candle.row()]}, separators=(",", ":"))


class PublicWsHub:
    """Every open public connection of one simulator app; listens to the engine's price moves."""

    def __init__(self, state: SimState, *, repush_s: float, idle_timeout_s: float = IDLE_TIMEOUT_S,
                 queue_size: int = QUEUE_SIZE) -> None:
        self.state = state
        self.repush_s = repush_s
        self.idle_timeout_s = idle_timeout_s
        self.queue_size = queue_size
        self.candles = MarkCandles(state.sim)
        self.connections: set[PublicConnection] = set()
        self.refuse_until = 0.0
        self.refused_times: list[float] = []  # monotonic time of each refused handshake
        self.request_sizes: list[int] = []  # the size in bytes of every text frame but a ping, in order

    # ---- engine side (synchronous, any thread) -----------------------------------------------------
    def price_moved(self, inst_id: str, price: Decimal) -> None:
        candle = self.candles.current(inst_id, price)
        if not self.connections:
            return
        text = candle_push(inst_id, candle)
        for conn in list(self.connections):
            conn.on_loop(conn.offer, inst_id, text)

    # ---- control ---------------------------------------------------------------------------------
    def drop_all(self) -> int:
        conns = list(self.connections)
        for conn in conns:
            conn.close_soon(1012, "dropped by the simulator", discard=True)
        return len(conns)

    def refuse_for(self, seconds: float) -> None:
        self.refuse_until = time.monotonic() + seconds

    def refusing(self) -> bool:
        return time.monotonic() < self.refuse_until


class PublicConnection(Connection):
    """One accepted public socket and the instruments it subscribed to."""

    name = "public ws"

    def __init__(self, ws: WebSocket, hub: PublicWsHub) -> None:
        super().__init__(ws, hub)
        self.hub = hub
        self.subs: dict[str, None] = {}  # instIds of mark-price-candle1m, an ordered set

    def offer(self, inst_id: str, text: str) -> None:
        if inst_id in self.subs:
            self.push(text)

    async def repush(self) -> None:
        """The current candle of every subscribed instrument, every `repush_s`, changed or not."""
        while not self.closing:
            await asyncio.sleep(self.hub.repush_s)
            for inst_id in list(self.subs):
                self.push(candle_push(inst_id, self.hub.candles.current(inst_id)))

    def handle(self, text: str) -> None:
        if text == "ping":
            self.push("pong")
            return
        size = len(text.encode())
        self.hub.request_sizes.append(size)
        if size > MAX_REQUEST_BYTES:
            self.push(invalid(text))
            return
        try:
            request = json.loads(text)
        except ValueError:
            request = None
        op = request.get("op") if isinstance(request, dict) else None
        inst_ids = self._parse(request.get("args")) if isinstance(request, dict) else None
        if op not in ("subscribe", "unsubscribe") or inst_ids is None:
            self.push(invalid(text))
            return
        for inst_id in inst_ids:
            arg = {"channel": MARK_CANDLE, "instId": inst_id}
            if op == "unsubscribe":
                self.subs.pop(inst_id, None)
                self.push({"event": "unsubscribe", "arg": arg})
                continue
            self.subs[inst_id] = None
            self.push({"event": "subscribe", "arg": arg})
            self.push(candle_push(inst_id, self.hub.candles.current(inst_id)))

    def _parse(self, args: Any) -> list[str] | None:
        """The instIds of a request's arguments; None when any is not a known mark-price-candle1m one."""
        if not isinstance(args, list) or not args:
            return None
        inst_ids = []
        for arg in args:
            if not isinstance(arg, dict) or set(arg) != {"channel", "instId"}:
                return None
            inst_id = arg["instId"]
            if arg["channel"] != MARK_CANDLE or not isinstance(inst_id, str):
                return None
            if inst_id not in self.hub.state.sim.instruments:
                return None
            inst_ids.append(inst_id)
        return inst_ids


# ---- routes ----------------------------------------------------------------------------------------
def public_hub_of(app: Any) -> PublicWsHub:
    hub: PublicWsHub = app.state.ws_public_hub
    return hub


@router.websocket("/ws/public")
async def public_ws(websocket: WebSocket) -> None:
    hub = public_hub_of(websocket.app)
    if hub.refusing():
        hub.refused_times.append(time.monotonic())
        await websocket.close(code=1013)  # before accept: the handshake is answered with HTTP 403
        return
    await websocket.accept()
    conn = PublicConnection(websocket, hub)
    hub.connections.add(conn)
    try:
        await conn.serve(conn.repush())
    finally:
        hub.connections.discard(conn)


def install(app: FastAPI, state: SimState, *, idle_timeout_s: float = IDLE_TIMEOUT_S) -> PublicWsHub:
    """Mount `/ws/public` on the simulator app and feed it the engine's price moves."""
    hub = PublicWsHub(state, repush_s=state.config.public_repush_s, idle_timeout_s=idle_timeout_s)
    app.state.ws_public_hub = hub
    state.sim.price_listeners.append(hub.price_moved)
    app.include_router(router)
    return hub
