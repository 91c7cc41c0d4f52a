"""Paper mode a user can play with: the paper catalogue (>= 50 USDT perpetuals with BloFin-like rules),
an unknown symbol refused as "not in the paper catalogue", and prices moved by hand over
`POST /api/v1/paper/price` walking a trade through its life (a resting entry fills, the stop closes it).
Over HTTP against the server in paper mode; live mode against a simulator on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from hit_server.blofin_sim import create_app as create_sim
from hit_server.blofin_sim.catalog import FIRST_SYMBOLS, SUSPENDED_INST
from hit_server.blofin_sim.testing import TEST_KEY, TEST_PASSPHRASE, TEST_SECRET, make_config
from hit_server.server import create_app
from hit_server.settings import Settings
from hit_server.testing import (
    BASE_URL,
    TEST_API_KEY,
    RunningServer,
    UvicornThread,
    paper_settings,
    place_signal,
    running_server,
    signal_body,
    until_event,
)

# The rows the tests and the whole-system simulation were written against: they must not change.
# symbol: (contractValue, lotSize, minSize, tickSize, maxLeverage, maxMarketSize, maxLimitSize, price)
FIRST_ROWS = {
    "BTC-USDT": ("0.001", "0.1", "0.1", "0.1", 150, "6000", "24000", "60000"),
    "ETH-USDT": ("0.01", "0.1", "0.1", "0.01", 150, "8000", "36000", "3000"),
    "SOL-USDT": ("1", "1", "1", "0.001", 100, "5000", "20000", "150"),
    "XRP-USDT": ("100", "1", "1", "0.0001", 100, "2000", "10000", "0.6"),
    "DOGE-USDT": ("1000", "1", "1", "0.00001", 75, "2000", "10000", "0.15"),
    "LINK-USDT": ("1", "1", "1", "0.001", 75, "5000", "20000", "15"),
    "AVAX-USDT": ("1", "1", "1", "0.001", 75, "5000", "20000", "30"),
    "ADA-USDT": ("100", "1", "1", "0.0001", 75, "2000", "10000", "0.45"),
    "LTC-USDT": ("1", "1", "1", "0.01", 75, "3000", "12000", "80"),
    "BNB-USDT": ("0.01", "1", "1", "0.01", 75, "5000", "20000", "580"),
    "ARB-USDT": ("10", "1", "1", "0.0001", 50, "3000", "12000", "0.8"),
    "OP-USDT": ("1", "1", "1", "0.001", 50, "20000", "80000", "1.8"),
    "SUI-USDT": ("1", "1", "1", "0.0001", 50, "20000", "80000", "1.2"),
    "WIF-USDT": ("1", "1", "1", "0.0001", 50, "20000", "80000", "2"),
    "PEPE-USDT": ("10000000", "1", "1", "0.000000001", 50, "1000", "5000", "0.00001"),
    "1000PEPE-USDT": ("10000", "1", "1", "0.0000001", 50, "1000", "5000", "0.01"),
}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05, max_open_positions=100)
    async with running_server(settings) as running:
        yield running


async def catalogue(server: RunningServer) -> dict[str, dict[str, Any]]:
    reply = await server.http.get("/api/v1/paper/prices")
    assert reply.status_code == 200, reply.text
    return {row["symbol"]: row for row in reply.json()["prices"]}


async def move(server: RunningServer, symbol: str, price: str) -> dict[str, Any]:
    reply = await server.http.post("/api/v1/paper/price", json={"symbol": symbol, "price": price})
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def ticks(value: Decimal, step: Decimal) -> bool:
    return value > 0 and value % step == 0


# -- the catalogue ----------------------------------------------------------------------------------


async def test_paper_catalogue_lists_at_least_50_perpetuals_with_sane_rules(server: RunningServer) -> None:
    rows = await catalogue(server)
    instruments = (await server.sim_http.get("/api/v1/market/instruments")).json()["data"]
    listed = {row["instId"]: row for row in instruments}

    live = [symbol for symbol, row in rows.items() if row["state"] == "live"]
    assert len(live) >= 50, live
    assert set(rows) == set(listed)  # the route lists what the paper exchange trades
    assert rows[SUSPENDED_INST]["state"] == "suspend"
    for symbol, row in rows.items():
        rules = ("contract_value", "lot_size", "min_size", "tick_size")
        cv, lot, least, tick = (Decimal(row[k]) for k in rules)
        price = Decimal(row["price"])
        assert symbol.endswith("-USDT") and symbol == symbol.upper(), symbol
        assert min(cv, lot, least, tick, price) > 0, row
        assert ticks(price, tick), f"{symbol}: price {price} off the {tick} tick"
        assert ticks(least, lot), f"{symbol}: minSize {least} not a multiple of lotSize {lot}"
        market, limit = Decimal(listed[symbol]["maxMarketSize"]), Decimal(listed[symbol]["maxLimitSize"])
        assert ticks(market, lot) and ticks(limit, lot) and least <= market <= limit, listed[symbol]
        assert 1 <= row["max_leverage"] <= 150, row
        assert Decimal(listed[symbol]["contractValue"]) == cv and Decimal(listed[symbol]["tickSize"]) == tick
        if row["state"] == "live":  # one contract at minSize is a small trade; a market order a big one
            assert least * cv * price <= 200, f"{symbol}: the smallest order is {least * cv * price} USDT"
            assert market * cv * price >= 20_000, f"{symbol}: a market order caps at {market * cv * price}"


async def test_paper_catalogue_keeps_its_first_rows_unchanged(server: RunningServer) -> None:
    instruments = (await server.sim_http.get("/api/v1/market/instruments")).json()["data"]
    listed = {row["instId"]: row for row in instruments}
    prices = {symbol: row["price"] for symbol, row in (await catalogue(server)).items()}

    assert set(FIRST_SYMBOLS) == set(FIRST_ROWS)
    for symbol, (cv, lot, least, tick, lev, market, limit, price) in FIRST_ROWS.items():
        row = listed[symbol]
        got = (
            row["contractValue"],
            row["lotSize"],
            row["minSize"],
            row["tickSize"],
            int(row["maxLeverage"]),
            row["maxMarketSize"],
            row["maxLimitSize"],
            prices[symbol],
        )
        assert got == (cv, lot, least, tick, lev, market, limit, price), symbol


async def test_paper_signals_on_every_added_symbol_are_placed(server: RunningServer) -> None:
    rows = await catalogue(server)
    added = sorted(s for s, row in rows.items() if s not in FIRST_ROWS and row["state"] == "live")
    assert len(added) >= 34

    for symbol in added:
        price = Decimal(rows[symbol]["price"])
        body = signal_body(
            f"paper-{symbol}",
            symbol=symbol,
            stop_loss=str(price * Decimal("0.95")),
            take_profits=[str(price * Decimal("1.03")), str(price * Decimal("1.06"))],
        )
        answer = await place_signal(server, body)
        size, lot = Decimal(answer["size"]), Decimal(rows[symbol]["lot_size"])
        assert size >= Decimal(rows[symbol]["min_size"]) and size % lot == 0, answer
        assert server.sim.positions[symbol].size == size

    positions = (await server.http.get("/api/v1/positions")).json()["positions"]
    assert {p["instId"] for p in positions} == set(added)


async def test_paper_unknown_symbol_is_not_in_the_paper_catalogue(server: RunningServer) -> None:
    reply = await server.http.post("/api/v1/signals", json=signal_body("paper-nope", symbol="NOPE-USDT"))

    answer = reply.json()
    assert (reply.status_code, answer["status"]) == (201, "rejected"), answer
    assert answer["reason"].startswith("NOPE-USDT: not in the paper catalogue"), answer
    assert "BloFin's full list" in answer["reason"] and "traded on BloFin" not in answer["reason"]
    assert server.sim.orders == {}


# -- moving prices --------------------------------------------------------------------------------


async def test_paper_price_move_fills_a_resting_entry_and_a_later_move_hits_the_stop(
    server: RunningServer,
) -> None:
    # AAVE-USDT, one of the added rows (starts at 215.3, contractValue 0.1, lot 0.1)
    body = signal_body(
        "paper-walk", symbol="AAVE-USDT", entries=["212"], stop_loss="205", take_profits=["222", "230"]
    )
    answer = await place_signal(server, body)
    assert [o["state"] for o in answer["orders"] if o["role"] == "entry"] == ["live"]

    moved = await move(server, "aave-usdt", "213.004")  # above the entry: nothing fills
    assert (moved["symbol"], moved["price"], moved["previous"]) == ("AAVE-USDT", "213", "215.3")
    assert (await server.http.get("/api/v1/positions")).json()["positions"] == []

    await move(server, "AAVE-USDT", "211.5")
    await until_event(server, "paper-walk", "entry_filled")
    (position,) = (await server.http.get("/api/v1/positions")).json()["positions"]
    assert (position["instId"], Decimal(position["positions"])) == ("AAVE-USDT", Decimal(answer["size"]))
    assert Decimal(position["averagePrice"]) == Decimal(212)

    await move(server, "AAVE-USDT", "204")
    found = await until_event(server, "paper-walk", "closed")

    closed = next(e for e in found if e["type"] == "closed")
    assert closed["data"]["reason"] == "stop" and Decimal(closed["data"]["realized_pnl"]) < 0
    assert (await server.http.get("/api/v1/positions")).json()["positions"] == []
    assert (await catalogue(server))["AAVE-USDT"]["price"] == "204"


async def test_paper_price_says_when_prices_move_on_their_own(tmp_path: Path) -> None:
    async with running_server(paper_settings(tmp_path, paper_price_walk=True)) as server:
        listing = (await server.http.get("/api/v1/paper/prices")).json()
        answer = await move(server, "BTC", "61000")

    assert (listing["price_source"], listing["price_walk"]) == ("model", True)
    assert answer["symbol"] == "BTC-USDT" and "PAPER_PRICE_WALK" in answer["note"]


BAD_MOVES: list[tuple[str, Any, int, str]] = [
    ("unknown symbol", {"symbol": "NOPE-USDT", "price": "1"}, 422, "unknown_symbol"),
    ("zero", {"symbol": "ETH-USDT", "price": "0"}, 422, "invalid_request"),
    ("negative", {"symbol": "ETH-USDT", "price": "-3050"}, 422, "invalid_request"),
    ("not a number", {"symbol": "ETH-USDT", "price": "abc"}, 422, "invalid_request"),
    ("NaN", {"symbol": "ETH-USDT", "price": "NaN"}, 422, "invalid_request"),
    ("infinite", {"symbol": "ETH-USDT", "price": "Infinity"}, 422, "invalid_request"),
    ("huge", {"symbol": "ETH-USDT", "price": "1e40"}, 422, "invalid_request"),
    ("under a tick", {"symbol": "ETH-USDT", "price": "0.001"}, 422, "invalid_price"),
    ("tiny", {"symbol": "BTC-USDT", "price": "1e-400"}, 422, "invalid_request"),
    ("no price", {"symbol": "ETH-USDT"}, 422, "invalid_request"),
    ("no symbol", {"price": "3050"}, 422, "invalid_request"),
    ("extra field", {"symbol": "ETH-USDT", "price": "3050", "side": "buy"}, 422, "invalid_request"),
    ("symbol not text", {"symbol": 5, "price": "3050"}, 422, "invalid_request"),
    ("long symbol", {"symbol": "X" * 200, "price": "3050"}, 422, "invalid_request"),
    ("a list", ["ETH-USDT", "3050"], 422, "invalid_request"),
    ("not JSON", b"{symbol: ETH", 400, "invalid_json"),
]


@pytest.mark.parametrize(("name", "body", "status", "code"), BAD_MOVES, ids=[m[0] for m in BAD_MOVES])
async def test_paper_price_refuses_bad_input_with_a_4xx(
    server: RunningServer, name: str, body: Any, status: int, code: str
) -> None:
    before = dict(server.sim.prices)
    if isinstance(body, bytes):
        reply = await server.http.post(
            "/api/v1/paper/price", content=body, headers={"Content-Type": "application/json"}
        )
    else:
        reply = await server.http.post("/api/v1/paper/price", json=body)

    assert (reply.status_code, reply.json()["error"]["code"]) == (status, code), reply.text
    assert reply.json()["error"]["message"]
    assert server.sim.prices == before


async def test_paper_routes_need_the_api_key(server: RunningServer) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app), base_url=BASE_URL) as anon:
        listing = await anon.get("/api/v1/paper/prices")
        moved = await anon.post("/api/v1/paper/price", json={"symbol": "ETH-USDT", "price": "1"})

    assert listing.status_code == moved.status_code == 401
    assert server.sim.prices["ETH-USDT"] == Decimal(3000)


# -- not in paper mode ------------------------------------------------------------------------------


@asynccontextmanager
async def server_on_a_simulator(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """The app with `settings` (pointed at the simulator) running, and the simulator's engine."""
    sim_app = create_sim(make_config())
    with UvicornThread(sim_app) as sim:
        app = create_app(settings.model_copy(update={"blofin_base_url": sim.url}))
        async with app.router.lifespan_context(app):
            headers = {"X-API-Key": TEST_API_KEY}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as http:
                yield http, sim_app.state.sim


