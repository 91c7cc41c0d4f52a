"""Rule 1 under the simulator's lookup lag: a write whose outcome is unclear is looked up (a few times,
over a bounded wait), never sent again; what stays invisible is `OrderOutcomeUnknown` with its
clientOrderId. Each test counts the POSTs that reach the simulator (defect 6)."""

from __future__ import annotations

import uuid
from collections import Counter
from decimal import Decimal

import httpx
import pytest

from hit_server.exchange.blofin_errors import OrderOutcomeUnknown
from hit_server.exchange.blofin_models import OrderAck, OrderRequest, TpslRequest

BTC = "BTC-USDT"
ORDER = "/api/v1/trade/order"
BATCH = "/api/v1/trade/batch-orders"
TPSL = "/api/v1/trade/order-tpsl"
CLOSE = "/api/v1/trade/close-position"


@pytest.fixture(params=["asgi", "uvicorn"])
def client_transport(request: pytest.FixtureRequest) -> str:
    """Lookup lag and faults are the simulator's: no demo run here."""
    name: str = request.param
    return name


@pytest.fixture
def client_request_timeout() -> float:
    return 0.5


@pytest.fixture
def posts(client_target) -> Counter[str]:
    """POSTs to BloFin's trade paths, by path, as they leave the client."""
    seen: Counter[str] = Counter()

    async def count(request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path.startswith("/api/v1/trade/"):
            seen[request.url.path] += 1

    client_target.http.event_hooks["request"].append(count)
    return seen


def order(size: str = "1", **extra: object) -> OrderRequest:
    return OrderRequest(inst_id=BTC, side="buy", order_type="market", size=Decimal(size), margin_mode="cross",
                        client_order_id=f"lag{uuid.uuid4().hex[:20]}", **extra)


def orders_with(target, cid: str) -> list[object]:
    return [o for o in target.sim.orders.values() if o.client_order_id == cid]


async def lag(target, *, lookups: int = 0, ms: int = 0) -> None:
    await target.control("POST", "/sim/lag", {"lookups": lookups, "ms": ms})


async def resends_accepted(target) -> None:
    """A duplicate clientOrderId is refused for 0 ms: a resend would become a second order."""
    await target.control("POST", "/sim/duplicate-window", {"ms": 0})


async def test_client_order_invisible_for_a_while_is_found_without_a_second_post(client_target, posts):
    req = order()
    await resends_accepted(client_target)
    await lag(client_target, lookups=2)
    await client_target.fault("drop_reply", path=ORDER)
    ack = await client_target.client.place_order(req)
    [placed] = orders_with(client_target, req.client_order_id)
    assert ack.order_id == placed.order_id
    assert posts[ORDER] == 1
    assert client_target.sim.positions[BTC].size == Decimal(1)


async def test_client_order_invisible_too_long_is_unknown_and_never_resent(
    client_target, posts, client_sleeps
):
    req = order()
    await resends_accepted(client_target)
    await lag(client_target, lookups=1000)
    await client_target.fault("drop_reply", path=ORDER)
    with pytest.raises(OrderOutcomeUnknown) as caught:
        await client_target.client.place_order(req)
    assert caught.value.client_order_id == req.client_order_id
    assert posts[ORDER] == 1
    assert len(orders_with(client_target, req.client_order_id)) == 1, "it was placed, once"
    assert 1.0 <= sum(client_sleeps.waits) <= 5.0, "a bounded wait between lookups"


@pytest.mark.parametrize(("kind", "extra"), [("http_5xx", {}), ("error_code", {"code": "103013"}),
                                             ("timeout", {"seconds": 0.7})])
async def test_client_order_not_carried_out_is_unknown_not_resent(client_target, posts, kind, extra):
    """The simulator did not carry these out, but the client cannot know that: it must not resend."""
    req = order()
    await client_target.fault(kind, path=ORDER, **extra)
    with pytest.raises(OrderOutcomeUnknown) as caught:
        await client_target.client.place_order(req)
    assert caught.value.client_order_id == req.client_order_id
    assert posts[ORDER] == 1
    assert orders_with(client_target, req.client_order_id) == []


async def test_client_batch_with_lost_reply_looks_each_order_up_and_never_resends(client_target, posts):
    await client_target.client.place_order(order(size="3"))
    await resends_accepted(client_target)
    await lag(client_target, lookups=1000)
    reqs = [OrderRequest(inst_id=BTC, side="sell", order_type="limit", size=Decimal(1), price=Decimal(p),
                         margin_mode="cross", client_order_id=f"tp{uuid.uuid4().hex[:20]}", reduce_only=True)
            for p in (62000, 64000)]
    await client_target.fault("drop_reply", path=BATCH)
    results = await client_target.client.place_orders(reqs)
    assert [type(r) for r in results] == [OrderOutcomeUnknown, OrderOutcomeUnknown]
    assert [r.client_order_id for r in results if isinstance(r, OrderOutcomeUnknown)] == [
        r.client_order_id for r in reqs]
    assert (posts[BATCH], posts[ORDER]) == (1, 1), "only the opening order was ever POSTed alone"
    assert [len(orders_with(client_target, r.client_order_id)) for r in reqs] == [1, 1]


async def test_client_batch_items_found_after_the_lag_are_acked(client_target, posts):
    await client_target.client.place_order(order(size="3"))
    await resends_accepted(client_target)
    await lag(client_target, lookups=1)
    reqs = [OrderRequest(inst_id=BTC, side="sell", order_type="limit", size=Decimal(1), price=Decimal(p),
                         margin_mode="cross", client_order_id=f"tq{uuid.uuid4().hex[:20]}", reduce_only=True)
            for p in (62000, 64000)]
    await client_target.fault("drop_reply", path=BATCH)
    results = await client_target.client.place_orders(reqs)
    assert all(isinstance(r, OrderAck) for r in results)
    assert (posts[BATCH], posts[ORDER]) == (1, 1)
    assert [len(orders_with(client_target, r.client_order_id)) for r in reqs] == [1, 1]


async def test_client_tpsl_invisible_for_a_while_is_found_without_a_second_post(client_target, posts):
    await client_target.client.place_order(order())
    await resends_accepted(client_target)
    await lag(client_target, lookups=2)
    cid = f"sl{uuid.uuid4().hex[:20]}"
    await client_target.fault("drop_reply", path=TPSL)
    ack = await client_target.client.place_tpsl(TpslRequest(
        inst_id=BTC, side="sell", margin_mode="cross", size=Decimal(-1), client_order_id=cid,
        sl_trigger_price=Decimal(50000)))
    same = [t for t in client_target.sim.tpsl_orders.values() if t.client_order_id == cid]
    assert [t.tpsl_id for t in same] == [ack.tpsl_id]
    assert posts[TPSL] == 1


async def test_client_close_not_carried_out_is_unknown_not_resent(client_target, posts):
    await client_target.client.place_order(order(size="2"))
    await client_target.fault("http_5xx", path=CLOSE)
    with pytest.raises(OrderOutcomeUnknown) as caught:
        await client_target.client.close_position(BTC, "cross", client_order_id="closelag1")
    assert caught.value.client_order_id == "closelag1"
    assert posts[CLOSE] == 1
    assert client_target.sim.positions[BTC].size == Decimal(2)


async def test_client_close_with_lost_reply_is_confirmed_by_the_flat_position(client_target, posts):
    await client_target.client.place_order(order(size="2"))
    await lag(client_target, lookups=1000)
    await client_target.fault("drop_reply", path=CLOSE)
    await client_target.client.close_position(BTC, "cross", client_order_id="closelag2")
    assert BTC not in client_target.sim.positions
    assert posts[CLOSE] == 1
