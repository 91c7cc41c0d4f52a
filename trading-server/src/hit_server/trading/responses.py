"""The TradeResponse of a signal, built from its plan and its orders' last known states."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from hit_server.journal.journal import OrderRecord
from hit_server.risk.engine import TradePlan
from hit_shared.models import OrderInfo, OrderRole, TradeResponse, TradeSignal, TradeStatus, TradingMode

_ROLES = {role.value for role in OrderRole}


def order_info(record: OrderRecord) -> OrderInfo:
    return OrderInfo(
        role=OrderRole(record.role),
        order_id=record.order_id,
        client_order_id=record.client_order_id,
        type=record.order_type,
        price=record.price,
        trigger_price=record.trigger_price,
        size=record.size,
        state=record.state,
    )


def build_response(
    signal: TradeSignal,
    mode: TradingMode,
    status: str,
    reason: str | None,
    plan: TradePlan | None,
    records: Sequence[OrderRecord],
    created_at: datetime,
) -> TradeResponse:
    return TradeResponse(
        signal_id=signal.signal_id,
        status=TradeStatus(status),
        reason=reason,
        mode=mode,
        symbol=signal.symbol,
        side=signal.side,
        leverage=plan.leverage if plan is not None else signal.leverage,
        size=plan.size if plan is not None and status != "rejected" else Decimal(0),
        orders=tuple(order_info(r) for r in records if r.role in _ROLES),
        created_at=created_at,
    )
