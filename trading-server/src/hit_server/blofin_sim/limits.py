"""BloFin's REST limits: requests per client IP address (500 a minute; more than 1,500 in 5 minutes
suspends the IP for an hour) and requests to trade endpoints per API key (30 per 10 s).

Every limit answers HTTP 429 in BloFin's envelope, `{"code": "429", "msg": "Too Many Requests"}` (the
one rate-limit code BloFin documents; a suspended IP gets the same). The numbers come from `SimConfig`.

What each IP and each key sent is kept (`Tally`) and shown by `/sim/state` and `/sim/accounts`, so a
benchmark can prove that no IP and no account went over a limit: nothing refused, no suspension, and
the peak of each window below its limit. A tally is a few integers per client that sent something;
accounts that send nothing cost nothing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from .config import SimConfig

MINUTE_MS = 60_000
FIVE_MINUTES_MS = 300_000
TEN_SECONDS_MS = 10_000


class SlidingWindow:
    """At most `limit` hits per `window_ms` for each key; a limit of 0 disables it (nothing is kept)."""

    def __init__(self, limit: int, window_ms: int) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self._hits: dict[str, deque[int]] = {}

    def has_room(self, key: str, now_ms: int) -> bool:
        """Whether one more hit of `key` now stays within the limit (nothing is recorded)."""
        return self.limit <= 0 or self.count(key, now_ms) < self.limit

    def add(self, key: str, now_ms: int) -> int:
        """Record a hit of `key` now; the hits within the window, this one included (0: disabled)."""
        if self.limit <= 0:
            return 0
        hits = self._hits.setdefault(key, deque())
        hits.append(now_ms)
        return len(hits)

    def allow(self, key: str, now_ms: int) -> bool:
        """Record a hit of `key` now if it stays within the limit; False (nothing recorded) if not."""
        if not self.has_room(key, now_ms):
            return False
        self.add(key, now_ms)
        return True

    def count(self, key: str, now_ms: int) -> int:
        """The hits of `key` within the window ending now."""
        hits = self._hits.get(key)
        if hits is None:
            return 0
        while hits and hits[0] <= now_ms - self.window_ms:
            hits.popleft()
        return len(hits)

    def reset(self) -> None:
        self._hits.clear()


@dataclass
class Tally:
    """What one IP address (or one API key, on trade endpoints) sent.

    `requests`: let through by the limit; `refused`: answered 429; `peak`: the most requests let
    through within one window (a minute for an IP, 10 s for a key); `peak_5min`: the most within 5
    minutes (IPs); `suspended_until_ms`: an IP's suspension (the simulator's clock); `suspensions`:
    how many it had."""

    requests: int = 0
    refused: int = 0
    peak: int = 0
    peak_5min: int = 0
    suspended_until_ms: int = 0
    suspensions: int = 0


class RequestLimits:
    """The per-IP and per-key limits of one simulator (see the module docstring and `SimConfig`)."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        ip_limits_on = config.rate_limit_per_min > 0
        self.ip_minute = SlidingWindow(config.rate_limit_per_min, MINUTE_MS)
        self.ip_5min = SlidingWindow(config.ip_limit_per_5min if ip_limits_on else 0, FIVE_MINUTES_MS)
        self.trade = SlidingWindow(config.trade_limit_per_10s, TEN_SECONDS_MS)
        self.ips: dict[str, Tally] = {}
        self.keys: dict[str, Tally] = {}

    def reset(self) -> None:
        self.ip_minute.reset()
        self.ip_5min.reset()
        self.trade.reset()
        self.ips.clear()
        self.keys.clear()

    def allow_ip(self, ip: str, now_ms: int) -> bool:
        """Count a request from `ip` now, or refuse it: the IP is suspended, or over a limit (going over
        the 5-minute limit, or the minute's when `ip_minute_suspend_s` is set, suspends it)."""
        tally = self.ips.get(ip)
        if tally is None:
            tally = self.ips[ip] = Tally()
        if now_ms < tally.suspended_until_ms:
            tally.refused += 1
            return False
        if not self.ip_minute.has_room(ip, now_ms):
            tally.refused += 1
            self._suspend(tally, now_ms, self.config.ip_minute_suspend_s)
            return False
        if not self.ip_5min.has_room(ip, now_ms):
            tally.refused += 1
            self._suspend(tally, now_ms, self.config.ip_suspend_s)
            return False
        tally.requests += 1
        tally.peak = max(tally.peak, self.ip_minute.add(ip, now_ms))
        tally.peak_5min = max(tally.peak_5min, self.ip_5min.add(ip, now_ms))
        return True

    def allow_trade(self, key: str, now_ms: int) -> bool:
        """Count a request to a trade endpoint by API key `key` now, or refuse it (over 30 per 10 s)."""
        tally = self.keys.get(key)
        if tally is None:
            tally = self.keys[key] = Tally()
        if not self.trade.allow(key, now_ms):
            tally.refused += 1
            return False
        tally.requests += 1
        tally.peak = max(tally.peak, self.trade.count(key, now_ms))
        return True

    def suspended(self, now_ms: int) -> list[str]:
        return sorted(ip for ip, tally in self.ips.items() if now_ms < tally.suspended_until_ms)

    @staticmethod
    def _suspend(tally: Tally, now_ms: int, seconds: float) -> None:
        if seconds > 0:
            tally.suspended_until_ms = now_ms + round(seconds * 1000)
            tally.suspensions += 1

    # ---- views (the control API) ------------------------------------------------------------------
    def ip_view(self, ip: str, now_ms: int) -> dict[str, Any]:
        tally = self.ips.get(ip) or Tally()
        suspended = now_ms < tally.suspended_until_ms
        return {
            "requests": tally.requests, "refused": tally.refused,
            "lastMinute": self.ip_minute.count(ip, now_ms), "last5Minutes": self.ip_5min.count(ip, now_ms),
            "peakPerMinute": tally.peak, "peakPer5Minutes": tally.peak_5min,
            "suspended": suspended, "suspendedUntilMs": tally.suspended_until_ms if suspended else None,
            "suspensions": tally.suspensions,
        }

    def key_view(self, key: str, now_ms: int) -> dict[str, Any]:
        tally = self.keys.get(key) or Tally()
        return {"requests": tally.requests, "refused": tally.refused,
                "last10s": self.trade.count(key, now_ms), "peakPer10s": tally.peak}

    def view(self, now_ms: int) -> dict[str, Any]:
        """Every IP and every key that sent something, with the limits in force."""
        config = self.config
        return {
            "perIpPerMinute": config.rate_limit_per_min, "perIpPer5Minutes": self.ip_5min.limit,
            "ipSuspendS": config.ip_suspend_s, "ipMinuteSuspendS": config.ip_minute_suspend_s,
            "tradePerKeyPer10s": config.trade_limit_per_10s,
            "suspendedIps": self.suspended(now_ms),
            "ips": {ip: self.ip_view(ip, now_ms) for ip in sorted(self.ips)},
            "keys": {key: self.key_view(key, now_ms) for key in sorted(self.keys)},
        }
