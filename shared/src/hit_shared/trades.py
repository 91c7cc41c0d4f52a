"""The wire models of the server's read views that the bot shows too: trades as they live (GET
/api/v1/trades), the account (GET /api/v1/account) and realised P&L per period (GET /api/v1/pnl).

Like `models.py`: frozen, unknown fields refused, prices and sizes `Decimal` written as decimal strings
(here always as a person writes them: `60000`, never `6E+4`). Open-ended vocabularies (`exit_reason`,
an event's `type`) are strings, so a value added by a newer server does not break an older reader.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, PlainSerializer

from hit_shared.models import OrderInfo, Side, SignalSource, TradingMode, _Wire, fmt

# a decimal as a person writes it ("59612.5", "0.00012"), never "5.96125E+4"
Amount = Annotated[Decimal, PlainSerializer(fmt, return_type=str, when_used="json")]

EVENT_TYPES = (
    "placed",
    "rejected",
    "failed",
    "stop_repaired",
    "closed_for_safety",
    "take_profit_failed",
    "reconciled",
    "halted",
    "resumed",
    "halt_close",
    "entry_filled",
    "take_profit_hit",
    "stop_moved",
    "stopped_out",
    "closed",
    "naked_position_repaired",
    "entries_expired",
    "entries_cancelled",
    "orphan_cancelled",
    "position_not_found",
    "trade_pass_failed",
    "paper_exchange_reset",
)

EXIT_REASONS = (
    "targets",
    "stopped_out",
    "manual",
    "halt",
    "closed_for_safety",
    "liquidation",
    "entries_cancelled",
    "entries_expired",
    "position_not_found",
    "paper_exchange_reset",
)


class TradeState(StrEnum):
    """pending: entries resting (or being placed), nothing filled; open: something filled and the
    position is followed; closed: it had a position, now gone; cancelled: over without any fill;
    failed: the signal's answer is `failed`."""

    PENDING = "pending"
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class TargetState(StrEnum):
    """open: resting, or waiting for the entries to fill; hit: it filled; cancelled: it will not fill
    any more (the trade ended first); failed: the exchange refused it."""

    OPEN = "open"
    HIT = "hit"
    CANCELLED = "cancelled"
    FAILED = "failed"


class EventOut(_Wire):
    """One event of the trade feed (GET /api/v1/events) or of one trade (GET /api/v1/trades/{id})."""

    id: int
    type: str = Field(description=", ".join(EVENT_TYPES))
    signal_id: str | None = None
    symbol: str | None = None
    message: str
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class StopView(_Wire):
    price: Amount | None = Field(description="the stop level in force (moved to breakeven after TP1)")
    at_breakeven: bool = False


class TargetView(_Wire):
    number: int = Field(description="1 for TP1; targets at one price are one order, numbered by the first")
    price: Amount | None
    size: Amount = Field(description="contracts it closes: as sent, or as planned while not sent yet")
    state: TargetState


class TradeView(_Wire):
    """One trade as the server knows it now: the journal's signal and orders and the position
    monitor's record of it (fills, targets hit, stop level, exit, P&L and fees as the exchange
    computed them)."""

    signal_id: str
    state: TradeState
    symbol: str
    side: Side
    mode: TradingMode | None = None
    leverage: int | None = None
    size: Amount = Field(description="contracts planned")
    filled_size: Amount = Field(description="contracts the entries filled")
    avg_entry: Amount | None = Field(default=None, description="average fill price of the entries")
    stop: StopView
    targets: tuple[TargetView, ...] = ()
    realized_pnl: Amount | None = Field(default=None, description="net of fees, as the exchange reported it")
    fees: Amount | None = None
    exit_reason: str | None = Field(default=None, description=", ".join(EXIT_REASONS))
    reason: str | None = Field(default=None, description="one sentence: why it failed or how it ended")
    created_at: datetime
    opened_at: datetime | None = Field(default=None, description="the first fill")
    closed_at: datetime | None = None
    source: SignalSource | None = None


class TradeDetail(TradeView):
    """A trade with every order journaled for it and its events, oldest first."""

    orders: tuple[OrderInfo, ...] = ()
    events: tuple[EventOut, ...] = ()


class TradesPage(_Wire):
    trades: tuple[TradeView, ...]
    total: int
    limit: int
    offset: int


class AccountResponse(_Wire):
    """The exchange account now (its futures USDT line and open positions)."""

    mode: TradingMode
    currency: str
    equity: Amount
    available_margin: Amount
    frozen: Amount
    unrealized_pnl: Amount
    open_positions: int
    as_of: datetime


class PnlPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class PnlBucket(_Wire):
    """Trades closed in [start, end) (UTC): their realised P&L (net of fees) and fees."""

    start: datetime
    end: datetime
    realized_pnl: Amount
    fees: Amount
    closed_trades: int
    wins: int
    losses: int


class PnlResponse(_Wire):
    period: PnlPeriod
    buckets: tuple[PnlBucket, ...] = Field(description="newest first, the current period first")
    realized_pnl: Amount
    fees: Amount
    closed_trades: int
    wins: int
    losses: int
    as_of: datetime
