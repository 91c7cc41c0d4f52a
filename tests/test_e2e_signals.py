"""End to end with real processes: a message in the fake Discord channel -> the bot (`python -m hit_bot`)
-> the trading server (`python -m hit_server`, demo mode) -> the BloFin simulator (its own process),
and the outcome back in the channel. Fixtures: tests/conftest.py."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hit_bot.testing.samples import CHATTER, INVALID
from hit_server.trading import ids

MARKET_SIGNAL = "LONG SOL-USDT Entry: market SL: 145 TP: 156, 160"
LIMIT_SIGNAL = "SHORT ETH-USDT Entry: 3010 SL: 3100 TP: 2950, 2900"


def signal_id(system: Any, message_id: int) -> str:
    return f"discord:{system.discord.channel('signals')}:{message_id}"


async def answered(system: Any, message_id: int) -> None:
    fake = system.discord
    await system.wait_for(
        lambda: bool(fake.reactions_on(message_id)) and bool(fake.replies_to(message_id)),
        30, f"the bot's reply and reaction to message {message_id}",
    )


async def test_e2e_market_signal_becomes_entry_with_stop_and_targets_and_a_placed_reply(
    system: Any,
) -> None:
    mid = await system.discord.post_user_message(MARKET_SIGNAL)
    await answered(system, mid)
    sid = signal_id(system, mid)
    state = await system.sim.state()
    async with system.server.client() as http:
        stored = (await http.get(f"/api/v1/signals/{sid}")).json()

    entries = state.entry_orders(sid)
    assert [o["clientOrderId"] for o in entries] == [ids.entry_id(sid, 1)]
    entry = entries[0]
    assert (entry["instId"], entry["side"], entry["orderType"], entry["state"]) == (
        "SOL-USDT", "buy", "market", "filled")
    assert entry["slTriggerPrice"] == "145"  # the stop travels with the entry
    size = Decimal(entry["size"])
    tps = [state.order(ids.take_profit_id(sid, n)) or {} for n in (1, 2)]
    assert [(t["price"], t["side"], t["reduceOnly"], t["state"]) for t in tps] == [
        ("156", "sell", "true", "live"), ("160", "sell", "true", "live")]
    assert sum(Decimal(t["size"]) for t in tps) == size
    assert state.position_size("SOL-USDT") == size
    assert state.naked_positions() == []
    assert stored["status"] == "placed" and Decimal(stored["size"]) == size

    fake = system.discord
    replies = fake.replies_to(mid)
    assert fake.reactions_on(mid) == ["✅"]
    assert len(replies) == 1
    assert "Trade placed: LONG SOL-USDT" in replies[0].text


async def test_e2e_limit_signal_rests_at_the_exchange_with_its_stop_attached(system: Any) -> None:
    mid = await system.discord.post_user_message(LIMIT_SIGNAL)
    await answered(system, mid)
    sid = signal_id(system, mid)
    state = await system.sim.state()

    entries = state.entry_orders(sid)
    assert [o["clientOrderId"] for o in entries] == [ids.entry_id(sid, 1)]
    entry = entries[0]
    assert (entry["side"], entry["orderType"], entry["price"], entry["state"]) == (
        "sell", "limit", "3010", "live")
    assert entry["slTriggerPrice"] == "3100"
    assert state.position_size("ETH-USDT") == 0
    assert system.discord.reactions_on(mid) == ["✅"]
    assert "Trade placed: SHORT ETH-USDT" in system.discord.replies_to(mid)[0].text


async def test_e2e_invalid_signal_gets_a_reason_and_no_order_chatter_gets_nothing(system: Any) -> None:
    fake = system.discord
    chatter = await fake.post_user_message(CHATTER)
    invalid = await fake.post_user_message(INVALID)
    await answered(system, invalid)
    marker = await fake.post_user_message(MARKET_SIGNAL)  # answered after the chatter was read
    await answered(system, marker)
    state = await system.sim.state()
    async with system.server.client() as http:
        lookup = await http.get(f"/api/v1/signals/{signal_id(system, invalid)}")

    replies = fake.replies_to(invalid)
    assert len(replies) == 1 and "Signal not understood" in replies[0].text
    assert "stop" in replies[0].text.lower()  # the reason names what is wrong
    assert fake.reactions_on(invalid) == ["⚠️"]
    assert state.entry_orders(signal_id(system, invalid)) == []
    assert lookup.status_code == 404  # never reached the server
    assert fake.replies_to(chatter) == [] and fake.reactions_on(chatter) == []
    assert len(state.entry_orders(signal_id(system, marker))) == 1
