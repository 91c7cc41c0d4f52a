"""Error mapping at the client boundary, over a tiny `httpx.MockTransport` (no simulator needed).

These check the one code table and the envelope rules; the contract and fault suites check the same
paths against the real simulator.
"""

import json
import logging
from decimal import Decimal

import httpx
import pytest

from hit_server.exchange import blofin_errors as errors
from hit_server.exchange.blofin_errors import (
    AuthenticationError,
    BloFinError,
    ClockSkewError,
    DuplicateClientOrderId,
    ExchangeUnavailable,
    InstrumentNotFound,
    InsufficientFunds,
    NonceReused,
    NotFound,
    OrderOutcomeUnknown,
    OrderRejected,
    PermissionDenied,
    RateLimited,
)
from hit_server.exchange.blofin_models import OrderRequest
from hit_server.exchange.blofin_rest import RetryPolicy

SECRET = "client-SECRET-never-shown-9f8e7d6c5b4a"
PASSPHRASE = "client-PASSPHRASE-never-shown-42"

BALANCE = {"ts": "1", "totalEquity": "1000", "details": [
    {"currency": "USDT", "equity": "1000", "available": "900", "frozen": "100"}]}


def envelope(code: str, msg: str = "", data: object = None, status: int = 200,
             headers: dict[str, str] | None = None) -> httpx.Response:
    body: dict[str, object] = {"code": code, "msg": msg}
    if data is not None:
        body["data"] = data
    return httpx.Response(status, json=body, headers=headers)


def market_order(cid: str = "sig1e1") -> OrderRequest:
    return OrderRequest(inst_id="BTC-USDT", side="buy", order_type="market", size=Decimal("0.1"),
                        margin_mode="cross", client_order_id=cid)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("152401", AuthenticationError), ("152402", AuthenticationError), ("152408", AuthenticationError),
        ("152409", AuthenticationError), ("152410", AuthenticationError), ("401", AuthenticationError),
        ("152404", PermissionDenied), ("152406", PermissionDenied),
        ("152407", NonceReused),
        ("152001", OrderRejected), ("152005", OrderRejected), ("102014", OrderRejected),
        ("102015", OrderRejected), ("542", OrderRejected), ("102037", OrderRejected),
        ("102055", OrderRejected), ("102064", OrderRejected), ("102065", OrderRejected),
        ("102022", OrderRejected), ("102005", OrderRejected), ("102089", OrderRejected),
        ("103003", InsufficientFunds), ("150004", InsufficientFunds),
        ("152014", InstrumentNotFound),
        ("987654", BloFinError),
    ],
)
async def test_client_maps_envelope_code_to_one_error_class(client_mock, code, expected):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return envelope(code, "refused")

    client = client_mock(handler)
    with pytest.raises(BloFinError) as caught:
        await client.balance()
    assert type(caught.value) is expected
    assert caught.value.code == code
    assert len(calls) == 1, "non-retryable errors are not retried"


@pytest.mark.parametrize(
    ("code", "expected"),
    [("429", RateLimited), ("500", ExchangeUnavailable), ("103013", ExchangeUnavailable)],
)
async def test_client_retries_read_on_retryable_code_then_succeeds(
    client_mock, client_sleeps, code, expected
):
    replies = [envelope(code, "busy"), envelope(code, "busy"), envelope("0", data=BALANCE)]
    client = client_mock(lambda request: replies.pop(0))
    balance = await client.balance()
    assert balance.available == Decimal(900)
    assert expected.retryable
    assert len(client_sleeps.waits) == 2
    assert 0.25 <= client_sleeps.waits[0] <= 0.5 <= client_sleeps.waits[1] <= 0.75, "exponential + jitter"


async def test_client_read_gives_up_after_bounded_attempts(client_mock, client_sleeps):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, text="upstream down")

    client = client_mock(handler)
    with pytest.raises(ExchangeUnavailable) as caught:
        await client.balance()
    assert caught.value.code == "http 503"
    assert len(calls) == 4
    assert sum(client_sleeps.waits) < 10


@pytest.mark.parametrize(
    ("status", "expected"),
    [(429, RateLimited), (403, PermissionDenied), (401, AuthenticationError), (502, ExchangeUnavailable),
     (404, NotFound), (418, BloFinError)],
)
async def test_client_maps_http_status_without_envelope(client_mock, status, expected):
    client = client_mock(lambda request: httpx.Response(status, text="<html>no</html>"))
    with pytest.raises(BloFinError) as caught:
        await client.position_mode()
    assert type(caught.value) is expected
    assert caught.value.code == f"http {status}"


