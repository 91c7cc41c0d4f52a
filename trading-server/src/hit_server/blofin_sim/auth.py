"""Checks the five ACCESS-* headers of a private request the way BloFin does.

The signature is verified over the raw path and query as received and the raw body bytes, so a client
that signs one serialisation and sends another fails here exactly as it would on BloFin.
"""

from __future__ import annotations

import hmac
from collections import deque
from collections.abc import Callable, Mapping

from hit_server.exchange.blofin_auth import prehash, sign

from .config import SimConfig
from .errors import SimError


class AuthChecker:
    def __init__(self, config: SimConfig, clock_ms: Callable[[], int]) -> None:
        self.config = config
        self.clock_ms = clock_ms
        self._nonces: set[str] = set()
        self._seen: deque[tuple[int, str]] = deque()  # (time, nonce) in the order they were accepted

    def reset(self) -> None:
        self._nonces.clear()
        self._seen.clear()

    def check(self, method: str, path_with_query: str, headers: Mapping[str, str], body: bytes) -> None:
        """Raise the SimError BloFin would answer with; record the nonce only when everything passes."""
        key = headers.get("access-key", "")
        if not key or not hmac.compare_digest(key.encode(), self.config.api_key.encode()):
            raise SimError("152401")
        now = self.clock_ms()
        timestamp = headers.get("access-timestamp", "")
        if not (timestamp.isdigit() and len(timestamp) == 13):
            raise SimError("152410")
        if abs(now - int(timestamp)) > self.config.time_window_ms:
            raise SimError("152405")
        passphrase = headers.get("access-passphrase", "")
        if not hmac.compare_digest(passphrase.encode(), self.config.passphrase.encode()):
            raise SimError("152408")
        nonce = headers.get("access-nonce", "")
        if not nonce:
            raise SimError("152001", "ACCESS-NONCE")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SimError("152409") from exc
        expected = sign(self.config.api_secret, prehash(path_with_query, method, timestamp, nonce, text))
        if not hmac.compare_digest(expected.encode(), headers.get("access-sign", "").encode()):
            raise SimError("152409")
        self._forget_old(now)
        if nonce in self._nonces:
            raise SimError("152407")
        self._nonces.add(nonce)
        self._seen.append((now, nonce))

    def _forget_old(self, now: int) -> None:
        """Drop the nonces older than the window, oldest first (a burst must not pay for a scan of the
        whole window on every request)."""
        horizon = now - self.config.time_window_ms
        seen = self._seen
        while seen and seen[0][0] < horizon:
            self._nonces.discard(seen.popleft()[1])
