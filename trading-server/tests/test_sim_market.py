"""Public market data and account reads of the simulator."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
from fastapi import FastAPI

from hit_server.blofin_sim import create_app
from hit_server.blofin_sim.testing import make_auth, make_config, sim_http
from hit_server.exchange.instruments import Instrument

WANTED = "BTC ETH SOL XRP DOGE LINK AVAX ADA LTC BNB ARB OP SUI WIF PEPE".split()


async def test_instruments_lists_every_wanted_usdt_perpetual(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/market/instruments")).json()
    rows = {row["instId"]: row for row in body["data"]}
    assert body["code"] == "0"
    for base in WANTED:
        row = rows[f"{base}-USDT"]
        assert row["state"] == "live"
        assert all(isinstance(v, str) for v in row.values())
        inst = Instrument.from_blofin(row)
        assert inst.min_size >= inst.lot_size > 0
        assert inst.max_market_size <= inst.max_limit_size
    assert any(row["state"] == "suspend" for row in body["data"])


async def test_instruments_writes_small_ticks_without_exponent(client: httpx.AsyncClient) -> None:
    row = (await client.get("/api/v1/market/instruments?instId=PEPE-USDT")).json()["data"][0]
    assert row["tickSize"] == "0.000000001"
    assert row["contractValue"] == "10000000"


async def test_instruments_refuses_unknown_inst_with_152014(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/market/instruments?instId=NOPE-USDT")).json()
    assert body["code"] == "152014"


async def test_tickers_follow_sim_price(client: httpx.AsyncClient) -> None:
    start = (await client.get("/api/v1/market/tickers?instId=BTC-USDT")).json()["data"][0]
    await client.post("/sim/price", json={"instId": "BTC-USDT", "price": "61234.5"})
    moved = (await client.get("/api/v1/market/tickers?instId=BTC-USDT")).json()["data"][0]
    mark = (await client.get("/api/v1/market/mark-price?instId=BTC-USDT")).json()["data"][0]
    assert start["last"] == "60000"
    assert moved["last"] == "61234.5"
    assert Decimal(moved["bidPrice"]) < Decimal(moved["last"]) < Decimal(moved["askPrice"])
    assert mark["markPrice"] == "61234.5"


async def test_tickers_without_inst_lists_all(client: httpx.AsyncClient) -> None:
    rows = (await client.get("/api/v1/market/tickers")).json()["data"]
    assert {f"{b}-USDT" for b in WANTED} <= {r["instId"] for r in rows}


async def test_balance_starts_at_configured_amount() -> None:
    app = create_app(make_config(balance=Decimal(2500)))
    async with sim_http(app, make_auth(app.state.sim.config)) as client:
        data = (await client.get("/api/v1/account/balance")).json()["data"]
        assets = (await client.get("/api/v1/asset/balances?accountType=futures")).json()["data"]
    detail = data["details"][0]
    assert (detail["currency"], detail["equity"], detail["available"], detail["frozen"]) == (
        "USDT", "2500", "2500", "0")
    assert assets == [
        {"currency": "USDT", "balance": "2500", "available": "2500", "frozen": "0", "bonus": "0"}
    ]


async def test_account_config_and_modes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/account/config")).json()["data"] == {"accountLevel": "0"}
    assert (await client.get("/api/v1/account/position-mode")).json()["data"] == {"positionMode": "net_mode"}
    assert (await client.get("/api/v1/account/margin-mode")).json()["data"] == {"marginMode": "cross"}


async def test_books_has_one_level_around_last(client: httpx.AsyncClient) -> None:
    book = (await client.get("/api/v1/market/books?instId=ETH-USDT")).json()["data"][0]
    assert Decimal(book["bids"][0][0]) < Decimal("3000") < Decimal(book["asks"][0][0])


def test_price_walk_is_seeded_and_stays_on_ticks() -> None:
    one, two, other = (create_app(make_config(seed=s)).state.sim_state for s in (7, 7, 8))
    for state in (one, two, other):
        for _ in range(5):
            state.walk.step()
    assert one.sim.prices == two.sim.prices
    assert one.sim.prices != other.sim.prices
    for inst_id, price in one.sim.prices.items():
        assert one.sim.instruments[inst_id].is_on_tick(price)
    assert one.sim.prices["LUNA-USDT"] == Decimal("0.5")  # suspended: never moves


async def test_price_walk_starts_on_first_request_when_enabled() -> None:
    app = create_app(make_config(price_walk=True, walk_interval_s=0.01))
    state = app.state.sim_state
    start = dict(state.sim.prices)
    async with sim_http(app) as client:
        await client.get("/api/v1/public/time")
        for _ in range(100):
            if state.sim.prices != start:
                break
            await asyncio.sleep(0.01)
    await state.stop_walk()
    assert state.sim.prices != start


async def test_price_walk_off_keeps_prices(client: httpx.AsyncClient, app: FastAPI) -> None:
    start = dict(app.state.sim.prices)
    await client.get("/api/v1/public/time")
    await asyncio.sleep(0.05)
    assert app.state.sim.prices == start
