"""Realised P&L per day, week or month (GET /api/v1/pnl), from the trades the position monitor closed.

Each closed trade counts once, in the period of its close, with the exchange's own figures as the
monitor recorded them (`pnl.py`: realised P&L net of fees, and the fees): the same trades, and the same
wins and losses, as `GET /api/v1/stats` counts. Periods are UTC: a day from midnight, a week from
Monday's midnight (ISO weeks), a month from its first day. The report covers the current period and the
`count - 1` before it, newest first; a period without a close is there with zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hit_server.journal.trade_reads import ClosedTrade
from hit_shared.trades import PnlBucket, PnlPeriod, PnlResponse


def period_start(period: PnlPeriod, at: datetime) -> datetime:
    """The start of the period holding `at` (UTC)."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period is PnlPeriod.DAY:
        return day
    if period is PnlPeriod.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def previous_start(period: PnlPeriod, start: datetime) -> datetime:
    """The start of the period before the one starting at `start`."""
    if period is PnlPeriod.DAY:
        return start - timedelta(days=1)
    if period is PnlPeriod.WEEK:
        return start - timedelta(days=7)
    return (start - timedelta(days=1)).replace(day=1)


def periods(period: PnlPeriod, count: int, now: datetime) -> list[tuple[datetime, datetime]]:
    """(start, end) of the current period and the `count - 1` before it, newest first."""
    start = period_start(period, now)
    end = _next_start(period, start)
    found = []
    for _ in range(count):
        found.append((start, end))
        start, end = previous_start(period, start), start
    return found


def _next_start(period: PnlPeriod, start: datetime) -> datetime:
    if period is PnlPeriod.DAY:
        return start + timedelta(days=1)
    if period is PnlPeriod.WEEK:
        return start + timedelta(days=7)
    return (start + timedelta(days=32)).replace(day=1)


def pnl_report(period: PnlPeriod, count: int, now: datetime, closed: Sequence[ClosedTrade]) -> PnlResponse:
    buckets = [
        _bucket(start, end, [t for t in closed if start <= t.closed_at < end])
        for start, end in periods(period, count, now)
    ]
    return PnlResponse(
        period=period,
        buckets=tuple(buckets),
        realized_pnl=sum((b.realized_pnl for b in buckets), Decimal(0)),
        fees=sum((b.fees for b in buckets), Decimal(0)),
        closed_trades=sum(b.closed_trades for b in buckets),
        wins=sum(b.wins for b in buckets),
        losses=sum(b.losses for b in buckets),
        as_of=now,
    )


def _bucket(start: datetime, end: datetime, trades: list[ClosedTrade]) -> PnlBucket:
    return PnlBucket(
        start=start,
        end=end,
        realized_pnl=sum((t.realized_pnl for t in trades), Decimal(0)),
        fees=sum((t.fee for t in trades), Decimal(0)),
        closed_trades=len(trades),
        wins=sum(1 for t in trades if t.realized_pnl > 0),
        losses=sum(1 for t in trades if t.realized_pnl < 0),
    )
