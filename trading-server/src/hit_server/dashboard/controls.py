"""The dashboard's actions: close or partly close, cancel, move the stop, halt and resume.

Each is two steps: a GET shows what will happen and a form to confirm it, carrying the session's CSRF
token and a fresh idempotency key; the POST checks the token and acts through the same service as the
API (`TradeControls.act`, `TradingService.halt/resume`: same journal, events and rules). A double
submission of one confirmation form reuses its key, so it acts once. Every refusal is shown as the
API's sentence.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from hit_server.api.http_errors import ApiError
from hit_server.api.trade_actions import controls as trade_controls
from hit_server.dashboard import forms
from hit_server.dashboard.access import auth_of, login_redirect, problem, service_or_page, session_of
from hit_server.dashboard.render import page
from hit_server.exchange.blofin_errors import BloFinError
from hit_shared.models import HaltRequest
from hit_shared.trade_actions import CancelRequest, CloseRequest, StopRequest, TradeAction

log = logging.getLogger(__name__)
router = APIRouter(prefix="/dashboard", include_in_schema=False)
EXPIRED = "This form has expired or was not sent by the dashboard; go back, reload it and confirm again."


def action_request(action: str, fields: dict[str, str]) -> tuple[TradeAction, BaseModel, str]:
    """The action, its request model and a sentence saying what it will do; BadInput when unusable."""
    if action == "close":
        part = forms.fraction(fields.get("percent"))
        what = (
            "Close the whole position at market"
            if part == 1
            else f"Close {part * 100:g}% of the position at market"
        )
        return TradeAction.CLOSE, CloseRequest(fraction=part), what + "."
    if action == "cancel":
        close_filled = fields.get("close_filled") == "yes"
        extra = " and close at market what they filled" if close_filled else ""
        return (
            TradeAction.CANCEL,
            CancelRequest(close_filled=close_filled),
            f"Cancel the unfilled entries{extra}.",
        )
    if action == "stop":
        if fields.get("breakeven") == "yes":
            return (
                TradeAction.STOP,
                StopRequest(breakeven=True),
                "Move the stop to breakeven (the average entry).",
            )
        price = forms.price(fields.get("price"), "Stop price")
        return TradeAction.STOP, StopRequest(price=price), f"Move the stop to {price}."
    raise forms.BadInput("Unknown action.")


@router.get("/trades/{signal_id}/confirm")
async def confirm(request: Request, signal_id: str) -> Response:
    if session_of(request) is None:
        return login_redirect(request)
    fields = dict(request.query_params)
    try:
        forms.signal_id(signal_id)
        _, _, what = action_request(fields.get("action", ""), fields)
    except (forms.BadInput, ValidationError) as exc:
        return problem(request, 400, _sentence(exc))
    hidden = {
        k: v for k, v in fields.items() if k in ("action", "percent", "close_filled", "breakeven", "price")
    }
    return page(
        request,
        "confirm.html",
        what=what,
        target=f"/dashboard/trades/{signal_id}/act",
        hidden=hidden,
        key=uuid.uuid4().hex,
        back=f"/dashboard/trades/{signal_id}",
        signal_id=signal_id,
    )


@router.post("/trades/{signal_id}/act")
async def act(request: Request, signal_id: str) -> Response:
    checked = await _checked_form(request)
    if isinstance(checked, Response):
        return checked
    service = service_or_page(request)
    if isinstance(service, Response):
        return service
    try:
        forms.signal_id(signal_id)
        key = forms.idempotency_key(checked.get("key"))
        action, body, _ = action_request(checked.get("action", ""), checked)
        answer = await trade_controls(request, service).act(action, signal_id, key, body)
    except (forms.BadInput, ValidationError) as exc:
        return problem(request, 400, _sentence(exc))
    except ApiError as exc:
        return _result(request, signal_id, exc.status, exc.message)
    except BloFinError:
        return _result(request, signal_id, 503, "The exchange could not answer; retry shortly.")
    message = _message(answer.body)
    return _result(request, signal_id, answer.status, message)


def _message(body: dict[str, Any]) -> str:
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message", "Refused."))
    return str(body.get("message", "Done."))


def _result(request: Request, signal_id: str, status: int, message: str) -> Response:
    return page(
        request,
        "result.html",
        status=status if status >= 400 else 200,
        ok=status < 400,
        message=message,
        back=f"/dashboard/trades/{signal_id}",
    )


@router.get("/halt")
async def halt_confirm(request: Request) -> Response:
    if session_of(request) is None:
        return login_redirect(request)
    resume = request.query_params.get("resume") == "yes"
    return page(request, "confirm_halt.html", resume=resume, key=uuid.uuid4().hex)


@router.post("/halt")
async def halt(request: Request) -> Response:
    checked = await _checked_form(request)
    if isinstance(checked, Response):
        return checked
    service = service_or_page(request)
    if isinstance(service, Response):
        return service
    try:
        halt_request = HaltRequest(
            reason=checked.get("reason") or "halted from the dashboard",
            cancel_orders=checked.get("cancel_orders") == "yes",
            close_positions=checked.get("close_positions") == "yes",
        )
        state = await service.halt(halt_request)
    except ValidationError as exc:
        return problem(request, 400, _sentence(exc))
    except BloFinError:
        return page(
            request,
            "result.html",
            status=503,
            ok=False,
            back="/dashboard/now",
            message="Halted, but the exchange could not answer for the orders or positions; check Now.",
        )
    message = f"Trading is halted: {state.reason}."
    if halt_request.cancel_orders or halt_request.close_positions:
        message += f" Orders cancelled: {state.cancelled_orders}; positions closed: {state.closed_positions}."
    return page(request, "result.html", ok=True, message=message, back="/dashboard/now")


@router.post("/resume")
async def resume(request: Request) -> Response:
    checked = await _checked_form(request)
    if isinstance(checked, Response):
        return checked
    service = service_or_page(request)
    if isinstance(service, Response):
        return service
    await service.resume()
    return page(
        request,
        "result.html",
        ok=True,
        message="Trading resumed: new signals are accepted.",
        back="/dashboard/now",
    )


async def _checked_form(request: Request) -> dict[str, str] | Response:
    """The form of a logged-in visitor with the right CSRF token; else the refusal page."""
    session = session_of(request)
    if session is None:
        return problem(request, 403, "Log in first: this needs a dashboard session.")
    try:
        fields = await forms.form(request)
    except forms.BadInput as exc:
        return problem(request, 400, str(exc))
    if not auth_of(request).csrf_ok(session, fields.get("csrf")):
        return problem(request, 403, EXPIRED)
    return fields


def _sentence(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        return str(errors[0].get("msg", "Invalid value.")) if errors else "Invalid value."
    return str(exc)
