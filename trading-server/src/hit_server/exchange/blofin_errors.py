"""Every failure of a BloFin call, as one exception tree.

    BloFinError                   base: `code` (BloFin's code, or "http 503" ...) and `message`
    ├── AuthenticationError       key, passphrase or signature refused: fix the credentials, don't retry
    ├── PermissionDenied          key lacks a permission or the IP is not whitelisted (or HTTP 403 ban)
    ├── ClockSkewError            timestamp outside BloFin's 60 s window: resync the clock (the client
    │                             does this once by itself), then retry
    ├── NonceReused               the nonce was seen in the last 60 s: retry with a fresh one
    ├── RateLimited               retryable: wait `retry_after` seconds (or back off), then retry
    ├── ExchangeUnavailable       retryable: BloFin is down, overloaded or unreachable; the request
    │                             may or may not have been carried out when `request_sent` is True
    ├── OrderRejected             BloFin refused the request as it stands (parameters, size, price band,
    │   │                         TP/SL side, reduce-only, position mode): report it, don't resend
    │   └── InsufficientFunds     not enough margin: report it, don't resend
    ├── DuplicateClientOrderId    an order with this clientOrderId exists already: look it up
    ├── InstrumentNotFound        no such instrument on BloFin: refuse the trade
    ├── NotFound                  the order to cancel or query does not exist (or is already final)
    └── OrderOutcomeUnknown       not a BloFin code: a write was sent but whether it took effect could
                                  not be established; look it up later by `client_order_id`, never resend

BloFin codes map to classes through `_BY_CODE` only (never by message text). `error_for` builds the
exception for a code; `error_for_http_status` for a reply that carries no BloFin envelope.
"""

from __future__ import annotations

from typing import ClassVar


class BloFinError(Exception):
    """A BloFin call failed. `retryable` says whether the same request may simply be sent again."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(f"{message} (code {code})" if code else message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class AuthenticationError(BloFinError):
    """The API key, passphrase, timestamp format or signature was refused."""


class PermissionDenied(BloFinError):
    """The key may not do this (missing permission, IP whitelist) or the IP is banned for a while."""


class ClockSkewError(BloFinError):
    """The request's timestamp was outside BloFin's 60 s window."""


class NonceReused(BloFinError):
    """BloFin saw this nonce in the last 60 s; the request was not carried out."""


class RateLimited(BloFinError):
    """Too many requests; the request was not carried out."""

    retryable = True

    def __init__(self, message: str, *, code: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class ExchangeUnavailable(BloFinError):
    """BloFin did not answer usefully (5xx, internal error, timeout, connection lost or refused).

    `request_sent` is False only when the request provably never left this process (the connection
    could not be opened); otherwise a write may have been carried out and must be looked up.
    `retry_after`: the seconds a 503 asked us to wait (Retry-After), if it said.
    """

    retryable = True

    def __init__(
        self, message: str, *, code: str = "", request_sent: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.request_sent = request_sent
        self.retry_after = retry_after


class OrderRejected(BloFinError):
    """BloFin refused the request as it stands; sending it again would fail the same way."""


class InsufficientFunds(OrderRejected):
    """Not enough available margin for this order."""


class DuplicateClientOrderId(BloFinError):
    """An order with this clientOrderId already exists; the client looks it up instead of failing."""


class InstrumentNotFound(BloFinError):
    """No such instrument (or not a USDT-M perpetual BloFin lists)."""


class NotFound(BloFinError):
    """The order does not exist, or is already filled, cancelled or triggered."""


class OrderOutcomeUnknown(BloFinError):
    """A write may or may not have been carried out; resolve it later by its clientOrderId."""

    def __init__(self, message: str, *, client_order_id: str, code: str = "") -> None:
        super().__init__(message, code=code)
        self.client_order_id = client_order_id


_GROUPS: dict[type[BloFinError], tuple[str, ...]] = {
    AuthenticationError: ("401", "152401", "152402", "152408", "152409", "152410"),
    PermissionDenied: ("152404", "152406", "152011", "152012", "152013"),
    ClockSkewError: ("152405",),
    NonceReused: ("152407",),
    RateLimited: ("429",),
    ExchangeUnavailable: ("500", "103013"),
    OrderRejected: (
        "400", "80001", "152001", "152002", "152003", "152004", "152005", "152006", "152007",
        "152008", "152009", "152015", "542", "102014", "102015", "102022", "102005", "102089",
        "102064", "102065", "102067", "110006", "110019",
        "102037", "102038", "102039", "102040",
        "102047", "102048", "102049", "102050", "102051", "102052", "102053", "102054", "102055",
    ),
    InsufficientFunds: ("103003", "150004"),
    DuplicateClientOrderId: ("102002",),
    InstrumentNotFound: ("152014",),
    NotFound: ("404", "102068", "1000"),
}

_BY_CODE: dict[str, type[BloFinError]] = {
    code: cls for cls, codes in _GROUPS.items() for code in codes
}


def error_class_for(code: str) -> type[BloFinError]:
    """The class for a BloFin code; an unknown code is a plain, non-retryable BloFinError."""
    return _BY_CODE.get(code, BloFinError)


def error_for(code: str, message: str) -> BloFinError:
    return error_class_for(code)(message or f"BloFin refused the request with code {code}", code=code)


def error_for_http_status(status: int, message: str, *, retry_after: float | None = None) -> BloFinError:
    """The error for a non-200 reply whose body is not a BloFin error envelope."""
    code = f"http {status}"
    if status == 429:
        return RateLimited(message, code=code, retry_after=retry_after)
    if status == 401:
        return AuthenticationError(message, code=code)
    if status == 403:
        return PermissionDenied(message, code=code)
    if status == 404:
        return NotFound(message, code=code)
    if status == 503:
        return ExchangeUnavailable(message, code=code, retry_after=retry_after)
    if status >= 500:
        return ExchangeUnavailable(message, code=code)
    return BloFinError(message, code=code)
