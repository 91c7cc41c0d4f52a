"""Checks the five ACCESS-* headers of a private request the way BloFin does.

The signature is verified over the raw path and query as received and the raw body bytes, so a client
that signs one serialisation and sends another fails here exactly as it would on BloFin.

Every account has its own key, secret and passphrase (`registry.py`): the key names the account (it is
looked up: a key is no secret, every request carries it in clear), and the passphrase and signature are
compared, in constant time, with that account's. The configured key is checked against the checker's
own `config` first, so a test may build a checker that expects other secrets for the default account.
A nonce may not be reused by the same key within the time window.
"""

from __future__ import annotations

import hmac
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from hit_server.exchange.blofin_auth import prehash, sign

from .config import SimConfig
from .errors import SimError

if TYPE_CHECKING:
    from .registry import AccountRegistry


class AuthChecker:
    def __init__(
        self, config: SimConfig, clock_ms: Callable[[], int], accounts: AccountRegistry | None = None
    ) -> None:
        self.config = config
        self.clock_ms = clock_ms
        self.accounts = accounts  # None: the configured key alone
        self._nonces: set[tuple[str, str]] = set()  # (key, nonce)
        self._seen: deque[tuple[int, tuple[str, str]]] = deque()  # (time, (key, nonce)) as accepted

    def reset(self) -> None:
        self._nonces.clear()
        self._seen.clear()

    def secrets_of(self, key: str) -> tuple[str, str] | None:
        """The (secret, passphrase) of the account of `key`, or None when there is no such account."""
        if not key:
            return None
        if hmac.compare_digest(key.encode(), self.config.api_key.encode()):
            return self.config.api_secret, self.config.passphrase
        account = self.accounts.get(key) if self.accounts is not None else None
        return None if account is None else (account.api_secret, account.passphrase)

    def check(self, method: str, path_with_query: str, headers: Mapping[str, str], body: bytes) -> str:
        """The API key of the account the request is signed for; raise the SimError BloFin would answer
        with; record the nonce only when everything passes."""
        key = headers.get("access-key", "")
        secrets = self.secrets_of(key)
        if secrets is None:
            raise SimError("152401")
        api_secret, expected_passphrase = secrets
        now = self.clock_ms()
        timestamp = headers.get("access-timestamp", "")
        if not (timestamp.isdigit() and len(timestamp) == 13):
            raise SimError("152410")
        if abs(now - int(timestamp)) > self.config.time_window_ms:
            raise SimError("152405")
        passphrase = headers.get("access-passphrase", "")
        if not hmac.compare_digest(passphrase.encode(), expected_passphrase.encode()):
            raise SimError("152408")
        nonce = headers.get("access-nonce", "")
        if not nonce:
            raise SimError("152001", "ACCESS-NONCE")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SimError("152409") from exc
        expected = sign(api_secret, prehash(path_with_query, method, timestamp, nonce, text))
        if not hmac.compare_digest(expected.encode(), headers.get("access-sign", "").encode()):
            raise SimError("152409")
        self._forget_old(now)
        if (key, nonce) in self._nonces:
            raise SimError("152407")
        self._nonces.add((key, nonce))
        self._seen.append((now, (key, nonce)))
        return key

    def _forget_old(self, now: int) -> None:
        """Drop the nonces older than the window, oldest first (a burst must not pay for a scan of the
        whole window on every request)."""
        horizon = now - self.config.time_window_ms
        seen = self._seen
        while seen and seen[0][0] < horizon:
            self._nonces.discard(seen.popleft()[1])
