"""The journal's reads behind the trade view (GET /api/v1/trades) and the P&L report (GET /api/v1/pnl).

A trade is a signal that sent orders: answered `placed` or `failed`, or still being placed ("sending").
A rejected signal sent nothing and is no trade. Each trade's state is one SQL expression (`view_state`)
over what the journal and the position monitor recorded, so the `state=` filter, the count and the
page agree with each other and with the state each trade shows:
- failed: the signal's answer is `failed`;
- pending: being placed, or placed and open with no entry filled yet;
- open: placed and open, and an entry has filled;
- closed: the monitor closed it (`trades.state` "closed"), or it ended after a fill (its position was
  not found again, or the paper exchange was reset);
- cancelled: over without any fill (entries expired or cancelled).
"An entry has filled" is read from the journal's state changes: an entry order recorded as filled,
partly filled or partly filled then cancelled (the executor records a fill seen at the answer, the
monitor every fill it sees after). The state changes keep it even when the order's own row later
says "canceled".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import Session

from hit_server.journal.db import Database, EventRow, OrderRow, SignalRow, as_utc
from hit_server.journal.journal import ORDERS, SIGNALS, STATE_CHANGES, OrderRecord, to_record
from hit_server.journal.trade_book import TRADES, TradeRow

FILL_STATES = ("filled", "partially_filled", "partially_canceled")
# the events the view reads: fills (average entry) and how the trade ended (exit reason)
VIEW_EVENTS = (
    "entry_filled",
    "closed",
    "entries_cancelled",
    "entries_expired",
    "position_not_found",
    "paper_exchange_reset",
)
IS_TRADE = or_(
    SIGNALS.c.status.in_(("placed", "failed")),
    and_(SIGNALS.c.status.is_(None), SIGNALS.c.state == "sending"),
)


def has_fill() -> ColumnElement[bool]:
    """Whether an entry of the signal (the enclosing query's) was ever recorded as (partly) filled."""
    changes, orders = STATE_CHANGES, ORDERS
    return exists(
        select(changes.c.id)
        .join(orders, orders.c.client_order_id == changes.c.client_order_id)
        .where(
            changes.c.signal_id == SIGNALS.c.signal_id,
            orders.c.role == "entry",
            changes.c.state.in_(FILL_STATES),
        )
    )


def view_state() -> ColumnElement[str]:
    """The trade's state (see the module docstring), over signals outer-joined with trades."""
    filled = has_fill()
    return case(
        (SIGNALS.c.status == "failed", "failed"),
        (SIGNALS.c.status.is_(None), "pending"),
        (TRADES.c.state == "closed", "closed"),
        (SIGNALS.c.is_open.is_(True), case((filled, "open"), else_="pending")),
        (filled, "closed"),
        else_="cancelled",
    )


def _trades_query() -> Select[Any]:
    return (
        select(SIGNALS.c.signal_id, view_state().label("view_state"))
        .select_from(SIGNALS.outerjoin(TRADES, TRADES.c.signal_id == SIGNALS.c.signal_id))
        .where(IS_TRADE)
    )


@dataclass
class TradeFacts:
    """Everything recorded about one trade (rows detached from their session: read them only)."""

    state: str
    signal: SignalRow
    trade: TradeRow | None
    orders: list[OrderRecord] = field(default_factory=list)
    first_fill_at: datetime | None = None
    events: list[EventRow] = field(default_factory=list)


@dataclass(frozen=True)
class ClosedTrade:
    closed_at: datetime
    realized_pnl: Decimal
    fee: Decimal


class TradeReads:
    """The reads; each method is one transaction of `Database` (see db.py)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def page(
        self, *, state: str | None, symbol: str | None, since: datetime | None, limit: int, offset: int
    ) -> tuple[list[TradeFacts], int]:
        """Trades newest first (by when the signal was received), with the count of all that match.
        The state expression runs over every candidate only when filtering by state; otherwise only
        over the page's trades."""
        query = select(SIGNALS.c.signal_id).where(IS_TRADE)
        if state is not None:
            joined = SIGNALS.outerjoin(TRADES, TRADES.c.signal_id == SIGNALS.c.signal_id)
            query = query.select_from(joined).where(view_state() == state)
        if symbol is not None:
            query = query.where(SIGNALS.c.symbol == symbol)
        if since is not None:
            query = query.where(SIGNALS.c.created_at >= since.astimezone(UTC))

        def read(session: Session) -> tuple[list[TradeFacts], int]:
            total = session.scalar(select(func.count()).select_from(query.subquery()))
            ids = list(
                session.scalars(
                    query.order_by(SIGNALS.c.created_at.desc(), SIGNALS.c.signal_id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            )
            rows = session.execute(_trades_query().where(SIGNALS.c.signal_id.in_(ids))).all()
            states: dict[str, str] = {row[0]: row[1] for row in rows}
            return _facts(session, {sid: states[sid] for sid in ids}, all_events=False), int(total or 0)

        return await self.db.session(read)

    async def one(self, signal_id: str) -> TradeFacts | None:
        """One trade with all its events; None when the signal is unknown or no trade (rejected)."""

        def read(session: Session) -> TradeFacts | None:
            row = session.execute(_trades_query().where(SIGNALS.c.signal_id == signal_id)).first()
            if row is None:
                return None
            return _facts(session, {row[0]: row[1]}, all_events=True)[0]

        return await self.db.session(read)

    async def closed_since(self, start: datetime) -> list[ClosedTrade]:
        """Trades closed at or after `start`, as `/stats` counts them (a close time and a P&L)."""
        query = (
            select(SIGNALS.c.closed_at, SIGNALS.c.realized_pnl, TRADES.c.fee)
            .select_from(SIGNALS.outerjoin(TRADES, TRADES.c.signal_id == SIGNALS.c.signal_id))
            .where(SIGNALS.c.closed_at.is_not(None), SIGNALS.c.closed_at >= start.astimezone(UTC))
        )

        def read(session: Session) -> list[ClosedTrade]:
            return [
                ClosedTrade(as_utc(at), Decimal(pnl or 0), Decimal(fee or 0))
                for at, pnl, fee in session.execute(query).all()
            ]

        return await self.db.session(read)


def _facts(session: Session, states: dict[str, str], *, all_events: bool) -> list[TradeFacts]:
    """The facts of these trades, in the order given, in a handful of queries."""
    ids = list(states)
    if not ids:
        return []
    signals = {r.signal_id: r for r in session.scalars(select(SignalRow).where(SignalRow.signal_id.in_(ids)))}
    trades = {r.signal_id: r for r in session.scalars(select(TradeRow).where(TradeRow.signal_id.in_(ids)))}
    facts = {sid: TradeFacts(states[sid], signals[sid], trades.get(sid)) for sid in ids}
    orders = session.scalars(
        select(OrderRow)
        .where(OrderRow.signal_id.in_(ids))
        .order_by(OrderRow.created_at, OrderRow.role, OrderRow.seq)
    )
    for order in orders:
        facts[order.signal_id].orders.append(to_record(order))
    changes, entry_orders = STATE_CHANGES, ORDERS
    first_fills = session.execute(
        select(changes.c.signal_id, func.min(changes.c.at))
        .join(entry_orders, entry_orders.c.client_order_id == changes.c.client_order_id)
        .where(changes.c.signal_id.in_(ids), entry_orders.c.role == "entry", changes.c.state.in_(FILL_STATES))
        .group_by(changes.c.signal_id)
    )
    for sid, at in first_fills:
        facts[sid].first_fill_at = None if at is None else as_utc(at)
    events = select(EventRow).where(EventRow.signal_id.in_(ids))
    if not all_events:
        events = events.where(EventRow.type.in_(VIEW_EVENTS))
    for event in session.scalars(events.order_by(EventRow.id)):
        if event.signal_id is not None:
            facts[event.signal_id].events.append(event)
    return [facts[sid] for sid in ids]
