"""The one market every simulated account trades on: the instruments, their prices, and who to visit
when a price moves.

BloFin has one mark price per instrument whoever looks at it, so the simulator keeps one `Market` and
every account (`engine.Simulator`) refers to it. A price move (`set_price`) is carried out for each
account that has something resting on that instrument (an open order or a live TP/SL order), in turn:
each sees the mark travel from where it was to the new price and fills or fires what the move crosses,
in the order it crosses it, exactly as if it were alone. Accounts that rest nothing there are not
visited at all, so a move costs what is resting on the instrument, not the number of accounts (a fleet
of 10,000 mostly idle accounts moves as fast as one).

Which accounts to visit is kept by the accounts themselves: an account calls `watch` whenever an order
or TP/SL order of it becomes open or live on an instrument. The list may hold accounts that no longer
rest anything there (an order cancelled, filled by an earlier move): they are dropped when a move
visits them, which is the moment it costs nothing extra to find out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Protocol

from hit_server.exchange.instruments import Instrument

from .catalog import default_instruments, starting_prices
from .errors import SimError

PriceListener = Callable[[str, Decimal], None]


class Resting(Protocol):
    """What the market needs of an account (`engine.Simulator`)."""

    def cross(self, inst_id: str, price: Decimal) -> None:
        """Move this account's view of `inst_id` to `price`, filling and firing what the move crosses."""

    def rests_on(self, inst_id: str) -> bool:
        """Whether an open order or a live TP/SL order of this account is on `inst_id`."""


class Market:
    """Instruments and prices shared by every account of one simulator."""

    def __init__(self) -> None:
        self.instruments: dict[str, Instrument] = default_instruments()
        self.prices: dict[str, Decimal] = starting_prices()
        # called with (instId, new price) after each change of a price, synchronously: a listener must
        # only note it (or enqueue), never call back into an account
        self.price_listeners: list[PriceListener] = []
        # instId -> the accounts that may rest something on it, in the order they first did (a dict
        # as an ordered set: a move visits them in a reproducible order)
        self._watchers: dict[str, dict[Resting, None]] = {}

    def instrument(self, inst_id: str) -> Instrument:
        inst = self.instruments.get(inst_id)
        if inst is None:
            raise SimError("152014")
        return inst

    def reset_prices(self) -> None:
        """Every price back to its start (listeners hear of those that moved); nothing fills."""
        self.load_prices(starting_prices())

    def load_prices(self, prices: Mapping[str, Decimal]) -> None:
        """Set prices without moving through them (a restored account): nothing fills or fires."""
        for inst_id, price in prices.items():
            if self.prices.get(inst_id) != price:
                self.prices[inst_id] = price
                self._price_moved(inst_id)

    def watch(self, inst_id: str, account: Resting) -> None:
        """`account` rests something on `inst_id` now: visit it when that price moves."""
        self._watchers.setdefault(inst_id, {})[account] = None

    def forget(self, account: Resting) -> None:
        """Stop visiting `account` (it was reset, or removed)."""
        for watchers in self._watchers.values():
            watchers.pop(account, None)

    def watchers(self, inst_id: str) -> int:
        """How many accounts a move of `inst_id` would visit now (for tests and /sim/state)."""
        return len(self._watchers.get(inst_id, {}))

    def set_price(self, inst_id: str, price: Decimal) -> None:
        """Move last and mark to `price` for every account, firing what the move crosses in each;
        price listeners hear of the final price (not of the points the move fired orders at)."""
        self.instrument(inst_id)
        if price <= 0:
            raise SimError("152002", "price")
        before = self.prices[inst_id]
        watchers = self._watchers.get(inst_id, {})
        try:
            for account in list(watchers):
                self.prices[inst_id] = before  # each account sees the whole move from where it began
                account.cross(inst_id, price)
                if not account.rests_on(inst_id):
                    watchers.pop(account, None)
        finally:
            self.prices[inst_id] = price
        if price != before:
            self._price_moved(inst_id)

    def _price_moved(self, inst_id: str) -> None:
        price = self.prices[inst_id]
        for listener in list(self.price_listeners):
            listener(inst_id, price)
