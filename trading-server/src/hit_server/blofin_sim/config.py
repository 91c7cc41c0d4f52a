"""Settings of one simulator instance (credentials it accepts, starting balance, limits)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

FailureEnvelope = Literal["item", "top", "zero"]


@dataclass(frozen=True)
class AccountSpec:
    """One more account the simulator serves (see `registry.py`): its credentials and starting
    balance (None: `SimConfig.balance`)."""

    api_key: str
    api_secret: str
    passphrase: str
    balance: Decimal | None = None

    def __repr__(self) -> str:
        return (f"AccountSpec(api_key={self.api_key!r}, api_secret=***, passphrase=***, "
                f"balance={self.balance})")


@dataclass
class SimConfig:
    """What the simulator accepts and how it behaves.

    `price_walk` moves prices with a seeded random walk (paper mode); tests keep it off and move prices
    with `POST /sim/price`. A limit of 0 disables that rate limit. `failure_envelope` chooses how a
    refused order (place-order, cancel-order: endpoints whose `data` is a list) is reported, since
    BloFin's exact form is unconfirmed: "item" (top-level code "1", the real code in `data[0].code`),
    "zero" (top-level code "0" and the real code only in `data[0].code`, the form ccxt's error handler
    is written for: a client that trusts the top-level code alone is fooled) or "top" (the real code at
    the top level and in `data[0]`). `public_repush_s`: see `ws_public.py`. `account_push_s`: how often
    the private WebSocket pushes the balance of an `account` subscription, changed or not (BloFin
    documents a push "in regular interval" besides the event pushes, without saying how often); 0 pushes
    on events only. See `ws.py`.

    `api_key`/`api_secret`/`passphrase`/`balance` are the default account's; `accounts` are more
    accounts served from the start (more can be added by `POST /sim/accounts`; see `registry.py`).

    Limits, as BloFin documents them: `trade_limit_per_10s` requests to `/api/v1/trade/...` per API
    key; `rate_limit_per_min` requests per client IP address (refused with 429 over it, and, if
    `ip_minute_suspend_s` > 0, the IP then suspended that long: BloFin says 5 minutes, off by default
    so a client that overshoots once is not locked out of a test); more than `ip_limit_per_5min`
    requests from one IP within 5 minutes suspend it for `ip_suspend_s` (BloFin: 1,500, one hour).
    A suspended IP is answered 429 to every request. `rate_limit_per_min` 0 turns every per-IP limit
    off (the in-process paper exchange: no IP), a 0 of the others that one alone. See `limits.py`.
    """

    api_key: str
    api_secret: str
    passphrase: str
    balance: Decimal = Decimal(100000)
    seed: int = 0
    price_walk: bool = False
    rate_limit_per_min: int = 500
    trade_limit_per_10s: int = 30
    ip_limit_per_5min: int = 1500
    ip_suspend_s: float = 3600.0
    ip_minute_suspend_s: float = 0.0
    time_window_ms: int = 60_000
    walk_interval_s: float = 1.0
    public_repush_s: float = 1.0  # the public WebSocket's push of every subscribed candle, changed or not
    account_push_s: float = 10.0  # the private WebSocket's periodic push of the balance (0: events only)
    failure_envelope: FailureEnvelope = "item"
    accounts: tuple[AccountSpec, ...] = field(default=())

    def __repr__(self) -> str:
        return (
            f"SimConfig(api_key={self.api_key!r}, api_secret=***, passphrase=***, balance={self.balance}, "
            f"seed={self.seed}, price_walk={self.price_walk}, rate_limit_per_min={self.rate_limit_per_min}, "
            f"trade_limit_per_10s={self.trade_limit_per_10s}, ip_limit_per_5min={self.ip_limit_per_5min}, "
            f"ip_suspend_s={self.ip_suspend_s}, time_window_ms={self.time_window_ms}, "
            f"accounts={len(self.accounts)})"
        )
