"""Every failure the server answers, in one place, always as
`{"error": {"code": "<snake_case>", "message": "<human sentence>"}}` (docs/api.md).

Routes raise; they never catch. `install(app)` maps:
- `ApiError` subclasses (ours) to their status;
- FastAPI's validation errors to 422 with a sentence naming the field, except a body that is not JSON
  (see below);
- Starlette's HTTP errors (404 unknown route, 405 wrong method) to the same shape;
- exchange errors (`BloFinError`) reached by a read route to 503 (the exchange, not the caller, failed);
- anything else to a generic 500 whose details stay in the log, never in the body.

The body rule, the same on every route that takes a body (POST /signals, POST /halt):
- 400 `invalid_json`: the body is not JSON at all, so there is nothing to check against the schema:
  malformed JSON, bytes that are not UTF-8 text, or a body sent without `Content-Type: application/json`
  (FastAPI then hands the raw bytes to the model). The caller must fix how it encodes the body.
- 422 `invalid_request`: well-formed JSON that breaks the schema (a missing or unknown field, a wrong
  type, a value out of range, inconsistent prices, or no body where one is required). The message names
  the field; the caller must fix what it sends.
FastAPI itself reports the first kind in two ways (a `json_invalid` validation error, or an HTTP 400
when the bytes can't even be decoded); both end here as the same 400.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hit_shared.models import ErrorDetail, ErrorResponse

log = logging.getLogger(__name__)


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class SignalConflict(ApiError):
    """Same signal_id, different body: the caller must pick a new id or resend the original."""

    status = 409
    code = "signal_conflict"


class InvalidJson(ApiError):
    """The body is not JSON (see the module docstring): the caller must send a JSON object with
    `Content-Type: application/json`."""

    status = 400
    code = "invalid_json"


class BodyTooLarge(ApiError):
    status = 413
    code = "body_too_large"


class TooManyRequests(ApiError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, math.ceil(retry_after)))})


class NotReady(ApiError):
    """The server can't serve this now (journal unwritable, exchange unreachable); retry later."""

    status = 503
    code = "not_ready"


class JournalUnavailable(NotReady):
    code = "journal_unavailable"


class ExchangeUnavailable(NotReady):
    code = "exchange_unavailable"


class ExchangeAuthFailed(NotReady):
    """BloFin refused the credentials: the operator must fix the settings (retrying does not help)."""

    code = "exchange_auth_failed"


class ExchangePermissionDenied(NotReady):
    """The API key lacks the trade permission or this IP is not on its whitelist."""

    code = "exchange_permission_denied"


class ExchangeHedgeMode(NotReady):
    """The account is in hedge mode; orders here are one-way (`positionSide: net`)."""

    code = "exchange_hedge_mode"


def error_body(code: str, message: str) -> dict[str, Any]:
    return ErrorResponse(error=ErrorDetail(code=code, message=message)).model_dump()


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def validation_message(errors: list[Any]) -> str:
    """The first validation problem as a sentence that names the field."""
    if not errors:
        return "The request is invalid."
    first = errors[0]
    kind = str(first.get("type", ""))
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "header")]
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if not loc:
        if kind == "missing":
            return "The request body is required: send a JSON object."
        return f"The request body is invalid: {msg}."
    field = ".".join(loc)
    if kind == "missing":
        return f"Field '{field}' is required."
    if kind == "extra_forbidden":
        return f"Field '{field}' is not allowed."
    return f"Field '{field}' is invalid: {msg}."


def not_json_message(errors: list[Any]) -> str | None:
    """The 400 `invalid_json` sentence when the validation errors say the body is not JSON at all
    (malformed, or sent without a JSON content type so the model saw raw bytes); None otherwise."""
    for error in errors:
        if error.get("type") == "json_invalid":
            problem = str(error.get("ctx", {}).get("error", "")).rstrip(".")
            at = [part for part in error.get("loc", ()) if isinstance(part, int)]
            where = f" at character {at[0]}" if at else ""
            return f"The request body is not valid JSON ({problem or 'malformed'}{where})."
        if isinstance(error.get("input"), bytes | bytearray):
            return "The request body is not JSON: send a JSON object with Content-Type: application/json."
    return None


_STATUS_CODES = {
    400: InvalidJson.code,
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    401: "unauthorized",
}


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)  # noqa: S101 - registered for ApiError only
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = list(exc.errors())
    not_json = not_json_message(errors)
    if not_json is not None:
        return error_response(InvalidJson.status, InvalidJson.code, not_json)
    return error_response(422, "invalid_request", validation_message(errors))


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404:
        message = "No such route."
    elif exc.status_code == 400:  # raised by FastAPI only when it can't decode the body
        message = "The request body could not be read as JSON (is it UTF-8 text?)."
    elif exc.status_code == 405:
        message = "This method is not allowed on this route."
    else:
        message = str(exc.detail) if isinstance(exc.detail, str) else "The request failed."
    return error_response(exc.status_code, code, message, dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "The server hit an unexpected error; it has been logged.")


def _exchange_handler() -> tuple[type[Exception], Any] | None:
    try:
        from hit_server.exchange.blofin_errors import AuthenticationError, BloFinError
    except ImportError:  # pragma: no cover - the client lands in parallel
        return None

    async def handler(_: Request, exc: Exception) -> JSONResponse:
        log.warning("Exchange error on a read route: %s", type(exc).__name__)
        if isinstance(exc, AuthenticationError):
            return error_response(
                503, ExchangeAuthFailed.code, "BloFin refused the API credentials; check BLOFIN_API_KEY, "
                "BLOFIN_API_SECRET and BLOFIN_PASSPHRASE in the trading server's settings."
            )
        return error_response(
            503, "exchange_unavailable", "The exchange could not answer; try again shortly."
        )

    return BloFinError, handler


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    exchange = _exchange_handler()
    if exchange is not None:
        app.add_exception_handler(*exchange)
    app.add_exception_handler(Exception, _unexpected)
