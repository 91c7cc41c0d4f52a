"""Trade events leave the server: the event feed keeps its shape, a Discord webhook (a local fake on
127.0.0.1) receives them without the URL ever being logged, and orphaned orders are cleaned up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import update

from hit_server.blofin_sim.loopback import serve_loopback
from hit_server.journal.db import Database, SignalRow
from hit_server.journal.events import EVENT_TYPES
from hit_server.testing import RunningServer, paper_settings, running_server, signal_body
from hit_server.trading import ids

WAIT_S = 10.0
WEBHOOK_TOKEN = "webhook-TOKEN-that-must-never-be-logged-7f3a"


def signal(signal_id: str, **fields: Any) -> dict[str, Any]:
    return signal_body(signal_id, **{"take_profits": ["62000", "64000"], **fields})


async def place(server: RunningServer, body: dict[str, Any]) -> None:
    reply = await server.http.post("/api/v1/signals", json=body)
    assert reply.status_code == 201 and reply.json()["status"] == "placed", reply.text


async def feed(server: RunningServer, after: int = 0) -> list[dict[str, Any]]:
    reply = await server.http.get("/api/v1/events", params={"after": after})
    assert reply.status_code == 200
    events: list[dict[str, Any]] = reply.json()["events"]
    return events


async def until(server: RunningServer, kind: str) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        found = await feed(server)
        if any(e["type"] == kind for e in found):
            return found
        assert asyncio.get_running_loop().time() < deadline, f"no {kind} event: {found}"
        await asyncio.sleep(0.05)


class FakeWebhook:
    """Discord's webhook endpoint, as far as the relay uses it; refuses the first post with a 429."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.refused = 0
        self.app = FastAPI()
        self.app.post("/api/webhooks/42/{token}")(self.receive)

    async def receive(self, token: str, request: Request) -> Response:
        if token != WEBHOOK_TOKEN:
            return Response(status_code=401)
        if self.refused == 0:
            self.refused += 1
            return Response(status_code=429, headers={"Retry-After": "0.05"})
        self.posts.append(await request.json())
        return Response(status_code=204)


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[FakeWebhook, str]]:
    fake = FakeWebhook()
    async with serve_loopback(fake.app) as served:
        yield fake, f"{served.http_url}/api/webhooks/42/{WEBHOOK_TOKEN}"


async def test_lifecycle_events_feed_keeps_its_shape_and_pages_by_id(tmp_path: Path) -> None:
    async with running_server(paper_settings(tmp_path, monitor_poll_seconds=0.05)) as server:
        await place(server, signal("nt-feed"))
        server.sim.close_position("BTC-USDT", "cross", "")
        everything = await until(server, "closed")
        later = await feed(server, after=everything[0]["id"])

    assert later == everything[1:]
    for event in everything:
        assert set(event) == {"id", "type", "signal_id", "symbol", "message", "data", "created_at"}
        assert event["type"] in EVENT_TYPES
    closed = next(e for e in everything if e["type"] == "closed")
    assert "realised P&L" in closed["message"]
    assert Decimal(closed["data"]["realized_pnl"]) < 0 and Decimal(closed["data"]["fee"]) > 0


async def test_lifecycle_webhook_gets_trade_events_and_the_url_is_never_logged(
    tmp_path: Path, webhook: tuple[FakeWebhook, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake, url = webhook
    caplog.set_level(logging.DEBUG)
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05, discord_webhook_url=url)
    async with running_server(settings) as server:
        await place(server, signal("nt-hook"))
        await server.set_price("BTC-USDT", "62100")
        await until(server, "stop_moved")
        server.sim.close_position("BTC-USDT", "cross", "")
        await until(server, "closed")
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while not any("realised P&L" in p["content"] for p in fake.posts):
            assert asyncio.get_running_loop().time() < deadline, fake.posts
            await asyncio.sleep(0.05)
        settings_text = repr(server.app.state.settings)

    contents = [p["content"] for p in fake.posts]
    assert fake.refused == 1  # the 429 was honoured and the message sent again
    assert any("TP1 hit" in c for c in contents) and any("breakeven" in c for c in contents)
    assert not any(" placed:" in c for c in contents)  # the bot answers placements itself
    assert WEBHOOK_TOKEN not in caplog.text and WEBHOOK_TOKEN not in settings_text


async def test_lifecycle_reconciliation_cancels_orders_of_a_finished_trade(tmp_path: Path) -> None:
    settings = paper_settings(tmp_path, monitor_poll_seconds=60, monitor_websocket=False,
                              reconcile_minutes=0.01)
    async with running_server(settings) as server:
        await place(server, signal("nt-orphan", entries=["59500"]))
        entry = server.sim.orders_by_client_id[ids.entry_id("nt-orphan", 1)]
        # the journal holds the trade as over, but its entry still rests on the exchange
        db = Database(settings.journal_url)
        finished = update(SignalRow).where(SignalRow.signal_id == "nt-orphan").values(is_open=False)
        await db.transaction(lambda conn: conn.execute(finished))
        await db.dispose()

        found = await until(server, "orphan_cancelled")

    assert entry.state == "canceled"
    assert next(e for e in found if e["type"] == "orphan_cancelled")["signal_id"] == "nt-orphan"
