"""Posting trade events to a Discord webhook (DISCORD_WEBHOOK_URL), optional.

The relay tails the journal's events (the same feed `GET /api/v1/events` serves) from the last one
stored when it starts, and posts each lifecycle event as one message. Posting never holds up trading:
a webhook that fails is retried a few times, honouring Discord's Retry-After, then the message is
dropped with a warning (the event stays in the journal and the feed). The URL is a secret: it is never
logged (errors are reported by their type and status only, and httpx's own request log lines are
redacted while the relay runs).
"""

from __future__ import annotations

import asyncio
import logging

import httpx
from pydantic import SecretStr

from hit_server.api.http_errors import JournalUnavailable
from hit_server.journal.db import EventRow
from hit_server.journal.journal import Journal

log = logging.getLogger(__name__)

RELAYED = frozenset({
    "entry_filled", "take_profit_hit", "stop_moved", "stopped_out", "closed", "naked_position_repaired",
    "entries_expired", "entries_cancelled", "stop_repaired", "closed_for_safety", "take_profit_failed",
    "orphan_cancelled",
})
MAX_CONTENT = 2000  # Discord's limit for a message
ATTEMPTS = 3


def message_of(row: EventRow) -> str:
    return row.message[:MAX_CONTENT]


class WebhookRelay:
    def __init__(
        self,
        url: SecretStr,
        journal: Journal,
        *,
        interval_s: float = 1.0,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = url
        self.journal = journal
        self.interval_s = interval_s
        self._timeout = timeout_s
        self._transport = transport
        self.posted = 0
        self.dropped = 0

    def __repr__(self) -> str:
        return f"WebhookRelay(posted={self.posted}, dropped={self.dropped})"

    async def run(self, after: int) -> None:
        """Relay events with an id above `after` until cancelled."""
        redact = Redact(self._url.get_secret_value())
        loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
        for logger in loggers:  # httpx logs every request's full URL at INFO
            logger.addFilter(redact)
        try:
            await self._relay(after)
        finally:
            for logger in loggers:
                logger.removeFilter(redact)

    async def _relay(self, after: int) -> None:
        async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as http:
            while True:
                try:
                    rows = await self.journal.events(after=after, limit=100)
                except JournalUnavailable:
                    rows = []
                for row in rows:
                    after = row.id
                    if row.type in RELAYED:
                        await self._post(http, message_of(row))
                if len(rows) < 100:
                    await asyncio.sleep(self.interval_s)

    async def _post(self, http: httpx.AsyncClient, content: str) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            wait = float(attempt)
            try:
                reply = await http.post(self._url.get_secret_value(), json={"content": content})
                if reply.status_code < 300:
                    self.posted += 1
                    return
                problem = f"HTTP {reply.status_code}"
                if reply.status_code == 429:
                    wait = _retry_after(reply, wait)
                elif reply.status_code < 500:
                    break  # refused as it stands: retrying won't help
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            log.warning("Discord webhook post failed (%s), attempt %d of %d", problem, attempt, ATTEMPTS)
            if attempt < ATTEMPTS:
                await asyncio.sleep(wait)
        self.dropped += 1
        log.warning("Discord webhook: a trade event was not posted (it stays in GET /api/v1/events)")


class Redact(logging.Filter):
    """Rewrites a log record that would show the secret, replacing it by a placeholder."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if self.secret in text:
            record.msg, record.args = text.replace(self.secret, "<DISCORD_WEBHOOK_URL>"), ()
        return True


def _retry_after(reply: httpx.Response, default: float) -> float:
    try:
        return min(30.0, max(0.0, float(reply.headers.get("retry-after", default))))
    except ValueError:
        return default
