"""A real discord.py bot against the fake Discord and the fake trading server: signals end to end."""

from __future__ import annotations

import asyncio
from typing import Any

from hit_bot.testing.fake_discord import FakeDiscord
from hit_bot.testing.fake_trading_server import FakeTradingServer
from hit_bot.testing.samples import CHATTER, INVALID, SHORT_SIGNAL, SIGNAL

QUIET = 0.3  # how long "nothing happens" is watched for


async def test_bot_signal_in_watched_channel_is_traded_once_with_one_reply(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    async with run_bot():
        mid = await fake_discord.post_user_message(SIGNAL)
        assert await fake_discord.wait_until(lambda: fake_discord.reactions_on(mid))
        await asyncio.sleep(QUIET)
    assert len(trading_server.signal_attempts) == 1
    sent = trading_server.signal_attempts[0]
    assert sent["signal_id"] == f"discord:{fake_discord.channel('signals')}:{mid}"
    assert sent["raw_text"] == SIGNAL
    assert sent["source"]["platform"] == "discord"
    assert sent["posted_at"].startswith(str(fake_discord.messages[fake_discord.channel("signals")][0]
                                             ["timestamp"])[:19])
    replies = fake_discord.replies_to(mid)
    assert len(replies) == 1
    text = replies[0].text
    for expected in ("Trade placed", "LONG BTC-USDT", "60000", "58000", "TP1: 65000", "1 contracts", "paper",
                     "10x"):
        assert expected in text
    assert fake_discord.reactions_on(mid) == ["✅"]


async def test_bot_ignores_wrong_channel_bot_author_and_chatter(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    async with run_bot():
        ids = [
            await fake_discord.post_user_message(SIGNAL, channel="chatter"),
            await fake_discord.post_user_message(SIGNAL, author="robo"),
            await fake_discord.post_user_message(CHATTER),
        ]
        await asyncio.sleep(QUIET)
    assert trading_server.signal_attempts == []
    assert fake_discord.posts == []
    assert all(fake_discord.reactions_on(mid) == [] for mid in ids)


async def test_bot_ignores_authors_outside_the_allow_lists(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    trader_role = fake_discord.world.roles["Trader"]
    bob = fake_discord.user("bob").id
    async with run_bot(allowed_role_ids=str(trader_role), allowed_user_ids=str(bob)):
        await fake_discord.post_user_message(SHORT_SIGNAL, author="alice")  # by role
        await fake_discord.post_user_message(SIGNAL, author="bob")  # by user id
        assert await fake_discord.wait_until(lambda: len(fake_discord.posts) == 2)
    async with run_bot(allowed_role_ids=str(trader_role)):
        await fake_discord.post_user_message("LONG SOL-USDT Entry: 150 SL: 140 TP: 170", author="bob")
        await asyncio.sleep(QUIET)
    assert sorted(a["symbol"] for a in trading_server.signal_attempts) == ["BTC-USDT", "ETH-USDT"]
    assert len(fake_discord.posts) == 2


async def test_bot_invalid_signal_gets_the_reason_and_no_post(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    async with run_bot():
        mid = await fake_discord.post_user_message(INVALID)
        assert await fake_discord.wait_until(lambda: fake_discord.reactions_on(mid))
    assert trading_server.signal_attempts == []
    [reply] = fake_discord.replies_to(mid)
    assert "not understood" in reply.text
    assert "stop loss 61000" in reply.text.lower()
    assert fake_discord.reactions_on(mid) == ["⚠️"]


async def test_bot_rejected_signal_shows_the_server_reason(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    trading_server.reject_symbols.add("BTC-USDT")
    async with run_bot():
        mid = await fake_discord.post_user_message(SIGNAL)
        assert await fake_discord.wait_until(lambda: fake_discord.reactions_on(mid))
    [reply] = fake_discord.replies_to(mid)
    assert "rejected" in reply.text and "the risk rules refuse BTC-USDT" in reply.text
    assert fake_discord.reactions_on(mid) == ["⚠️"]


async def test_bot_retries_a_server_that_fails_twice_then_trades_once(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    async with run_bot():
        await asyncio.sleep(0.1)  # the startup /health call is done
        trading_server.fail_next(1, status=502)
        trading_server.throttle_next(1, retry_after=0.05)
        mid = await fake_discord.post_user_message(SIGNAL)
        assert await fake_discord.wait_until(lambda: fake_discord.reactions_on(mid))
        await asyncio.sleep(QUIET)
    posts = [path for method, path in trading_server.requests if method == "POST"]
    assert posts == ["/api/v1/signals"] * 3
    assert len(trading_server.signal_attempts) == 1 and len(trading_server.trades) == 1
    assert len(fake_discord.replies_to(mid)) == 1
    assert fake_discord.reactions_on(mid) == ["✅"]


async def test_bot_says_unreachable_within_the_deadline_when_the_server_never_answers(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    async with run_bot(trading_deadline_seconds=0.6, trading_attempt_timeout_seconds=0.2):
        await asyncio.sleep(0.1)
        trading_server.hang_next(100)
        mid = await fake_discord.post_user_message(SIGNAL)
        started = asyncio.get_running_loop().time()
        assert await fake_discord.wait_until(lambda: fake_discord.reactions_on(mid), within=3)
        elapsed = asyncio.get_running_loop().time() - started
    assert elapsed < 1.5
    [reply] = fake_discord.replies_to(mid)
    assert "unreachable" in reply.text.lower() and "Do not re-post" in reply.text
    assert fake_discord.reactions_on(mid) == ["❌"]


async def test_bot_edit_of_chatter_into_a_signal_is_traded_once(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    async with run_bot():
        mid = await fake_discord.post_user_message("BTC setup coming, wait for it")
        await asyncio.sleep(0.1)
        await fake_discord.edit_user_message("signals", mid, SIGNAL)
        assert await fake_discord.wait_until(lambda: fake_discord.reactions_on(mid))
        await fake_discord.edit_user_message("signals", mid, SIGNAL + " good luck")
        assert await fake_discord.wait_until(lambda: len(fake_discord.replies_to(mid)) == 2)
        await asyncio.sleep(QUIET)
    assert len(trading_server.signal_attempts) == 1
    first, second = fake_discord.replies_to(mid)
    assert "Trade placed" in first.text
    assert "Edits don't change a trade already sent" in second.text


async def test_bot_prefix_commands_in_the_signal_channel_are_never_traded(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    async with run_bot():
        mid = await fake_discord.post_user_message("!test " + SIGNAL)
        assert await fake_discord.wait_until(lambda: fake_discord.replies_to(mid))
        await asyncio.sleep(QUIET)
    assert trading_server.signal_attempts == []
    [reply] = fake_discord.replies_to(mid)
    assert "Valid signal" in reply.text and "nothing was sent" in reply.text
