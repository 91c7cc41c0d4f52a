"""Whether the exchange account can take our orders: reachable, credentials accepted, one-way mode.

One signed read (the account's position mode) answers all three, so it runs at start, on every
`/health` and, while the account is blocked, before each signal (a fix on BloFin's side then needs
no restart):

    reachable           the credentials work and the account is in one-way (`net_mode`) mode
    unreachable         BloFin did not answer (retry later)
    auth_failed         BloFin refused the key, passphrase or signature: fix BLOFIN_API_KEY,
                        BLOFIN_API_SECRET, BLOFIN_PASSPHRASE (retrying does not help)
    permission_denied   the key lacks the trade permission, or this IP is not on its whitelist
    hedge_mode          the account is in hedge mode (`long_short_mode`); every write here says
                        `positionSide: net`, so signals are refused until it is switched to one-way

A change of state is logged once (ERROR for a problem, INFO when it clears); never a secret.
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum

from hit_server.api.http_errors import (
    ApiError,
    ExchangeAuthFailed,
    ExchangeHedgeMode,
    ExchangePermissionDenied,
    ExchangeUnavailable,
)
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_errors import AuthenticationError, BloFinError, PermissionDenied

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 3.0
CREDENTIAL_SETTINGS = "BLOFIN_API_KEY, BLOFIN_API_SECRET and BLOFIN_PASSPHRASE"


class ExchangeState(StrEnum):
    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"
    AUTH_FAILED = "auth_failed"
    PERMISSION_DENIED = "permission_denied"
    HEDGE_MODE = "hedge_mode"


BLOCKING = (ExchangeState.AUTH_FAILED, ExchangeState.PERMISSION_DENIED, ExchangeState.HEDGE_MODE)


def auth_failed_message(code: str) -> str:
    return (f"BloFin refused the API credentials (code {code or 'unknown'}); check {CREDENTIAL_SETTINGS} "
            "in the trading server's settings. Nothing was sent.")


def permission_message(code: str) -> str:
    return (f"BloFin refused the API key's access (code {code or 'unknown'}): the key needs the trade "
            "permission and, if it has an IP whitelist, this server's IP. Nothing was sent.")


HEDGE_MESSAGE = ("The BloFin account is in hedge mode (long_short_mode); HIT trades in one-way mode only. "
                 "Switch the account's position mode to one-way (net_mode) on BloFin. Nothing was sent.")


class ExchangeCheck:
    """The account's last known state (None before the first check) and the checks that update it."""

    def __init__(self, client: BloFinClient, *, timeout_s: float = CHECK_TIMEOUT_S) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.state: ExchangeState | None = None
        self.code = ""  # BloFin's code behind a refusal, for messages

    async def run(self) -> ExchangeState:
        """Read the position mode (a signed request) and record what it shows."""
        try:
            async with asyncio.timeout(self.timeout_s):
                mode = await self.client.position_mode()
        except AuthenticationError as exc:
            return self._record(ExchangeState.AUTH_FAILED, exc.code)
        except PermissionDenied as exc:
            return self._record(ExchangeState.PERMISSION_DENIED, exc.code)
        except (BloFinError, TimeoutError):
            return self._record(ExchangeState.UNREACHABLE, "")
        blocked = mode == "long_short_mode"
        return self._record(ExchangeState.HEDGE_MODE if blocked else ExchangeState.REACHABLE, "")

    async def ensure_tradable(self) -> None:
        """Before a signal: while the account is known to be blocked, check again, and raise the
        distinct API error if it still is (nothing is sent)."""
        if self.state in BLOCKING:
            await self.run()
        if self.state in BLOCKING:
            raise self._api_error()

    def refusal(self, exc: BloFinError) -> ApiError:
        """The API error for a signal whose market read failed with `exc` (nothing was sent)."""
        if isinstance(exc, AuthenticationError):
            self._record(ExchangeState.AUTH_FAILED, exc.code)
            return self._api_error()
        if isinstance(exc, PermissionDenied):
            self._record(ExchangeState.PERMISSION_DENIED, exc.code)
            return self._api_error()
        return ExchangeUnavailable(
            "The exchange could not be reached to assess this signal; nothing was sent. Retry shortly."
        )

    def _api_error(self) -> ApiError:
        if self.state is ExchangeState.AUTH_FAILED:
            return ExchangeAuthFailed(auth_failed_message(self.code))
        if self.state is ExchangeState.PERMISSION_DENIED:
            return ExchangePermissionDenied(permission_message(self.code))
        return ExchangeHedgeMode(HEDGE_MESSAGE)

    def _record(self, state: ExchangeState, code: str) -> ExchangeState:
        previous, self.state, self.code = self.state, state, code
        if state == previous:
            return state
        if state is ExchangeState.AUTH_FAILED:
            log.error("BloFin refused the API credentials (code %s): check %s. Signals are refused "
                      "until this is fixed.", code or "unknown", CREDENTIAL_SETTINGS)
        elif state is ExchangeState.PERMISSION_DENIED:
            log.error("BloFin refused the API key's access (code %s): it needs the trade permission and "
                      "this server's IP on its whitelist. Signals are refused until this is fixed.", code)
        elif state is ExchangeState.HEDGE_MODE:
            log.error("The BloFin account is in hedge mode (long_short_mode); HIT trades in one-way mode "
                      "(net_mode) only. Signals are refused until the account is switched to one-way.")
        elif previous in BLOCKING:
            log.info("BloFin account check: %s (was %s)", state.value, previous.value if previous else "")
        return state
