"""Batch placement (`BloFinClient.place_orders`, one POST batch-orders): one result per order, in order;
per-item refusals stay per item; an unclear outcome is resolved by clientOrderId, never by a blind resend."""

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hit_server.exchange.blofin_errors import OrderOutcomeUnknown, OrderRejected
from hit_server.exchange.blofin_models import OrderAck, OrderRequest
from hit_server.testing import RunningServer, paper_settings, place_signal, running_server, signal_body

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


async def test_client_place_orders_never_resends_what_never_arrived(client_target):
    """The client cannot tell "never arrived" from "not visible yet" (rule 1): unknown, not resent."""
    await client_target.fault("timeout", seconds=0.7, path=BATCH_PATH)  # refused before the engine saw it
    reqs = [limit("50000"), limit("49000")]

    results = await client_target.client.place_orders(reqs)

    for req, result in zip(reqs, results, strict=True):
        assert isinstance(result, OrderOutcomeUnknown)
        assert result.client_order_id == req.client_order_id
        assert orders_with(client_target, req.client_order_id) == []


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


# -- the executor: targets sent as one batch -----------------------------------------------------------


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(paper_settings(tmp_path)) as running:
        await running.monitor.stop()  # the answer alone is under test, not the monitor's later passes
        yield running


def requests_to(server: RunningServer, path: str) -> list[str]:
    seen: list[str] = []
    sim_app = server.app.state.sim_app
    inner = sim_app.sim_middleware

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == path:
            seen.append(scope["path"])
        await inner(scope, receive, send)

    sim_app.sim_middleware = counting
    return seen


async def test_executor_sends_the_targets_in_one_batch_and_they_rest_on_the_exchange(server):
    batches = requests_to(server, BATCH_PATH)
    singles = requests_to(server, "/api/v1/trade/order")

    answer = await place_signal(server, signal_body("tp-batch"))

    assert len(batches) == 1 and len(singles) == 1  # the entry alone; TP1..TP3 together
    targets = [o for o in answer["orders"] if o["role"] == "take_profit"]
    assert [o["state"] for o in targets] == ["live"] * 3
    for target in targets:
        resting = server.sim.orders_by_client_id[target["client_order_id"]]
        assert resting.state == "live" and resting.reduce_only


async def test_executor_reports_each_target_refused_when_the_batch_is_refused(server):
    await server.fault(kind="error_code", code="102014", path=BATCH_PATH)

    answer = await place_signal(server, signal_body("tp-refused"))

    targets = [o for o in answer["orders"] if o["role"] == "take_profit"]
    assert [o["state"] for o in targets] == ["failed"] * 3
    assert all(o["client_order_id"] not in server.sim.orders_by_client_id for o in targets)
    stop = next(o for o in answer["orders"] if o["role"] == "stop_loss")
    assert stop["state"] == "live"  # the position is protected all the same
    feed = (await server.http.get("/api/v1/events")).json()
    refused = [e for e in feed["events"] if e["type"] == "take_profit_failed"]
    assert len(refused) == 3
