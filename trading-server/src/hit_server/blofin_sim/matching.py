"""Which resting order or TP/SL a price move reaches first.

A move from `start` to `end` walks the prices in between; each candidate has a threshold and fires at the
first price of the walk that satisfies it (the start itself, if it already does). The earliest on the
walk wins; ties go to the older order. The engine executes it and asks again, so a fill that opens a
position with its own TP/SL is seen by the rest of the same move.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from .models import SimOrder, SimTpsl

Cond = Literal["ge", "le"]


@dataclass(frozen=True)
class Trigger:
    item: SimOrder | SimTpsl
    kind: str  # "limit", "tp" or "sl"
    point: Decimal  # where on the walk it fires
    seq: int


def first_point(start: Decimal, end: Decimal, level: Decimal, cond: Cond) -> Decimal | None:
    """The first price of the walk start -> end at which `price >= level` (ge) or `<= level` (le) holds."""
    if cond == "ge":
        if start >= level:
            return start
        return level if end >= level else None
    if start <= level:
        return start
    return level if end <= level else None


Candidate = tuple[SimOrder | SimTpsl, str, Decimal, Cond, int]


def _candidates(orders: list[SimOrder], tpsls: list[SimTpsl]) -> list[Candidate]:
    out: list[Candidate] = []
    for order in orders:
        if order.price is not None:
            out.append((order, "limit", order.price, "le" if order.side == "buy" else "ge", order.seq))
    for tpsl in tpsls:
        closing_long = tpsl.side == "sell"
        if tpsl.spec.tp_trigger is not None:
            out.append((tpsl, "tp", tpsl.spec.tp_trigger, "ge" if closing_long else "le", tpsl.seq))
        if tpsl.spec.sl_trigger is not None:
            out.append((tpsl, "sl", tpsl.spec.sl_trigger, "le" if closing_long else "ge", tpsl.seq))
    return out


def next_trigger(
    start: Decimal, end: Decimal, orders: list[SimOrder], tpsls: list[SimTpsl]
) -> Trigger | None:
    best: Trigger | None = None
    best_key: tuple[Decimal, int] | None = None
    for item, kind, level, cond, seq in _candidates(orders, tpsls):
        point = first_point(start, end, level, cond)
        if point is None:
            continue
        key = (abs(point - start), seq)
        if best_key is None or key < best_key:
            best, best_key = Trigger(item, kind, point, seq), key
    return best
