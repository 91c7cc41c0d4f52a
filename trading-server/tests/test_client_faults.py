"""Injected faults (the simulator's /sim/faults) end as the right exception, or as success after a
retry for reads; an unclear order write is resolved by its clientOrderId to exactly one order."""

import logging
import time
import uuid
from decimal import Decimal

import pytest

from hit_server.exchange.blofin_errors import (
    AuthenticationError,
    BloFinError,
    ExchangeUnavailable,
    InsufficientFunds,
    NonceReused,
    OrderOutcomeUnknown,
    OrderRejected,
    PermissionDenied,
    RateLimited,
)
from hit_server.exchange.blofin_models import OrderRequest, TpslRequest

BTC = "BTC-USDT"
ORDER_PATH = "/api/v1/trade/order"
SECRET = "client-SECRET-never-shown-9f8e7d6c5b4a"
PASSPHRASE = "client-PASSPHRASE-never-shown-42"


@pytest.fixture(params=["asgi", "uvicorn"])
def client_transport(request: pytest.FixtureRequest) -> str:
    """Faults are the simulator's: no demo run here."""
    name: str = request.param
    return name


@pytest.fixture
def client_request_timeout() -> float:
    return 0.5


def order(cid: str | None = None, size: str = "1", **extra: object) -> OrderRequest:
    return OrderRequest(inst_id=BTC, side="buy", order_type="market", size=Decimal(size), margin_mode="cross",
                        client_order_id=cid or f"flt{uuid.uuid4().hex[:20]}", **extra)


def orders_with(target, cid: str) -> list[object]:
    return [o for o in target.sim.orders.values() if o.client_order_id == cid]


async def test_client_read_survives_a_short_delay(client_target):
    await client_target.fault("delay", seconds=0.2, path="/api/v1/account/balance")
    started = time.monotonic()
    balance = await client_target.client.balance()
    assert balance.available == Decimal(100000)
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("kind", ["delay", "timeout"])
async def test_client_read_retries_after_its_own_timeout(client_target, client_sleeps, kind):
    await client_target.fault(kind, seconds=0.8, path="/api/v1/account/positions")
    assert await client_target.client.positions() == []
    assert len(client_sleeps.waits) >= 1  # more only if the machine is slow


async def test_client_read_gives_up_on_repeated_timeouts(client_target, client_sleeps):
    await client_target.fault("timeout", count=10, seconds=0.6, path="/api/v1/account/balance")
    with pytest.raises(ExchangeUnavailable) as caught:
        await client_target.client.balance()
    assert caught.value.code == "timeout"
    assert len(client_sleeps.waits) == 3


@pytest.mark.parametrize(("kind", "expected"), [("http_5xx", ExchangeUnavailable), ("http_429", RateLimited)])
async def test_client_read_retries_transient_http_errors(client_target, client_sleeps, kind, expected):
    await client_target.fault(kind, count=2, path="/api/v1/market/tickers")
    ticker = await client_target.client.ticker(BTC)
    assert ticker.inst_id == BTC
    assert len(client_sleeps.waits) >= 2
    await client_target.fault(kind, count=10, path="/api/v1/market/tickers")
    with pytest.raises(expected):
        await client_target.client.ticker(BTC)


async def test_client_read_retries_dropped_reply(client_target, client_sleeps):
    await client_target.fault("drop_reply", path="/api/v1/account/position-mode")
    assert await client_target.client.position_mode() == "net_mode"
    assert len(client_sleeps.waits) >= 1  # more only if the machine is slow


@pytest.mark.parametrize(
    ("code", "expected"),
    [("152409", AuthenticationError), ("152408", AuthenticationError), ("152404", PermissionDenied),
     ("152406", PermissionDenied), ("152407", NonceReused)],
)
async def test_client_error_code_fault_raises_its_class(client_target, code, expected):
    await client_target.fault("error_code", code=code, path="/api/v1/account/balance")
    with pytest.raises(expected) as caught:
        await client_target.client.balance()
    assert caught.value.code == code


@pytest.mark.parametrize("code", ["103013", "500", "429"])
async def test_client_read_retries_retryable_error_codes(client_target, client_sleeps, code):
    await client_target.fault("error_code", code=code, path="/api/v1/account/balance")
    assert (await client_target.client.balance()).available == Decimal(100000)
    assert len(client_sleeps.waits) >= 1  # more only if the machine is slow


async def test_client_clock_skew_code_resyncs_and_resends(client_target):
    await client_target.fault("error_code", code="152405", path="/api/v1/account/balance")
    assert (await client_target.client.balance()).available == Decimal(100000)
    assert abs(client_target.auth.offset_ms) < 5_000


@pytest.mark.parametrize(
    ("code", "expected"),
    [("103003", InsufficientFunds), ("102014", OrderRejected), ("102089", OrderRejected)],
)
async def test_client_order_refusal_code_is_raised_and_nothing_placed(client_target, code, expected):
    req = order()
    await client_target.fault("error_code", code=code, path=ORDER_PATH)
    with pytest.raises(expected):
        await client_target.client.place_order(req)
    assert orders_with(client_target, req.client_order_id) == []


async def test_client_dropped_reply_on_order_resolves_to_exactly_one_order(client_target):
    req = order(size="2", sl_trigger_price=Decimal(50000), tp_trigger_price=Decimal(70000))
    await client_target.fault("drop_reply", path=ORDER_PATH)
    ack = await client_target.client.place_order(req)
    [placed] = orders_with(client_target, req.client_order_id)
    assert ack.order_id == placed.order_id
    assert client_target.sim.positions[BTC].size == Decimal(2)


