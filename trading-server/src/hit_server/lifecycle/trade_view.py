"""A trade as it lives, for GET /api/v1/trades: derived from what the server recorded, never guessed.

`trade_view(facts)` (and `trade_detail`, with the orders and events) turns what the journal holds about
one trade (`journal/trade_reads.py`: its signal and answer, its orders, the position monitor's `trades`
row, its fills in the state changes, its events) into the wire model of `hit_shared.trades`. Whatever
acts on a trade later can read it the same way: `TradeViews.one(signal_id)`.

Where each field comes from:
- `state`: `trade_reads.view_state` (one SQL expression, also used by the `state=` filter);
- `filled_size`: the monitor's fills per entry; an entry it has not looked at yet counts when the
  journal records it filled (a market entry filled at the answer);
- `avg_entry`: the exchange's average price of each entry as its last `entry_filled` event reported it,
  weighted by the contracts filled;
- `stop`: the level the monitor keeps (moved to breakeven after TP1), or the journaled stop before the
  monitor's first look;
- `targets`: the plan's targets (`<prefix>t<n>`) with every order sent for them (fill batches
  `t<n>b<k>`): hit once one filled (the monitor's `targets_hit`), open while one rests or waits;
- `realized_pnl`, `fees`: the exchange's figures (positions-history), recorded when the trade closed;
- `exit_reason`: the kind the monitor gave its `closed` event (stop, targets, manual, halt, ...), or the
  event that ended a trade without a close (entries cancelled or expired, position not found, paper
  exchange reset); `reason` is the sentence.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from hit_server.journal.db import Database, EventRow, as_utc
from hit_server.journal.events import event_out
from hit_server.journal.journal import OrderRecord
from hit_server.journal.trade_book import TradeRow
from hit_server.journal.trade_reads import TradeFacts, TradeReads
from hit_server.lifecycle.trade_work import NOT_SENT, REPLACED
from hit_server.trading import ids
from hit_server.trading.responses import order_info
from hit_shared.models import OrderRole, Side, SignalSource, TradingMode
from hit_shared.trades import (
    StopView,
    TargetState,
    TargetView,
    TradeDetail,
    TradesPage,
    TradeState,
    TradeView,
)

# the kind of a `closed` event (lifecycle/pnl.py) -> the trade's exit_reason
EXIT_KINDS = {
    "stop": "stopped_out",
    "breakeven_stop": "stopped_out",
    "targets": "targets",
    "liquidation": "liquidation",
    "manual": "manual",
    "halt": "halt",
    "closed_for_safety": "closed_for_safety",
}
# events that end a trade without a close: the exit_reason is their type
ENDINGS = ("entries_cancelled", "entries_expired", "position_not_found", "paper_exchange_reset")
TARGET_WAITS = ("pending", "sending", "unknown", "live", "partially_filled")
OVER = (TradeState.CLOSED, TradeState.CANCELLED)


class TradeViews:
    """The trade views of one journal."""

    def __init__(self, db: Database) -> None:
        self.reads = TradeReads(db)

    async def page(
        self, *, state: TradeState | None, symbol: str | None, since: datetime | None, limit: int, offset: int
    ) -> TradesPage:
        facts, total = await self.reads.page(
            state=None if state is None else state.value,
            symbol=symbol,
            since=since,
            limit=limit,
            offset=offset,
        )
        return TradesPage(trades=tuple(trade_view(f) for f in facts), total=total, limit=limit, offset=offset)

    async def one(self, signal_id: str) -> TradeDetail | None:
        facts = await self.reads.one(signal_id)
        return None if facts is None else trade_detail(facts)


def trade_view(facts: TradeFacts) -> TradeView:
    return TradeView(**_fields(facts))


def trade_detail(facts: TradeFacts) -> TradeDetail:
    return TradeDetail(
        **_fields(facts),
        orders=tuple(order_info(r) for r in facts.orders),
        events=tuple(event_out(e) for e in facts.events),
    )


def _fields(facts: TradeFacts) -> dict[str, Any]:
    signal, trade, state = facts.signal, facts.trade, TradeState(facts.state)
    body: dict[str, Any] = signal.body or {}
    answer: dict[str, Any] = signal.response or {}
    entries = [r for r in facts.orders if r.role == OrderRole.ENTRY]
    source = body.get("source")
    return {
        "signal_id": signal.signal_id,
        "state": state,
        "symbol": signal.symbol,
        "side": Side(signal.side),
        "mode": TradingMode(answer["mode"]) if answer.get("mode") else None,
        "leverage": answer.get("leverage", body.get("leverage")),
        "size": _decimal(answer.get("size"))
        if "size" in answer
        else sum((r.size for r in entries), Decimal(0)),
        "filled_size": _filled(entries, trade),
        "avg_entry": _avg_entry(facts.events),
        "stop": _stop(facts),
        "targets": _targets(facts, state),
        "realized_pnl": _decimal(trade.realized_pnl) if trade is not None and state in OVER else None,
        "fees": _decimal(trade.fee) if trade is not None and state in OVER else None,
        "exit_reason": _exit_reason(facts.events) if state in OVER else None,
        "reason": trade.exit_reason if trade is not None and trade.exit_reason else signal.reason,
        "created_at": as_utc(signal.created_at),
        "opened_at": _opened_at(facts),
        "closed_at": _closed_at(facts) if state in OVER else None,
        "source": None if source is None else SignalSource.model_validate(source),
    }


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _filled(entries: list[OrderRecord], trade: TradeRow | None) -> Decimal:
    fills = {cid: _decimal(v) or Decimal(0) for cid, v in ((trade.fills or {}) if trade else {}).items()}
    total = Decimal(0)
    for record in entries:
        if record.client_order_id in fills:
            total += fills[record.client_order_id]
        elif record.state == "filled":  # filled at the answer; the monitor has not looked yet
            total += record.size
    return total


def _avg_entry(events: list[EventRow]) -> Decimal | None:
    """The fills' average price: each entry's last `entry_filled` event carries its filled contracts and
    the exchange's average price for them."""
    last: dict[str, tuple[Decimal, Decimal]] = {}
    for event in events:
        data = event.data or {}
        size, price = _decimal(data.get("size")), _decimal(data.get("price"))
        if event.type == "entry_filled" and size is not None and price is not None and size > 0 and price > 0:
            last[str(data.get("entry"))] = (size, price)
    if not last:
        return None
    contracts = sum((size for size, _ in last.values()), Decimal(0))
    average = sum((size * price for size, price in last.values()), Decimal(0)) / contracts
    places = max(-int(price.as_tuple().exponent) for _, price in last.values()) + 4
    return average.quantize(Decimal(1).scaleb(-max(places, 0)))


