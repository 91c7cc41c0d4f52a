"""The accounts one simulator serves, by API key: a fleet of members' BloFin accounts on one market.

The configured key (`SimConfig.api_key`, `api_secret`, `passphrase`, `balance`) is the default account,
the one a single-account setup (paper mode, every test written before the fleet) trades on. More come
from `SimConfig.accounts` (at start) and from `POST /sim/accounts` (at any time, many at once). Each
account is its own `Simulator` engine (cash, positions, orders, TP/SL orders, clientOrderIds, events,
adversarial modes) on the simulator's one `Market` (instruments, prices).

A signed request acts on the account of its ACCESS-KEY (`auth.py` checks it with that account's
secret and passphrase); a private WebSocket login selects the account of its key (`ws.py`). The
control API (`/sim/...`) acts on the default account unless given `?api_key=` (`routes_sim.py`).

Adding a key that is there already with the same secret and passphrase changes nothing (its balance is
not reset); with another secret or passphrase it is refused (409) and nothing of that call is added.
`/sim/reset` keeps every account and puts each back to its starting balance with nothing open.
An account costs its engine's empty containers (a few kB) and nothing per request of another account.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .config import AccountSpec, SimConfig
from .engine import FIRST_ID, Simulator
from .errors import SimError

# the ids of the n-th account added start n * ID_RANGE above the default account's: 10^12 ids each,
# and still under 2^63 with millions of accounts
ID_RANGE = 1_000_000_000_000


@dataclass(eq=False)
class SimAccount:
    """One account: its credentials and its engine. `configured`: the default account or one of
    `SimConfig.accounts` (the others were added through the control API)."""

    api_key: str
    api_secret: str
    passphrase: str
    sim: Simulator
    configured: bool

    def __repr__(self) -> str:
        return f"SimAccount(api_key={self.api_key!r}, api_secret=***, passphrase=***)"


class AccountRegistry:
    """Every account of one simulator, by API key, in the order they were added (the default first)."""

    def __init__(self, config: SimConfig, default: Simulator, clock_ms: Callable[[], int]) -> None:
        self.config = config
        self.market = default.market
        self.clock_ms = clock_ms  # the clock of every account but the default (which has its own)
        self.default = SimAccount(config.api_key, config.api_secret, config.passphrase, default, True)
        self._by_key: dict[str, SimAccount] = {config.api_key: self.default}
        self.add(config.accounts, configured=True)

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[SimAccount]:
        return iter(list(self._by_key.values()))

    def get(self, api_key: str) -> SimAccount | None:
        return self._by_key.get(api_key)

    def engine(self, api_key: str | None) -> Simulator:
        """The engine of `api_key`'s account (the default's for None or ""); SimError 152401 (HTTP 404)
        when there is no such account."""
        if not api_key:
            return self.default.sim
        account = self._by_key.get(api_key)
        if account is None:
            raise SimError("152401", status=404)
        return account.sim

    def add(self, specs: Iterable[AccountSpec], *, configured: bool = False) -> tuple[int, int]:
        """Add the accounts of `specs`: (how many were added, how many were there already). All or
        nothing: a key known (or given twice) with other secrets raises SimError 409, adding none."""
        new: dict[str, AccountSpec] = {}
        existing = 0
        for spec in specs:
            if not (spec.api_key and spec.api_secret and spec.passphrase):
                raise SimError("152002", msg="An account needs an api_key, an api_secret and a passphrase.")
            known: SimAccount | AccountSpec | None = self._by_key.get(spec.api_key) or new.get(spec.api_key)
            if known is not None:
                if not _same_secrets(known, spec):
                    raise SimError("409", msg=f"Account {spec.api_key!r} exists with other secrets.",
                                   status=409)
                existing += 1
                continue
            new[spec.api_key] = spec
        for spec in new.values():
            first_id = FIRST_ID + len(self._by_key) * ID_RANGE
            engine = Simulator(self.config, clock_ms=self.clock_ms, market=self.market, balance=spec.balance,
                               first_id=first_id)
            self._by_key[spec.api_key] = SimAccount(spec.api_key, spec.api_secret, spec.passphrase, engine,
                                                    configured)
        return len(new), existing

    def reset(self) -> None:
        """Every account back to its starting balance with nothing open (the accounts stay; the
        market's prices are the caller's business)."""
        for account in self._by_key.values():
            account.sim.reset_account()


def _same_secrets(known: SimAccount | AccountSpec, spec: AccountSpec) -> bool:
    """Whether `spec` names the account `known` with the very same secret and passphrase."""
    return hmac.compare_digest(known.api_secret.encode(), spec.api_secret.encode()) and hmac.compare_digest(
        known.passphrase.encode(), spec.passphrase.encode())
