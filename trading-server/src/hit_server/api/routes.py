"""The /api/v1 routes and /health. No try/except here: errors are mapped in `http_errors.py`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, status

from hit_server import __version__, clock
from hit_server.api.deps import SettingsDep, TradingServiceDep
from hit_server.api.http_errors import NotFound
from hit_server.api.schemas import PositionsOut, SignalsPage, SymbolFilter, position_out
from hit_server.api.security import require_api_key
from hit_server.exchange.exchange_check import ExchangeState
from hit_server.fleet.progress import FanoutProgress, progress
from hit_server.journal.events import EventsResponse, event_out
from hit_shared.models import (
    SIGNAL_ID_PATTERN,
    ErrorResponse,
    HaltRequest,
    HaltState,
    HealthResponse,
    StatsResponse,
    TradeResponse,
    TradeSignal,
    TradeStatus,
)

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 405, 409, 413, 422, 429, 503)
}
api = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_key)], responses=ERRORS)
public = APIRouter()


@api.post(
    "/signals",
    status_code=status.HTTP_201_CREATED,
    response_model=TradeResponse,
    responses={200: {"model": TradeResponse, "description": "A retry: the stored answer, replayed"}},
)
async def post_signal(signal: TradeSignal, service: TradingServiceDep, request: Request) -> Response:
    """Carry out a signal at most once: 201 the first time, 200 with the same answer for a retry. With
    FLEET on, it is first fanned out to the stored enabled accounts (not while trading is halted)."""
    fanout = getattr(request.app.state, "fanout", None)
    if fanout is not None and not service.halted.halted:
        await fanout.submit(signal)
    answer, created = await service.submit(signal)
    # `answer` is a validated TradeResponse already: serialized as it is, not validated a second time
    # against the response model (the bytes are the same: pydantic's JSON of the model)
    return Response(
        answer.model_dump_json(),
        status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        media_type="application/json",
    )


@api.get("/signals/{signal_id}", response_model=TradeResponse)
async def get_signal(
    signal_id: Annotated[str, Path(pattern=SIGNAL_ID_PATTERN)], service: TradingServiceDep
) -> TradeResponse:
    row = await service.journal.get_signal(signal_id)
    if row is None or row.response is None:
        raise NotFound(f"No answered signal with id '{signal_id}'.")
    return TradeResponse.model_validate(row.response)


@api.get("/fanouts/{signal_id}", response_model=FanoutProgress)
async def get_fanout(
    signal_id: Annotated[str, Path(pattern=SIGNAL_ID_PATTERN)], service: TradingServiceDep
) -> FanoutProgress:
    """A signal's fan-out to the fleet's accounts (FLEET): how many accounts, how many answered each
    status (`queued`: not yet), and every account not placed with its reason."""
    found = await progress(service.journal.db, signal_id)
    if found is None:
        raise NotFound(f"The signal '{signal_id}' was not fanned out.")
    return found


@api.get("/signals", response_model=SignalsPage)
async def list_signals(
    service: TradingServiceDep,
    status_: Annotated[TradeStatus | None, Query(alias="status")] = None,
    symbol: Annotated[
        SymbolFilter | None,
        Query(max_length=32, description="Case-insensitive: eth-usdt finds ETH-USDT", examples=["BTC-USDT"]),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> SignalsPage:
    """The answers to signals (as POST /signals gave them), newest first; rejected ones too. The trades
    as they live (fills, targets, stop, P&L) are GET /trades. `symbol` is matched in upper case (as
    signals write it); a value that can't be a symbol is refused with 422."""
    rows, total = await service.journal.answers(
        status=status_.value if status_ else None, symbol=symbol, limit=limit, offset=offset
    )
    signals = [TradeResponse.model_validate(row.response) for row in rows]
    return SignalsPage(signals=signals, total=total, limit=limit, offset=offset)


@api.get("/positions", response_model=PositionsOut)
async def list_positions(service: TradingServiceDep) -> PositionsOut:
    """Open positions as the exchange reports them."""
    positions = await service.client.positions()
    return PositionsOut(
        positions=[position_out(p) for p in positions if p.positions != 0], as_of=clock.utcnow()
    )


@api.get("/stats", response_model=StatsResponse)
async def stats(service: TradingServiceDep) -> StatsResponse:
    counts = await service.journal.counts()
    closed = counts.wins + counts.losses
    return StatsResponse(
        signals_received=counts.received,
        placed=counts.placed,
        rejected=counts.rejected,
        failed=counts.failed,
        replayed=counts.replayed,
        open_positions=await service.open_position_count(),
        closed_trades=counts.closed,
        wins=counts.wins,
        losses=counts.losses,
        win_rate=counts.wins / closed if closed else None,
        realized_pnl=counts.realized_pnl,
        pnl_by_symbol=counts.pnl_by_symbol,
        uptime_seconds=round(service.uptime(), 3),
        mode=service.mode,
        halted=service.halted.halted,
    )


@api.get("/events", response_model=EventsResponse)
async def events(
    service: TradingServiceDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    signal_id: Annotated[
        str | None, Query(pattern=SIGNAL_ID_PATTERN, description="Only the events of this signal")
    ] = None,
) -> EventsResponse:
    """Trade events with an id greater than `after`, oldest first (poll with the last id seen).

    `signal_id`: only that signal's events (`after` and `limit` apply to them), e.g. to follow one
    trade from placed to closed. Events of no signal (halted, resumed) never match it."""
    rows = await service.journal.events(after=after, limit=limit, signal_id=signal_id)
    return EventsResponse(events=[event_out(row) for row in rows])


@api.post("/halt", response_model=HaltState)
async def halt(
    service: TradingServiceDep, request: Annotated[HaltRequest | None, Body()] = None
) -> HaltState:
    """The kill switch: new signals are rejected until /resume; survives a restart.

    The body is optional: no body, `null` or `{}` mean the defaults. While already halted, the
    standing halt is answered unchanged: its first `reason` and `since` (earlier than this call) are
    kept, and no second "halted" event is recorded; `cancel_orders` and `close_positions` are still
    carried out and counted."""
    return await service.halt(request or HaltRequest())


@api.post("/resume", response_model=HaltState)
async def resume(service: TradingServiceDep) -> HaltState:
    """New signals are accepted again. A resume while not halted changes nothing and records no
    "resumed" event."""
    return await service.resume()


@public.get("/health", response_model=HealthResponse, responses={503: {"model": ErrorResponse}})
async def health(settings: SettingsDep, service: TradingServiceDep) -> HealthResponse:
    """Liveness without a key; reveals no secret. `exchange`: reachable, unreachable, auth_failed,
    permission_denied or hedge_mode (see `exchange_check.py`)."""
    exchange = await service.exchange_check.run()
    return HealthResponse(
        status="ok" if exchange is ExchangeState.REACHABLE else "degraded",
        mode=settings.trading_mode,
        exchange=exchange.value,
        halted=service.halted.halted,
        version=__version__,
        max_signal_age_seconds=settings.max_signal_age_seconds,
    )