def _stop(facts: TradeFacts) -> StopView:
    trade = facts.trade
    level = None if trade is None else _decimal(trade.stop_price)
    if trade is not None and level is not None and level > 0:
        return StopView(price=level, at_breakeven=bool(trade.at_breakeven))
    journaled = next(
        (r.trigger_price for r in facts.orders if r.role == OrderRole.STOP_LOSS and r.trigger_price), None
    )
    return StopView(price=journaled or _decimal((facts.signal.body or {}).get("stop_loss")))


def _targets(facts: TradeFacts, state: TradeState) -> tuple[TargetView, ...]:
    signal_id = facts.signal.signal_id
    orders = [r for r in facts.orders if r.role == OrderRole.TAKE_PROFIT]
    planned = {r.seq: r for r in orders if r.client_order_id == ids.take_profit_id(signal_id, r.seq)}
    hit = {int(n) for n in (facts.trade.targets_hit or [])} if facts.trade is not None else set()
    waiting = state in (TradeState.PENDING, TradeState.OPEN)
    # the plan's targets, and those a trader's POST /trades/{id}/targets numbered after them
    numbers = sorted({r.seq for r in orders})
    return tuple(
        _target(planned.get(n), [r for r in orders if r.seq == n], n in hit, waiting) for n in numbers
    )


def _target(planned: OrderRecord | None, mine: list[OrderRecord], hit: bool, waiting: bool) -> TargetView:
    # a target a trader's action replaced (re-split or new prices) shows what replaced it
    current = [r for r in mine if r.state != REPLACED] or mine
    sent = [r for r in current if r.state not in NOT_SENT]
    if hit or any(r.state == "filled" for r in mine):
        state = TargetState.HIT
    elif waiting and any(r.state in TARGET_WAITS for r in current):
        state = TargetState.OPEN
    elif sent and all(r.state == "failed" for r in sent):
        state = TargetState.FAILED
    else:
        state = TargetState.CANCELLED
    shown = current[-1] if len(current) < len(mine) else planned or mine[0]
    size = sum((r.size for r in sent), Decimal(0)) if sent else shown.size
    return TargetView(number=shown.seq, price=shown.price, size=size, state=state)


def _exit_reason(events: list[EventRow]) -> str | None:
    for event in reversed(events):
        if event.type == "closed":
            kind = str((event.data or {}).get("reason", ""))
            return EXIT_KINDS.get(kind, kind or None)
        if event.type in ENDINGS:
            return event.type
    return None


def _opened_at(facts: TradeFacts) -> datetime | None:
    if facts.first_fill_at is not None:
        return facts.first_fill_at
    fill = next((e for e in facts.events if e.type == "entry_filled"), None)
    return None if fill is None else as_utc(fill.created_at)


def _closed_at(facts: TradeFacts) -> datetime:
    if facts.trade is not None and facts.trade.closed_at is not None:
        return as_utc(facts.trade.closed_at)
    signal = facts.signal
    return as_utc(signal.closed_at or signal.updated_at)