async def test_client_honours_retry_after_of_http_429(client_mock, client_sleeps):
    replies = [
        httpx.Response(429, text="slow down", headers={"Retry-After": "2"}),
        envelope("0", data={"positionMode": "net_mode"}),
    ]
    client = client_mock(lambda request: replies.pop(0))
    assert await client.position_mode() == "net_mode"
    assert client_sleeps.waits and client_sleeps.waits[0] >= 2.0


async def test_client_treats_nonzero_code_with_http_200_as_error(client_mock):
    client = client_mock(lambda request: envelope("152002", "Parameter size error.", data=[]))
    with pytest.raises(OrderRejected, match="Parameter size error"):
        await client.positions()


async def test_client_raises_item_code_of_failed_place_order(client_mock):
    item = {"orderId": None, "clientOrderId": "", "code": "103003",
            "msg": "Order failed. Insufficient USDT margin in account"}
    client = client_mock(lambda request: envelope("1", "All operations failed", data=[item]))
    with pytest.raises(InsufficientFunds) as caught:
        await client.place_order(market_order())
    assert caught.value.code == "103003"
    assert isinstance(caught.value, OrderRejected)


async def test_client_raises_item_code_even_when_top_level_code_is_zero(client_mock):
    item = {"orderId": None, "clientOrderId": "sig1e1", "code": "102015", "msg": "too big"}
    client = client_mock(lambda request: envelope("0", data=[item]))
    with pytest.raises(OrderRejected) as caught:
        await client.place_order(market_order())
    assert caught.value.code == "102015"


async def test_client_sends_compact_json_bytes_it_signed(client_mock):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return envelope("0", data=[{"orderId": "77", "clientOrderId": "sig1e1", "code": "0", "msg": ""}])

    client = client_mock(handler)
    ack = await client.place_order(market_order())
    assert (ack.order_id, ack.client_order_id) == ("77", "sig1e1")
    body = seen[0].content.decode()
    assert " " not in body
    assert json.loads(body)["size"] == "0.1"
    assert seen[0].headers["Content-Type"] == "application/json"
    assert len(seen[0].headers["ACCESS-SIGN"]) == 88


async def test_client_public_endpoints_are_not_signed(client_mock):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return envelope("0", data=[{"instId": "BTC-USDT", "last": "1", "bidPrice": "1", "askPrice": "1",
                                    "ts": "5"}])

    client = client_mock(handler)
    await client.ticker("BTC-USDT")
    assert "ACCESS-SIGN" not in seen[0].headers
    assert "ACCESS-PASSPHRASE" not in seen[0].headers


async def test_client_turns_unreadable_reply_into_exchange_unavailable(client_mock):
    client = client_mock(lambda request: envelope("0", data={"unexpected": True}))
    with pytest.raises(ExchangeUnavailable) as caught:
        await client.position_mode()
    assert caught.value.code == "unreadable"
    assert isinstance(caught.value.__cause__, KeyError)


async def test_client_duplicate_client_order_id_resolves_to_existing_order(client_mock):
    order = {"orderId": "555", "clientOrderId": "sig1e1", "instId": "BTC-USDT", "side": "buy",
             "orderType": "market", "price": "", "size": "0.1", "filledSize": "0.1", "averagePrice": "60000",
             "state": "filled", "reduceOnly": "false", "fee": "0", "pnl": "0", "createTime": "1",
             "updateTime": "1", "orderCategory": "normal"}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/trade/order":
            return envelope("1", data=[{"orderId": None, "clientOrderId": "sig1e1", "code": "102002",
                                        "msg": "Duplicate customized order ID"}])
        assert request.url.params["clientOrderId"] == "sig1e1"
        return envelope("0", data=order)

    ack = await client_mock(handler).place_order(market_order())
    assert ack.order_id == "555"


async def test_client_duplicate_that_cannot_be_found_is_outcome_unknown(client_mock):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/trade/order":
            return envelope("1", data=[{"code": "102002", "msg": "Duplicate customized order ID"}])
        return envelope("0", data=None)

    with pytest.raises(OrderOutcomeUnknown) as caught:
        await client_mock(handler).place_order(market_order("sig9"))
    assert caught.value.client_order_id == "sig9"
    assert isinstance(caught.value.__cause__, DuplicateClientOrderId)


