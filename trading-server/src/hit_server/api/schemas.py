"""Response models of the read routes that hit_shared does not define (journal and positions), and the
types of their query filters."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from hit_server.exchange.blofin_models import Position
from hit_shared.models import SYMBOL_PATTERN, TradeResponse

_SYMBOL = re.compile(SYMBOL_PATTERN)


def symbol_filter(value: str) -> str:
    """A symbol filter in the form signals carry it (`hit_shared.models.SYMBOL_PATTERN`, upper case:
    BTC-USDT), so `eth-usdt` finds ETH-USDT's rows; a value that can't be a symbol is refused (422)
    rather than matching nothing in silence."""
    symbol = value.upper()
    if not _SYMBOL.fullmatch(symbol):
        raise ValueError(f"'{value}' is not a symbol; write it BASE-QUOTE, e.g. BTC-USDT")
    return symbol


SymbolFilter = Annotated[str, AfterValidator(symbol_filter)]


def since_filter(value: datetime) -> datetime:
    """A time filter in UTC; one written without a timezone is read as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 has no UTC time
        raise ValueError("the time is out of range") from exc


SinceFilter = Annotated[datetime, AfterValidator(since_filter)]


class SignalsPage(BaseModel):
    """The answers to signals (GET /api/v1/signals); the trades as they live are GET /api/v1/trades."""

    model_config = ConfigDict(frozen=True)

    signals: list[TradeResponse]
    total: int
    limit: int
    offset: int


class PositionOut(BaseModel):
    """One exchange position, with BloFin's field names (instId, positions, averagePrice, ...)."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    inst_id: str
    position_side: str
    positions: Decimal
    average_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    leverage: int
    margin_mode: str
    liquidation_price: Decimal | None


class PositionsOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    positions: list[PositionOut]
    as_of: datetime


def position_out(position: Position) -> PositionOut:
    return PositionOut(
        inst_id=position.inst_id,
        position_side=position.position_side,
        positions=position.positions,
        average_price=position.average_price,
        mark_price=position.mark_price,
        unrealized_pnl=position.unrealized_pnl,
        leverage=position.leverage,
        margin_mode=position.margin_mode,
        liquidation_price=position.liquidation_price,
    )
