"""Sliding-window request counters: 500 per minute per IP, 30 per 10 s per key on trade endpoints."""

from __future__ import annotations

from collections import deque


class SlidingWindow:
    """At most `limit` hits per `window_ms` for each key; a limit of 0 disables it."""

    def __init__(self, limit: int, window_ms: int) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self._hits: dict[str, deque[int]] = {}

    def allow(self, key: str, now_ms: int) -> bool:
        if self.limit <= 0:
            return True
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now_ms - self.window_ms:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now_ms)
        return True

    def reset(self) -> None:
        self._hits.clear()
