"""Resolving signals a crash or a timeout left between "sent" and "answered" (rule 1).

At every start, and whenever a replay meets a signal without a stored answer, each order still
"sending" or "unknown" is looked up on the exchange by its clientOrderId, never resent:
- an entry found on the exchange makes the signal "placed" (and, if it filled, its stop is confirmed
  or placed, or the position closed: rule 2);
- no entry found anywhere makes it "failed": nothing reached the exchange.
If the exchange cannot answer, the signal stays unresolved and is tried again at the next start.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from hit_server.blofin_errors import BloFinError
from hit_server.db import SignalRow, as_utc
from hit_server.execution import Execution, Outcome
from hit_server.journal import EventRecord, OrderRecord
from hit_server.responses import build_response
from hit_server.risk import PlannedOrder, TradePlan
from hit_shared.logs import signal_context
from hit_shared.models import OrderRole, TradeSignal

if TYPE_CHECKING:
    from hit_server.service import TradingService

log = logging.getLogger(__name__)

UNSETTLED = ("sending", "unknown")


async def reconcile_all(service: TradingService) -> int:
    """Resolve every unresolved signal; the number resolved."""
    resolved = 0
    for row in await service.journal.unresolved():
        if await reconcile_one(service, row):
            resolved += 1
    return resolved


async def reconcile_one(service: TradingService, row: SignalRow) -> bool:
    """True when the signal now has a settled answer."""
    with signal_context(row.signal_id):
        return await _reconcile_one(service, row)


async def _reconcile_one(service: TradingService, row: SignalRow) -> bool:
    signal = TradeSignal.model_validate(row.body)
    records = await service.journal.orders_of(row.signal_id)
    try:
        for record in records:
            if (
                record.state in UNSETTLED
                or record.state == "pending"
                or (record.role == OrderRole.ENTRY and record.state == "live")
            ):
                await _look_up(service, record)
    except BloFinError as exc:
        log.warning(
            "Reconciliation of %s postponed: the exchange did not answer (%s)",
            row.signal_id,
            type(exc).__name__,
        )
        return False
    entries = [r for r in records if r.role == OrderRole.ENTRY]
    if any(r.order_id is not None for r in entries):
        outcome = await _placed(service, signal, records)
    else:
        outcome = _nothing_sent(signal, records)
    plan = _plan_of(signal, records, service.settings.default_leverage)
    created = as_utc(row.created_at) if row.created_at else datetime.now(UTC)
    response = build_response(signal, service.mode, outcome.status, outcome.reason, plan, records, created)
    await service.journal.finish(
        row.signal_id,
        status=outcome.status,
        reason=outcome.reason,
        response=response.model_dump(mode="json"),
        orders=records,
        is_open=outcome.is_open,
        events=outcome.events,
        state=outcome.state,
    )
    log.warning("Reconciled signal %s: %s", row.signal_id, outcome.status)
    return outcome.state == "answered"


async def _look_up(service: TradingService, record: OrderRecord) -> None:
    if record.role == OrderRole.STOP_LOSS:
        tpsl = await service.client.tpsl_detail(record.symbol, client_order_id=record.client_order_id)
        if tpsl is None:
            record.state = "attached" if record.order_type == "attached" else "not_sent"
        else:
            record.order_id, record.state = tpsl.tpsl_id, tpsl.state
        return
    order = await service.client.order_detail(record.symbol, client_order_id=record.client_order_id)
    if order is None:
        record.state = "pending" if record.role == OrderRole.TAKE_PROFIT else "not_sent"
    else:
        record.order_id, record.state = order.order_id, order.state


async def _placed(service: TradingService, signal: TradeSignal, records: list[OrderRecord]) -> Outcome:
    plan = _plan_of(signal, records, service.settings.default_leverage)
    run = Execution(
        signal, plan, await service.client.instrument(signal.symbol), service.settings.margin_mode, records
    )
    if not await service.executor.ensure_stop(run):
        outcome = await service.executor.close_for_safety(run)
        return outcome
    run.event(
        "reconciled",
        f"{signal.symbol} {signal.side.value}: the entry was found on the exchange after "
        "an interruption; the trade is placed",
    )
    return Outcome(
        "placed",
        "recovered after an interruption: the entry was found on the exchange",
        records,
        run.events,
        is_open=True,
    )


def _nothing_sent(signal: TradeSignal, records: list[OrderRecord]) -> Outcome:
    reason = "the server was interrupted before the entry reached the exchange; nothing was placed"
    for record in records:
        if record.state in UNSETTLED:
            record.state = "not_sent"
    event = EventRecord(
        type="failed",
        message=f"{signal.symbol} {signal.side.value} failed: {reason}",
        signal_id=signal.signal_id,
        symbol=signal.symbol,
    )
    return Outcome("failed", reason, records, [event], is_open=False)


def _plan_of(signal: TradeSignal, records: list[OrderRecord], default_leverage: int) -> TradePlan:
    """The plan as journaled (its orders), enough to answer and to protect the position."""
    entries = tuple(PlannedOrder(r.price, r.size) for r in records if r.role == OrderRole.ENTRY)
    tps = tuple(PlannedOrder(r.price, r.size) for r in records if r.role == OrderRole.TAKE_PROFIT)
    stop = next((r.trigger_price for r in records if r.role == OrderRole.STOP_LOSS), None)
    size = sum((e.size for e in entries), Decimal(0))
    return TradePlan(
        leverage=signal.leverage or default_leverage,
        size=size,
        entries=entries,
        stop_loss=stop or signal.stop_loss,
        take_profits=tps,
        risk_usd=Decimal(0),
        notional_usd=Decimal(0),
        reference_price=Decimal(0),
    )
