"""The trade feed: what GET /api/v1/events serves (placed, rejected, failed, stop repaired,
position closed for safety, halted, resumed, and the position monitor's lifecycle events: entry
filled, TP n hit, stop moved, stopped out, closed with P&L, naked position repaired, entries
expired or cancelled, orphaned order cancelled, paper trade ended because the paper exchange was
reset), read by the Discord bot to report outcomes.

The shape is unchanged by the lifecycle events: they add types, and numbers in `data` (prices,
sizes, `realized_pnl`, `fee`) are decimal strings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hit_server.journal.db import EventRow, as_utc

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
    "entry_filled",
    "take_profit_hit",
    "stop_moved",
    "stopped_out",
    "closed",
    "naked_position_repaired",
    "entries_expired",
    "entries_cancelled",
    "orphan_cancelled",
    "paper_exchange_reset",
)


class EventOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    type: str = Field(description=", ".join(EVENT_TYPES))
    signal_id: str | None = None
    symbol: str | None = None
    message: str
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class EventsResponse(BaseModel):
    model_config = ConfigDict(frozen=True)

    events: list[EventOut]


def event_out(row: EventRow) -> EventOut:
    return EventOut(
        id=row.id,
        type=row.type,
        signal_id=row.signal_id,
        symbol=row.symbol,
        message=row.message,
        data=row.data or {},
        created_at=as_utc(row.created_at),
    )
