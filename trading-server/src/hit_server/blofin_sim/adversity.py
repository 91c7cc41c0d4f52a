"""Adversarial modes: the ways a real exchange is less tidy than the simulator's defaults.

Each is off by default, set through the unsigned control API (`routes_sim.py`), cleared by
`POST /sim/reset`, and deterministic: what is random draws from a generator seeded by the caller.

lookup lag        `POST /sim/lag {"ms": M, "lookups": N}` (`DELETE /sim/lag` ends it: all visible)
                  An order or TP/SL order accepted from then on (entries, targets, attached and fired
                  TP/SL orders alike) is invisible to order-detail, order-tpsl-detail, orders-pending,
                  orders-tpsl-pending and the two history listings for M ms of the simulator's clock
                  (`Simulator.clock_ms`, so a virtual clock drives it) AND for its first N lookups (a
                  detail query that names it, or a listing that would show it). The exchange itself
                  knows it all along: it fills, triggers, cancels and refuses its clientOrderId again.
duplicate window  `POST /sim/duplicate-window {"ms": M}` (`{"ms": null}`: refused forever, the default)
                  A clientOrderId is refused as a duplicate (102002) only within M ms of its last
                  use; after that the same clientOrderId is accepted as a NEW order (a client must
                  never rely on the refusal to stop a resend).
item faults       `POST /sim/item-faults {"path": P, "index": I, "probability": p, "code": C,
                  "count": K, "seed": S}` (`DELETE /sim/item-faults` ends it)
                  Items of a list write (P: `/api/v1/trade/batch-orders`, the default, or
                  `/api/v1/trade/cancel-tpsl`) are refused with code C (default 500) and NOT carried
                  out, while the other items are: the item at position I (0-based) of each call, or
                  when I is null each item with probability p (drawn from a generator seeded by S).
                  K > 0 ends the mode after K refused items; K = 0 keeps it until deleted.
partial fills     `POST /sim/partial-fills {"fraction": "0.25"}` (`DELETE /sim/partial-fills` ends it)
                  A resting limit order reached by a price move fills only `fraction` of its size
                  (rounded down to the lot size, at least one lot, at most what is left) per move, and
                  stays `partially_filled` and resting for the rest. Orders that cross on arrival
                  still fill at once, whole. An attached TP/SL covers what is filled: created with the
                  first part and grown with each later part (a new one is attached if the first is no
                  longer live).
lost TP/SL        `POST /sim/attached-tpsl-lost {"count": N}` (`{"count": 0}` ends it)
                  The next N fills of orders that carry a TP/SL create none: the order fills, the
                  position is there, its stop is not (BloFin failing to attach it). A later fill of the
                  same order attaches again once the count is spent.
hedge mode        `POST /sim/position-mode {"mode": "long_short_mode"}` puts the account in hedge
                  mode (BloFin's own set-position-mode refuses it here); writes that say
                  `positionSide: net` are then refused with 102089, as BloFin does.
WebSocket drop    `POST /sim/ws/drop` (see `ws.py`) closes every WebSocket (private and public) at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

BATCH_PATH = "/api/v1/trade/batch-orders"
CANCEL_TPSL_PATH = "/api/v1/trade/cancel-tpsl"
ITEM_FAULT_PATHS = (BATCH_PATH, CANCEL_TPSL_PATH)


@dataclass
class _Hidden:
    until_ms: int
    lookups_left: int


@dataclass
class LookupLag:
    """Which accepted orders the lookups cannot see yet. `ms` and `lookups` 0: the mode is off."""

    ms: int = 0
    lookups: int = 0
    hidden: dict[str, _Hidden] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.ms > 0 or self.lookups > 0

    def set(self, ms: int, lookups: int) -> None:
        """Lag what is accepted from now on; what is hidden already keeps its own terms."""
        self.ms, self.lookups = ms, lookups

    def clear(self) -> None:
        self.ms, self.lookups = 0, 0
        self.hidden.clear()

    def accepted(self, item_id: str, now_ms: int) -> None:
        """Called by the engine for every order and TP/SL order it records."""
        if self.active:
            self.hidden[item_id] = _Hidden(now_ms + self.ms, self.lookups)

    def visible(self, item_id: str, now_ms: int) -> bool:
        """Whether a lookup at `now_ms` sees the item; a lookup that misses it is counted."""
        entry = self.hidden.get(item_id)
        if entry is None:
            return True
        if now_ms >= entry.until_ms and entry.lookups_left <= 0:
            del self.hidden[item_id]
            return True
        entry.lookups_left -= 1
        return False


@dataclass
class ItemFaults:
    """Refusals of single items of a list write (see the module docstring)."""

    path: str = BATCH_PATH
    index: int | None = None
    probability: float = 0.0
    code: str = "500"
    count: int = 0
    seed: int = 0
    refused: int = 0

    def __post_init__(self) -> None:
        if self.path not in ITEM_FAULT_PATHS:
            raise ValueError(f"item faults apply to {', '.join(ITEM_FAULT_PATHS)} only")
        if self.index is None and not 0 < self.probability <= 1:
            raise ValueError("give an item index, or a probability in (0, 1]")
        self._rng = random.Random(self.seed)  # noqa: S311 - fault injection, not cryptography

    @property
    def used_up(self) -> bool:
        return self.count > 0 and self.refused >= self.count

    def refuse(self, path: str, index: int) -> str | None:
        """The code refusing item `index` of a call to `path`, or None to carry it out."""
        if path != self.path or self.used_up:
            return None
        hit = index == self.index if self.index is not None else self._rng.random() < self.probability
        if not hit:
            return None
        self.refused += 1
        return self.code


def partial_size(size: Decimal, left: Decimal, lot: Decimal, fraction: Decimal) -> Decimal:
    """One part of an order of `size` with `left` unfilled: `fraction` of the size rounded down to
    the lot, at least one lot, at most what is left."""
    lots = (size * fraction / lot).to_integral_value(rounding=ROUND_DOWN)
    return min(left, max(lot, lots * lot))