def exchange_settings(tmp_path: Path, mode: str) -> Settings:
    return paper_settings(
        tmp_path,
        trading_mode=mode,
        blofin_api_key=TEST_KEY,
        blofin_api_secret=TEST_SECRET,
        blofin_passphrase=TEST_PASSPHRASE,
        monitor_websocket=False,
    )


@pytest.mark.parametrize("mode", ["live", "demo"])
async def test_paper_routes_are_refused_outside_paper_mode(tmp_path: Path, mode: str) -> None:
    async with server_on_a_simulator(exchange_settings(tmp_path, mode)) as (http, sim):
        listing = await http.get("/api/v1/paper/prices")
        moved = await http.post("/api/v1/paper/price", json={"symbol": "ETH-USDT", "price": "1"})
        health = await http.get("/health")

    assert health.json()["mode"] == mode and health.json()["exchange"] == "reachable", health.text
    for reply in (listing, moved):
        error = reply.json()["error"]
        assert (reply.status_code, error["code"]) == (404, "paper_mode_only"), reply.text
        assert f"{mode} mode" in error["message"]
    assert sim.prices["ETH-USDT"] == Decimal(3000)


async def test_live_mode_keeps_the_blofin_wording_for_an_unknown_symbol(tmp_path: Path) -> None:
    async with server_on_a_simulator(exchange_settings(tmp_path, "live")) as (http, _):
        reply = await http.post("/api/v1/signals", json=signal_body("live-nope", symbol="NOPE-USDT"))

    assert reply.json()["reason"] == "NOPE-USDT: no such instrument is traded on BloFin", reply.text


async def test_paper_routes_are_refused_on_a_paper_server_using_a_separate_simulator(tmp_path: Path) -> None:
    async with server_on_a_simulator(exchange_settings(tmp_path, "paper")) as (http, sim):
        reply = await http.post("/api/v1/paper/price", json={"symbol": "ETH-USDT", "price": "1"})

    assert (reply.status_code, reply.json()["error"]["code"]) == (404, "paper_mode_only"), reply.text
    assert "/sim/price" in reply.json()["error"]["message"]
    assert sim.prices["ETH-USDT"] == Decimal(3000)
