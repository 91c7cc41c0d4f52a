"""The simulated exchange: account, positions, orders and TP/SL orders, with no HTTP in sight.

Everything happens synchronously under the caller's control: an order is checked, filled or rested at
once; a price move (`set_price`) fills resting limit orders and fires TP/SL orders in the order the move
crosses them. Each change is appended to `events` and passed to every subscriber, which is where a private
WebSocket plugs in. A price move is not such an event: it goes to `price_listeners` alone (the public
WebSocket), so that a subscriber is not woken by every tick. Liquidation is not simulated.

A `Simulator` is one account. Instruments and prices belong to the `Market` (`market.py`), which the
simulator app shares between all its accounts (`registry.py`); a Simulator built alone has a market of
its own. `instruments`, `prices` and `price_listeners` are the market's, and `set_price` moves the
price for every account of that market.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from hit_server.exchange.instruments import Instrument

from . import ledger, rules, views
from .adversity import ItemFaults, LookupLag, partial_size
from .config import SimConfig
from .errors import SimError
from .ledger import AccountSummary, summarize
from .market import Market, PriceListener
from .matching import Trigger, next_trigger
from .models import (
    ClosedPosition,
    Fill,
    MarginMode,
    OrderParams,
    Side,
    SimEvent,
    SimOrder,
    SimPosition,
    SimTpsl,
    TpslParams,
)

DEFAULT_LEVERAGE = 3
FIRST_ID = 1_000_000_001
Subscriber = Callable[[SimEvent], None]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Simulator:
    """One simulated BloFin futures account. Tests may read every attribute directly.

    `market`: the market this account trades on (a new one of its own if None); `balance`: its
    starting cash (None: `config.balance`); `first_id`: the first of its order, TP/SL, trade and
    position ids (accounts of one market are given ranges apart, as BloFin's ids are unique)."""

    def __init__(
        self, config: SimConfig, *, clock_ms: Callable[[], int] = wall_clock_ms, market: Market | None = None,
        balance: Decimal | None = None, first_id: int = FIRST_ID,
    ) -> None:
        self.config = config
        self.clock_ms = clock_ms
        self.market = Market() if market is None else market
        self.starting_balance = config.balance if balance is None else balance
        self.first_id = first_id
        self.subscribers: list[Subscriber] = []
        self.reset_account()

    # the market's, shared with every other account of it
    @property
    def instruments(self) -> dict[str, Instrument]:
        return self.market.instruments

    @property
    def prices(self) -> dict[str, Decimal]:
        return self.market.prices

    @property
    def price_listeners(self) -> list[PriceListener]:
        return self.market.price_listeners

    def reset(self) -> None:
        """Back to the starting balance and prices; subscribers and price listeners stay. The prices
        are the market's, shared with any other account of it: `reset_account` leaves them."""
        self.market.reset_prices()
        self.reset_account()

    def reset_account(self) -> None:
        """The account back to its starting balance with nothing in it; subscribers stay."""
        self.market.forget(self)
        self.cash: Decimal = self.starting_balance
        self.margin_mode: MarginMode = "cross"
        self.position_mode = "net_mode"
        self.leverage: dict[tuple[str, str], int] = {}
        self.positions: dict[str, SimPosition] = {}
        self.orders: dict[str, SimOrder] = {}
        self.orders_by_client_id: dict[str, SimOrder] = {}
        self.tpsl_orders: dict[str, SimTpsl] = {}
        self.tpsl_by_client_id: dict[str, SimTpsl] = {}
        # what is still open, kept by _order_changed/_tpsl_changed (every state change goes through
        # them), so listing open orders costs what is open rather than everything ever placed
        self._open_orders: dict[str, SimOrder] = {}
        self._live_tpsl: dict[str, SimTpsl] = {}
        self.used_client_ids: set[str] = set()
        self.client_id_used_at: dict[str, int] = {}  # clientOrderId -> when last accepted (ms)
        # adversarial modes (adversity.py): off until the control API sets them
        self.lag = LookupLag()
        self.duplicate_window_ms: int | None = None  # None: a clientOrderId is refused forever
        self.partial_fraction: Decimal | None = None  # None: a resting order fills whole
        self.attached_tpsl_lost = 0  # so many fills of orders with a TP/SL attached create none
        self.item_faults: ItemFaults | None = None  # refusals of single items of list writes
        self.fills: list[Fill] = []
        self.position_history: list[ClosedPosition] = []
        self.events: deque[SimEvent] = deque(maxlen=10_000)
        self._ids = itertools.count(self.first_id)
        self._seq = itertools.count(1)

    # ---- reading -------------------------------------------------------------------------------
    def instrument(self, inst_id: str) -> Instrument:
        return self.market.instrument(inst_id)

    def price(self, inst_id: str) -> Decimal:
        self.instrument(inst_id)
        return self.prices[inst_id]

    def leverage_for(self, inst_id: str, margin_mode: str) -> int:
        return self.leverage.get((inst_id, margin_mode), DEFAULT_LEVERAGE)

    def open_orders(self, inst_id: str | None = None) -> list[SimOrder]:
        return [o for o in self._open_orders.values() if o.is_open and inst_id in (None, o.inst_id)]

    def live_tpsl(self, inst_id: str | None = None) -> list[SimTpsl]:
        return [t for t in self._live_tpsl.values() if t.state == "live" and inst_id in (None, t.inst_id)]

    def account(self) -> AccountSummary:
        return summarize(self.cash, self.instruments, self.prices, self.positions, self.open_orders())

    def rests_on(self, inst_id: str) -> bool:
        """Whether a price move of `inst_id` can fill or fire anything of this account."""
        return any(o.inst_id == inst_id for o in self._open_orders.values()) or any(
            t.inst_id == inst_id for t in self._live_tpsl.values())

    def rewatch(self) -> None:
        """Tell the market every instrument this account rests something on (after its orders were
        put back wholesale: a restore)."""
        orders = {o.inst_id for o in self._open_orders.values()}
        for inst_id in sorted(orders | {t.inst_id for t in self._live_tpsl.values()}):
            self.market.watch(inst_id, self)

    # ---- events --------------------------------------------------------------------------------
    def subscribe(self, callback: Subscriber) -> None:
        self.subscribers.append(callback)

    def _emit(self, channel: str, data: dict[str, Any]) -> None:
        event = SimEvent(channel, data)
        self.events.append(event)
        for callback in list(self.subscribers):
            callback(event)

    def _order_changed(self, order: SimOrder) -> None:
        if order.is_open:
            self._open_orders[order.order_id] = order
            self.market.watch(order.inst_id, self)
        else:
            self._open_orders.pop(order.order_id, None)
        self._emit("orders", views.order_view(order))
        # BloFin pushes the account on placing, cancelling and fills: an order changes what is available
        self._emit("account", views.balance_view(self.account(), self.clock_ms()))

    def _tpsl_changed(self, tpsl: SimTpsl) -> None:
        if tpsl.state == "live":
            self._live_tpsl[tpsl.tpsl_id] = tpsl
            self.market.watch(tpsl.inst_id, self)
        else:
            self._live_tpsl.pop(tpsl.tpsl_id, None)
        self._emit("orders-algo", views.tpsl_view(tpsl))

    def _position_changed(self, inst_id: str) -> None:
        pos = self.positions.get(inst_id)
        if pos is not None:
            data = views.position_view(self.instruments[inst_id], pos, self.prices[inst_id])
        else:
            data = {"instId": inst_id, "positions": "0", "positionSide": "net"}
        self._emit("positions", data)

    def _next_id(self) -> str:
        return str(next(self._ids))

    # ---- settings ------------------------------------------------------------------------------
    def set_leverage(self, inst_id: str, leverage: int, margin_mode: MarginMode) -> None:
        inst = self.instrument(inst_id)
        if not 1 <= leverage <= inst.max_leverage:
            raise SimError("152002", "leverage")
        if margin_mode == "cross" and any(o.margin_mode == "cross" for o in self.open_orders(inst_id)):
            raise SimError("110006")
        self.leverage[(inst_id, margin_mode)] = leverage
        pos = self.positions.get(inst_id)
        if pos is not None and pos.margin_mode == margin_mode:
            pos.leverage = leverage
            self._position_changed(inst_id)

    def set_margin_mode(self, margin_mode: MarginMode) -> None:
        if margin_mode != self.margin_mode and (self.positions or self.open_orders()):
            raise SimError("110019")
        self.margin_mode = margin_mode

    def set_position_mode(self, mode: str) -> None:
        if mode not in ("net_mode", "long_short_mode"):
            raise SimError("152002", "positionMode")
        if mode != self.position_mode and (self.positions or self.open_orders() or self.live_tpsl()):
            raise SimError("110019")
        if mode != "net_mode":
            raise SimError("152404", msg="The simulator supports net_mode only.")
        self.position_mode = mode

    def force_position_mode(self, mode: str) -> None:
        """Put the account in `mode` whatever it holds (the control API's hedge mode, for tests)."""
        if mode not in ("net_mode", "long_short_mode"):
            raise SimError("152002", "positionMode")
        self.position_mode = mode

    def _check_position_side(self, position_side: str) -> None:
        """A write's positionSide must fit the account's mode (102089, as BloFin answers). Hedge mode
        exists here only to refuse `net` writes: its long and short positions are not simulated."""
        if (position_side == "net") != (self.position_mode == "net_mode"):
            raise SimError("102089")
        if position_side != "net":
            raise SimError("152404", msg="The simulator does not simulate hedge-mode positions.")

    def _client_id_taken(self, client_order_id: str) -> bool:
        """Used within the duplicate window (forever unless the control API set a window)."""
        if client_order_id not in self.used_client_ids:
            return False
        window = self.duplicate_window_ms
        used_at = self.client_id_used_at.get(client_order_id)
        return window is None or used_at is None or self.clock_ms() - used_at < window

    def _use_client_id(self, client_order_id: str, now: int) -> None:
        self.used_client_ids.add(client_order_id)
        self.client_id_used_at[client_order_id] = now

    # ---- orders --------------------------------------------------------------------------------
    def place_order(self, params: OrderParams, *, category: str = "normal") -> SimOrder:
        """Check, record and execute one order; raises SimError (nothing recorded) when refused."""
        inst = self.instrument(params.inst_id)
        rules.check_client_order_id(params.client_order_id, self._client_id_taken)
        self._check_position_side(params.position_side)
        rules.check_order_shape(inst, params)
        pos = self.positions.get(params.inst_id)
        if pos is not None and pos.margin_mode != params.margin_mode:
            raise SimError("152002", msg="Parameter marginMode error: the position uses another margin mode.")
        if params.reduce_only and (pos is None or (pos.size > 0) == (params.side == "buy")):
            raise SimError("102022")
        last = self.prices[params.inst_id]
        if not params.tpsl.empty:
            ref = None if params.order_type == "market" else params.price
            rules.check_attached_tpsl(params.side, params.tpsl, last, ref)
        leverage = self.leverage_for(params.inst_id, params.margin_mode)
        self._check_margin(inst, params, pos, leverage, last)
        now = self.clock_ms()
        order = SimOrder(
            order_id=self._next_id(), client_order_id=params.client_order_id, inst_id=params.inst_id,
            side=params.side, order_type=params.order_type, price=params.price, size=params.size,
            margin_mode=params.margin_mode, leverage=leverage, reduce_only=params.reduce_only,
            create_time=now, update_time=now, seq=next(self._seq), tpsl=params.tpsl, category=category,
            broker_id=params.broker_id, position_side=params.position_side,
        )
        self._record(order)
        self._on_new_order(order, last)
        return order

    def _check_margin(
        self, inst: Instrument, params: OrderParams, pos: SimPosition | None, leverage: int, last: Decimal
    ) -> None:
        price = params.price if params.price is not None and params.order_type != "market" else last
        opening = ledger.opening_size(params, pos)
        if opening == 0:
            return
        need = ledger.notional(inst, opening, price) * (1 / Decimal(leverage) + ledger.TAKER_FEE)
        if need > self.account().available:
            raise SimError("103003")

    def _record(self, order: SimOrder) -> None:
        self.orders[order.order_id] = order
        if order.client_order_id:
            self._use_client_id(order.client_order_id, order.create_time)
            self.orders_by_client_id[order.client_order_id] = order
        self.lag.accepted(order.order_id, order.create_time)
        self._order_changed(order)

    def _on_new_order(self, order: SimOrder, last: Decimal) -> None:
        if order.order_type == "market":
            self._fill(order, last, maker=False)
            return
        assert order.price is not None  # noqa: S101 - checked by rules.check_order_shape
        marketable = order.price >= last if order.side == "buy" else order.price <= last
        if marketable and order.order_type == "post_only":
            self._cancel(order, "post_only_canceled")
        elif marketable:
            self._fill(order, last, maker=False)
        elif order.order_type in ("ioc", "fok"):
            self._cancel(order, "not_filled_canceled")

    def _cancel(self, order: SimOrder, source: str) -> None:
        order.state = "partially_canceled" if order.filled_size else "canceled"
        order.cancel_source = source
        order.update_time = self.clock_ms()
        self._order_changed(order)

    def cancel_order(self, inst_id: str | None, order_id: str, client_order_id: str) -> SimOrder:
        order = self.find_order(inst_id, order_id, client_order_id)
        if order is None or not order.is_open:
            raise SimError("102068")
        self._cancel(order, "user_canceled")
        return order

    def find_order(self, inst_id: str | None, order_id: str, client_order_id: str) -> SimOrder | None:
        order = self.orders.get(order_id) if order_id else self.orders_by_client_id.get(client_order_id)
        if order is None or (inst_id and order.inst_id != inst_id):
            return None
        return order

    def close_position(
        self, inst_id: str, margin_mode: MarginMode, client_order_id: str, position_side: str = "net"
    ) -> SimOrder:
        pos = self.positions.get(inst_id)
        self.instrument(inst_id)
        self._check_position_side(position_side)
        if pos is None or pos.size == 0:
            raise SimError("102005")
        side: Side = "sell" if pos.size > 0 else "buy"
        params = OrderParams(
            inst_id=inst_id, side=side, order_type="market", size=abs(pos.size), margin_mode=margin_mode,
            reduce_only=True, client_order_id=client_order_id,
        )
        inst = self.instruments[inst_id]
        if params.size > inst.max_market_size:
            params = replace(params, size=inst.max_market_size)
        return self.place_order(params)

    # ---- fills ---------------------------------------------------------------------------------
    def _fill(self, order: SimOrder, price: Decimal, *, maker: bool, part: Decimal | None = None) -> None:
        """Fill what is left of `order` (or only `part` of it: it then stays open for the rest)."""
        inst = self.instruments[order.inst_id]
        left = order.size - order.filled_size
        qty = left if part is None else min(part, left)
        pos = self.positions.get(order.inst_id)
        clipped = False
        if order.reduce_only:
            if pos is None or (pos.size > 0) == (order.side == "buy"):
                self._cancel(order, "reduce_only_canceled")
                return
            clipped = qty > abs(pos.size)
            qty = min(qty, abs(pos.size))
        rate = ledger.MAKER_FEE if maker else ledger.TAKER_FEE
        remaining = qty
        while remaining > 0:
            pos = self.positions.get(order.inst_id) or self._open_position(order)
            part = remaining
            if pos.size != 0 and (pos.size > 0) != (order.side == "buy"):
                part = min(remaining, abs(pos.size))  # close first, then open the rest on a new position
            result = ledger.apply_fill(inst, pos, order.side, part, price, rate)
            self.cash += result.pnl - result.fee
            self._record_fill(order, part, price, result, maker)
            remaining -= part
            if pos.size == 0:
                self._archive_position(pos)
            else:
                self._position_changed(order.inst_id)
        if order.filled_size == order.size:
            order.state = "filled"
        else:
            order.state = "partially_filled" if part is not None and not clipped else "partially_canceled"
        order.update_time = self.clock_ms()
        self._order_changed(order)
        if not order.tpsl.empty and order.inst_id in self.positions:
            self._attach_tpsl(order, qty)

    def _record_fill(
        self, order: SimOrder, qty: Decimal, price: Decimal, result: ledger.FillResult, maker: bool
    ) -> None:
        order.filled_size += qty
        order.filled_amount += qty * price
        order.fee += result.fee
        order.pnl += result.pnl
        self.fills.append(Fill(
            trade_id=self._next_id(), order_id=order.order_id, inst_id=order.inst_id, side=order.side,
            price=price, size=qty, pnl=result.pnl, fee=result.fee, ts=self.clock_ms(), maker=maker,
        ))

    def _open_position(self, order: SimOrder) -> SimPosition:
        now = self.clock_ms()
        pos = SimPosition(
            position_id=self._next_id(), inst_id=order.inst_id, margin_mode=order.margin_mode,
            leverage=order.leverage, create_time=now, update_time=now, first_side=order.side,
        )
        self.positions[order.inst_id] = pos
        return pos

    def _archive_position(self, pos: SimPosition) -> None:
        """A position reached zero: keep it in the history and cancel its TP/SL orders, as BloFin does."""
        del self.positions[pos.inst_id]
        now = self.clock_ms()
        pos.update_time = now
        self.position_history.append(ClosedPosition(self._next_id(), replace(pos), now))
        for tpsl in self.live_tpsl(pos.inst_id):
            tpsl.state = "canceled"
            tpsl.cancel_type = "system_canceled"
            tpsl.update_time = now
            self._tpsl_changed(tpsl)
        self._position_changed(pos.inst_id)
        self._emit("account", views.balance_view(self.account(), now))

    # ---- TP/SL ---------------------------------------------------------------------------------
    def _attach_tpsl(self, order: SimOrder, filled: Decimal) -> None:
        """The order's TP/SL covers what it filled: grown by `filled` (this fill) while it is live,
        else a new one for this fill (the first fill, or after the earlier one fired or was cancelled)."""
        if self.attached_tpsl_lost > 0:
            self.attached_tpsl_lost -= 1
            return  # the order filled, its TP/SL was never created: the position is naked
        current = self.tpsl_orders.get(order.algo_id) if order.algo_id else None
        if current is not None and current.state == "live" and current.size is not None:
            current.size += filled
            current.update_time = self.clock_ms()
            self._tpsl_changed(current)
            return
        tpsl = self._new_tpsl(TpslParams(
            inst_id=order.inst_id, side="sell" if order.side == "buy" else "buy",
            margin_mode=order.margin_mode, size=filled, tpsl=order.tpsl,
        ))
        order.algo_id = tpsl.tpsl_id

    def place_tpsl(self, params: TpslParams) -> SimTpsl:
        inst = self.instrument(params.inst_id)
        rules.check_client_order_id(params.client_order_id, self._client_id_taken)
        rules.check_instrument(inst)
        if params.tpsl.empty:
            raise SimError("152003", "tpTriggerPrice", "slTriggerPrice")
        rules.check_tpsl_prices(inst, params.tpsl)
        if params.size is not None:
            rules.check_size(inst, params.size, market=False)
        self._check_position_side(params.position_side)
        pos = self.positions.get(params.inst_id)
        if pos is None or (pos.size > 0) == (params.side == "buy"):
            raise SimError("102022")
        rules.check_position_tpsl("buy" if pos.size > 0 else "sell", params.tpsl, self.prices[params.inst_id])
        return self._new_tpsl(params)

    def _new_tpsl(self, params: TpslParams) -> SimTpsl:
        now = self.clock_ms()
        tpsl = SimTpsl(
            tpsl_id=self._next_id(), client_order_id=params.client_order_id, inst_id=params.inst_id,
            side=params.side, margin_mode=params.margin_mode, size=params.size, spec=params.tpsl,
            leverage=self.leverage_for(params.inst_id, params.margin_mode), create_time=now,
            update_time=now, seq=next(self._seq), reduce_only=params.reduce_only, broker_id=params.broker_id,
        )
        self.tpsl_orders[tpsl.tpsl_id] = tpsl
        if tpsl.client_order_id:
            self._use_client_id(tpsl.client_order_id, now)
            self.tpsl_by_client_id[tpsl.client_order_id] = tpsl
        self.lag.accepted(tpsl.tpsl_id, now)
        self._tpsl_changed(tpsl)
        return tpsl

    def find_tpsl(self, inst_id: str | None, tpsl_id: str, client_order_id: str) -> SimTpsl | None:
        tpsl = self.tpsl_orders.get(tpsl_id) if tpsl_id else self.tpsl_by_client_id.get(client_order_id)
        if tpsl is None or (inst_id and tpsl.inst_id != inst_id):
            return None
        return tpsl

    def cancel_tpsl(self, inst_id: str | None, tpsl_id: str, client_order_id: str) -> SimTpsl:
        tpsl = self.find_tpsl(inst_id, tpsl_id, client_order_id)
        if tpsl is None or tpsl.state != "live":
            raise SimError("102068")
        tpsl.state = "canceled"
        tpsl.cancel_type = "user_canceled"
        tpsl.update_time = self.clock_ms()
        self._tpsl_changed(tpsl)
        return tpsl

    def _fire_tpsl(self, tpsl: SimTpsl, kind: str, price: Decimal) -> None:
        pos = self.positions.get(tpsl.inst_id)
        tpsl.update_time = self.clock_ms()
        if pos is None or (pos.size > 0) == (tpsl.side == "buy"):
            tpsl.state = "order_failed"
            self._tpsl_changed(tpsl)
            return
        qty = abs(pos.size) if tpsl.size is None else min(tpsl.size, abs(pos.size))
        limit = tpsl.spec.tp_price if kind == "tp" else tpsl.spec.sl_price
        tpsl.state, tpsl.fired, tpsl.actual_size = "effective", "tp" if kind == "tp" else "sl", qty
        self._tpsl_changed(tpsl)
        now = self.clock_ms()
        order = SimOrder(
            order_id=self._next_id(), client_order_id="", inst_id=tpsl.inst_id, side=tpsl.side,
            order_type="market" if limit is None else "limit", price=limit, size=qty,
            margin_mode=tpsl.margin_mode, leverage=pos.leverage, reduce_only=True, create_time=now,
            update_time=now, seq=next(self._seq), category=tpsl.fired, algo_id=tpsl.tpsl_id,
        )
        tpsl.order_id = order.order_id
        self._record(order)
        self._on_new_order(order, price)

    # ---- prices --------------------------------------------------------------------------------
    def load_prices(self, prices: Mapping[str, Decimal]) -> None:
        """Set the market's prices without moving through them (a restored account): nothing fills."""
        self.market.load_prices(prices)

    def set_price(self, inst_id: str, price: Decimal) -> None:
        """Move the market's last and mark to `price`: for this account and every other one of the
        market, what the move crosses fires in the order it crosses it (`Market.set_price`)."""
        self.market.set_price(inst_id, price)

    def cross(self, inst_id: str, price: Decimal) -> None:
        """This account's part of a price move (called by `Market.set_price`, which set the price to
        where the move starts and sets it to `price` after): fill the resting orders and fire the TP/SL
        orders the move from there to `price` crosses, each at the point it crosses it."""
        filled_in_part: set[str] = set()  # with partial fills: one part per order per move
        for _ in range(10_000):
            start = self.prices[inst_id]
            orders = [o for o in self.open_orders(inst_id) if o.order_id not in filled_in_part]
            trig = next_trigger(start, price, orders, self.live_tpsl(inst_id))
            if trig is None:
                break
            self.prices[inst_id] = trig.point
            self._execute(trig)
            if isinstance(trig.item, SimOrder) and trig.item.is_open:
                filled_in_part.add(trig.item.order_id)

    def _execute(self, trig: Trigger) -> None:
        if isinstance(trig.item, SimOrder):
            order = trig.item
            assert order.price is not None  # noqa: S101 - only priced orders become triggers
            part = None
            if self.partial_fraction is not None:
                lot = self.instruments[order.inst_id].lot_size
                part = partial_size(order.size, order.size - order.filled_size, lot, self.partial_fraction)
            self._fill(order, order.price, maker=True, part=part)
        else:
            self._fire_tpsl(trig.item, trig.kind, trig.point)
