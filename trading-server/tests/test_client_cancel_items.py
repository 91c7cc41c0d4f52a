"""A TP/SL cancel answered with a failed item (BloFin reports every failed cancel-tpsl item as code
500) is judged by the order's state, looked up after the answer: never taken as done while the
stop is still live."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from hit_server.exchange.blofin_errors import ExchangeUnavailable, NotFound
from hit_server.exchange.blofin_models import OrderRequest, TpslRequest

BTC = "BTC-USDT"
CANCEL_TPSL = "/api/v1/trade/cancel-tpsl"


@pytest.fixture(params=["asgi"])
def client_transport(request: pytest.FixtureRequest) -> str:
    """Item faults are the simulator's: no demo run here."""
    name: str = request.param
    return name


@pytest.fixture(params=["item", "zero", "top"])
def client_sim_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """BloFin's top-level code beside a failed item is unconfirmed: each form the simulator knows."""
    return {"failure_envelope": request.param}


async def live_stop(target) -> str:
    """A long position with a stop on it; the stop's tpslId."""
    await target.client.place_order(OrderRequest(
        inst_id=BTC, side="buy", order_type="market", size=Decimal(1), margin_mode="cross",
        client_order_id=f"pos{uuid.uuid4().hex[:20]}"))
    ack = await target.client.place_tpsl(TpslRequest(
        inst_id=BTC, side="sell", margin_mode="cross", size=Decimal(-1),
        client_order_id=f"sl{uuid.uuid4().hex[:20]}", sl_trigger_price=Decimal(50000)))
    return ack.tpsl_id


async def refuse_cancel_items(target, count: int) -> None:
    await target.control("POST", "/sim/item-faults", {"path": CANCEL_TPSL, "index": 0, "code": "500",
                                                      "count": count})


async def test_client_cancel_tpsl_failed_item_with_stop_still_live_is_cancelled_after_all(client_target):
    tpsl_id = await live_stop(client_target)
    await refuse_cancel_items(client_target, 1)
    await client_target.client.cancel_tpsl(BTC, tpsl_id=tpsl_id)
    assert client_target.sim.tpsl_orders[tpsl_id].state == "canceled"


async def test_client_cancel_tpsl_failing_while_stop_live_is_not_reported_done(client_target):
    tpsl_id = await live_stop(client_target)
    await refuse_cancel_items(client_target, 2)
    with pytest.raises(ExchangeUnavailable):
        await client_target.client.cancel_tpsl(BTC, tpsl_id=tpsl_id)
    assert client_target.sim.tpsl_orders[tpsl_id].state == "live"


async def test_client_cancel_tpsl_failed_item_for_a_cancelled_stop_is_not_found(client_target):
    tpsl_id = await live_stop(client_target)
    await client_target.client.cancel_tpsl(BTC, tpsl_id=tpsl_id)
    with pytest.raises(NotFound):
        await client_target.client.cancel_tpsl(BTC, tpsl_id=tpsl_id)


async def test_client_cancel_tpsl_failed_item_for_an_unknown_stop_is_not_found(client_target):
    await refuse_cancel_items(client_target, 1)
    with pytest.raises(NotFound):
        await client_target.client.cancel_tpsl(BTC, client_order_id="nosuchstop1")
