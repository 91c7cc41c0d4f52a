"""The risk rules of issue #12 seen through the server: settings wired, answers as the trader reads them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from hit_server.testing import paper_settings, running_server
from hit_server.testing import signal_body as signal


def targets(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(o["price"], o["size"]) for o in answer["orders"] if o["role"] == "take_profit"]


async def test_server_places_a_market_swing_trade_with_a_stop_far_beyond_the_entry_guard(
    tmp_path: Path,
) -> None:
    async with running_server(paper_settings(tmp_path, max_entry_deviation_percent=Decimal(5))) as server:
        reply = await server.http.post("/api/v1/signals", json=signal("swing", stop_loss="50000"))  # 16.7%

    assert reply.status_code == 201 and reply.json()["status"] == "placed", reply.text


async def test_server_market_stop_beyond_max_stop_distance_is_rejected(tmp_path: Path) -> None:
    settings = paper_settings(tmp_path, max_stop_distance_percent=Decimal(10))
    async with running_server(settings) as server:
        reply = await server.http.post("/api/v1/signals", json=signal("too-wide", stop_loss="50000"))

    assert reply.json()["status"] == "rejected"
    assert "MAX_STOP_DISTANCE_PERCENT" in reply.json()["reason"]


async def test_server_equal_targets_on_the_tick_become_one_order_and_a_repeated_one_is_refused(
    tmp_path: Path,
) -> None:
    async with running_server(paper_settings(tmp_path)) as server:
        merged = await server.http.post(
            "/api/v1/signals", json=signal("twins", take_profits=["62000.04", "62000.02", "64000"])
        )
        repeated = await server.http.post(
            "/api/v1/signals", json=signal("typo", symbol="ETH-USDT", stop_loss="2900",
                                           take_profits=["3100", "3100", "3200"])
        )

    answer = merged.json()
    assert answer["status"] == "placed", answer
    prices = [price for price, _ in targets(answer)]
    assert len(prices) == 2 and len(set(prices)) == 2
    assert sum(Decimal(size) for _, size in targets(answer)) == Decimal(answer["size"])
    assert repeated.json()["status"] == "rejected" and "twice" in repeated.json()["reason"]
