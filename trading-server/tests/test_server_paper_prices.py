"""PAPER_PRICE_SOURCE=blofin: paper prices follow BloFin's public tickers, and fall back to the
simulator's own model, with one warning, while BloFin can't be reached (here a fake ticker endpoint)."""

import asyncio
import logging
from decimal import Decimal

import httpx
import pytest

from hit_server.blofin_sim import create_app
from hit_server.blofin_sim.testing import make_config
from hit_server.exchange.paper import TICKERS_PATH, follow_prices


class FakeTickers:
    """BloFin's public tickers endpoint: serves rows until told to go dark, then refuses connections."""

    def __init__(self, rows: list[dict[str, str]]) -> None:
        self.rows = rows
        self.reachable = True
        self.calls = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if not self.reachable:
            raise httpx.ConnectError("no route to BloFin", request=request)
        assert request.url.path == TICKERS_PATH
        return httpx.Response(200, json={"code": "0", "msg": "", "data": self.rows})


async def run_until(condition, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_paper_prices_follow_blofin_then_fall_back_to_the_model(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(make_config())
    sim = app.state.sim
    fake = FakeTickers([
        {"instId": "BTC-USDT", "last": "61234.56"},  # rounded to BTC's 0.1 tick
        {"instId": "NOT-LISTED", "last": "1"},  # unknown to the simulator: ignored
        {"instId": "ETH-USDT", "last": "garbage"},  # unreadable: ignored
    ])
    task = asyncio.create_task(
        follow_prices(app, "https://blofin.test", interval_s=0.01, transport=httpx.MockTransport(fake.handle))
    )
    try:
        with caplog.at_level(logging.INFO, logger="hit_server.exchange.paper"):
            await run_until(lambda: sim.prices["BTC-USDT"] == Decimal("61234.6"))
            eth_before = sim.prices["ETH-USDT"]
            fake.reachable = False
            calls = fake.calls
            await run_until(lambda: fake.calls >= calls + 5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert "NOT-LISTED" not in sim.prices
    assert sim.prices["ETH-USDT"] != eth_before  # the model moved it once BloFin went dark
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "fall back to the model" in warnings[0].getMessage()
