"""The trade routes of the fake trading server: the living trades and the actions on them (docs/api.md).

For what the real server can't be made to show in a test, such as two live trades on one symbol (its
database allows one per symbol), and for faults on the actions. It keeps the contract's behaviour:
GET /api/v1/trades filters by state and symbol (any case) and pages, newest first; GET
/api/v1/trades/{id} adds the orders; POST /api/v1/trades/{id}/close|cancel|stop needs an Idempotency-Key,
and a retry with the same key and body gets the stored answer (`Idempotent-Replayed: true`) without
acting again, the same key with another request is 409 `idempotency_key_reused`.

A placed signal with entries is `pending` until `fill(signal_id, price)`; a market signal is `open` at once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from hit_shared.models import TradeResponse, TradeSignal, as_jsonable
from hit_shared.trade_actions import (
    IDEMPOTENCY_KEY_HEADER,
    ActionOutcome,
    CancelRequest,
    CloseRequest,
    StopRequest,
    TradeAction,
    TradeActionResult,
)
from hit_shared.trades import (
    StopView,
    TargetState,
    TargetView,
    TradeDetail,
    TradesPage,
    TradeState,
    TradeView,
)

JSON = dict[str, Any]
LIVE = (TradeState.OPEN, TradeState.PENDING)
REQUESTS: dict[str, type[CloseRequest] | type[CancelRequest] | type[StopRequest]] = {
    "close": CloseRequest,
    "cancel": CancelRequest,
    "stop": StopRequest,
}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(), status=status, content_type="application/json", headers=headers
    )


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": {"code": code, "message": message}}, status)


class FakeTradeBook:
    def __init__(self) -> None:
        self.views: dict[str, TradeDetail] = {}
        self.acted: list[tuple[str, str, str]] = []  # (signal_id, action, key) of every action carried out
        self._keys: dict[
            str, tuple[tuple[str, str, JSON], int, JSON]
        ] = {}  # key -> (request, status, answer)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/trades", self._list)
        app.router.add_get("/api/v1/trades/{signal_id}", self._one)
        app.router.add_post("/api/v1/trades/{signal_id}/{action}", self._act)

    # ---- what the fake server and tests do --------------------------------------------------------

    def placed(self, signal: TradeSignal, response: TradeResponse) -> None:
        targets = tuple(
            TargetView(number=i, price=tp, size=response.size, state=TargetState.OPEN)
            for i, tp in enumerate(signal.take_profits, start=1)
        )
        market = not signal.entries
        self.views[signal.signal_id] = TradeDetail(
            signal_id=signal.signal_id,
            state=TradeState.OPEN if market else TradeState.PENDING,
            symbol=signal.symbol,
            side=signal.side,
            mode=response.mode,
            leverage=response.leverage,
            size=response.size,
            filled_size=response.size if market else Decimal(0),
            avg_entry=None,
            stop=StopView(price=signal.stop_loss),
            targets=targets,
            created_at=response.created_at,
            opened_at=response.created_at if market else None,
            orders=response.orders,
        )

    def fill(self, signal_id: str, price: Decimal) -> None:
        view = self.views[signal_id]
        self.views[signal_id] = view.model_copy(
            update={
                "state": TradeState.OPEN,
                "filled_size": view.size,
                "avg_entry": price,
                "opened_at": datetime.now(UTC),
            }
        )

    # ---- reads ------------------------------------------------------------------------------------

    async def _list(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            state = TradeState(query["state"]) if "state" in query else None
            limit, offset = int(query.get("limit", "50")), int(query.get("offset", "0"))
        except ValueError:
            return _error(422, "invalid_request", "state, limit or offset is not valid")
        symbol = query.get("symbol", "").upper()
        chosen = [
            v
            for v in reversed(self.views.values())
            if (state is None or v.state is state) and (not symbol or v.symbol == symbol)
        ]
        page = TradesPage(
            trades=tuple(TradeView.model_validate(_view_fields(v)) for v in chosen[offset : offset + limit]),
            total=len(chosen),
            limit=limit,
            offset=offset,
        )
        return _json(as_jsonable(page))

    async def _one(self, request: web.Request) -> web.Response:
        view = self.views.get(request.match_info["signal_id"])
        if view is None:
            return _error(404, "not_found", f"No trade has the id {request.match_info['signal_id']}.")
        return _json(as_jsonable(view))

    # ---- actions ----------------------------------------------------------------------------------

    async def _act(self, request: web.Request) -> web.Response:
        signal_id, action = request.match_info["signal_id"], request.match_info["action"]
        key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
        if action not in REQUESTS:
            return _error(404, "not_found", "no such route")
        if not key:
            return _error(400, "idempotency_key_missing", "Send an Idempotency-Key header.")
        raw = await request.read()
        try:
            body = REQUESTS[action].model_validate_json(raw or b"{}")
        except ValidationError as exc:
            return _error(422, "invalid_request", str(exc).splitlines()[0])
        asked = (signal_id, action, as_jsonable(body))
        if key in self._keys:
            stored, status, answer = self._keys[key]
            if stored != asked:
                return _error(
                    409, "idempotency_key_reused", "This Idempotency-Key was used for another request."
                )
            return _json(answer, status, headers={"Idempotent-Replayed": "true"})
        status, answer = self._carry_out(signal_id, TradeAction(action), body)
        if status != 404:
            self._keys[key] = (asked, status, answer)
        if status == 200:
            self.acted.append((signal_id, action, key))
        return _json(answer, status)

    def _carry_out(self, signal_id: str, action: TradeAction, body: Any) -> tuple[int, JSON]:
        view = self.views.get(signal_id)
        if view is None:
            return 404, {"error": {"code": "not_found", "message": f"No trade has the id {signal_id}."}}
        if view.state not in LIVE:
            return 409, {
                "error": {"code": "trade_not_open", "message": f"The trade is already {view.state}."}
            }
        if isinstance(body, StopRequest) and body.breakeven and view.avg_entry is None:
            return 409, {"error": {"code": "no_position", "message": "Nothing of the trade has filled yet."}}
        changes, outcome, message = _effect(view, body)
        self.views[signal_id] = after = view.model_copy(update=changes)
        result = TradeActionResult(
            action=action,
            signal_id=signal_id,
            outcome=outcome,
            message=message,
            trade=TradeView.model_validate(_view_fields(after)),
            at=datetime.now(UTC),
        )
        return 200, as_jsonable(result)


def _effect(view: TradeDetail, body: Any) -> tuple[JSON, ActionOutcome, str]:
    now = datetime.now(UTC)
    if isinstance(body, StopRequest):
        level = view.avg_entry if body.breakeven else body.price
        return (
            {"stop": StopView(price=level, at_breakeven=body.breakeven)},
            ActionOutcome.STOP_MOVED,
            f"The stop is now {level}.",
        )
    if isinstance(body, CancelRequest) and view.filled_size:
        return {}, ActionOutcome.ENTRIES_CANCELLED, "The unfilled entries were cancelled."
    if isinstance(body, CloseRequest) and body.fraction < 1:
        left = view.filled_size - view.filled_size * body.fraction
        return {"filled_size": left}, ActionOutcome.PARTLY_CLOSED, "A part of the position was closed."
    ended = TradeState.CLOSED if view.filled_size else TradeState.CANCELLED
    reason = "manual" if view.filled_size else "entries_cancelled"
    outcome = ActionOutcome.CLOSED if isinstance(body, CloseRequest) else ActionOutcome.CANCELLED
    return {"state": ended, "exit_reason": reason, "closed_at": now}, outcome, f"The trade is {ended.value}."


def _view_fields(detail: TradeDetail) -> JSON:
    return detail.model_dump(exclude={"orders", "events"})
