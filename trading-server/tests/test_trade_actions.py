"""A trader's actions on a trade, over HTTP against the simulator: POST /api/v1/trades/{id}/close (all or a
part), /cancel, /stop, /targets. Each walks a real trade (the simulator's price moves it), checks what rests
on the simulator afterwards (positions, orders, TP/SL orders), the trade as GET /api/v1/trades/{id} shows it
and the events; idempotent retries act once (also across a restart); refusals are 4xx in the error shape."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from hit_server import clock
from hit_server.journal.trade_lease import TradeLeases
from hit_server.lifecycle import actions
from hit_server.testing import RunningServer, paper_settings, running_server, signal_events
from hit_server.testing import place_signal as place
from hit_server.testing import signal_body as signal
from hit_server.testing import until_event as until
from hit_server.testing import wait_until as wait
from hit_server.trading import ids

BTC = "BTC-USDT"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05)
    async with running_server(settings) as running:
        yield running


async def act(
    server: RunningServer, sid: str, action: str, body: Any = None, *, key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": key or uuid.uuid4().hex}
    if body is None:
        return await server.http.post(f"/api/v1/trades/{sid}/{action}", headers=headers)
    return await server.http.post(f"/api/v1/trades/{sid}/{action}", json=body, headers=headers)


async def view(server: RunningServer, sid: str) -> dict[str, Any]:
    reply = await server.http.get(f"/api/v1/trades/{sid}")
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def leftovers(server: RunningServer, symbol: str) -> list[Any]:
    return [*server.sim.open_orders(symbol), *server.sim.live_tpsl(symbol)]


def held(server: RunningServer, symbol: str) -> Decimal:
    position = server.sim.positions.get(symbol)
    return Decimal(0) if position is None else position.size


def sim_orders(server: RunningServer, client_order_id: str) -> list[Any]:
    """Every order the simulator accepted under this clientOrderId (a resend would be a second)."""
    return [o for o in server.sim.orders.values() if o.client_order_id == client_order_id]


def live_targets(server: RunningServer, symbol: str) -> list[Any]:
    return sorted((o for o in server.sim.open_orders(symbol) if o.reduce_only), key=lambda o: o.price)


def stop_coverage(server: RunningServer, symbol: str) -> Decimal:
    """Contracts the live stops close when they fire (a whole-position stop covers all of it)."""
    stops = [t for t in server.sim.live_tpsl(symbol) if t.spec.sl_trigger is not None]
    if any(t.size is None for t in stops):
        return abs(held(server, symbol))
    return sum((t.size for t in stops), Decimal(0))


def error(reply: httpx.Response, status: int, code: str) -> str:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message


async def placed_with_targets(server: RunningServer, sid: str, **fields: Any) -> dict[str, Any]:
    """A market long on BTC (stop 58000, targets 62000/64000/66000) once its targets rest."""
    answer = await place(server, signal(sid, **fields))
    await wait(lambda: len(live_targets(server, fields.get("symbol", BTC))) == 3, "the three targets")
    return answer


# -- close -------------------------------------------------------------------------------------------


async def test_close_closes_the_whole_position_and_the_trade_ends_manual(server: RunningServer) -> None:
    answer = await placed_with_targets(server, "ac-close")
    size = Decimal(answer["size"])

    reply = await act(server, "ac-close", "close")

    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["action"] == "close" and result["outcome"] == "closed"
    assert Decimal(result["closed_size"]) == size and result["cancelled_orders"] == 3
    assert result["client_order_id"] == ids.action_close_id("ac-close", 1)
    assert BTC not in server.sim.positions and leftovers(server, BTC) == []
    found = await until(server, "ac-close", "closed")
    assert next(e for e in found if e["type"] == "closed")["data"]["reason"] == "manual"
    manual = [e for e in found if e["type"] == "manual_close"]
    assert len(manual) == 1 and manual[0]["data"]["outcome"] == "closed"
    trade = await view(server, "ac-close")
    assert trade["state"] == "closed" and trade["exit_reason"] == "manual"
    assert {t["state"] for t in trade["targets"]} == {"cancelled"}
    closed = [c.position for c in server.sim.position_history if c.position.inst_id == BTC]
    assert Decimal(trade["realized_pnl"]) == sum((p.realized_pnl - p.fees for p in closed), Decimal(0))
    assert result["trade"]["signal_id"] == "ac-close"


async def test_close_retried_with_the_same_key_acts_once(server: RunningServer) -> None:
    await placed_with_targets(server, "ac-once")
    key = "close-ac-once-1"

    first = await act(server, "ac-once", "close", key=key)
    second = await act(server, "ac-once", "close", key=key)

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json() and second.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(sim_orders(server, ids.action_close_id("ac-once", 1))) == 1
    events = await signal_events(server, "ac-once")
    # the event names the request it answers (the bot's key names its Discord message)
    assert [e["data"]["key"] for e in events if e["type"] == "manual_close"] == [key]
    # a new key is a new request: the trade is over now
    assert "already closed" in error(await act(server, "ac-once", "close"), 409, "trade_not_open")


async def test_close_retried_after_a_restart_answers_the_same_and_acts_once(tmp_path: Path) -> None:
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05)
    async with running_server(settings) as server:
        exchange = server.app.state.sim_app
        await placed_with_targets(server, "ac-restart")
        first = await act(server, "ac-restart", "close", key="k-restart")
        assert first.status_code == 200, first.text
    async with running_server(settings, sim_app=exchange) as server:
        second = await act(server, "ac-restart", "close", key="k-restart")
        assert second.status_code == 200 and second.json() == first.json()
        assert second.headers.get("Idempotent-Replayed") == "true"
        assert len(sim_orders(server, ids.action_close_id("ac-restart", 1))) == 1
        other = await act(server, "ac-restart", "stop", {"breakeven": True}, key="k-restart")
        assert "another request" in error(other, 409, "idempotency_key_reused")


async def test_partial_close_keeps_the_stop_and_splits_the_targets_over_the_rest(
    server: RunningServer,
) -> None:
    answer = await placed_with_targets(server, "ac-part")
    size = Decimal(answer["size"])

    reply = await act(server, "ac-part", "close", {"fraction": "0.5"})

    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["outcome"] == "partly_closed"
    closed = Decimal(result["closed_size"])
    lot = server.sim.instruments[BTC].lot_size
    assert closed == (size / 2 / lot).to_integral_value(rounding="ROUND_DOWN") * lot
    rest = held(server, BTC)
    assert rest == size - closed > 0
    assert stop_coverage(server, BTC) >= rest
    targets = live_targets(server, BTC)
    assert sum(t.size for t in targets) == rest
    assert {t.price for t in targets} == {Decimal(62000), Decimal(64000), Decimal(66000)}
    trade = await view(server, "ac-part")
    assert trade["state"] == "open"
    assert [(t["number"], t["state"]) for t in trade["targets"]] == [(1, "open"), (2, "open"), (3, "open")]
    assert sum(Decimal(t["size"]) for t in trade["targets"]) == rest

    # the rest goes on: TP1 hits, the stop moves to breakeven and still covers everything left
    await server.set_price(BTC, "62100")
    await until(server, "ac-part", "stop_moved")
    assert stop_coverage(server, BTC) >= held(server, BTC) > 0
    await server.set_price(BTC, "66100")
    found = await until(server, "ac-part", "closed")
    assert next(e for e in found if e["type"] == "closed")["data"]["reason"] == "targets"
    assert leftovers(server, BTC) == []


async def test_partial_close_retried_with_the_same_key_closes_once(server: RunningServer) -> None:
    answer = await placed_with_targets(server, "ac-part-once")
    size = Decimal(answer["size"])

    first = await act(server, "ac-part-once", "close", {"fraction": 0.5}, key="half")
    second = await act(server, "ac-part-once", "close", {"fraction": "0.50"}, key="half")

    assert first.status_code == second.status_code == 200 and second.json() == first.json()
    assert held(server, BTC) == size - Decimal(first.json()["closed_size"])
    assert len(sim_orders(server, ids.action_close_id("ac-part-once", 1))) == 1
    other = await act(server, "ac-part-once", "close", {"fraction": "0.25"}, key="half")
    assert "another request" in error(other, 409, "idempotency_key_reused")


async def test_close_during_an_in_flight_target_fill_leaves_no_position(server: RunningServer) -> None:
    """TP1 fills while the close is cancelling the targets (the cancel reaches the exchange late): the
    close takes what is left, never more, and nothing opens the other way."""
    answer = await placed_with_targets(server, "ac-flight")
    size = Decimal(answer["size"])
    tp1 = server.sim.orders_by_client_id[ids.take_profit_id("ac-flight", 1)]
    faults = server.app.state.sim_app.state.sim_state.faults
    await server.fault(kind="delay", seconds=0.5, count=1, path="/api/v1/trade/cancel-order")

    closing = asyncio.create_task(act(server, "ac-flight", "close", key="flight"))
    await wait(lambda: not faults.pending, "the delayed cancel of TP1 to reach the exchange")
    await server.set_price(BTC, "62100")  # TP1 fills while its cancel is on the way
    reply = await closing

    assert reply.status_code == 200, reply.text
    assert tp1.state == "filled"
    assert Decimal(reply.json()["closed_size"]) == size - tp1.filled_size
    assert BTC not in server.sim.positions and leftovers(server, BTC) == []
    found = await until(server, "ac-flight", "closed")
    assert any(e["type"] == "take_profit_hit" and e["data"]["target"] == 1 for e in found)
    assert next(e for e in found if e["type"] == "closed")["data"]["reason"] == "manual"


async def test_close_when_the_targets_closed_the_position_first_sends_nothing_the_other_way(
    server: RunningServer,
) -> None:
    await placed_with_targets(server, "ac-flat")
    faults = server.app.state.sim_app.state.sim_state.faults
    await server.fault(kind="delay", seconds=0.5, count=1, path="/api/v1/trade/cancel-order")

    closing = asyncio.create_task(act(server, "ac-flat", "close", key="flat"))
    await wait(lambda: not faults.pending, "the delayed cancel")
    await server.set_price(BTC, "66100")  # every target fills: the position is gone
    reply = await closing

    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["closed_size"] == "0" and result["client_order_id"] is None
    assert "already closed" in result["message"]
    assert BTC not in server.sim.positions and leftovers(server, BTC) == []
    assert sim_orders(server, ids.action_close_id("ac-flat", 1)) == []  # refused: no position to close
    found = await until(server, "ac-flat", "closed")
    assert next(e for e in found if e["type"] == "closed")["data"]["reason"] == "targets"


# -- stop ---------------------------------------------------------------------------------------------


async def test_stop_move_places_the_new_stop_then_cancels_the_old(server: RunningServer) -> None:
    answer = await placed_with_targets(server, "ac-stop")
    size = Decimal(answer["size"])
    (old,) = server.sim.live_tpsl(BTC)

    reply = await act(server, "ac-stop", "stop", {"price": "59000"})

    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["outcome"] == "stop_moved" and result["cancelled_orders"] == 1
    (new,) = server.sim.live_tpsl(BTC)
    assert new.spec.sl_trigger == Decimal(59000) and new.size is None and new.tpsl_id != old.tpsl_id
    assert old.state == "canceled" and new.create_time <= old.update_time
    assert new.client_order_id == result["client_order_id"]
    assert held(server, BTC) == size
    trade = await view(server, "ac-stop")
    assert trade["stop"] == {"price": "59000", "at_breakeven": False}

    breakeven = await act(server, "ac-stop", "stop", {"breakeven": True})
    assert "below the mark price 60000" in error(breakeven, 422, "stop_refused")  # entry = mark: not yet
    await server.set_price(BTC, "61000")
    reply = await act(server, "ac-stop", "stop", {"breakeven": True})
    assert reply.status_code == 200, reply.text
    (be,) = server.sim.live_tpsl(BTC)
    entry = server.sim.orders_by_client_id[ids.entry_id("ac-stop", 1)]
    assert be.spec.sl_trigger == entry.average_price
    assert (await view(server, "ac-stop"))["stop"]["at_breakeven"] is True
    found = await signal_events(server, "ac-stop")
    outcomes = [e["data"]["outcome"] for e in found if e["type"] == "manual_stop"]
    assert outcomes == ["stop_moved", "refused", "stop_moved"]

    await server.set_price(BTC, "59000")
    found = await until(server, "ac-stop", "closed")
    assert next(e for e in found if e["type"] == "closed")["data"]["reason"] == "breakeven_stop"


async def test_stop_move_the_exchange_refuses_leaves_the_old_stop(server: RunningServer) -> None:
    await placed_with_targets(server, "ac-stop-no")
    (old,) = server.sim.live_tpsl(BTC)
    await server.fault(kind="error_code", code="102015", count=1, path="/api/v1/trade/order-tpsl")

    reply = await act(server, "ac-stop-no", "stop", {"price": "59500"}, key="stop-no")

    message = error(reply, 409, "stop_not_moved")
    assert "58000 stays in place" in message
    (still,) = server.sim.live_tpsl(BTC)
    assert still.tpsl_id == old.tpsl_id and still.spec.sl_trigger == Decimal(58000)
    assert (await view(server, "ac-stop-no"))["stop"]["price"] == "58000"
    again = await act(server, "ac-stop-no", "stop", {"price": "59500"}, key="stop-no")
    assert again.status_code == 409 and again.json() == reply.json()  # the same answer, not a second try
    found = await signal_events(server, "ac-stop-no")
    assert [e["data"]["outcome"] for e in found if e["type"] == "manual_stop"] == ["refused"]


async def test_stop_move_retried_with_the_same_key_places_one_stop(server: RunningServer) -> None:
    await placed_with_targets(server, "ac-stop-once")

    first = await act(server, "ac-stop-once", "stop", {"price": 59000}, key="s1")
    second = await act(server, "ac-stop-once", "stop", {"price": "59000.0"}, key="s1")

    assert first.status_code == second.status_code == 200 and second.json() == first.json()
    assert len(server.sim.live_tpsl(BTC)) == 1
    cid = first.json()["client_order_id"]
    assert len([t for t in server.sim.tpsl_orders.values() if t.client_order_id == cid]) == 1


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"price": "60500"}, 422, "stop_refused", "below the mark price"),
        ({"price": "57000"}, 422, "stop_refused", "towards the market"),
        ({"price": "58000"}, 409, "stop_unchanged", "already at 58000"),
        ({"price": "59000", "breakeven": True}, 422, "invalid_request", "not both"),
        ({"breakeven": False}, 422, "invalid_request", "either"),
        ({"price": "-5"}, 422, "invalid_request", "price"),
        ({"price": "abc"}, 422, "invalid_request", "price"),
        ({"level": "59000"}, 422, "invalid_request", "level"),
    ],
)
async def test_stop_refusals(server: RunningServer, body: Any, status: int, code: str, words: str) -> None:
    await place(server, signal("ac-stop-bad"))

    reply = await act(server, "ac-stop-bad", "stop", body)

    assert words in error(reply, status, code)
    assert {t.spec.sl_trigger for t in server.sim.live_tpsl(BTC)} == {Decimal(58000)}


# -- targets ------------------------------------------------------------------------------------------


async def test_targets_replaced_by_new_prices_split_over_the_position(server: RunningServer) -> None:
    answer = await placed_with_targets(server, "ac-tps")
    size = Decimal(answer["size"])
    old = live_targets(server, BTC)

    reply = await act(server, "ac-tps", "targets", {"targets": ["65000", "63000"]})

    assert reply.status_code == 200, reply.text
    assert reply.json()["outcome"] == "targets_replaced" and reply.json()["cancelled_orders"] == 3
    assert all(o.state == "canceled" for o in old)
    new = live_targets(server, BTC)
    assert [t.price for t in new] == [Decimal(63000), Decimal(65000)] and sum(t.size for t in new) == size
    trade = await view(server, "ac-tps")
    shown = [(t["number"], t["price"], t["state"]) for t in trade["targets"]]
    assert shown == [(1, "63000", "open"), (2, "65000", "open"), (3, "66000", "cancelled")]

    await server.set_price(BTC, "63100")  # the new TP1: the stop moves to breakeven
    await until(server, "ac-tps", "stop_moved")
    await server.set_price(BTC, "65100")
    found = await until(server, "ac-tps", "closed")
    assert [e["data"]["target"] for e in found if e["type"] == "take_profit_hit"] == [1, 2]
    assert next(e for e in found if e["type"] == "closed")["data"]["reason"] == "targets"


async def test_targets_on_the_wrong_side_of_the_mark_are_refused(server: RunningServer) -> None:
    await placed_with_targets(server, "ac-tps-bad")

    reply = await act(server, "ac-tps-bad", "targets", {"targets": ["63000", "59000"]})

    assert "above the mark price" in error(reply, 422, "targets_refused")
    assert [t.price for t in live_targets(server, BTC)] == [Decimal(62000), Decimal(64000), Decimal(66000)]
    assert error(await act(server, "ac-tps-bad", "targets", {"targets": []}), 422, "invalid_request")


# -- cancel -------------------------------------------------------------------------------------------


async def test_cancel_of_a_resting_entry_ends_the_trade(server: RunningServer) -> None:
    await place(server, signal("ac-cancel", entries=["59500"]))
    entry = server.sim.orders_by_client_id[ids.entry_id("ac-cancel", 1)]

    reply = await act(server, "ac-cancel", "cancel")

    assert reply.status_code == 200, reply.text
    assert reply.json()["outcome"] == "cancelled" and reply.json()["cancelled_orders"] == 1
    assert entry.state == "canceled" and leftovers(server, BTC) == []
    trade = await view(server, "ac-cancel")
    assert trade["state"] == "cancelled" and trade["exit_reason"] == "entries_cancelled"
    row = await server.service.journal.get_signal("ac-cancel")
    assert row is not None and not row.is_open
    await place(server, signal("ac-cancel-2"))  # the symbol is free again


async def test_cancel_of_a_filled_trade_closes_it_only_if_asked(server: RunningServer) -> None:
    await placed_with_targets(server, "ac-cancel-filled")

    refused = await act(server, "ac-cancel-filled", "cancel")
    assert "close_filled" in error(refused, 409, "nothing_to_cancel")
    assert held(server, BTC) > 0

    reply = await act(server, "ac-cancel-filled", "cancel", {"close_filled": True})
    assert reply.status_code == 200, reply.text
    assert reply.json()["outcome"] == "cancelled"
    assert BTC not in server.sim.positions and leftovers(server, BTC) == []
    found = await until(server, "ac-cancel-filled", "closed")
    assert next(e for e in found if e["type"] == "closed")["data"]["reason"] == "manual"


# -- refusals -----------------------------------------------------------------------------------------


async def test_refusals_in_the_error_shape(server: RunningServer) -> None:
    await place(server, signal("ac-ref", entries=["59500"]))
    trades = "/api/v1/trades"

    assert "No trade" in error(await act(server, "nope-123", "close"), 404, "not_found")
    missing = await server.http.post(f"{trades}/ac-ref/close")
    assert "Idempotency-Key" in error(missing, 400, "idempotency_key_missing")
    bad_json = await server.http.post(
        f"{trades}/ac-ref/close",
        content=b"{fraction: 1",
        headers={"Idempotency-Key": "k1", "Content-Type": "application/json"},
    )
    error(bad_json, 400, "invalid_json")
    for fraction in ("0", "1.5", "-0.1", "NaN", "half"):
        error(await act(server, "ac-ref", "close", {"fraction": fraction}), 422, "invalid_request")
    bad_key = await server.http.post(f"{trades}/ac-ref/close", headers={"Idempotency-Key": "has space"})
    error(bad_key, 422, "invalid_request")
    assert "Nothing of trade" in error(await act(server, "ac-ref", "close"), 409, "nothing_to_close")
    error(await act(server, "ac-ref", "targets", {"targets": ["63000"]}), 409, "no_position")
    stop = await act(server, "ac-ref", "stop", {"price": "59000"})
    assert "rides on them" in error(stop, 409, "no_position")
    unauthenticated = await server.http.post(
        f"{trades}/ac-ref/close", headers={"X-API-Key": "wrong", "Idempotency-Key": "k2"}
    )
    error(unauthenticated, 401, "unauthorized")


async def test_partial_close_refusals(server: RunningServer) -> None:
    answer = await placed_with_targets(server, "ac-part-bad")
    size = Decimal(answer["size"])
    tiny = Decimal("0.0001") / size  # far under one lot

    assert "minimum order size" in error(
        await act(server, "ac-part-bad", "close", {"fraction": str(tiny)}), 422, "size_refused"
    )
    assert held(server, BTC) == size


async def test_an_action_waits_for_the_trade_lease_and_answers_busy(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actions, "LEASE_WAIT_S", 0.3)
    await placed_with_targets(server, "ac-busy")
    leases = TradeLeases(server.service.journal.db, holder="another-process")
    assert await leases.take("ac-busy")

    busy = await act(server, "ac-busy", "close", key="busy")
    assert "retry" in error(busy, 503, "trade_busy") and busy.headers["Retry-After"] == "1"
    assert held(server, BTC) > 0

    await leases.give_back("ac-busy")
    reply = await act(server, "ac-busy", "close", key="busy")
    assert reply.status_code == 200 and reply.json()["outcome"] == "closed"


async def test_an_unclear_close_is_looked_up_at_the_retry_never_sent_again(server: RunningServer) -> None:
    """The partial close reaches the exchange but its reply is lost and the lookups lag behind: 503
    outcome_unknown; each retry with the same key only looks it up, until it is found."""
    answer = await placed_with_targets(server, "ac-unclear")
    size = Decimal(answer["size"])
    cid = ids.action_close_id("ac-unclear", 1)
    await server.fault(kind="drop_reply", count=1, path="/api/v1/trade/order")  # that endpoint alone
    reply = await server.sim_http.post("/sim/lag", json={"ms": 0, "lookups": 6})
    reply.raise_for_status()

    first = await act(server, "ac-unclear", "close", {"fraction": "0.5"}, key="unclear")
    assert "retry with the same Idempotency-Key" in error(first, 503, "outcome_unknown")
    assert first.headers["Retry-After"] == "2"
    (order,) = sim_orders(server, cid)  # it was carried out
    assert held(server, BTC) == size - order.filled_size

    replies = [await act(server, "ac-unclear", "close", {"fraction": "0.5"}, key="unclear") for _ in range(3)]

    assert [r.status_code for r in replies][-1] == 200, replies[-1].text
    assert [r.status_code for r in replies] == [503, 503, 200]  # lookups 5 and 6 still miss it
    assert Decimal(replies[-1].json()["closed_size"]) == order.filled_size
    assert len(sim_orders(server, cid)) == 1 and held(server, BTC) == size - order.filled_size
    assert sum(t.size for t in live_targets(server, BTC)) == held(server, BTC)


async def test_cancel_of_a_partly_filled_ladder_keeps_the_filled_part(server: RunningServer) -> None:
    answer = await place(server, signal("ac-ladder", entries=["59000", "59800"], stop_loss="57000"))
    rungs = [o["client_order_id"] for o in answer["orders"] if o["role"] == "entry"]
    await server.set_price(BTC, "59700")  # only the highest rung fills
    filled = sum(server.sim.orders_by_client_id[c].filled_size for c in rungs)
    await until(server, "ac-ladder", "entry_filled")

    part = await act(server, "ac-ladder", "close", {"fraction": "0.5"})
    assert "still rest" in error(part, 409, "entries_resting")
    tps = await act(server, "ac-ladder", "targets", {"targets": ["63000"]})
    assert "still rest" in error(tps, 409, "entries_resting")

    reply = await act(server, "ac-ladder", "cancel")

    assert reply.status_code == 200, reply.text
    assert reply.json()["outcome"] == "entries_cancelled" and reply.json()["cancelled_orders"] >= 1
    assert all(server.sim.orders_by_client_id[c].state in ("filled", "canceled") for c in rungs)
    assert held(server, BTC) == filled and stop_coverage(server, BTC) >= filled
    assert (await view(server, "ac-ladder"))["state"] == "open"
    # now a part of it can be closed
    half = await act(server, "ac-ladder", "close", {"fraction": "0.5"})
    assert half.status_code == 200, half.text
    assert sum(t.size for t in live_targets(server, BTC)) == held(server, BTC) < filled


async def test_actions_and_their_keys_on_every_journal(tmp_path: Path, journal_url: str) -> None:
    """The action rows (numbers per trade, keys, stored answers) on SQLite and PostgreSQL alike."""
    settings = paper_settings(tmp_path, database_url=journal_url, monitor_poll_seconds=0.05)
    async with running_server(settings) as server:
        answer = await placed_with_targets(server, "j-act")
        stop = await act(server, "j-act", "stop", {"price": "59000"}, key="j-stop")
        half = await act(server, "j-act", "close", {"fraction": "0.5"}, key="j-half")
        whole = await act(server, "j-act", "close", key="j-all")
        replays = [
            await act(server, "j-act", "stop", {"price": "59000"}, key="j-stop"),
            await act(server, "j-act", "close", {"fraction": "0.5"}, key="j-half"),
            await act(server, "j-act", "close", key="j-all"),
        ]
        reused = await act(server, "j-act", "cancel", key="j-half")
        found = await until(server, "j-act", "closed")

    assert [r.status_code for r in (stop, half, whole)] == [200, 200, 200], whole.text
    assert [r.json() for r in replays] == [stop.json(), half.json(), whole.json()]
    assert half.json()["client_order_id"] == ids.action_close_id("j-act", 2)  # the trade's second action
    assert whole.json()["client_order_id"] == ids.action_close_id("j-act", 3)
    closed = Decimal(half.json()["closed_size"]) + Decimal(whole.json()["closed_size"])
    assert closed == Decimal(answer["size"])
    error(reused, 409, "idempotency_key_reused")
    assert next(e for e in found if e["type"] == "closed")["data"]["reason"] == "manual"


async def test_a_close_cut_off_before_it_left_is_looked_up_until_the_grace_then_sent_once(
    tmp_path: Path,
) -> None:
    """The request dies after the close's intent was journaled, while the close is on its way (it never
    reaches the exchange); after a restart, retries with the same key only look it up (it may have been
    carried out) until RECONCILE_GRACE_SECONDS have passed; then it is sent, once."""
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05)
    cid = ids.action_close_id("ac-cut", 1)
    async with running_server(settings) as server:
        exchange = server.app.state.sim_app
        await placed_with_targets(server, "ac-cut")
        faults = exchange.state.sim_state.faults
        await server.fault(kind="delay", seconds=30, count=1, path="/api/v1/trade/close-position")
        closing = asyncio.create_task(act(server, "ac-cut", "close", key="cut"))
        await wait(lambda: not faults.pending, "the close on its way")
        closing.cancel()  # the request dies with it
        with pytest.raises(asyncio.CancelledError):
            await closing
    assert sim_orders(server, cid) == [] and held(server, BTC) > 0

    async with running_server(settings, sim_app=exchange) as server:
        early = await act(server, "ac-cut", "close", key="cut")
        assert "looked up" in error(early, 503, "outcome_unknown")
        assert sim_orders(server, cid) == [] and held(server, BTC) > 0

        later = datetime.now(UTC) + timedelta(seconds=settings.reconcile_grace_seconds + 1)
        clock.use_source(lambda: later)
        try:
            reply = await act(server, "ac-cut", "close", key="cut")
            again = await act(server, "ac-cut", "close", key="cut")
        finally:
            clock.use_source(None)

        assert reply.status_code == 200, reply.text
        assert reply.json()["outcome"] == "closed" and again.json() == reply.json()
        assert len(sim_orders(server, cid)) == 1 and BTC not in server.sim.positions
        assert leftovers(server, BTC) == []


async def test_close_with_a_target_partly_filled_closes_the_rest_only(server: RunningServer) -> None:
    answer = await placed_with_targets(server, "ac-partly")
    size = Decimal(answer["size"])
    reply = await server.sim_http.post("/sim/partial-fills", json={"fraction": "0.5"})
    reply.raise_for_status()
    await server.set_price(BTC, "62100")  # TP1 fills in part and rests for the rest
    tp1 = server.sim.orders_by_client_id[ids.take_profit_id("ac-partly", 1)]
    assert tp1.state == "partially_filled"

    reply = await act(server, "ac-partly", "close")

    assert reply.status_code == 200, reply.text
    assert Decimal(reply.json()["closed_size"]) == size - tp1.filled_size
    assert tp1.state == "partially_canceled"
    assert BTC not in server.sim.positions and leftovers(server, BTC) == []
    found = await until(server, "ac-partly", "closed")
    assert next(e for e in found if e["type"] == "closed")["data"]["reason"] == "manual"


async def test_new_targets_the_exchange_did_not_take_now_are_sent_again_by_the_monitor(
    server: RunningServer,
) -> None:
    """The exchange limits us while the new targets go out: the answer says so, and the position monitor
    sends what was not accepted at its next pass, at the trader's prices (the simulation, seed 70: it
    was left unsent for good, the position half covered)."""
    answer = await placed_with_targets(server, "ac-tps-busy")
    size = Decimal(answer["size"])
    # a fault's path is that endpoint alone: the lookups (order-detail, orders-pending) are untouched
    await server.fault(kind="delay", seconds=0, count=1, path="/api/v1/trade/order")  # the first target
    await server.fault(kind="http_429", count=50, path="/api/v1/trade/order")  # the second, and its retries

    reply = await act(server, "ac-tps-busy", "targets", {"targets": ["63000", "65000"]})

    assert reply.status_code == 200, reply.text
    assert "not accepted by the exchange now" in reply.json()["message"], reply.json()["message"]
    assert sum(t.size for t in live_targets(server, BTC)) < size
    (await server.sim_http.delete("/sim/faults")).raise_for_status()  # the limit lifts
    await wait(lambda: sum(t.size for t in live_targets(server, BTC)) == size, "the new targets covering all")
    assert sorted({t.price for t in live_targets(server, BTC)}) == [Decimal(63000), Decimal(65000)]
