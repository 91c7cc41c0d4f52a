"""The simulator's private WebSocket, `/ws/private`: login, subscriptions, pushes, keepalive.

A login selects the account of its API key (`registry.py`), checked with that account's passphrase and
secret; the connection then hears that account's events alone. The hub subscribes to an account's
engine when a connection first logs in to it (the default account's at once), and hands each event to
the connections logged in to that account. The engine calls it synchronously inside its own calls, so
the hub only enqueues (the queue, writer and watchdog of each connection: `ws_base.py`); a connection
whose queue overflows is closed, and its client must reconnect and re-read by REST, as after any loss.

Besides the event pushes, an `account` subscription hears its balance every `account_push_s`
(`SimConfig.account_push_s`), changed or not, as BloFin documents ("pushed in regular interval"); a
client can keep its balance fresh on those instead of REST reads.

Control for tests (no signature): `POST /sim/ws/drop` closes every socket at once, private and public
(`ws_public.py`); `POST /sim/ws/refuse {"seconds": S}` refuses new handshakes of both (HTTP 403) for S
seconds. `hub_of(app)` gives the private hub: `idle_timeout_s`, `account_push_s`, `refused_times`,
`login_attempts` are for tests.

BloFin's code for a subscription before login is not documented; the simulator answers 60011.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request, WebSocket
from pydantic import BaseModel, ConfigDict, Field

from hit_server.exchange.blofin_auth import WS_LOGIN_PATH, prehash, sign

from . import views
from .engine import Simulator
from .models import SimEvent
from .ws_base import Connection, invalid
from .ws_public import public_hub_of

if TYPE_CHECKING:
    from .app import SimState

log = logging.getLogger(__name__)
router = APIRouter()

CHANNELS = ("orders", "positions", "orders-algo", "account")
IDLE_TIMEOUT_S = 30.0
QUEUE_SIZE = 1000
LOGIN_FAILED: dict[str, str] = {"event": "error", "code": "60009", "msg": "Login failed."}
NOT_LOGGED_IN: dict[str, str] = {"event": "error", "code": "60011", "msg": "Please log in first."}
LOGIN_FIELDS = ("apiKey", "passphrase", "timestamp", "sign", "nonce")


@dataclass(frozen=True)
class Subscription:
    channel: str
    inst_id: str | None = None

    def arg(self) -> dict[str, str]:
        arg = {"channel": self.channel}
        if self.inst_id is not None:
            arg["instId"] = self.inst_id
        return arg

    def matches(self, event: SimEvent) -> bool:
        return self.channel == event.channel and self.inst_id in (None, event.data.get("instId"))


def push_message(sub: Subscription, action: str, data: Any) -> str:
    """A push as BloFin writes it; `account` carries one object, every other channel a list of rows."""
    return json.dumps({"action": action, "arg": sub.arg(), "data": data}, separators=(",", ":"))


class PrivateWsHub:
    """Every open private connection of one simulator app, and the login checks they share."""

    def __init__(self, state: SimState, *, idle_timeout_s: float = IDLE_TIMEOUT_S,
                 queue_size: int = QUEUE_SIZE) -> None:
        self.state = state
        self.idle_timeout_s = idle_timeout_s
        self.account_push_s = state.config.account_push_s
        self.queue_size = queue_size
        self.connections: set[PrivateConnection] = set()
        self.refuse_until = 0.0
        self.refused_times: list[float] = []  # monotonic time of each refused handshake
        self.login_attempts = 0
        self._nonces: dict[tuple[str, str], int] = {}  # (key, nonce) -> when it was used
        self._logged_in: dict[Simulator, set[PrivateConnection]] = {}  # by the engine of their account
        self._heard: set[Simulator] = {state.sim}  # the engines this hub subscribed to

    # ---- engine side (synchronous) --------------------------------------------------------------
    def publish(self, event: SimEvent) -> None:
        """An event of the default account (the hub is subscribed to its engine from the start)."""
        self.publish_to(self.state.sim, event)

    def publish_to(self, sim: Simulator, event: SimEvent) -> None:
        """An event of the account whose engine is `sim`, to the connections logged in to it."""
        for conn in list(self._logged_in.get(sim, ())):
            conn.deliver(event)

    def join(self, conn: PrivateConnection) -> None:
        """`conn` logged in: it hears the events of its account (`conn.sim`) from now on."""
        sim = conn.sim
        self._logged_in.setdefault(sim, set()).add(conn)
        if sim not in self._heard:
            self._heard.add(sim)
            sim.subscribe(partial(self.publish_to, sim))

    def streams_of(self, sim: Simulator) -> int:
        """How many connections are logged in to the account whose engine is `sim`."""
        return len(self._logged_in.get(sim, ()))

    def leave(self, conn: PrivateConnection) -> None:
        """`conn` hears no account's events any more (it closed, or logs in again)."""
        conns = self._logged_in.get(conn.sim)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._logged_in[conn.sim]

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

    # ---- login -----------------------------------------------------------------------------------
    def login_problem(self, args: Any) -> str | None:
        """Why this login is refused (for the simulator's log: never a secret), or None when accepted."""
        self.login_attempts += 1
        arg = args[0] if isinstance(args, list) and len(args) == 1 else None
        if not isinstance(arg, dict) or not all(isinstance(arg.get(k), str) for k in LOGIN_FIELDS):
            return "malformed login arguments"
        config = self.state.config
        key: str = arg["apiKey"]
        secrets = self.state.auth.secrets_of(key)
        if secrets is None:
            return "unknown API key"
        api_secret, passphrase = secrets
        now = self.state.sim.clock_ms()
        timestamp: str = arg["timestamp"]
        window = config.time_window_ms
        if not (timestamp.isdigit() and len(timestamp) == 13 and abs(now - int(timestamp)) <= window):
            return "timestamp missing or outside the window"
        if not hmac.compare_digest(arg["passphrase"].encode(), passphrase.encode()):
            return "wrong passphrase"
        nonce: str = arg["nonce"]
        expected = sign(api_secret, prehash(WS_LOGIN_PATH, "GET", timestamp, nonce, ""))
        if not nonce or not hmac.compare_digest(expected.encode(), arg["sign"].encode()):
            return "bad signature"
        self._nonces = {n: ts for n, ts in self._nonces.items() if ts >= now - config.time_window_ms}
        if (key, nonce) in self._nonces:
            return "nonce reused"
        self._nonces[(key, nonce)] = now
        return None


