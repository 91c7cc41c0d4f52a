"""Settling a write whose outcome is unclear, by lookups only (rule 1: never send it again).

After a timeout, a lost connection, a 5xx or a duplicate clientOrderId, the order may or may not exist,
and BloFin's lookups can lag behind its acceptance (how long is not documented, nor how long a
clientOrderId stays unique, so the refusal of a duplicate is no protection against a resend). So the
order is looked up a few times over a bounded wait (`LookupPolicy`); if it is still not seen, the
caller gets `OrderOutcomeUnknown` carrying the clientOrderId, and must record the order as unknown
and look it up later (reconciliation), never resend it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from hit_server.exchange.blofin_errors import BloFinError, OrderOutcomeUnknown

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class LookupPolicy:
    """Look up, then wait `waits[0]` and look up again, and so on: len(waits) + 1 lookups over
    sum(waits) seconds (1.75 s by default). `sleep` is injectable so tests need not wait."""

    waits: tuple[float, ...] = (0.25, 0.5, 1.0)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)

    async def until(self, settled: Callable[[], Awaitable[bool]]) -> bool:
        """Call `settled()` until it answers True or the lookups are spent; its last answer."""
        for wait in self.waits:
            if await settled():
                return True
            await self.sleep(wait)
        return await settled()

    async def find(self, lookup: Callable[[], Awaitable[T | None]]) -> tuple[T | None, BloFinError | None]:
        """What `lookup()` finds within the bounded wait (None if nothing), and the last error a
        lookup raised (a failed lookup is one attempt spent, not the end)."""
        found: T | None = None
        failure: BloFinError | None = None

        async def settled() -> bool:
            nonlocal found, failure
            try:
                found = await lookup()
            except BloFinError as exc:
                failure = exc
                return False
            return found is not None

        await self.until(settled)
        return found, failure


def unknown_outcome(
    what: str, cid: str, cause: BloFinError, failure: BloFinError | None
) -> OrderOutcomeUnknown:
    """The error for a write that lookups could not settle: look it up later, never resend."""
    why = "the lookups failed" if failure is not None else "it is not visible (yet)"
    error = OrderOutcomeUnknown(
        f"{what}: whether it was carried out is unknown after {cause.code or type(cause).__name__} "
        f"({why}); look it up later by its clientOrderId, never send it again",
        client_order_id=cid,
    )
    error.__cause__ = failure or cause
    return error


async def settle_write(
    policy: LookupPolicy, what: str, cid: str, send: Callable[[], Awaitable[T]],
    lookup: Callable[[], Awaitable[T | None]], unclear: tuple[type[BloFinError], ...],
) -> T:
    """`send()` once; if it fails with an `unclear` error, what the lookups find, else
    `OrderOutcomeUnknown`. `what` names the write in messages; `cid` is its clientOrderId ("" if none)."""
    try:
        return await send()
    except unclear as exc:
        cause: BloFinError = exc
    log.warning("%s: outcome unclear (%r); looking it up, never resending", what, cause)
    found, failure = await policy.find(lookup)
    if found is not None:
        return found
    log.warning("%s: still not found after the lookups; its outcome is unknown", what)
    raise unknown_outcome(what, cid, cause, failure)
