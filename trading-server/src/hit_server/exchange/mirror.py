"""The account as BloFin's private stream shows it, kept current between REST reads (issue #18).

A signal's entry should leave without first asking the exchange what the account holds: that costs a
network round trip before every order. The mirror keeps the answer warm instead: positions, open
orders, live TP/SL orders and the balance, from the pushes of the private WebSocket (`orders`,
`positions`, `orders-algo`, `account`), on top of one REST read of each when the stream (re)connects.

When it may be believed (`live`):
- only while the stream is up AND the REST seed taken after the last (re)connection has landed. Pushes
  arriving while the seed is being read are held back and applied on top of it, in order: each push
  carries the whole state of its item, so replaying one the seed already reflects changes nothing, and
  a later push wins;
- a row that can't be read makes the mirror not live until the next seed (it can no longer vouch for
  what it shows), and the seed is taken again;
- the balance is believed only if it was read or pushed within `balance_max_age_s` (BloFin pushes it
  on account events and now and then; the mirror re-reads it by REST in the background before it gets
  that old, so a signal never waits for it);
- the whole seed is taken again every `reseed_s` while connected, which bounds what a lost push could
  leave wrong.
A caller that finds it not live reads REST, as it did before the mirror existed: the mirror only ever
saves reads, it never stands in for an answer it does not have.

Every method but `stop` and `wait_until` is synchronous and never awaits, so a reader sees one
consistent state within one step of the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from hit_server.exchange.blofin_errors import BloFinError
from hit_server.exchange.blofin_models import Balance, Order, Position, TpslOrder

log = logging.getLogger(__name__)

T = TypeVar("T")
BALANCE_MAX_AGE_S = 30.0
RESEED_S = 300.0
BALANCE_RETRY_S = 2.0
RESEED_RETRY_S = (0.5, 30.0)  # first and longest wait before a failed seed is tried again
ORDERS_KEPT = 2000  # closed orders remembered by clientOrderId (a pass asks about recent ones)
LIVE_TPSL = ("live",)


class AccountReader(Protocol):
    """The REST reads a seed takes (`BloFinClient` has them)."""

    async def balance(self) -> Balance: ...

    async def positions(self, inst_id: str | None = None) -> list[Position]: ...

    async def pending_orders(self, inst_id: str | None = None) -> list[Order]: ...

    async def pending_tpsl(self, inst_id: str | None = None) -> list[TpslOrder]: ...


@dataclass(frozen=True)
class Seed:
    balance: Balance
    positions: list[Position]
    orders: list[Order]
    tpsl: list[TpslOrder]


class AccountMirror:
    """One account's positions, orders, TP/SL orders and balance, as the stream last said."""

    def __init__(
        self,
        reader: AccountReader | None,
        *,
        balance_max_age_s: float = BALANCE_MAX_AGE_S,
        reseed_s: float = RESEED_S,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.reader = reader
        self.balance_max_age_s = balance_max_age_s
        self.reseed_s = reseed_s
        self.clock = clock or _loop_time  # the clock the refresh task sleeps on, by default
        self.seeds = 0  # seeds landed (for tests and the health page)
        self._positions: dict[str, Position] = {}
        self._open: dict[str, Order] = {}  # open orders by orderId
        self._seen: OrderedDict[str, Order] = OrderedDict()  # every order's last state, by clientOrderId
        self._tpsl: dict[str, TpslOrder] = {}  # live TP/SL orders by tpslId
        self._balance: Balance | None = None
        self._balance_at = float("-inf")
        self._connected = False
        self._live = False
        self._held_back: list[tuple[str, list[dict[str, Any]]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return f"AccountMirror(live={self._live}, positions={len(self._positions)}, orders={len(self._open)})"

    # -- the feed's side ---------------------------------------------------------------------------

    def connected(self) -> None:
        """The stream is up (again): what it missed is unknown until a new seed has landed."""
        self._connected = True
        self._go_stale()
        if self.reader is not None:
            self._task = asyncio.get_running_loop().create_task(self._keep_seeded(), name="account-mirror")

    def disconnected(self) -> None:
        self._connected = False
        self._go_stale()

    def push(self, channel: str, rows: list[dict[str, Any]]) -> None:
        """One push of the private stream (rows as BloFin sends them)."""
        if not self._connected:
            return
        if self._held_back is not None:
            self._held_back.append((channel, rows))
            return
        try:
            self._apply(channel, rows)
        except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
            log.warning("Account mirror: a %s push could not be read (%s); reading the account again",
                        channel, type(exc).__name__)
            self._restart_seed()
        self._bump()

    async def stop(self) -> None:
        self._connected = False
        self._go_stale()

    # -- the readers' side -------------------------------------------------------------------------

    @property
    def live(self) -> bool:
        """Whether the mirror shows the account as it is (see the module docstring)."""
        return self._live

    def balance(self) -> Balance | None:
        """The balance, if live and no older than `balance_max_age_s`; else None (read REST)."""
        if not self._live or self.clock() - self._balance_at > self.balance_max_age_s:
            return None
        return self._balance

    def positions(self, symbol: str | None = None) -> list[Position]:
        return [p for p in self._positions.values() if symbol in (None, p.inst_id)]

    def held_symbols(self) -> set[str]:
        return set(self._positions)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self._open.values() if symbol in (None, o.inst_id)]

    def order(self, client_order_id: str) -> Order | None:
        """The last state the stream showed of the order with this clientOrderId (open or not)."""
        return self._seen.get(client_order_id)

    def closed_orders(self) -> dict[str, Order]:
        """Orders seen to end (filled or cancelled), by clientOrderId."""
        return {cid: o for cid, o in self._seen.items() if not o.is_open}

    def live_tpsl(self, symbol: str | None = None) -> list[TpslOrder]:
        return [t for t in self._tpsl.values() if symbol in (None, t.inst_id)]

    async def wait_live(self, seconds: float) -> bool:
        """Whether the mirror is live now or becomes so within `seconds` (a seed lands)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while not self._live:
            if not await self._next_change(deadline):
                return False
        return True

    async def wait_until(self, check: Callable[[], T | None], seconds: float) -> T | None:
        """`check()`'s first answer that is not None, asked after every change while the mirror is
        live; None when it stops being live or `seconds` pass first."""
        deadline = asyncio.get_running_loop().time() + seconds
        while self._live:
            answer = check()
            if answer is not None:
                return answer
            if not await self._next_change(deadline):
                return None
        return None

    async def _next_change(self, deadline: float) -> bool:
        """Wait for the next change (`_bump`) until `deadline` (loop time); False when it had passed."""
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return False
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(remaining):
                await changed.wait()
        return True

    # -- applying pushes ---------------------------------------------------------------------------

    def _apply(self, channel: str, rows: list[dict[str, Any]]) -> None:
        if channel == "positions":
            for row in rows:
                position = Position.from_blofin(row)
                if position.positions == 0:
                    self._positions.pop(position.inst_id, None)
                else:
                    self._positions[position.inst_id] = position
        elif channel == "orders":
            for row in rows:
                self._order(Order.from_blofin(row))
        elif channel == "orders-algo":
            for row in rows:
                self._tpsl_order(TpslOrder.from_blofin(row))
        elif channel == "account":
            for row in rows:
                self._set_balance(Balance.from_blofin(row))

    def _order(self, order: Order) -> None:
        if order.is_open:
            self._open[order.order_id] = order
        else:
            self._open.pop(order.order_id, None)
        if order.client_order_id:
            self._seen[order.client_order_id] = order
            self._seen.move_to_end(order.client_order_id)
            while len(self._seen) > ORDERS_KEPT:
                self._seen.popitem(last=False)

    def _tpsl_order(self, order: TpslOrder) -> None:
        if order.state in LIVE_TPSL:
            self._tpsl[order.tpsl_id] = order
        else:
            self._tpsl.pop(order.tpsl_id, None)

    def _set_balance(self, balance: Balance) -> None:
        self._balance, self._balance_at = balance, self.clock()

    def _bump(self) -> None:
        """Wake every `wait_until` to look again."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- seeding -----------------------------------------------------------------------------------

    def _go_stale(self) -> None:
        self._live = False
        self._held_back = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._bump()

    def _restart_seed(self) -> None:
        self.connected()

    async def _keep_seeded(self) -> None:
        """Seed now, then keep the balance fresh and seed again every `reseed_s`, while connected."""
        assert self.reader is not None  # noqa: S101 - only started with a reader
        retry = RESEED_RETRY_S[0]
        while True:
            self._held_back = []
            try:
                seed = await self._read_seed()
            except (BloFinError, OSError) as exc:
                self._held_back = None
                log.warning("Account mirror: reading the account failed (%s); trying again in %g s",
                            type(exc).__name__, retry)
                await asyncio.sleep(retry)
                retry = min(RESEED_RETRY_S[1], retry * 2)
                continue
            retry = RESEED_RETRY_S[0]
            if not self._take(seed):
                continue
            await self._keep_balance_fresh(self.clock() + self.reseed_s)

    async def _read_seed(self) -> Seed:
        assert self.reader is not None  # noqa: S101
        balance, positions, orders, tpsl = await asyncio.gather(
            self.reader.balance(), self.reader.positions(), self.reader.pending_orders(),
            self.reader.pending_tpsl(),
        )
        return Seed(balance, positions, orders, tpsl)

    def _take(self, seed: Seed) -> bool:
        """Replace the state with the seed and apply the pushes held back meanwhile; False when one
        of those can't be read (seed again)."""
        held_back, self._held_back = self._held_back or [], None
        self._positions = {p.inst_id: p for p in seed.positions if p.positions != 0}
        self._open = {}
        for order in seed.orders:
            self._order(order)
        self._tpsl = {t.tpsl_id: t for t in seed.tpsl if t.state in LIVE_TPSL}
        self._set_balance(seed.balance)
        try:
            for channel, rows in held_back:
                self._apply(channel, rows)
        except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
            log.warning("Account mirror: a held-back push could not be read (%s); reading again",
                        type(exc).__name__)
            return False
        self._live = True
        self.seeds += 1
        self._bump()
        return True

    async def _keep_balance_fresh(self, until: float) -> None:
        """Re-read the balance by REST before it gets older than allowed, until `until` (clock)."""
        assert self.reader is not None  # noqa: S101
        while self.clock() < until:
            # due counted from the latest word each time: a push meanwhile (BloFin pushes the balance
            # on events and at a regular interval) puts the read off again
            due = self._balance_at + self.balance_max_age_s / 2
            if self.clock() < due:
                await asyncio.sleep(max(0.05, min(due, until) - self.clock()))
                continue
            asked_at = self._balance_at
            try:
                balance = await self.reader.balance()
            except (BloFinError, OSError) as exc:
                log.info("Account mirror: balance refresh failed (%s)", type(exc).__name__)
                await asyncio.sleep(BALANCE_RETRY_S)  # the signals read REST meanwhile
                continue
            if self._balance_at == asked_at:  # no push meanwhile: the read is the newest word
                self._set_balance(balance)


def _loop_time() -> float:
    return asyncio.get_running_loop().time()
