"""Charts drawn on the server as inline SVG strings: no script, no library, readable at any width.

Every number is formatted here and every label escaped, so a template can insert the SVG as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from html import escape

WIDTH, HEIGHT, PAD = 640, 220, 36


def _scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    if high == low:
        return (out_low + out_high) / 2
    return out_low + (value - low) * (out_high - out_low) / (high - low)


def _svg(body: str, title: str, height: int = HEIGHT) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{body}</svg>'
    )


def _num(value: float) -> str:
    return f"{value:.1f}"


def pnl_curve(points: Sequence[tuple[datetime, Decimal]]) -> str:
    """The cumulative realised P&L over time, with a zero line."""
    title = "Cumulative realised P&L"
    if not points:
        return _svg('<text x="20" y="110" class="muted">No closed trades yet.</text>', title)
    values = [float(v) for _, v in points]
    low, high = min([*values, 0.0]), max([*values, 0.0])
    xs = [_scale(i, 0, max(len(points) - 1, 1), PAD, WIDTH - 10) for i in range(len(points))]
    ys = [_scale(v, low, high, HEIGHT - PAD, 10) for v in values]
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{_num(x)},{_num(y)}" for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    )
    zero = _scale(0.0, low, high, HEIGHT - PAD, 10)
    first, last = points[0][0].date().isoformat(), points[-1][0].date().isoformat()
    body = (
        f'<line class="axis" x1="{PAD}" y1="{_num(zero)}" x2="{WIDTH - 10}" y2="{_num(zero)}"/>'
        f'<path class="{"up" if values[-1] >= 0 else "down"}" fill="none" d="{path}"/>'
        f'<text x="2" y="16">{high:,.2f}</text><text x="2" y="{HEIGHT - PAD}">{low:,.2f}</text>'
        f'<text x="{PAD}" y="{HEIGHT - 10}">{first}</text>'
        f'<text x="{WIDTH - 10}" y="{HEIGHT - 10}" text-anchor="end">{last}</text>'
    )
    return _svg(body, title)


def daily_bars(days: Sequence[tuple[date, Decimal]]) -> str:
    """Realised P&L per day: green bars up, red bars down."""
    title = "Daily realised P&L"
    if not days:
        return _svg('<text x="20" y="110" class="muted">No closed trades yet.</text>', title)
    values = [float(v) for _, v in days]
    low, high = min([*values, 0.0]), max([*values, 0.0])
    zero = _scale(0.0, low, high, HEIGHT - PAD, 10)
    slot = (WIDTH - PAD - 10) / len(days)
    bars = []
    for i, ((day, _), value) in enumerate(zip(days, values, strict=True)):
        y = _scale(value, low, high, HEIGHT - PAD, 10)
        top, height = min(y, zero), max(abs(zero - y), 1.0)
        bars.append(
            f'<rect class="{"up" if value >= 0 else "down"}" x="{_num(PAD + i * slot + 1)}" y="{_num(top)}" '
            f'width="{_num(max(slot - 2, 1))}" height="{_num(height)}"><title>{day.isoformat()}: '
            f"{value:,.2f}</title></rect>"
        )
    body = (
        "".join(bars)
        + f'<line class="axis" x1="{PAD}" y1="{_num(zero)}" x2="{WIDTH - 10}" y2="{_num(zero)}"/>'
        + f'<text x="2" y="16">{high:,.2f}</text><text x="2" y="{HEIGHT - PAD}">{low:,.2f}</text>'
        + f'<text x="{PAD}" y="{HEIGHT - 10}">{days[0][0].isoformat()}</text>'
        + f'<text x="{WIDTH - 10}" y="{HEIGHT - 10}" text-anchor="end">{days[-1][0].isoformat()}</text>'
    )
    return _svg(body, title)


@dataclass(frozen=True)
class Level:
    name: str
    price: Decimal
    kind: str  # entry, stop, target, mark, hit


def price_levels(levels: Sequence[Level]) -> str:
    """A trade's price levels as labelled horizontal lines, highest price on top."""
    title = "Price levels"
    if not levels:
        return _svg('<text x="20" y="40" class="muted">No prices known.</text>', title, 60)
    height = max(140, 26 * len(levels) + 30)
    prices = [float(level.price) for level in levels]
    low, high = min(prices), max(prices)
    lines = []
    for level in sorted(levels, key=lambda lv: lv.price, reverse=True):
        y = _scale(float(level.price), low, high, height - 15, 15)
        lines.append(
            f'<line class="level {level.kind}" x1="150" y1="{_num(y)}" x2="{WIDTH - 10}" y2="{_num(y)}"/>'
            f'<text x="4" y="{_num(y + 4)}" class="{level.kind}">{escape(level.name)} {level.price}</text>'
        )
    return _svg("".join(lines), title, height)
