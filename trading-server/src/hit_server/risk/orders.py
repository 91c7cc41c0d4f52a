"""How one total size is cut into orders: entry ladders and take-profit slices.

Both cut in whole lots, so the slices always sum to the total exactly and each is a multiple of
lotSize. When an even cut would leave a slice under minSize, fewer slices are made (never a slice
rounded up): the largest count whose smallest slice still reaches minSize. Leftover lots of an even
cut go to the first slices in the order given.

- `ladder` spreads the rungs it keeps evenly across the given prices, both ends included; a single
  rung takes the middle price.
- `split_take_profits` keeps the targets in order and merges a slice that is too small into the next
  target, so when slices are merged the later targets absorb them and the last target always gets one.
- `merge_equal_prices` makes one order of the slices that share a price (targets that are one price
  on the tick grid), so no two orders of a plan share a price (see `risk.py`: equal targets).

Both raise ValueError when the total itself is not a lot multiple or is under minSize: the caller
must have rejected such a size already (rule 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from hit_server.exchange.instruments import Instrument


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """One order of a plan. `price` is None for a market order; `size` is in contracts."""

    price: Decimal | None
    size: Decimal


def _lots(total: Decimal, prices: Sequence[Decimal], instrument: Instrument) -> int:
    if not prices:
        raise ValueError("at least one price is needed to place orders")
    if total < instrument.min_size:
        raise ValueError(f"size {total} is under the minimum {instrument.min_size} of {instrument.inst_id}")
    lots = total / instrument.lot_size
    if lots != lots.to_integral_value():
        raise ValueError(f"size {total} is not a multiple of the lot size {instrument.lot_size}")
    return int(lots)


def _slice_count(lots: int, wanted: int, instrument: Instrument) -> int:
    """The most slices (<= wanted) whose smallest even slice is still at least minSize."""
    for count in range(wanted, 0, -1):
        if (lots // count) * instrument.lot_size >= instrument.min_size:
            return count
    return 1  # unreachable once _lots has checked total >= minSize


def _even(lots: int, count: int, instrument: Instrument) -> list[Decimal]:
    base, extra = divmod(lots, count)
    return [
        ((base + (1 if i < extra else 0)) * instrument.lot_size).quantize(instrument.lot_size)
        for i in range(count)
    ]


def _spread_indices(n: int, count: int) -> list[int]:
    """`count` indices into n items, evenly spaced with both ends included (one: the middle)."""
    if count == 1:
        return [(n - 1) // 2]
    # round(i * (n - 1) / (count - 1)), half up, in integers
    return [(2 * i * (n - 1) + (count - 1)) // (2 * (count - 1)) for i in range(count)]


def ladder(total: Decimal, prices: Sequence[Decimal], instrument: Instrument) -> tuple[PlannedOrder, ...]:
    """Limit orders for `total` contracts across `prices` (one rung per price when the size allows).

    Pass the prices in the order they should fill (the first gets any leftover lot). Fewer rungs are
    made when a rung would be under minSize; the kept rungs are spread across the prices.
    """
    lots = _lots(total, prices, instrument)
    count = _slice_count(lots, len(prices), instrument)
    picked = [prices[i] for i in _spread_indices(len(prices), count)]
    return tuple(
        PlannedOrder(price=price, size=size)
        for price, size in zip(picked, _even(lots, count, instrument), strict=True)
    )


def split_take_profits(
    total: Decimal, prices: Sequence[Decimal], instrument: Instrument
) -> tuple[PlannedOrder, ...]:
    """`total` contracts split across the targets TP1..TPn, as evenly as the lot allows.

    Leftover lots go to the earliest targets (the ones likeliest to fill). Slices that would be
    under minSize are merged into the following target, the last target absorbing what remains.
    """
    lots = _lots(total, prices, instrument)
    n = len(prices)
    count = _slice_count(lots, n, instrument)
    orders: list[PlannedOrder] = []
    for i, size in enumerate(_even(lots, count, instrument)):
        target = ((i + 1) * n + count - 1) // count - 1  # the last target of the i-th group
        orders.append(PlannedOrder(price=prices[target], size=size))
    return tuple(orders)


def merge_equal_prices(orders: Sequence[PlannedOrder]) -> tuple[PlannedOrder, ...]:
    """One order per price, carrying the summed size of the orders at that price, in the order the
    prices first appear. The sizes stay lot multiples at least minSize (sums of such slices)."""
    sizes: dict[Decimal | None, Decimal] = {}
    for order in orders:
        sizes[order.price] = sizes.get(order.price, Decimal(0)) + order.size
    return tuple(PlannedOrder(price=price, size=size) for price, size in sizes.items())
