"""Batch placement (`BloFinClient.place_orders`, one POST batch-orders): one result per order, in order;
per-item refusals stay per item; an unclear outcome is resolved by clientOrderId, never by a blind resend."""

import uuid
from decimal import Decimal

import pytest

from hit_server.blofin_errors import OrderOutcomeUnknown, OrderRejected
from hit_server.blofin_models import OrderAck, OrderRequest

BTC = "BTC-USDT"
BATCH_PATH = "/api/v1/trade/batch-orders"


@pytest.fixture(params=["asgi", "uvicorn"])
def client_transport(request: pytest.FixtureRequest) -> str:
    """Faults are the simulator's: no demo run here."""
    name: str = request.param
    return name


@pytest.fixture
def client_request_timeout() -> float:
    return 0.5


def limit(price: str, size: str = "1", **extra: object) -> OrderRequest:
    return OrderRequest(inst_id=BTC, side="buy", order_type="limit", size=Decimal(size), price=Decimal(price),
                        margin_mode="cross", client_order_id=f"bat{uuid.uuid4().hex[:20]}", **extra)


def orders_with(target, cid: str) -> list[object]:
    return [o for o in target.sim.orders.values() if o.client_order_id == cid]


async def test_client_place_orders_places_each_once_in_request_order(client_target):
    reqs = [limit("50000"), limit("49000", "2"), limit("48000", "3")]

    results = await client_target.client.place_orders(reqs)

    assert [type(r) for r in results] == [OrderAck] * 3
    for req, ack in zip(reqs, results, strict=True):
        [placed] = orders_with(client_target, req.client_order_id)
        assert ack.order_id == placed.order_id and ack.client_order_id == req.client_order_id
        assert placed.size == req.size and placed.state == "live"


async def test_client_place_orders_reports_a_refused_item_and_places_the_rest(client_target):
    reqs = [limit("50000"), limit("50000", "100000000"), limit("48000")]

    first, refused, last = await client_target.client.place_orders(reqs)

    assert isinstance(first, OrderAck) and isinstance(last, OrderAck)
    assert isinstance(refused, OrderRejected) and refused.code == "102014"  # over the maximum size
    assert orders_with(client_target, reqs[1].client_order_id) == []
    assert len(orders_with(client_target, reqs[0].client_order_id)) == 1
    assert len(orders_with(client_target, reqs[2].client_order_id)) == 1


async def test_client_place_orders_raises_when_the_whole_batch_is_refused(client_target):
    await client_target.fault("error_code", code="152007", path=BATCH_PATH)
    reqs = [limit("50000"), limit("49000")]

    with pytest.raises(OrderRejected):
        await client_target.client.place_orders(reqs)

    assert all(orders_with(client_target, r.client_order_id) == [] for r in reqs)


async def test_client_place_orders_dropped_reply_resolves_each_by_lookup_without_resending(client_target):
    await client_target.fault("drop_reply", path=BATCH_PATH)
    reqs = [limit("50000"), limit("49000"), limit("48000")]

    results = await client_target.client.place_orders(reqs)

    for req, ack in zip(reqs, results, strict=True):
        [placed] = orders_with(client_target, req.client_order_id)
        assert isinstance(ack, OrderAck) and ack.order_id == placed.order_id


async def test_client_place_orders_sends_once_more_only_what_provably_never_arrived(client_target):
    await client_target.fault("timeout", seconds=0.7, path=BATCH_PATH)  # refused before the engine saw it
    reqs = [limit("50000"), limit("49000")]

    results = await client_target.client.place_orders(reqs)

    for req, ack in zip(reqs, results, strict=True):
        [placed] = orders_with(client_target, req.client_order_id)
        assert isinstance(ack, OrderAck) and ack.order_id == placed.order_id


async def test_client_place_orders_outcome_unknown_when_lookups_fail(client_target):
    await client_target.fault("drop_reply", path=BATCH_PATH)
    await client_target.fault("http_5xx", count=50, path="/api/v1/trade/order-detail")
    reqs = [limit("50000"), limit("49000")]

    results = await client_target.client.place_orders(reqs)

    for req, result in zip(reqs, results, strict=True):
        assert isinstance(result, OrderOutcomeUnknown)
        assert result.client_order_id == req.client_order_id
        assert len(orders_with(client_target, req.client_order_id)) == 1, "placed once, never resent"


async def test_client_place_orders_refuses_mixed_instruments_before_sending(client_target):
    other = limit("3000").model_copy(update={"inst_id": "ETH-USDT"})

    with pytest.raises(ValueError, match="one instrument"):
        await client_target.client.place_orders([limit("50000"), other])

    assert orders_with(client_target, other.client_order_id) == []