async def test_client_fixes_clock_skew_once_and_resends(client_mock, client_credentials):
    server_now = 1_700_000_000_000
    signed_stamps: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/public/time":
            return envelope("0", data={"ts": str(server_now)})
        stamp = int(request.headers["ACCESS-TIMESTAMP"])
        signed_stamps.append(stamp)
        if abs(stamp - server_now) > 60_000:
            return envelope("152405", "Timestamp in header or signature has expired")
        return envelope("0", data={"positionMode": "net_mode"})

    client = client_mock(handler)
    client._rest._auth.clock_ms = lambda: server_now - 95_000
    assert await client.position_mode() == "net_mode"
    assert signed_stamps[0] == server_now - 95_000
    assert abs(signed_stamps[1] - server_now) < 1000
    assert client._rest._auth.offset_ms == 95_000


async def test_client_raises_clock_skew_when_correction_does_not_help(client_mock):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/public/time":
            return envelope("0", data={"ts": "1700000000000"})
        return envelope("152405", "expired")

    with pytest.raises(ClockSkewError):
        await client_mock(handler).balance()


def test_error_tree_shape_and_retry_flags():
    assert issubclass(errors.InsufficientFunds, errors.OrderRejected)
    for cls in (AuthenticationError, PermissionDenied, ClockSkewError, NonceReused, RateLimited,
                ExchangeUnavailable, OrderRejected, DuplicateClientOrderId, InstrumentNotFound, NotFound,
                OrderOutcomeUnknown):
        assert issubclass(cls, BloFinError)
    retryable = {cls for cls in (AuthenticationError, PermissionDenied, ClockSkewError, NonceReused,
                                 RateLimited, ExchangeUnavailable, OrderRejected, InsufficientFunds,
                                 DuplicateClientOrderId, InstrumentNotFound, NotFound, OrderOutcomeUnknown)
                 if cls.retryable}
    assert retryable == {RateLimited, ExchangeUnavailable}


def test_error_table_maps_each_code_to_exactly_one_class():
    codes = [code for group in errors._GROUPS.values() for code in group]
    assert len(codes) == len(set(codes)), "a code appears in two groups"
    assert errors.error_class_for("102002") is DuplicateClientOrderId
    assert errors.error_class_for("102068") is NotFound
    assert errors.error_class_for("1000") is NotFound


async def test_client_errors_and_logs_never_show_secrets(client_mock, caplog):
    caplog.set_level(logging.DEBUG)
    replies = [
        envelope("152409", "Signature verification failed"),
        httpx.Response(503, text="down"), httpx.Response(503, text="down"),
        httpx.Response(503, text="down"), httpx.Response(503, text="down"),
    ]
    client = client_mock(lambda request: replies.pop(0))
    seen: list[str] = [repr(client)]
    with pytest.raises(AuthenticationError) as auth_error:
        await client.balance()
    with pytest.raises(ExchangeUnavailable) as down:
        await client.balance()
    for exc in (auth_error.value, down.value):
        seen += [str(exc), repr(exc), repr(exc.__cause__), str(exc.__cause__)]
    seen += [record.getMessage() for record in caplog.records]
    seen += [repr(client._rest._auth)]
    assert caplog.records, "the retries above must have been logged"
    for text in seen:
        assert SECRET not in text
        assert PASSPHRASE not in text


async def test_retry_policy_stops_after_max_total_seconds_and_raises_the_last_error() -> None:
    tries = 0

    async def always_busy() -> None:
        nonlocal tries
        tries += 1
        raise RateLimited(f"busy {tries}")

    policy = RetryPolicy(attempts=50, initial_wait=0.02, max_wait=0.02, jitter=0, max_total=0.1)
    with pytest.raises(RateLimited, match="busy"):
        await policy.run(always_busy, lambda exc: isinstance(exc, RateLimited))
    assert 2 <= tries < 50  # stopped by the time budget, not by the attempts


async def test_retry_policy_does_not_retry_what_the_predicate_refuses() -> None:
    tries = 0

    async def refused() -> None:
        nonlocal tries
        tries += 1
        raise ValueError("not a retryable error")

    with pytest.raises(ValueError, match="not a retryable"):
        await RetryPolicy().run(refused, lambda exc: isinstance(exc, RateLimited))
    assert tries == 1


@pytest.mark.parametrize("row", [{"positions": "1"}, {"instId": "BTC-USDT", "positions": "lots"}])
async def test_client_held_symbols_refuses_an_unreadable_position_row(client_mock, row):
    client = client_mock(lambda request: envelope("0", data=[row]))
    with pytest.raises(ExchangeUnavailable) as caught:
        await client.held_symbols()
    assert caught.value.code == "unreadable"