@pytest.mark.parametrize(
    ("kind", "extra"),
    [("timeout", {"seconds": 0.7}), ("delay", {"seconds": 0.7}), ("http_5xx", {}),
     ("error_code", {"code": "103013"})],
)
async def test_client_unclear_order_write_yields_at_most_one_order(client_target, kind, extra):
    """Found by lookup, or unknown (never resent: see test_client_unclear_writes.py)."""
    req = order()
    await client_target.fault(kind, path=ORDER_PATH, **extra)
    try:
        ack = await client_target.client.place_order(req)
    except OrderOutcomeUnknown as exc:
        assert exc.client_order_id == req.client_order_id
        assert len(orders_with(client_target, req.client_order_id)) <= 1
    else:
        [placed] = orders_with(client_target, req.client_order_id)
        assert ack.order_id == placed.order_id


async def test_client_rate_limited_order_write_is_sent_again(client_target):
    """A 429 proves the order was not taken: the same order is sent again and placed once."""
    req = order()
    await client_target.fault("http_429", path=ORDER_PATH)
    ack = await client_target.client.place_order(req)
    [placed] = orders_with(client_target, req.client_order_id)
    assert ack.order_id == placed.order_id
    assert client_target.sim.positions[BTC].size == Decimal(1)


async def test_client_order_outcome_unknown_when_exchange_stays_down(client_target):
    req = order()
    await client_target.fault("http_5xx", count=50, path="/api/v1/trade/")
    with pytest.raises(OrderOutcomeUnknown) as caught:
        await client_target.client.place_order(req)
    assert caught.value.client_order_id == req.client_order_id
    assert orders_with(client_target, req.client_order_id) == []


async def test_client_order_outcome_unknown_when_lookup_fails_after_drop(client_target):
    req = order()
    await client_target.fault("drop_reply", path=ORDER_PATH)
    await client_target.fault("http_5xx", count=50, path="/api/v1/trade/order-detail")
    with pytest.raises(OrderOutcomeUnknown) as caught:
        await client_target.client.place_order(req)
    assert caught.value.client_order_id == req.client_order_id
    assert len(orders_with(client_target, req.client_order_id)) == 1, "placed once, never resent"


async def test_client_dropped_reply_on_tpsl_resolves_to_exactly_one(client_target):
    await client_target.client.place_order(order())
    cid = f"tp{uuid.uuid4().hex[:20]}"
    await client_target.fault("drop_reply", path="/api/v1/trade/order-tpsl")
    ack = await client_target.client.place_tpsl(TpslRequest(
        inst_id=BTC, side="sell", margin_mode="cross", size=Decimal(-1), client_order_id=cid,
        sl_trigger_price=Decimal(50000)))
    same = [t for t in client_target.sim.tpsl_orders.values() if t.client_order_id == cid]
    assert [t.tpsl_id for t in same] == [ack.tpsl_id]


async def test_client_dropped_reply_on_close_still_closes_once(client_target):
    await client_target.client.place_order(order(size="3"))
    await client_target.fault("drop_reply", path="/api/v1/trade/close-position")
    await client_target.client.close_position(BTC, "cross", client_order_id="closeonce1")
    assert await client_target.client.positions(BTC) == []
    assert len(orders_with(client_target, "closeonce1")) == 1


async def test_client_timeout_on_close_without_id_checks_position_and_never_resends(client_target):
    await client_target.client.place_order(order(size="3"))
    await client_target.fault("timeout", seconds=0.7, path="/api/v1/trade/close-position")
    with pytest.raises(OrderOutcomeUnknown):
        await client_target.client.close_position(BTC, "cross")
    assert [p.positions for p in await client_target.client.positions(BTC)] == [Decimal(3)]
    assert [o for o in client_target.sim.orders.values() if o.reduce_only] == []


async def test_client_dropped_reply_on_cancel_is_confirmed_by_state(client_target):
    req = OrderRequest(inst_id=BTC, side="buy", order_type="limit", size=Decimal(1), price=Decimal(30000),
                       margin_mode="cross", client_order_id=f"lim{uuid.uuid4().hex[:10]}")
    ack = await client_target.client.place_order(req)
    await client_target.fault("drop_reply", path="/api/v1/trade/cancel-order")
    await client_target.client.cancel_order(BTC, order_id=ack.order_id)
    assert client_target.sim.orders[ack.order_id].state == "canceled"


async def test_client_faults_never_leak_secrets(client_target, caplog):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    for kind, code in (("error_code", "152409"), ("http_5xx", ""), ("drop_reply", ""), ("timeout", "")):
        await client_target.fault(kind, count=10, code=code, seconds=0.6, path="/api/v1/account/balance")
        with pytest.raises(BloFinError) as caught:
            await client_target.client.balance()
        await client_target.control("DELETE", "/sim/faults")
        exc: BaseException | None = caught.value
        while exc is not None:
            texts += [str(exc), repr(exc)]
            exc = exc.__cause__ or exc.__context__
    texts += [r.getMessage() for r in caplog.records]
    assert any("retrying" in t for t in texts)
    for text in texts:
        assert SECRET not in text
        assert PASSPHRASE not in text


async def test_client_close_outcome_unknown_when_exchange_stays_down(client_target):
    await client_target.client.place_order(order(size="2"))
    await client_target.fault("http_5xx", count=50, path="/api/v1/")
    with pytest.raises(OrderOutcomeUnknown) as caught:
        await client_target.client.close_position(BTC, "cross")
    assert caught.value.client_order_id == ""
    assert client_target.sim.positions[BTC].size == Decimal(2)
