"""BloFin's account history, read for the trade journal: closed positions with their realised P&L.

`GET /api/v1/account/positions-history` lists each position once it is flat: `realizedPnl` is the
P&L net of every fee paid while it was open (opening and closing), `pnl` before fees, `fee` the fees
(BloFin reports fees as negative numbers; the simulator as positive ones, so `fee` is kept as given
and the journal reports `realizedPnl` as the exchange computed it).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_errors import ExchangeUnavailable
from hit_server.exchange.blofin_models import dec

PAGE = 100


class ClosedPosition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    position_id: str
    inst_id: str
    realized_pnl: Decimal
    pnl: Decimal
    fee: Decimal
    close_average_price: Decimal
    open_average_price: Decimal
    closed_size: Decimal
    create_time: int
    update_time: int

    @classmethod
    def from_blofin(cls, row: dict[str, Any]) -> ClosedPosition:
        return cls(
            position_id=str(row.get("positionId") or ""),
            inst_id=str(row.get("instId") or ""),
            realized_pnl=dec(row.get("realizedPnl")),
            pnl=dec(row.get("pnl")),
            fee=dec(row.get("fee")),
            close_average_price=dec(row.get("closeAveragePrice")),
            open_average_price=dec(row.get("openAveragePrice")),
            closed_size=dec(row.get("closePositions")),
            create_time=int(dec(row.get("createTime"))),
            update_time=int(dec(row.get("updateTime"))),
        )


async def positions_history(client: BloFinClient, inst_id: str) -> list[ClosedPosition]:
    """The instrument's most recent closed positions, newest first (one page of up to 100)."""
    data = await client.rest.read(
        "GET", "/api/v1/account/positions-history", params={"instId": inst_id, "limit": str(PAGE)}
    )
    rows = data if isinstance(data, list) else []
    try:
        return [ClosedPosition.from_blofin(r) for r in rows if isinstance(r, dict)]
    except (ValueError, TypeError) as exc:
        raise ExchangeUnavailable(f"unreadable positions-history reply: {exc}") from exc
