"""The wire models that the Discord bot and the trading server both speak (see docs/api.md).

Every model is frozen and forbids unknown fields, so a contract mismatch fails loudly at the
boundary instead of trading on a half-understood message. Prices and sizes are `Decimal`; they
accept JSON numbers or decimal strings and serialise as strings, so no float rounding ever
touches a price.

The consistency rules of a signal (docs/signals.md) live in `consistency_problem`, one human
sentence per failure, so the parser and the models refuse the same things with the same words.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

SIGNAL_ID_PATTERN = r"^[A-Za-z0-9:_.-]{1,128}$"
SYMBOL_PATTERN = r"^[A-Z0-9]{1,20}-[A-Z0-9]{2,10}$"
MAX_TAKE_PROFITS = 10
MIN_LEVERAGE = 1
MAX_LEVERAGE = 150
MAX_RAW_TEXT = 4000

Price = Annotated[Decimal, Field(allow_inf_nan=False)]
SignalId = Annotated[str, StringConstraints(pattern=SIGNAL_ID_PATTERN)]
Symbol = Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN)]


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"


class TradeStatus(StrEnum):
    """placed: orders are on the exchange; rejected: risk rules refused it, nothing was sent;
    failed: not carried out as planned, and nothing is left open, unless `reason` says the server
    could not confirm that (it then keeps resolving it by lookups and reports the outcome as events)."""

    PLACED = "placed"
    REJECTED = "rejected"
    FAILED = "failed"


class TradingMode(StrEnum):
    PAPER = "paper"
    DEMO = "demo"
    LIVE = "live"


class OrderRole(StrEnum):
    ENTRY = "entry"
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"


def fmt(value: Decimal) -> str:
    """A price as a person writes it: `60000`, `0.5123`, never `6E+4`."""
    return format(value.normalize(), "f")


def _shape_problem(
    prices: Sequence[Decimal], take_profits: Sequence[Decimal], leverage: int | None
) -> str | None:
    for price in prices:
        if not price.is_finite():
            return "every price must be a finite number"
        if price <= 0:
            return f"price {fmt(price)} must be greater than zero"
    if not take_profits:
        return "a signal needs at least one take-profit target"
    if len(take_profits) > MAX_TAKE_PROFITS:
        return f"at most {MAX_TAKE_PROFITS} take-profit targets are supported, got {len(take_profits)}"
    if leverage is not None and not MIN_LEVERAGE <= leverage <= MAX_LEVERAGE:
        return f"leverage {leverage}x is outside {MIN_LEVERAGE}..{MAX_LEVERAGE}"
    return None


def _beyond(side: Side, price: Decimal, reference: Decimal) -> bool:
    """True when `price` lies on the profit side of `reference` (above for a long)."""
    return price > reference if side is Side.LONG else price < reference


def _order_problem(
    side: Side, entries: Sequence[Decimal], stop_loss: Decimal, take_profits: Sequence[Decimal]
) -> str | None:
    name = side.value.upper()
    loss_word, profit_word = ("below", "above") if side is Side.LONG else ("above", "below")
    for entry in entries:
        if stop_loss == entry:
            return f"stop loss {fmt(stop_loss)} equals the entry {fmt(entry)}"
        if not _beyond(side, entry, stop_loss):
            return f"stop loss {fmt(stop_loss)} is {profit_word} the entry {fmt(entry)} of a {name}"
    for tp in take_profits:
        if not _beyond(side, tp, stop_loss):
            return f"take profit {fmt(tp)} is at or {loss_word} the stop loss {fmt(stop_loss)} of a {name}"
        for entry in entries:
            if not _beyond(side, tp, entry):
                return f"take profit {fmt(tp)} is at or {loss_word} the entry {fmt(entry)} of a {name}"
    return None


def consistency_problem(
    side: Side,
    entries: Sequence[Decimal],
    stop_loss: Decimal,
    take_profits: Sequence[Decimal],
    leverage: int | None,
) -> str | None:
    """The first rule of docs/signals.md that these values break, as one sentence; None if none.

    Callers refuse the signal with this sentence as the reason (rule 4: when in doubt, no trade).
    """
    return _shape_problem([*entries, stop_loss, *take_profits], take_profits, leverage) or _order_problem(
        side, entries, stop_loss, take_profits
    )


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SignalCore(_Wire):
    """What a signal says, independent of where it came from: what the parser produces."""

    side: Side
    symbol: Symbol
    entries: tuple[Price, ...] = Field(default=(), max_length=20, description="empty = market entry")
    stop_loss: Price
    take_profits: tuple[Price, ...] = Field(min_length=1, max_length=MAX_TAKE_PROFITS)
    leverage: int | None = Field(default=None, ge=MIN_LEVERAGE, le=MAX_LEVERAGE)

    @property
    def is_market(self) -> bool:
        return not self.entries

    @model_validator(mode="after")
    def _consistent(self) -> SignalCore:
        problem = consistency_problem(
            self.side, self.entries, self.stop_loss, self.take_profits, self.leverage
        )
        if problem:
            raise ValueError(problem)
        return self


class SignalSource(_Wire):
    """Where a signal came from; informative only, never used for decisions."""

    platform: str = Field(default="discord", max_length=32)
    channel: str | None = Field(default=None, max_length=128)
    message: str | None = Field(default=None, max_length=128)
    author: str | None = Field(default=None, max_length=128)


class TradeSignal(SignalCore):
    """The body of POST /api/v1/signals. `signal_id` is the idempotency key."""

    signal_id: SignalId
    posted_at: datetime | None = Field(default=None, description="ISO 8601 UTC, when posted at its source")
    source: SignalSource | None = None
    raw_text: str | None = Field(default=None, max_length=MAX_RAW_TEXT)

    @field_validator("posted_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("posted_at must carry a timezone (ISO 8601 UTC, e.g. 2026-01-01T12:00:00Z)")
        return value.astimezone(UTC)


class OrderInfo(_Wire):
    role: OrderRole
    order_id: str | None = None
    client_order_id: str
    type: str
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    size: Decimal
    state: str


class TradeResponse(_Wire):
    """The answer to a signal; replayed verbatim (status 200) when the same signal_id comes again."""

    signal_id: str
    status: TradeStatus
    reason: str | None = None
    mode: TradingMode
    symbol: str
    side: Side
    leverage: int | None = None
    size: Decimal = Decimal(0)
    orders: tuple[OrderInfo, ...] = ()
    created_at: datetime


class ErrorDetail(_Wire):
    code: str
    message: str


class ErrorResponse(_Wire):
    """Every error the server answers: {"error": {"code": "<snake_case>", "message": "..."}}."""

    error: ErrorDetail


class HealthResponse(_Wire):
    status: str  # "ok" | "degraded"
    mode: TradingMode
    exchange: str  # "reachable" | "unreachable" | "auth_failed" | "permission_denied" | "hedge_mode"
    halted: bool
    version: str
    max_signal_age_seconds: int | None = None


class HaltRequest(_Wire):
    reason: str = Field(default="halted by operator", max_length=500)
    cancel_orders: bool = False
    close_positions: bool = False


class HaltState(_Wire):
    halted: bool
    reason: str | None = None
    since: datetime | None = None
    cancelled_orders: int = 0
    closed_positions: int = 0


class StatsResponse(_Wire):
    signals_received: int
    placed: int
    rejected: int
    failed: int
    replayed: int
    open_positions: int
    closed_trades: int
    wins: int
    losses: int
    win_rate: float | None = None
    realized_pnl: Decimal
    pnl_by_symbol: dict[str, Decimal] = Field(default_factory=dict)
    uptime_seconds: float
    mode: TradingMode
    halted: bool


def as_jsonable(model: BaseModel) -> dict[str, Any]:
    """The JSON form of a model (decimals as strings, datetimes as ISO 8601)."""
    return model.model_dump(mode="json")
