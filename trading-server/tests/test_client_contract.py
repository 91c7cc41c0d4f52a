"""The BloFin client against the simulator, for every endpoint it calls.

Each test runs over `httpx.ASGITransport` and over a real uvicorn on 127.0.0.1; with
BLOFIN_DEMO_API_KEY / _SECRET / _PASSPHRASE set (never in CI) the same tests run against BloFin's demo
environment, except the steps that need the simulator's price control or state, which say so.
"""

import uuid
from decimal import Decimal

import pytest
from pydantic import SecretStr

from hit_server.exchange.blofin_auth import BloFinAuth, Credentials
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_errors import AuthenticationError, InstrumentNotFound, NotFound, OrderRejected
from hit_server.exchange.blofin_models import OrderRequest, TpslRequest

BTC = "BTC-USDT"


def new_cid(tag: str) -> str:
    return f"ct{tag}{uuid.uuid4().hex[:16]}"


def needs_sim(target) -> None:
    if target.sim is None:
        pytest.skip("this step needs the simulator's price control or state")


async def open_long(target, size: str = "1", **tpsl: Decimal) -> str:
    cid = new_cid("open")
    req = OrderRequest(inst_id=BTC, side="buy", order_type="market", size=Decimal(size),
                       margin_mode="cross", client_order_id=cid, **tpsl)
    ack = await target.client.place_order(req)
    assert ack.client_order_id == cid
    return cid


async def test_client_instruments_are_parsed_and_cached(client_target):
    client = client_target.client
    first = await client.instruments()
    btc = first[BTC]
    assert btc.contract_value > 0 and btc.lot_size > 0 and btc.tick_size > 0
    assert btc.quote_currency == "USDT"
    assert await client.instruments() is first
    assert await client.instruments(refresh=True) is not first
    assert (await client.instrument(BTC)) == btc


async def test_client_instrument_unknown_raises_instrument_not_found(client_target):
    with pytest.raises(InstrumentNotFound):
        await client_target.client.instrument("NOPE-USDT")


async def test_client_ticker_and_mark_price_follow_the_market(client_target):
    client = client_target.client
    ticker = await client.ticker(BTC)
    assert ticker.inst_id == BTC
    assert ticker.bid <= ticker.last <= ticker.ask
    assert ticker.ts > 1_600_000_000_000
    needs_sim(client_target)
    await client_target.set_price(BTC, Decimal("61234.5"))
    assert (await client.ticker(BTC)).last == Decimal("61234.5")
    assert await client.mark_price(BTC) == Decimal("61234.5")


async def test_client_ticker_of_unknown_instrument_is_refused(client_target):
    with pytest.raises(InstrumentNotFound):
        await client_target.client.ticker("NOPE-USDT")


async def test_client_balance_reads_futures_usdt(client_target):
    balance = await client_target.client.balance()
    assert balance.currency == "USDT"
    assert balance.available > 0
    needs_sim(client_target)
    assert balance.equity == Decimal(100000)
    assert balance.available == Decimal(100000)


async def test_client_account_settings_round_trip(client_target):
    client = client_target.client
    await client.set_margin_mode("cross")
    await client.set_leverage(BTC, 7, "cross")
    await client.set_position_mode("net_mode")
    assert await client.position_mode() == "net_mode"
    if client_target.sim is not None:
        await open_long(client_target)
        assert (await client.positions(BTC))[0].leverage == 7


async def test_client_leverages_reads_twenty_instruments_at_once(client_target):
    client = client_target.client
    await client.set_leverage(BTC, 9, "cross")
    live = sorted(s for s, inst in (await client.instruments()).items() if inst.is_live and s != BTC)
    twenty = [BTC, *live[:19]]
    found = await client.leverages(twenty, "cross")
    assert sorted(found) == sorted(twenty)
    assert found[BTC] == 9 and all(leverage >= 1 for leverage in found.values())
    with pytest.raises(ValueError):
        await client.leverages([BTC, *live[:20]], "cross")  # 21: BloFin would refuse it (152015)
    with pytest.raises(ValueError):
        await client.leverages([], "cross")


