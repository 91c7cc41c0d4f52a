"""/api/v1/trades, /api/v1/account and /api/v1/pnl: the trades as they live, the account, and realised
P&L per period. Read routes, authenticated like every /api/v1 route; the models are `hit_shared.trades`
(the bot shows them too). The trade view is built in `lifecycle/trade_view.py` from what the journal
and the position monitor recorded; the POST answer to a signal stays GET /api/v1/signals/{id}."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from hit_server import clock
from hit_server.accounts.models import NAME_PATTERN
from hit_server.accounts.store import AccountNotFound
from hit_server.api.deps import TradingServiceDep
from hit_server.api.http_errors import NotFound
from hit_server.api.schemas import SinceFilter, SymbolFilter
from hit_server.api.security import require_api_key
from hit_server.fleet.journals import AccountJournals
from hit_server.journal.db import Database
from hit_server.journal.journal import Journal
from hit_server.lifecycle.pnl_report import periods, pnl_report
from hit_server.lifecycle.trade_view import TradeViews
from hit_shared.models import SIGNAL_ID_PATTERN, ErrorResponse
from hit_shared.trades import AccountResponse, PnlPeriod, PnlResponse, TradeDetail, TradesPage, TradeState

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (401, 404, 405, 413, 422, 429, 503)
}
router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_key)], responses=ERRORS)


async def account_journal(
    request: Request,
    service: TradingServiceDep,
    account: Annotated[
        str | None,
        Query(pattern=NAME_PATTERN, description="A fleet account's (FLEET); default: the server's own"),
    ] = None,
) -> Database:
    """The journal whose trades are read: the server's own, or a fleet account's (its own schema)."""
    if account is None:
        return service.journal.db
    journals: AccountJournals | None = getattr(request.app.state, "account_journals", None)
    if journals is None or journals.db is not service.journal.db:  # none yet, or of an earlier lifespan
        journals = request.app.state.account_journals = AccountJournals(service.journal.db, service.settings)
    try:
        return await journals.journal_db(account)
    except AccountNotFound as exc:
        raise NotFound(str(exc)) from exc


JournalDep = Annotated[Database, Depends(account_journal)]


@router.get("/trades", response_model=TradesPage)
async def list_trades(
    journal: JournalDep,
    state: Annotated[TradeState | None, Query(description="Only trades in this state")] = None,
    symbol: Annotated[
        SymbolFilter | None,
        Query(max_length=32, description="Case-insensitive: eth-usdt finds ETH-USDT", examples=["BTC-USDT"]),
    ] = None,
    since: Annotated[
        SinceFilter | None,
        Query(description="Only trades whose signal was received at or after this time (no timezone: UTC)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TradesPage:
    """Trades newest first: state, fills, stop, targets, P&L and exit, as the server recorded them.
    Rejected signals sent nothing and are not trades (GET /signals lists every answer)."""
    views = TradeViews(journal)
    return await views.page(state=state, symbol=symbol, since=since, limit=limit, offset=offset)


@router.get("/trades/{signal_id}", response_model=TradeDetail)
async def get_trade(
    signal_id: Annotated[str, Path(pattern=SIGNAL_ID_PATTERN)], journal: JournalDep
) -> TradeDetail:
    """One trade as GET /trades shows it, with every order journaled for it and its events."""
    trade = await TradeViews(journal).one(signal_id)
    if trade is not None:
        return trade
    row = await Journal(journal).get_signal(signal_id)
    if row is not None and row.status == "rejected":
        raise NotFound(f"Signal '{signal_id}' was rejected, so it is no trade: {row.reason}")
    raise NotFound(f"No trade with id '{signal_id}'.")


@router.get("/account", response_model=AccountResponse)
async def account(service: TradingServiceDep) -> AccountResponse:
    """The exchange account now: equity, margin available for new orders, unrealised P&L of the open
    positions. 503 when the exchange can't be read."""
    balance = await service.client.balance()
    positions = [p for p in await service.client.positions() if p.positions != 0]
    return AccountResponse(
        mode=service.mode,
        currency=balance.currency,
        equity=balance.equity,
        available_margin=balance.available,
        frozen=balance.frozen,
        unrealized_pnl=sum((p.unrealized_pnl for p in positions), Decimal(0)),
        open_positions=len(positions),
        as_of=clock.utcnow(),
    )


@router.get("/pnl", response_model=PnlResponse)
async def pnl(
    journal: JournalDep,
    period: Annotated[
        PnlPeriod, Query(description="day, week (from Monday) or month, in UTC")
    ] = PnlPeriod.DAY,
    count: Annotated[int, Query(ge=1, le=366, description="How many periods, the current one first")] = 7,
) -> PnlResponse:
    """Realised P&L, fees, wins and losses of the trades closed in each period."""
    now = clock.utcnow()
    oldest = periods(period, count, now)[-1][0]
    closed = await TradeViews(journal).reads.closed_since(oldest)
    return pnl_report(period, count, now, closed)
