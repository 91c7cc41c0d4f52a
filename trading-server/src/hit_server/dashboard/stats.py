"""Performance figures over closed trades (pure): totals, win rate, average R, the cumulative P&L curve,
daily P&L, and the same per source and per symbol; and the History page's CSV."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from hit_server.dashboard.reads import ClosedRow


@dataclass(frozen=True)
class Summary:
    name: str
    trades: int
    wins: int
    losses: int
    realized_pnl: Decimal
    fees: Decimal
    avg_r: Decimal | None

    @property
    def win_rate(self) -> Decimal | None:
        decided = self.wins + self.losses
        return None if decided == 0 else (Decimal(self.wins) * 100 / decided).quantize(Decimal("0.1"))


def summarize(name: str, rows: Sequence[ClosedRow]) -> Summary:
    rs = [r.r for r in rows if r.r is not None]
    return Summary(
        name=name,
        trades=len(rows),
        wins=sum(1 for r in rows if r.outcome == "win"),
        losses=sum(1 for r in rows if r.outcome == "loss"),
        realized_pnl=sum((r.realized_pnl for r in rows), Decimal(0)),
        fees=sum((r.fees for r in rows), Decimal(0)),
        avg_r=(sum(rs, Decimal(0)) / len(rs)).quantize(Decimal("0.01")) if rs else None,
    )


def grouped(rows: Iterable[ClosedRow], key: Callable[[ClosedRow], str]) -> list[Summary]:
    """One summary per key, the best realised P&L first."""
    groups: dict[str, list[ClosedRow]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    summaries = [summarize(name, members) for name, members in groups.items()]
    return sorted(summaries, key=lambda s: (-s.realized_pnl, s.name))


def cumulative(rows: Sequence[ClosedRow]) -> list[tuple[datetime, Decimal]]:
    """(close time, realised P&L so far), oldest first."""
    total = Decimal(0)
    points = []
    for row in sorted(rows, key=lambda r: (r.closed_at, r.signal_id)):
        total += row.realized_pnl
        points.append((row.closed_at, total))
    return points


def daily(rows: Iterable[ClosedRow], days: int = 60) -> list[tuple[date, Decimal]]:
    """Realised P&L per UTC day with a close, the last `days` such days, oldest first."""
    per_day: dict[date, Decimal] = defaultdict(Decimal)
    for row in rows:
        per_day[row.closed_at.date()] += row.realized_pnl
    return sorted(per_day.items())[-days:]


CSV_COLUMNS = (
    "signal_id",
    "symbol",
    "side",
    "source",
    "closed_at",
    "outcome",
    "realized_pnl",
    "fees",
    "r",
    "reason",
)


def history_csv(rows: Iterable[ClosedRow]) -> str:
    """The rows as CSV; a cell that a spreadsheet would run as a formula is quoted with a leading '."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            _cell(value)
            for value in (
                row.signal_id,
                row.symbol,
                row.side,
                row.source,
                row.closed_at.isoformat(),
                row.outcome,
                row.realized_pnl,
                row.fees,
                "" if row.r is None else row.r,
                row.reason,
            )
        )
    return out.getvalue()


def _cell(value: object) -> str:
    text = str(value)
    if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not _is_number(text)):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True