async def test_client_market_order_with_tpsl_opens_a_position(client_target):
    needs_sim(client_target)
    client = client_target.client
    await client_target.set_price(BTC, Decimal(60000))
    cid = await open_long(
        client_target, "2", tp_trigger_price=Decimal(66000), sl_trigger_price=Decimal(57000)
    )
    order = await client.order_detail(BTC, client_order_id=cid)
    assert order is not None
    assert order.state == "filled"
    assert order.filled_size == Decimal(2)
    assert order.average_price == Decimal(60000)
    assert order.tp_trigger_price == Decimal(66000)
    assert order.sl_trigger_price == Decimal(57000)
    assert order.price is None
    [position] = await client.positions(BTC)
    assert position.positions == Decimal(2)
    assert position.average_price == Decimal(60000)
    assert position.margin_mode == "cross"
    assert position.position_side == "net"
    assert cid in client_target.sim.orders_by_client_id
    history = await client.order_history(BTC)
    assert cid in {o.client_order_id for o in history}


async def test_client_short_position_is_negative(client_target):
    needs_sim(client_target)
    req = OrderRequest(inst_id=BTC, side="sell", order_type="market", size=Decimal("0.5"),
                       margin_mode="cross", client_order_id=new_cid("short"))
    await client_target.client.place_order(req)
    [position] = await client_target.client.positions()
    assert position.positions == Decimal("-0.5")


async def test_client_limit_order_rests_then_cancels(client_target):
    client = client_target.client
    ticker = await client.ticker(BTC)
    inst = await client.instrument(BTC)
    price = inst.round_price(ticker.last * Decimal("0.8"), "down")
    cid = new_cid("lim")
    ack = await client.place_order(OrderRequest(
        inst_id=BTC, side="buy", order_type="limit", size=inst.min_size, price=price, margin_mode="cross",
        client_order_id=cid))
    pending = await client.pending_orders(BTC)
    assert ack.order_id in {o.order_id for o in pending}
    [mine] = [o for o in pending if o.order_id == ack.order_id]
    assert mine.price == price and mine.state == "live" and mine.is_open
    await client.cancel_order(BTC, client_order_id=cid)
    detail = await client.order_detail(BTC, order_id=ack.order_id)
    assert detail is not None and detail.state == "canceled"
    assert ack.order_id not in {o.order_id for o in await client.pending_orders(BTC)}
    with pytest.raises(NotFound):
        await client.cancel_order(BTC, order_id=ack.order_id)


async def test_client_tpsl_on_position_is_placed_listed_and_cancelled(client_target):
    needs_sim(client_target)
    client = client_target.client
    await client_target.set_price(BTC, Decimal(60000))
    await open_long(client_target)
    cid = new_cid("tpsl")
    ack = await client.place_tpsl(TpslRequest(
        inst_id=BTC, side="sell", margin_mode="cross", size=Decimal(-1), client_order_id=cid,
        sl_trigger_price=Decimal(55000), tp_trigger_price=Decimal(70000)))
    assert ack.client_order_id == cid
    [live] = [t for t in await client.pending_tpsl(BTC) if t.tpsl_id == ack.tpsl_id]
    assert live.sl_trigger_price == Decimal(55000) and live.tp_trigger_price == Decimal(70000)
    assert live.side == "sell" and live.state == "live"
    detail = await client.tpsl_detail(BTC, client_order_id=cid)
    assert detail is not None and detail.tpsl_id == ack.tpsl_id
    await client.cancel_tpsl(BTC, tpsl_id=ack.tpsl_id)
    after = await client.tpsl_detail(BTC, tpsl_id=ack.tpsl_id)
    assert after is not None and after.state == "canceled"
    assert await client.pending_tpsl(BTC) == []
    with pytest.raises(NotFound):
        await client.cancel_tpsl(BTC, client_order_id=cid)