class PrivateConnection(Connection):
    """One accepted private socket: login, subscriptions, the engine's events it asked for."""

    name = "private ws"

    def __init__(self, ws: WebSocket, hub: PrivateWsHub) -> None:
        super().__init__(ws, hub)
        self.hub = hub
        self.subs: dict[Subscription, None] = {}  # ordered set
        self.logged_in = False
        self.sim: Simulator = hub.state.sim  # the engine of the account logged in to

    def deliver(self, event: SimEvent) -> None:
        """Called from the engine, on any thread."""
        self.on_loop(self.offer, event)

    def offer(self, event: SimEvent) -> None:
        if not self.logged_in:
            return
        for sub in list(self.subs):
            if sub.matches(event):
                data = event.data if event.channel == "account" else [event.data]
                self.push(push_message(sub, "update", data))

    async def push_balance_now_and_then(self) -> None:
        """The balance to every `account` subscription, every `account_push_s` (read at each turn; 0:
        none), changed or not."""
        while not self.closing:
            await asyncio.sleep(self.hub.account_push_s if self.hub.account_push_s > 0 else 1.0)
            if self.hub.account_push_s <= 0 or not self.logged_in:
                continue
            for sub in list(self.subs):
                if sub.channel == "account":
                    self.push(push_message(sub, "update", views.balance_view(self.sim.account(),
                                                                             self.sim.clock_ms())))

    # ---- requests --------------------------------------------------------------------------------
    def handle(self, text: str) -> None:
        if text == "ping":
            self.push("pong")
            return
        try:
            request = json.loads(text)
        except ValueError:
            request = None
        op = request.get("op") if isinstance(request, dict) else None
        if op == "login":
            self.login(request.get("args") if isinstance(request, dict) else None)
        elif op in ("subscribe", "unsubscribe") and isinstance(request, dict):
            self.subscription(str(op), request.get("args"), text)
        else:
            self.push(invalid(text))

    def login(self, args: Any) -> None:
        problem = self.hub.login_problem(args)
        if problem is not None:
            log.info("private ws login refused: %s", problem)
            self.push(LOGIN_FAILED)
            self.close_soon(1008, "login failed")
            return
        account = self.hub.state.accounts.get(str(args[0]["apiKey"]))
        self.hub.leave(self)
        self.sim = self.hub.state.sim if account is None else account.sim
        self.hub.join(self)
        self.logged_in = True
        self.push({"event": "login", "code": "0", "msg": ""})

    def subscription(self, op: str, args: Any, text: str) -> None:
        if not self.logged_in:
            self.push(NOT_LOGGED_IN)
            return
        subs = self._parse(args)
        if subs is None:
            self.push(invalid(text))
            return
        for sub in subs:
            if op == "unsubscribe":
                self.subs.pop(sub, None)
                self.push({"event": "unsubscribe", "arg": sub.arg()})
                continue
            self.subs[sub] = None
            self.push({"event": "subscribe", "arg": sub.arg()})
            self._snapshot(sub)

    def _parse(self, args: Any) -> list[Subscription] | None:
        if not isinstance(args, list) or not args:
            return None
        subs = []
        for arg in args:
            if not isinstance(arg, dict) or set(arg) - {"channel", "instId"}:
                return None
            if arg.get("channel") not in CHANNELS:
                return None
            inst_id = arg.get("instId")
            if inst_id is not None and not isinstance(inst_id, str):
                return None
            if inst_id is not None and inst_id not in self.hub.state.sim.instruments:
                return None
            subs.append(Subscription(arg["channel"], inst_id))
        return subs

    def _snapshot(self, sub: Subscription) -> None:
        """`positions` and `account` start with the current state; `orders` and `orders-algo` do not."""
        sim = self.sim
        if sub.channel == "positions":
            rows = [views.position_view(sim.instruments[p.inst_id], p, sim.prices[p.inst_id])
                    for p in sim.positions.values() if sub.inst_id in (None, p.inst_id)]
            self.push(push_message(sub, "snapshot", rows))
        elif sub.channel == "account":
            self.push(push_message(sub, "snapshot", views.balance_view(sim.account(), sim.clock_ms())))


