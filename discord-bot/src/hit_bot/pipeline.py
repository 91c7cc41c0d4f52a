"""Parse a message and forward a signal to the trading server: the path every message takes.

Both the Discord cogs and replay call `process`; neither knows about the other. No Discord types here:
the caller describes where the text came from with an `Origin` and shows the `Outcome` its own way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from pydantic import ValidationError

from hit_bot.trading_client import Delivered, Refused, SubmitOutcome, TradingClient, Unreachable
from hit_shared.models import MAX_RAW_TEXT, SignalCore, SignalSource, TradeSignal, TradeStatus

if TYPE_CHECKING:
    from hit_bot.parsing.management import Management

log = logging.getLogger(__name__)


class ParsedLike(Protocol):
    """What `hit_bot.parser.parse` returns (its ParseResult), as far as forwarding needs it."""

    @property
    def kind(self) -> str: ...
    @property
    def signal(self) -> SignalCore | None: ...
    @property
    def format(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def management(self) -> Management | None: ...


Parser = Callable[[str], ParsedLike]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a message came from: its idempotency key, when it was posted, who posted it."""

    signal_id: str
    posted_at: datetime | None = None
    source: SignalSource | None = None


@dataclass(frozen=True, slots=True)
class NotSignal:
    """Chatter: nothing to do, nothing to say."""


@dataclass(frozen=True, slots=True)
class ManagementMessage(NotSignal):
    """About a trade already running ("close half", "SL to entry"): no signal, nothing forwarded here;
    the cog that follows the channel (cogs/following.py) decides what to do with it."""

    management: Management


@dataclass(frozen=True, slots=True)
class InvalidSignal:
    """Shaped like a signal but broken: the reason is shown, nothing is sent."""

    reason: str
    format: str | None = None


@dataclass(frozen=True, slots=True)
class Forwarded:
    """Sent to the server; `result` says what came back."""

    signal: TradeSignal
    result: SubmitOutcome


Outcome = NotSignal | InvalidSignal | Forwarded


class Verdict(StrEnum):
    """The one-word outcome people see (and the reaction chosen for it)."""

    NOT_SIGNAL = "not a signal"
    INVALID = "invalid"
    PLACED = "placed"
    REJECTED = "rejected"
    FAILED = "failed"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"


def verdict(outcome: Outcome) -> Verdict:
    if isinstance(outcome, NotSignal):
        return Verdict.NOT_SIGNAL
    if isinstance(outcome, InvalidSignal):
        return Verdict.INVALID
    result = outcome.result
    if isinstance(result, Unreachable):
        return Verdict.UNREACHABLE
    if isinstance(result, Refused):
        return Verdict.REFUSED
    return {
        TradeStatus.PLACED: Verdict.PLACED,
        TradeStatus.REJECTED: Verdict.REJECTED,
        TradeStatus.FAILED: Verdict.FAILED,
    }[result.response.status]


def reason_of(outcome: Outcome) -> str | None:
    """The human reason behind a non-placed outcome, None for placed or not a signal."""
    if isinstance(outcome, InvalidSignal):
        return outcome.reason
    if isinstance(outcome, NotSignal):
        return None
    result = outcome.result
    if isinstance(result, Unreachable):
        return result.reason
    if isinstance(result, Refused):
        return f"the trading server refused it ({result.code}): {result.message}"
    if result.response.status is TradeStatus.PLACED:
        return None
    return result.response.reason or f"the trading server answered {result.response.status.value}"


def build_signal(core: SignalCore, origin: Origin, raw_text: str) -> TradeSignal:
    """The wire signal for a parsed message. Raises ValidationError when the origin is malformed."""
    return TradeSignal(
        **core.model_dump(),
        signal_id=origin.signal_id,
        posted_at=origin.posted_at,
        source=origin.source,
        raw_text=raw_text[:MAX_RAW_TEXT],
    )


def classify(text: str, parse: Parser) -> ParsedLike | InvalidSignal:
    """The parser's verdict; a parser crash counts as invalid (when in doubt, no trade)."""
    try:
        return parse(text)
    except Exception:
        log.exception("the parser raised on a message; treating it as invalid")
        return InvalidSignal("the parser could not read this message")


async def process(
    text: str,
    origin: Origin,
    *,
    parse: Parser,
    client: TradingClient,
    before_send: Callable[[TradeSignal], None] | None = None,
) -> Outcome:
    """Parse `text` and, if it is a valid signal, forward it. Never raises for bad input or server trouble.

    `before_send` runs just before the request (the bot records its intent there).
    """
    parsed = classify(text, parse)
    if isinstance(parsed, InvalidSignal):
        return parsed
    if parsed.kind == "management" and parsed.management is not None:
        return ManagementMessage(parsed.management)
    if parsed.kind in ("not_signal", "management"):
        return NotSignal()
    if parsed.kind != "signal" or parsed.signal is None:
        return InvalidSignal(parsed.reason or "this message is not a complete signal", parsed.format)
    try:
        signal = build_signal(parsed.signal, origin, text)
    except ValidationError as exc:
        log.warning("signal %s could not be built: %s", origin.signal_id, exc.errors()[0]["msg"])
        return InvalidSignal("the signal could not be prepared for the trading server", parsed.format)
    if before_send is not None:
        before_send(signal)
    log.info("forwarding %s (%s %s)", signal.signal_id, signal.side.value, signal.symbol)
    result = await client.submit(signal)
    if isinstance(result, Delivered):
        log.info("signal %s: %s%s", signal.signal_id, result.response.status.value,
                 " (replayed)" if result.replayed else "")
    else:
        log.warning("signal %s: %s", signal.signal_id, result)
    return Forwarded(signal, result)
