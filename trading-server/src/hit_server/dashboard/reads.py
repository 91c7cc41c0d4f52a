"""The closed trades behind the History and Performance pages, in one read of the journal.

A closed trade is one the position monitor closed with the exchange's figures (`signals.closed_at`
set: the same trades `/stats` and `/pnl` count), with its realised P&L (net of fees) and fees. Its risk,
for R, is what the signal put at stake: the contracts filled x |average entry - the signal's stop| x the
instrument's contract value (the entry fills from the `entry_filled` events, as the trade view reads
them). R = realised P&L / risk; unknown (None) when any of those is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hit_server.journal.db import Database, EventRow, as_utc
from hit_server.journal.journal import SIGNALS
from hit_server.journal.trade_book import TRADES


@dataclass(frozen=True)
class ClosedRow:
    signal_id: str
    symbol: str
    side: str
    source: str
    closed_at: datetime
    realized_pnl: Decimal
    fees: Decimal
    reason: str
    risk: Decimal | None

    @property
    def outcome(self) -> str:
        return "win" if self.realized_pnl > 0 else "loss" if self.realized_pnl < 0 else "flat"

    @property
    def r(self) -> Decimal | None:
        if self.risk is None or self.risk <= 0:
            return None
        return (self.realized_pnl / self.risk).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class HistoryFilter:
    """What the History page asks for; every field already checked (see `forms.history_filter`)."""

    symbol: str | None = None
    source: str | None = None
    side: str | None = None
    outcome: str | None = None
    start: date | None = None
    end: date | None = None

    def keeps(self, row: ClosedRow) -> bool:
        if self.source is not None and self.source.lower() not in row.source.lower():
            return False
        return self.outcome is None or row.outcome == self.outcome


def source_label(body: Mapping[str, Any]) -> str:
    """A signal's source as a person reads it: its channel, else its platform, else "api"."""
    source = body.get("source") or {}
    if not isinstance(source, Mapping):
        return "api"
    return str(source.get("channel") or source.get("platform") or "api")


async def closed_trades(
    db: Database, wanted: HistoryFilter, contract_values: Mapping[str, Decimal]
) -> list[ClosedRow]:
    """Closed trades matching `wanted`, the latest close first."""
    query = (
        select(
            SIGNALS.c.signal_id,
            SIGNALS.c.symbol,
            SIGNALS.c.side,
            SIGNALS.c.body,
            SIGNALS.c.realized_pnl,
            SIGNALS.c.closed_at,
            TRADES.c.fee,
            TRADES.c.exit_reason,
        )
        .select_from(SIGNALS.outerjoin(TRADES, TRADES.c.signal_id == SIGNALS.c.signal_id))
        .where(SIGNALS.c.closed_at.is_not(None))
    )
    if wanted.symbol is not None:
        query = query.where(SIGNALS.c.symbol == wanted.symbol)
    if wanted.side is not None:
        query = query.where(SIGNALS.c.side == wanted.side)
    if wanted.start is not None:
        query = query.where(SIGNALS.c.closed_at >= datetime.combine(wanted.start, time(), UTC))
    if wanted.end is not None:  # the end date is included
        query = query.where(
            SIGNALS.c.closed_at < datetime.combine(wanted.end + timedelta(days=1), time(), UTC)
        )
    fills = (
        select(EventRow.signal_id, EventRow.data)
        .join(SIGNALS, SIGNALS.c.signal_id == EventRow.signal_id)
        .where(EventRow.type == "entry_filled", SIGNALS.c.closed_at.is_not(None))
        .order_by(EventRow.id)
    )

    def read(session: Session) -> tuple[list[Any], list[Any]]:
        return list(session.execute(query).all()), list(session.execute(fills).all())

    rows, fill_rows = await db.session(read)
    entries = _entries(fill_rows)
    found = [_row(row, entries.get(row[0]), contract_values) for row in rows]
    kept = [r for r in found if wanted.keeps(r)]
    kept.sort(key=lambda r: (r.closed_at, r.signal_id), reverse=True)
    return kept


def _entries(fill_rows: list[Any]) -> dict[str, tuple[Decimal, Decimal]]:
    """signal_id -> (contracts filled, average entry), from each entry's last `entry_filled` event."""
    last: dict[str, dict[str, tuple[Decimal, Decimal]]] = {}
    for signal_id, data in fill_rows:
        data = data or {}
        size, price = _decimal(data.get("size")), _decimal(data.get("price"))
        if size is not None and price is not None and size > 0 and price > 0:
            last.setdefault(signal_id, {})[str(data.get("entry"))] = (size, price)
    averaged = {}
    for signal_id, per_entry in last.items():
        contracts = sum((s for s, _ in per_entry.values()), Decimal(0))
        averaged[signal_id] = (contracts, sum((s * p for s, p in per_entry.values()), Decimal(0)) / contracts)
    return averaged


def _row(
    row: Any, entry: tuple[Decimal, Decimal] | None, contract_values: Mapping[str, Decimal]
) -> ClosedRow:
    signal_id, symbol, side, body, pnl, closed_at, fee, reason = row
    body = body if isinstance(body, Mapping) else {}
    stop, value = _decimal(body.get("stop_loss")), contract_values.get(symbol)
    risk = None
    if entry is not None and stop is not None and value is not None:
        risk = entry[0] * abs(entry[1] - stop) * value
    return ClosedRow(
        signal_id=signal_id,
        symbol=symbol,
        side=side,
        source=source_label(body),
        closed_at=as_utc(closed_at),
        realized_pnl=_decimal(pnl) or Decimal(0),
        fees=_decimal(fee) or Decimal(0),
        reason=reason or "",
        risk=risk,
    )


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        found = Decimal(str(value))
    except InvalidOperation:
        return None
    return found if found.is_finite() else None
