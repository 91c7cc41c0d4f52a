"""The trade feed: what GET /api/v1/events serves (placed, rejected, failed, stop repaired,
position closed for safety, halted, resumed, and the position monitor's lifecycle events: entry
filled, TP n hit, stop moved, stopped out, closed with P&L, naked position repaired, entries
expired or cancelled, orphaned order cancelled, paper trade ended because the paper exchange was
reset), read by the Discord bot to report outcomes.

The shape is unchanged by the lifecycle events: they add types, and numbers in `data` (prices,
sizes, `realized_pnl`, `fee`) are decimal strings. The event model and its types live in
`hit_shared.trades`: a trade's own events are also part of GET /api/v1/trades/{signal_id}."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from hit_server.journal.db import EventRow, as_utc
from hit_shared.trades import EVENT_TYPES, EventOut

__all__ = ["EVENT_TYPES", "EventOut", "EventsResponse", "event_out"]


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