async def test_client_stop_loss_fires_when_price_crosses(client_target):
    needs_sim(client_target)
    client = client_target.client
    await client_target.set_price(BTC, Decimal(60000))
    await open_long(client_target, sl_trigger_price=Decimal(58000))
    await client_target.set_price(BTC, Decimal(57000))
    assert await client.positions(BTC) == []


async def test_client_details_of_unknown_ids_are_none(client_target):
    client = client_target.client
    assert await client.order_detail(BTC, client_order_id=new_cid("none")) is None
    assert await client.tpsl_detail(BTC, client_order_id=new_cid("none")) is None


async def test_client_close_position_flattens(client_target):
    needs_sim(client_target)
    client = client_target.client
    await open_long(client_target, "3")
    close_cid = new_cid("close")
    await client.close_position(BTC, "cross", client_order_id=close_cid)
    assert await client.positions(BTC) == []
    closing = await client.order_detail(BTC, client_order_id=close_cid)
    assert closing is not None and closing.reduce_only and closing.side == "sell"


async def test_client_close_without_position_is_refused(client_target):
    needs_sim(client_target)
    with pytest.raises(OrderRejected) as caught:
        await client_target.client.close_position(BTC, "cross")
    assert caught.value.code == "102005"


async def test_client_reduce_only_without_position_is_refused(client_target):
    with pytest.raises(OrderRejected):
        await client_target.client.place_order(OrderRequest(
            inst_id=BTC, side="sell", order_type="market", size=Decimal("0.1"), margin_mode="cross",
            client_order_id=new_cid("ro"), reduce_only=True))


async def test_client_oversized_market_order_is_refused(client_target):
    inst = await client_target.client.instrument(BTC)
    with pytest.raises(OrderRejected) as caught:
        await client_target.client.place_order(OrderRequest(
            inst_id=BTC, side="buy", order_type="market", size=inst.max_market_size + inst.lot_size,
            margin_mode="cross", client_order_id=new_cid("big")))
    assert caught.value.code in {"102015", "542", "103003"}


async def test_client_order_on_unknown_instrument_is_refused(client_target):
    with pytest.raises(InstrumentNotFound):
        await client_target.client.place_order(OrderRequest(
            inst_id="NOPE-USDT", side="buy", order_type="market", size=Decimal(1), margin_mode="cross",
            client_order_id=new_cid("nope")))


async def test_client_placing_same_client_order_id_twice_yields_one_order(client_target):
    needs_sim(client_target)
    cid = new_cid("dup")
    req = OrderRequest(inst_id=BTC, side="buy", order_type="market", size=Decimal(1), margin_mode="cross",
                       client_order_id=cid)
    first = await client_target.client.place_order(req)
    second = await client_target.client.place_order(req)
    assert first == second
    assert len([o for o in client_target.sim.orders.values() if o.client_order_id == cid]) == 1
    [position] = await client_target.client.positions(BTC)
    assert position.positions == Decimal(1)


async def test_client_server_time_offset_is_small(client_target):
    assert abs(await client_target.client.server_time_offset_ms()) < 5_000


async def test_client_recovers_from_a_skewed_local_clock(client_target):
    auth = client_target.auth
    real_clock = auth.clock_ms
    auth.clock_ms = lambda: real_clock() - 5 * 60_000
    balance = await client_target.client.balance()
    assert balance.available > 0
    assert 4 * 60_000 < auth.offset_ms < 6 * 60_000


async def test_client_wrong_secret_is_an_authentication_error(client_target):
    needs_sim(client_target)
    creds = Credentials(client_target.auth.credentials.api_key, SecretStr("wrong-secret"), SecretStr("x"))
    other = BloFinClient(client_target.http, BloFinAuth(creds))
    with pytest.raises(AuthenticationError) as caught:
        await other.balance()
    assert "wrong-secret" not in str(caught.value) + repr(caught.value)
