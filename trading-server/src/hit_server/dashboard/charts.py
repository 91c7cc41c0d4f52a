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


def _svg(body: str, title: str, height: int = HEIGHT, width: int = WIDTH, kind: str = "") -> str:
    return (
        f'<svg class="chart {kind}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
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


# The price levels are drawn narrower than the P&L charts, so their labels stay readable on a phone
# (CSS keeps the chart from growing too wide on a desktop).
LEVELS_W, LABEL_W = 420, 230  # the whole width; the labels' column, left of the lines
LABEL_GAP = 18  # the least distance between two labels


def _price(value: Decimal) -> str:
    """A price without an exponent or trailing zeros: 61800.0 -> 61800, 145.500 -> 145.5."""
    return format(value.normalize(), "f") if value.is_finite() else str(value)


def _label_heights(ys: Sequence[float], top: float, bottom: float) -> list[float]:
    """Where to write the labels of lines at `ys` (top to bottom): each as near its line as it can be,
    at least LABEL_GAP below the one above, all between `top` and `bottom`."""
    placed: list[float] = []
    for y in ys:
        placed.append(max(y, top, placed[-1] + LABEL_GAP) if placed else max(y, top))
    for i in range(len(placed) - 1, -1, -1):  # pushed past the bottom: move them back up
        limit = bottom if i == len(placed) - 1 else placed[i + 1] - LABEL_GAP
        placed[i] = min(placed[i], limit)
    return placed


def price_levels(levels: Sequence[Level]) -> str:
    """A trade's price levels as labelled horizontal lines, highest price on top. Levels at one price
    share a label (the average entry and a stop at breakeven); labels too close to each other are moved
    apart and joined to their line."""
    title = "Price levels"
    if not levels:
        empty = '<text x="20" y="40" class="muted">No prices known.</text>'
        return _svg(empty, title, 60, LEVELS_W, "levels")
    by_price: dict[Decimal, list[Level]] = {}
    for level in sorted(levels, key=lambda lv: lv.price, reverse=True):
        by_price.setdefault(level.price, []).append(level)
    height = max(140, LABEL_GAP * len(by_price) + 30)
    low, high = float(min(by_price)), float(max(by_price))
    ys = [_scale(float(price), low, high, height - 15, 15) for price in by_price]
    labels = _label_heights(ys, 15, height - 15)
    parts = []
    for (price, group), y, label_y in zip(by_price.items(), ys, labels, strict=True):
        for level in group:
            parts.append(
                f'<line class="level {level.kind}" x1="{LABEL_W + 20}" y1="{_num(y)}" '
                f'x2="{LEVELS_W - 10}" y2="{_num(y)}"/>'
            )
        if abs(label_y - y) > 0.5:
            parts.append(
                f'<line class="axis" x1="{LABEL_W}" y1="{_num(label_y)}" x2="{LABEL_W + 20}" y2="{_num(y)}"/>'
            )
        name = " · ".join(escape(level.name) for level in group)
        parts.append(
            f'<text x="{LABEL_W}" y="{_num(label_y + 4)}" text-anchor="end" class="{group[0].kind}">'
            f"{name} {_price(price)}</text>"
        )
    return _svg("".join(parts), title, height, LEVELS_W, "levels")
