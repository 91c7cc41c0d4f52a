"""The simulator's records written the way BloFin's REST API returns them (every value a string)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hit_server.exchange.instruments import Instrument

from . import ledger
from .catalog import fmt
from .ledger import AccountSummary
from .models import ClosedPosition, Fill, SimOrder, SimPosition, SimTpsl


def opt(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)


def order_price(value: Decimal | None, trigger: Decimal | None) -> str | None:
    """An attached order price: None when there is no trigger, "-1" for a market order."""
    if trigger is None:
        return None
    return "-1" if value is None else fmt(value)


def order_view(order: SimOrder) -> dict[str, Any]:
    avg = order.average_price
    return {
        "orderId": order.order_id,
        "clientOrderId": order.client_order_id,
        "instId": order.inst_id,
        "instType": "SWAP",
        "marginMode": order.margin_mode,
        "positionSide": order.position_side,
        "side": order.side,
        "orderType": order.order_type,
        "price": fmt(order.price) if order.price is not None else "0",
        "size": fmt(order.size),
        "reduceOnly": "true" if order.reduce_only else "false",
        "leverage": str(order.leverage),
        "state": order.state,
        "filledSize": fmt(order.filled_size),
        "filled_amount": fmt(order.filled_amount),
        "averagePrice": fmt(avg) if avg is not None else "0",
        "fee": fmt(order.fee),
        "pnl": fmt(order.pnl),
        "createTime": str(order.create_time),
        "updateTime": str(order.update_time),
        "orderCategory": order.category,
        "tpTriggerPrice": opt(order.tpsl.tp_trigger),
        "tpOrderPrice": order_price(order.tpsl.tp_price, order.tpsl.tp_trigger),
        "slTriggerPrice": opt(order.tpsl.sl_trigger),
        "slOrderPrice": order_price(order.tpsl.sl_price, order.tpsl.sl_trigger),
        "algoClientOrderId": "",
        "algoId": order.algo_id,
        "cancelSource": order.cancel_source,
        "cancelSourceReason": _cancel_reason(order.cancel_source),
        "brokerId": order.broker_id,
    }


def _cancel_reason(source: str) -> str:
    return {
        "": "",
        "user_canceled": "Order canceled by user",
        "post_only_canceled": "Post-only order would have taken liquidity",
        "not_filled_canceled": "IOC/FOK order could not be filled at once",
        "reduce_only_canceled": "Reduce-only order had no position to reduce",
    }.get(source, source)


def tpsl_view(tpsl: SimTpsl) -> dict[str, Any]:
    return {
        "tpslId": tpsl.tpsl_id,
        "clientOrderId": tpsl.client_order_id,
        "instId": tpsl.inst_id,
        "instType": "SWAP",
        "marginMode": tpsl.margin_mode,
        "positionSide": tpsl.position_side,
        "side": tpsl.side,
        "orderType": "conditional",
        "tpTriggerPrice": opt(tpsl.spec.tp_trigger),
        "tpOrderPrice": order_price(tpsl.spec.tp_price, tpsl.spec.tp_trigger),
        "slTriggerPrice": opt(tpsl.spec.sl_trigger),
        "slOrderPrice": order_price(tpsl.spec.sl_price, tpsl.spec.sl_trigger),
        "size": "-1" if tpsl.size is None else fmt(tpsl.size),
        "state": tpsl.state,
        "leverage": str(tpsl.leverage),
        "reduceOnly": "true" if tpsl.reduce_only else "false",
        "actualSize": opt(tpsl.actual_size),
        "actualSide": tpsl.fired or None,
        "cancelType": tpsl.cancel_type,
        "orderId": tpsl.order_id or None,
        "createTime": str(tpsl.create_time),
        "updateTime": str(tpsl.update_time),
        "brokerId": tpsl.broker_id,
    }


def position_view(inst: Instrument, pos: SimPosition, mark: Decimal) -> dict[str, Any]:
    upl = ledger.unrealized_pnl(inst, pos, mark)
    margin = ledger.position_margin(inst, pos, mark)
    maint = ledger.notional(inst, pos.size, mark) * ledger.MAINTENANCE_RATE
    row: dict[str, Any] = {
        "positionId": pos.position_id,
        "instId": pos.inst_id,
        "instType": "SWAP",
        "marginMode": pos.margin_mode,
        "positionSide": "net",
        "adl": "1",
        "positions": fmt(pos.size),
        "availablePositions": fmt(pos.size),
        "averagePrice": fmt(pos.average_price),
        "markPrice": fmt(mark),
        "marginRatio": fmt((margin / maint).quantize(Decimal("0.0001"))) if maint else "0",
        "liquidationPrice": "",
        "unrealizedPnl": fmt(upl),
        "unrealizedPnlRatio": fmt((upl / margin).quantize(Decimal("0.000001"))) if margin else "0",
        "maintenanceMargin": fmt(maint),
        "createTime": str(pos.create_time),
        "updateTime": str(pos.update_time),
        "leverage": str(pos.leverage),
    }
    row["initialMargin" if pos.margin_mode == "cross" else "margin"] = fmt(margin)
    return row


def closed_position_view(closed: ClosedPosition) -> dict[str, Any]:
    pos = closed.position
    close_avg = pos.close_amount / pos.closed_size if pos.closed_size else Decimal(0)
    return {
        "historyId": closed.history_id,
        "positionId": pos.position_id,
        "instId": pos.inst_id,
        "instType": "SWAP",
        "side": pos.first_side,
        "marginMode": pos.margin_mode,
        "positionSide": "net",
        "closePositions": fmt(pos.closed_size),
        "maxPositions": fmt(pos.max_size),
        "liquidationPositions": "0",
        "openAveragePrice": fmt(pos.average_price),
        "closeAveragePrice": fmt(close_avg),
        "createTime": str(pos.create_time),
        "updateTime": str(closed.close_time),
        "leverage": str(pos.leverage),
        "realizedPnl": fmt(pos.realized_pnl - pos.fees),
        "pnl": fmt(pos.realized_pnl),
        "fee": fmt(pos.fees),
        "state": "closed",
    }


def fill_view(fill: Fill) -> dict[str, Any]:
    return {
        "instId": fill.inst_id,
        "tradeId": fill.trade_id,
        "orderId": fill.order_id,
        "fillPrice": fmt(fill.price),
        "fillSize": fmt(fill.size),
        "fillPnl": fmt(fill.pnl),
        "positionSide": "net",
        "side": fill.side,
        "fee": fmt(fill.fee),
        "ts": str(fill.ts),
        "brokerId": "",
    }


def balance_view(acc: AccountSummary, now: int) -> dict[str, Any]:
    ts = str(now)
    detail = {
        "currency": "USDT",
        "equity": fmt(acc.equity),
        "balance": fmt(acc.cash),
        "ts": ts,
        "isolatedEquity": fmt(acc.isolated_equity),
        "available": fmt(acc.available),
        "availableEquity": fmt(acc.available),
        "frozen": fmt(acc.frozen),
        "orderFrozen": fmt(acc.order_frozen),
        "equityUsd": fmt(acc.equity),
        "isolatedUnrealizedPnl": fmt(acc.isolated_upl),
        "bonus": "0",
    }
    return {"ts": ts, "totalEquity": fmt(acc.equity), "isolatedEquity": fmt(acc.isolated_equity),
            "details": [detail]}
