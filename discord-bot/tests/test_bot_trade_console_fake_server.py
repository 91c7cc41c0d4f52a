"""The trading console against the fake trading server, for what the real one can't be made to do in a
test: two live trades on one symbol (its database allows one), and a server that does not answer while an
admin confirms (its faults), after which "Try again" must repeat the request under the same key."""

from __future__ import annotations

from typing import Any

from hit_bot.cogs.trade_actions import TradeActionsCog
from hit_bot.testing.fake_discord import FakeDiscord
from hit_bot.testing.fake_trading_server import FakeTradingServer

LIMIT_ETH = "LONG ETH-USDT Entry: 3000 SL: 2900 TP: 3300"
MARKET_BTC = "LONG BTC-USDT Entry: market SL: 58000 TP: 65000"
WAIT = 15.0  # seconds: a bound on a busy machine, never a sleep


async def _signal(fake: FakeDiscord, text: str) -> str:
    mid = await fake.post_user_message(text)
    assert await fake.wait_until(lambda: fake.reactions_on(mid) == ["✅"], WAIT)
    return f"discord:{fake.channel('signals')}:{mid}"


async def _command(fake: FakeDiscord, text: str, author: str = "carol") -> tuple[int, str]:
    mid = await fake.post_user_message(text, author=author, channel="chatter")
    assert await fake.wait_until(lambda: fake.replies_to(mid), WAIT), f"no reply to {text!r}"
    reply = fake.replies_to(mid)[0]
    return reply.id, reply.text


async def test_a_symbol_with_two_live_trades_asks_for_the_id_and_the_id_works(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    async with run_bot():
        first = await _signal(fake_discord, LIMIT_ETH)
        second = await _signal(fake_discord, LIMIT_ETH)
        _, which = await _command(fake_discord, "!cancel ETH")
        _, read = await _command(fake_discord, "!trade eth", author="alice")
        prompt, asked = await _command(fake_discord, f"!cancel {second}")
        await fake_discord.press(prompt, "Confirm", author="carol")
        assert await fake_discord.wait_until(lambda: "✅ Cancelled" in fake_discord.text_of(prompt), WAIT)
    for text in (which, read):
        assert "ETH-USDT has 2 live trades; name one by its id" in text and first in text and second in text
    assert "Cancel the entries of LONG ETH-USDT (nothing filled)" in asked and second in asked
    assert [(sid, action) for sid, action, _ in trading_server.book.acted] == [(second, "cancel")]
    assert trading_server.book.views[first].state == "pending"


async def test_no_answer_offers_try_again_which_repeats_the_same_key_and_acts_once(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    async with run_bot(trading_deadline_seconds=0.6, trading_attempt_timeout_seconds=0.2) as bot:
        actions = bot.get_cog("Trade actions")
        assert isinstance(actions, TradeActionsCog)
        sid = await _signal(fake_discord, MARKET_BTC)
        prompt, _ = await _command(fake_discord, "!close BTC")
        trading_server.fail_next(10_000)  # the server answers 503 to everything from now on
        await fake_discord.press(prompt, "Confirm", author="carol")
        assert await fake_discord.wait_until(lambda: "❌ No answer" in fake_discord.text_of(prompt), WAIT)
        unanswered = fake_discord.text_of(prompt)
        retry_labels = [b["label"] for b in fake_discord.buttons(prompt)]
        trading_server.clear_faults()
        await fake_discord.press(prompt, "Try again", author="carol")
        assert await fake_discord.wait_until(lambda: "✅ Closed" in fake_discord.text_of(prompt), WAIT)
    assert "may or may not have been done" in unanswered and retry_labels == ["Try again", "Cancel"]
    keys = trading_server.action_keys
    assert (
        len(keys) >= 2
        and len(set(keys)) == 1
        and keys[0] is not None
        and keys[0].startswith("discord-close-")
    )
    assert [(s, action) for s, action, _ in trading_server.book.acted] == [(sid, "close")]
    assert trading_server.book.views[sid].state == "closed"


async def test_a_management_message_naming_a_symbol_with_two_live_trades_acts_on_neither(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    async with run_bot():
        first = await _signal(fake_discord, LIMIT_ETH)
        second = await _signal(fake_discord, LIMIT_ETH)
        close = await fake_discord.post_user_message("Close ETH now")
        assert await fake_discord.wait_until(lambda: fake_discord.replies_to(close), WAIT)
        said = fake_discord.replies_to(close)[0].text
    assert "2 ETH-USDT trades from this channel are live" in said and first in said and second in said
    assert trading_server.book.acted == []  # never a guess
