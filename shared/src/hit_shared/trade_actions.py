"""The wire models of a trader's actions on one trade (POST /api/v1/trades/{signal_id}/close, /cancel, /stop,
/targets): what each asks, and the answer. Like `models.py`: frozen, unknown fields refused, prices and
sizes `Decimal` (a JSON number or a decimal string), written as a person writes them.

Each action carries an `Idempotency-Key` header: a retry with the same key answers the same result and
acts once (see docs/api.md).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from hit_shared.models import MAX_TAKE_PROFITS, _Wire
from hit_shared.trades import Amount, TradeView

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,128}$"  # visible ASCII, no spaces: a UUID fits
MAX_PRICE = Decimal("1e12")

ActionPrice = Annotated[Decimal, Field(gt=0, lt=MAX_PRICE, allow_inf_nan=False)]


class CloseRequest(_Wire):
    """Close the trade's position at market: all of it (`fraction` 1, the default) or a part."""

    fraction: Decimal = Field(
        default=Decimal(1),
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="the part of the position to close, 0 < fraction <= 1 (0.5: half)",
    )


class CancelRequest(_Wire):
    """Cancel the trade's unfilled entries. A trade with a fill keeps its position unless `close_filled`."""

    close_filled: bool = Field(default=False, description="also close at market what the entries filled")


class StopRequest(_Wire):
    """Move the stop to `price`, or to the average entry with `breakeven`; exactly one of the two."""

    price: ActionPrice | None = None
    breakeven: bool = False

    @model_validator(mode="after")
    def _one_of(self) -> StopRequest:
        if (self.price is None) == (not self.breakeven):
            raise ValueError('give either "price" or "breakeven": true, not both and not neither')
        return self


class TargetsRequest(_Wire):
    """The new targets for what the trade still holds, replacing every target not hit yet."""

    targets: tuple[ActionPrice, ...] = Field(min_length=1, max_length=MAX_TAKE_PROFITS)


class TradeAction(StrEnum):
    CLOSE = "close"
    CANCEL = "cancel"
    STOP = "stop"
    TARGETS = "targets"


class ActionOutcome(StrEnum):
    """closed: the whole position closed at market; partly_closed: a part of it; cancelled: the unfilled
    entries cancelled and the trade ended (nothing had filled, or what had filled was closed too);
    entries_cancelled: the unfilled entries cancelled, the filled part goes on; stop_moved: the new stop
    is live and the old one cancelled; targets_replaced: the new targets rest on the exchange."""

    CLOSED = "closed"
    PARTLY_CLOSED = "partly_closed"
    CANCELLED = "cancelled"
    ENTRIES_CANCELLED = "entries_cancelled"
    STOP_MOVED = "stop_moved"
    TARGETS_REPLACED = "targets_replaced"


class TradeActionResult(_Wire):
    """What an action did, and the trade as it lives after it (GET /api/v1/trades/{signal_id})."""

    action: TradeAction
    signal_id: str
    outcome: ActionOutcome
    message: str = Field(description="one sentence: what was done on the exchange")
    closed_size: Amount | None = Field(default=None, description="contracts this action closed at market")
    cancelled_orders: int = Field(default=0, description="entries and targets this action cancelled")
    client_order_id: str | None = Field(
        default=None, description="the order this action sent (its close at market, or its new stop)"
    )
    trade: TradeView | None = None
    at: datetime
