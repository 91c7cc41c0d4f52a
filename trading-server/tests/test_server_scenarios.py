"""End-to-end scenarios over HTTP: the server app (ASGI) in paper mode against the in-process simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hit_server.testing import RunningServer, paper_settings, running_server
from hit_server.testing import signal_body as signal


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(paper_settings(tmp_path)) as running:
        yield running


def orders_of(answer: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [o for o in answer["orders"] if o["role"] == role]


async def post(server: RunningServer, body: dict[str, Any], expect: int = 201) -> dict[str, Any]:
    reply = await server.http.post("/api/v1/signals", json=body)
    assert reply.status_code == expect, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


async def test_server_market_long_places_entry_stop_and_three_targets(server: RunningServer) -> None:
    answer = await post(server, signal("s-long"))

    assert answer["status"] == "placed"
    entry = orders_of(answer, "entry")
    assert [o["state"] for o in entry] == ["filled"]
    position = server.sim.positions["BTC-USDT"]
    assert position.size == Decimal(answer["size"]) > 0
    tps = orders_of(answer, "take_profit")
    assert [Decimal(o["price"]) for o in tps] == [Decimal(62000), Decimal(64000), Decimal(66000)]
    assert sum(Decimal(o["size"]) for o in tps) == Decimal(answer["size"])
    for tp in tps:
        sim_order = server.sim.orders_by_client_id[tp["client_order_id"]]
        assert sim_order.reduce_only and sim_order.side == "sell" and sim_order.state == "live"
    stops = [
        t for t in server.sim.tpsl_orders.values() if t.state == "live" and t.spec.sl_trigger is not None
    ]
    assert stops and all(t.spec.sl_trigger == Decimal(58000) for t in stops)


async def test_server_market_short_places_sell_entry_and_buy_targets(server: RunningServer) -> None:
    answer = await post(
        server, signal("s-short", side="short", symbol="ETH-USDT", stop_loss="3100", take_profits=["2900"])
    )

    assert answer["status"] == "placed"
    assert server.sim.positions["ETH-USDT"].size == -Decimal(answer["size"])
    (tp,) = orders_of(answer, "take_profit")
    assert server.sim.orders_by_client_id[tp["client_order_id"]].side == "buy"
    assert Decimal(tp["size"]) == Decimal(answer["size"])


async def test_server_limit_entry_rests_with_stop_attached_and_targets_pending(server: RunningServer) -> None:
    answer = await post(server, signal("s-limit", entries=["59500"]))

    (entry,) = orders_of(answer, "entry")
    assert entry["type"] == "limit" and entry["state"] == "live"
    resting = server.sim.orders_by_client_id[entry["client_order_id"]]
    assert resting.price == Decimal(59500) and resting.tpsl.sl_trigger == Decimal(58000)
    assert {o["state"] for o in orders_of(answer, "take_profit")} == {"pending"}
    assert "BTC-USDT" not in server.sim.positions


async def test_server_zone_entry_becomes_a_ladder_of_limits(server: RunningServer) -> None:
    answer = await post(server, signal("s-zone", entries=["59000", "59800"], stop_loss="57000"))

    entries = orders_of(answer, "entry")
    assert len(entries) >= 2
    prices = [Decimal(o["price"]) for o in entries]
    assert min(prices) == Decimal(59000) and max(prices) == Decimal(59800)
    assert sum(Decimal(o["size"]) for o in entries) == Decimal(answer["size"])
    for entry in entries:
        assert server.sim.orders_by_client_id[entry["client_order_id"]].tpsl.sl_trigger == Decimal(57000)


async def test_server_sizes_from_contract_value_when_not_one(server: RunningServer) -> None:
    # PEPE: contractValue 10,000,000 at 0.00001 = 100 USDT a contract. Risk 1% of 10,000 USDT over a
    # 3% stop would be 33 contracts (3,300 USDT); MAX_POSITION_SIZE_USD 1,000 caps it at 10.
    answer = await post(
        server, signal("s-pepe", symbol="PEPE-USDT", stop_loss="0.0000097", take_profits=["0.0000103"])
    )

    assert answer["status"] == "placed", answer
    assert Decimal(answer["size"]) == Decimal(10)
    assert server.sim.positions["PEPE-USDT"].size == Decimal(10)


async def test_server_single_target_takes_whole_size(server: RunningServer) -> None:
    answer = await post(server, signal("s-one-tp", take_profits=["61000"]))

    (tp,) = orders_of(answer, "take_profit")
    assert Decimal(tp["size"]) == Decimal(answer["size"]) and tp["state"] == "live"


REJECTIONS = [
    ("unknown symbol", signal("r-unknown", symbol="NOPE-USDT"), "not in the paper catalogue"),
    (
        "suspended",
        signal("r-suspended", symbol="LUNA-USDT", stop_loss="0.4", take_profits=["0.6"]),
        "suspend",
    ),
    ("too old", signal("r-old", posted_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat()), "old"),
    ("entry too far", signal("r-far", entries=["40000"], stop_loss="39000"), "%"),
    ("stop crossed", signal("r-crossed", side="short", stop_loss="59000", take_profits=["50000"]), "stop"),
    ("target crossed", signal("r-target", stop_loss="50000", take_profits=["59000"]), "TP1"),
]


@pytest.mark.parametrize(("name", "body", "words"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
async def test_server_rejects_with_reason(
    server: RunningServer, name: str, body: dict[str, Any], words: str
) -> None:
    answer = await post(server, body)

    assert answer["status"] == "rejected", answer
    assert words in answer["reason"]
    assert answer["orders"] == [] and not server.sim.orders_by_client_id


async def test_server_rejects_second_trade_on_an_open_symbol(server: RunningServer) -> None:
    await post(server, signal("first"))
    answer = await post(server, signal("second", take_profits=["63000"]))

    assert answer["status"] == "rejected" and "already open" in answer["reason"]


async def test_server_rejects_over_max_open_positions(tmp_path: Path) -> None:
    async with running_server(paper_settings(tmp_path, max_open_positions=1)) as server:
        await post(server, signal("one"))
        answer = await post(server, signal("two", symbol="ETH-USDT", stop_loss="2900", take_profits=["3100"]))

    assert answer["status"] == "rejected" and "limit is 1" in answer["reason"]


async def test_server_rejects_when_margin_is_insufficient(tmp_path: Path) -> None:
    # 5 USDT at 5x carries 25 USDT of SOL: under one contract (150 USDT)
    async with running_server(paper_settings(tmp_path, paper_balance=Decimal(5))) as server:
        answer = await post(
            server, signal("poor", symbol="SOL-USDT", stop_loss="149.99", take_profits=["151"])
        )

    assert answer["status"] == "rejected" and "available" in answer["reason"], answer


async def test_server_rejects_size_below_the_minimum(tmp_path: Path) -> None:
    # 1% of 100 USDT is 1 USDT at risk; over a 5 USDT stop that is 0.2 SOL contracts, under the minimum 1
    async with running_server(paper_settings(tmp_path, paper_balance=Decimal(100))) as server:
        answer = await post(server, signal("tiny", symbol="SOL-USDT", stop_loss="145", take_profits=["155"]))

    assert answer["status"] == "rejected" and "minimum" in answer["reason"], answer
    assert not server.sim.orders_by_client_id


async def test_server_closes_position_when_the_stop_cannot_be_placed(server: RunningServer) -> None:
    # The entry fills but the exchange creates no attached stop, and placing one is refused too.
    server.sim.attached_tpsl_lost = 1
    await server.fault(kind="error_code", code="102047", count=5, path="/api/v1/trade/order-tpsl")

    answer = await post(server, signal("s-naked"))

    assert answer["status"] == "failed"
    assert "closed at market" in answer["reason"]
    position = server.sim.positions.get("BTC-USDT")
    assert position is None or position.size == 0
    events = (await server.http.get("/api/v1/events")).json()["events"]
    assert "closed_for_safety" in {e["type"] for e in events}


async def test_server_repairs_a_stop_the_exchange_failed_to_attach(server: RunningServer) -> None:
    # The stream shows the fill without its stop: the server places one before answering "placed".
    server.sim.attached_tpsl_lost = 1

    answer = await post(server, signal("s-unattached"))

    assert answer["status"] == "placed", answer
    stops = [t for t in server.sim.live_tpsl("BTC-USDT") if t.spec.sl_trigger is not None]
    assert stops and server.sim.positions["BTC-USDT"].size != 0
    events = (await server.http.get("/api/v1/events")).json()["events"]
    assert "stop_repaired" in {e["type"] for e in events}


async def test_server_halt_survives_a_restart_and_resume_lifts_it(tmp_path: Path) -> None:
    settings = paper_settings(tmp_path)
    async with running_server(settings) as server:
        halted = (await server.http.post("/api/v1/halt", json={"reason": "news at 14:00"})).json()
        assert halted["halted"] is True and halted["reason"] == "news at 14:00"

    async with running_server(settings) as server:
        health = (await server.http.get("/health")).json()
        answer = await post(server, signal("during-halt"))
        resumed = (await server.http.post("/api/v1/resume")).json()
        after = await post(server, signal("after-resume"))

    assert health["halted"] is True
    assert answer["status"] == "rejected" and "halted" in answer["reason"]
    assert resumed["halted"] is False
    assert after["status"] == "placed"


async def test_server_halt_cancels_entries_and_closes_positions_when_asked(server: RunningServer) -> None:
    await post(server, signal("open-one"))
    await post(
        server,
        signal("rest-one", symbol="ETH-USDT", entries=["2950"], stop_loss="2900", take_profits=["3100"]),
    )

    state = (
        await server.http.post(
            "/api/v1/halt", json={"reason": "stop", "cancel_orders": True, "close_positions": True}
        )
    ).json()

    assert state["cancelled_orders"] == 1 and state["closed_positions"] == 1
    assert all(p.size == 0 for p in server.sim.positions.values())


async def test_server_journal_lists_answers_newest_first_and_filters(server: RunningServer) -> None:
    await post(server, signal("j-1"))
    await post(server, signal("j-2", symbol="NOPE-USDT"))
    await post(server, signal("j-3", symbol="ETH-USDT", stop_loss="2900", take_profits=["3100"]))

    page = (await server.http.get("/api/v1/signals")).json()
    rejected = (await server.http.get("/api/v1/signals", params={"status": "rejected"})).json()
    eth = (await server.http.get("/api/v1/signals", params={"symbol": "ETH-USDT", "limit": 1})).json()
    one = await server.http.get("/api/v1/signals/j-2")
    missing = await server.http.get("/api/v1/signals/nope")

    assert [t["signal_id"] for t in page["signals"]] == ["j-3", "j-2", "j-1"]
    assert [t["signal_id"] for t in rejected["signals"]] == ["j-2"]
    assert [t["signal_id"] for t in eth["signals"]] == ["j-3"] and eth["total"] == 1
    assert one.status_code == 200 and one.json()["status"] == "rejected"
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_server_stats_count_outcomes_and_replays(server: RunningServer) -> None:
    await post(server, signal("c-1"))
    await post(server, signal("c-1"), expect=200)
    await post(server, signal("c-2", symbol="NOPE-USDT"))

    stats = (await server.http.get("/api/v1/stats")).json()

    assert (stats["signals_received"], stats["placed"], stats["rejected"], stats["replayed"]) == (2, 1, 1, 1)
    assert stats["open_positions"] == 1 and stats["mode"] == "paper" and stats["halted"] is False
    positions = (await server.http.get("/api/v1/positions")).json()["positions"]
    assert [p["instId"] for p in positions] == ["BTC-USDT"]


async def test_server_halt_leaves_the_traders_own_orders_and_positions_alone(server: RunningServer) -> None:
    from hit_server.blofin_sim.models import OrderParams

    await post(server, signal("ours-open"))
    manual_position = OrderParams(
        inst_id="SOL-USDT", side="buy", order_type="market", size=Decimal(3), margin_mode="cross",
        client_order_id="myManualTrade1",
    )
    manual_entry = OrderParams(
        inst_id="LINK-USDT", side="buy", order_type="limit", size=Decimal(2), margin_mode="cross",
        price=Decimal(10), client_order_id="myManualLimit1",
    )
    server.sim.place_order(manual_position)
    resting = server.sim.place_order(manual_entry)

    state = (
        await server.http.post(
            "/api/v1/halt", json={"reason": "panic", "cancel_orders": True, "close_positions": True}
        )
    ).json()

    assert state["closed_positions"] == 1
    btc = server.sim.positions.get("BTC-USDT")
    assert btc is None or btc.size == 0
    assert server.sim.positions["SOL-USDT"].size == Decimal(3)
    assert server.sim.orders[resting.order_id].is_open
