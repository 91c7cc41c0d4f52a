"""Checks BloFin makes before accepting an order or a TP/SL order; each failure is a SimError."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

from hit_server.exchange.instruments import Instrument

from .errors import SimError, param_error, param_missing
from .models import OrderParams, Side, TpslSpec

CLIENT_ID = re.compile(r"[A-Za-z0-9_]{1,32}")


def check_client_order_id(client_order_id: str, taken: Callable[[str], bool]) -> None:
    """Well formed (152009) and not `taken` by an earlier order (102002)."""
    if not client_order_id:
        return
    if not CLIENT_ID.fullmatch(client_order_id):
        raise SimError("152009", "clientOrderId")
    if taken(client_order_id):
        raise SimError("102002")


def check_instrument(inst: Instrument) -> None:
    if not inst.is_live:
        raise SimError("152002", msg=f"Instrument {inst.inst_id} is not live (state {inst.state}).")


def check_size(inst: Instrument, size: Decimal, *, market: bool) -> None:
    if size <= 0 or size < inst.min_size or size % inst.lot_size != 0:
        raise param_error("size")
    if market and size > inst.max_market_size:
        raise SimError("102015")
    if not market and size > inst.max_limit_size:
        raise SimError("102014")


def check_price(inst: Instrument, price: Decimal | None, name: str = "price") -> None:
    if price is None:
        raise param_missing(name)
    if price <= 0 or not inst.is_on_tick(price):
        raise param_error(name)


def check_order_shape(inst: Instrument, params: OrderParams) -> None:
    check_instrument(inst)
    market = params.order_type == "market"
    if not market:
        check_price(inst, params.price)
    check_size(inst, params.size, market=market)
    if params.position_side != "net":
        raise SimError("102089")
    check_tpsl_prices(inst, params.tpsl)


def check_tpsl_prices(inst: Instrument, spec: TpslSpec) -> None:
    for trigger, order, name in (
        (spec.tp_trigger, spec.tp_price, "tpTriggerPrice"),
        (spec.sl_trigger, spec.sl_price, "slTriggerPrice"),
    ):
        if trigger is not None:
            check_price(inst, trigger, name)
        if order is not None:
            check_price(inst, order, name.replace("Trigger", "Order"))


def check_attached_tpsl(side: Side, spec: TpslSpec, last: Decimal, order_price: Decimal | None) -> None:
    """TP/SL attached to an entry: a buy needs TP above and SL below the reference price, a sell the reverse.

    The reference is the order price of a limit order and the last price of a market order.
    """
    tp, sl = spec.tp_trigger, spec.sl_trigger
    if order_price is None:
        check_position_tpsl(side, spec, last)
        return
    if side == "buy":
        if tp is not None and tp <= order_price:
            raise SimError("102052")
        if sl is not None and sl >= order_price:
            raise SimError("102051")
    else:
        if tp is not None and tp >= order_price:
            raise SimError("102049")
        if sl is not None and sl <= order_price:
            raise SimError("102047")


def check_position_tpsl(entry_side: Side, spec: TpslSpec, last: Decimal) -> None:
    """TP/SL of a position opened by `entry_side` (a long: TP above last, SL below last)."""
    tp, sl = spec.tp_trigger, spec.sl_trigger
    if entry_side == "buy":
        if tp is not None and tp <= last:
            raise SimError("102037")
        if sl is not None and sl >= last:
            raise SimError("102038")
    else:
        if tp is not None and tp >= last:
            raise SimError("102039")
        if sl is not None and sl <= last:
            raise SimError("102040")