# ---- routes ----------------------------------------------------------------------------------------
def hub_of(app: Any) -> PrivateWsHub:
    hub: PrivateWsHub = app.state.ws_hub
    return hub


@router.websocket("/ws/private")
async def private_ws(websocket: WebSocket) -> None:
    hub = hub_of(websocket.app)
    if hub.refusing():
        hub.refused_times.append(time.monotonic())
        await websocket.close(code=1013)  # before accept: the handshake is answered with HTTP 403
        return
    await websocket.accept()
    conn = PrivateConnection(websocket, hub)
    hub.connections.add(conn)
    try:
        await conn.serve(conn.push_balance_now_and_then())
    finally:
        hub.connections.discard(conn)
        hub.leave(conn)


class RefuseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(ge=0, le=3600)


@router.post("/sim/ws/drop")
async def drop(request: Request) -> dict[str, Any]:
    """Every socket, private (`dropped`) and public (`dropped_public`), as a network loss would."""
    private = hub_of(request.app).drop_all()
    public = public_hub_of(request.app).drop_all()
    return {"code": "0", "msg": "", "data": {"dropped": private, "dropped_public": public}}


@router.post("/sim/ws/refuse")
async def refuse(req: RefuseRequest, request: Request) -> dict[str, Any]:
    hub_of(request.app).refuse_for(req.seconds)
    public_hub_of(request.app).refuse_for(req.seconds)
    return {"code": "0", "msg": "", "data": {"seconds": req.seconds}}


def install(app: FastAPI, state: SimState, *, idle_timeout_s: float = IDLE_TIMEOUT_S) -> PrivateWsHub:
    """Mount `/ws/private` and its controls on the simulator app and feed it from the engine."""
    hub = PrivateWsHub(state, idle_timeout_s=idle_timeout_s)
    app.state.ws_hub = hub
    state.sim.subscribe(hub.publish)
    app.include_router(router)
    return hub
