"""Settings of one simulator instance (credentials it accepts, starting balance, limits)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

FailureEnvelope = Literal["item", "top", "zero"]


@dataclass
class SimConfig:
    """What the simulator accepts and how it behaves.

    `price_walk` moves prices with a seeded random walk (paper mode); tests keep it off and move prices
    with `POST /sim/price`. A limit of 0 disables that rate limit. `failure_envelope` chooses how a
    refused order (place-order, cancel-order: endpoints whose `data` is a list) is reported, since
    BloFin's exact form is unconfirmed: "item" (top-level code "1", the real code in `data[0].code`),
    "zero" (top-level code "0" and the real code only in `data[0].code`, the form ccxt's error handler
    is written for: a client that trusts the top-level code alone is fooled) or "top" (the real code at
    the top level and in `data[0]`). `public_repush_s`: see `ws_public.py`.
    """

    api_key: str
    api_secret: str
    passphrase: str
    balance: Decimal = Decimal(100000)
    seed: int = 0
    price_walk: bool = False
    rate_limit_per_min: int = 500
    trade_limit_per_10s: int = 30
    time_window_ms: int = 60_000
    walk_interval_s: float = 1.0
    public_repush_s: float = 1.0  # the public WebSocket's push of every subscribed candle, changed or not
    failure_envelope: FailureEnvelope = "item"

    def __repr__(self) -> str:
        return (
            f"SimConfig(api_key={self.api_key!r}, api_secret=***, passphrase=***, balance={self.balance}, "
            f"seed={self.seed}, price_walk={self.price_walk}, rate_limit_per_min={self.rate_limit_per_min}, "
            f"trade_limit_per_10s={self.trade_limit_per_10s}, time_window_ms={self.time_window_ms})"
        )
