"""POST /api/v1/trades/{signal_id}/close, /cancel, /stop and /targets: a trader's actions on one trade.

Authenticated like every /api/v1 route. Each takes an `Idempotency-Key` header: a retry with the same key
answers the same (status and body, marked `Idempotent-Replayed: true`) and acts once, across restarts too;
the same key with another request is refused (409). The work is `lifecycle/actions.py`'s: under the
trade's lease, journaled before anything is sent, evented (`manual_close`, `manual_cancel`, `manual_stop`,
`manual_targets` in GET /api/v1/events, for each outcome). A refusal is a 4xx in the error shape with one
sentence; 503 when the trade is busy, the exchange can't answer, or an order's outcome is not known yet
(retry with the same key: the order is looked up, never sent again).
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Path, Request, Response
from pydantic import BaseModel

from hit_server.api.deps import TradingServiceDep
from hit_server.api.http_errors import NotReady
from hit_server.api.security import require_api_key
from hit_server.lifecycle.actions import TradeControls
from hit_server.lifecycle.monitor import PositionMonitor
from hit_server.trading.service import TradingService
from hit_shared.models import SIGNAL_ID_PATTERN, ErrorResponse
from hit_shared.trade_actions import (
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENCY_KEY_PATTERN,
    CancelRequest,
    CloseRequest,
    StopRequest,
    TargetsRequest,
    TradeAction,
    TradeActionResult,
)

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 405, 409, 413, 422, 429, 503)
}
router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_key)], responses=ERRORS)

SignalIdPath = Annotated[str, Path(pattern=SIGNAL_ID_PATTERN)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_KEY_HEADER,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Required: any unique text (visible ASCII, up to 128 characters, e.g. a UUID); a retry "
        "with the same key answers the same and acts once",
    ),
]
REPLAYED_HEADER = "Idempotent-Replayed"


def controls(request: Request, service: TradingService) -> TradeControls:
    """The actions of the running server: one per lifespan (they hold its per-key locks)."""
    monitor: PositionMonitor | None = getattr(request.app.state, "monitor", None)
    if monitor is None:
        raise NotReady("The server is starting up or shutting down; retry shortly.")
    found: TradeControls | None = getattr(request.app.state, "trade_controls", None)
    if found is None or found.lifecycle is not monitor.lifecycle:
        found = TradeControls(
            service.client, service.journal, monitor.lifecycle, service.settings, monitor.wake
        )
        request.app.state.trade_controls = found
    return found


async def _act(
    request: Request,
    service: TradingService,
    action: TradeAction,
    signal_id: str,
    key: str | None,
    body: BaseModel,
) -> Response:
    answer = await controls(request, service).act(action, signal_id, key, body)
    headers = {REPLAYED_HEADER: "true"} if answer.replayed else {}
    # the stored answer as it was first given (a replay repeats its bytes' content, not a new rendering)
    return Response(
        json.dumps(answer.body, separators=(",", ":"), ensure_ascii=False),
        status_code=answer.status,
        media_type="application/json",
        headers=headers,
    )


@router.post("/trades/{signal_id}/close", response_model=TradeActionResult)
async def close_trade(
    signal_id: SignalIdPath,
    request: Request,
    service: TradingServiceDep,
    idempotency_key: IdempotencyKey = None,
    body: Annotated[CloseRequest | None, Body()] = None,
) -> Response:
    """Close the trade's position at market: all of it, or `fraction` of it (on the lot grid, rounded
    down). A full close first cancels the trade's resting entries and targets; the trade then ends as
    closed by hand (exit `manual`). A partial close keeps the stop covering what is left and splits the
    targets not hit over it; it needs every entry filled or cancelled first. No body: close it all."""
    return await _act(request, service, TradeAction.CLOSE, signal_id, idempotency_key, body or CloseRequest())


@router.post("/trades/{signal_id}/cancel", response_model=TradeActionResult)
async def cancel_trade(
    signal_id: SignalIdPath,
    request: Request,
    service: TradingServiceDep,
    idempotency_key: IdempotencyKey = None,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> Response:
    """Cancel the trade's unfilled entries. Nothing filled: the trade ends (`cancelled`). Something
    filled: it goes on with its stop and targets, unless `close_filled` asks to close it at market too."""
    return await _act(
        request, service, TradeAction.CANCEL, signal_id, idempotency_key, body or CancelRequest()
    )


@router.post("/trades/{signal_id}/stop", response_model=TradeActionResult)
async def move_stop(
    signal_id: SignalIdPath,
    request: Request,
    service: TradingServiceDep,
    body: StopRequest,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Move the stop to `price` (on the tick grid, rounded away from the market) or to the average entry
    (`breakeven`). The new stop is placed and confirmed live before the old one is cancelled; if it can't
    be placed the old one stays. A stop only moves towards the market, and stays on the protective side of
    the mark price."""
    return await _act(request, service, TradeAction.STOP, signal_id, idempotency_key, body)


@router.post("/trades/{signal_id}/targets", response_model=TradeActionResult)
async def replace_targets(
    signal_id: SignalIdPath,
    request: Request,
    service: TradingServiceDep,
    body: TargetsRequest,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Replace every target not hit yet: the contracts held are split over the new prices (nearest first,
    on the tick grid), which must lie on the profit side of the mark price. Needs every entry filled or
    cancelled first."""
    return await _act(request, service, TradeAction.TARGETS, signal_id, idempotency_key, body)
