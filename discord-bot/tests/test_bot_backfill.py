"""Messages missed while the bot was away are read back from history and traded once, never too old ones."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from hit_bot.testing.fake_discord import FakeDiscord
from hit_bot.testing.fake_trading_server import FakeTradingServer
from hit_bot.testing.samples import CHATTER, INVALID, SHORT_SIGNAL, SIGNAL


async def test_bot_backfill_trades_missed_messages_once_after_a_restart(
    run_bot: Any, make_settings: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    trading_server.max_signal_age_seconds = 600  # the server's limit wins over the setting (300)
    settings = make_settings()
    now = datetime.now(UTC)
    async with run_bot(settings):
        seen = await fake_discord.post_user_message(CHATTER, at=now - timedelta(hours=2))
        await asyncio.sleep(0.2)
    too_old = await fake_discord.post_user_message(SHORT_SIGNAL, at=now - timedelta(seconds=900))
    missed = await fake_discord.post_user_message(SIGNAL, at=now - timedelta(seconds=400))
    missed_invalid = await fake_discord.post_user_message(INVALID)
    by_a_bot = await fake_discord.post_user_message(SIGNAL, author="robo")
    async with run_bot(settings):
        assert await fake_discord.wait_until(
            lambda: fake_discord.reactions_on(missed) and fake_discord.reactions_on(missed_invalid))
        await asyncio.sleep(0.3)
    async with run_bot(settings):  # a second restart finds nothing new
        await asyncio.sleep(0.3)
    assert [a["signal_id"] for a in trading_server.signal_attempts] == [
        f"discord:{fake_discord.channel('signals')}:{missed}"]
    assert fake_discord.reactions_on(missed) == ["✅"]
    assert len(fake_discord.replies_to(missed)) == 1
    assert fake_discord.reactions_on(missed_invalid) == ["⚠️"]
    for untouched in (seen, too_old, by_a_bot):
        assert fake_discord.replies_to(untouched) == [] and fake_discord.reactions_on(untouched) == []


async def test_bot_backfill_after_a_gateway_outage_and_resume(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    async with run_bot():
        live = await fake_discord.post_user_message(SIGNAL)
        assert await fake_discord.wait_until(lambda: fake_discord.reactions_on(live))
        await fake_discord.drop_connection(hold=True)
        missed = await fake_discord.post_user_message(SHORT_SIGNAL)
        fake_discord.release_gateway()
        assert await fake_discord.wait_until(lambda: fake_discord.reactions_on(missed), within=8)
        await asyncio.sleep(0.2)
    assert fake_discord.resumes == 1
    assert sorted(a["symbol"] for a in trading_server.signal_attempts) == ["BTC-USDT", "ETH-USDT"]
    assert len(fake_discord.replies_to(live)) == 1 and len(fake_discord.replies_to(missed)) == 1


async def test_bot_backfill_does_nothing_on_a_first_start(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    await fake_discord.post_user_message(SIGNAL)
    async with run_bot():
        await asyncio.sleep(0.3)
    assert trading_server.signal_attempts == [] and fake_discord.posts == []


async def test_bot_asks_again_about_an_unanswered_signal_after_a_restart(
    run_bot: Any, make_settings: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    settings = make_settings(trading_deadline_seconds=0.5, trading_attempt_timeout_seconds=0.2)
    async with run_bot(settings):
        await asyncio.sleep(0.1)
        trading_server.hang_next(1000)
        mid = await fake_discord.post_user_message(SIGNAL)
        assert await fake_discord.wait_until(lambda: fake_discord.reactions_on(mid))
    trading_server.clear_faults()
    async with run_bot(settings):
        assert await fake_discord.wait_until(lambda: len(fake_discord.replies_to(mid)) == 2)
        await asyncio.sleep(0.2)
    async with run_bot(settings):  # answered now: not asked a third time
        await asyncio.sleep(0.3)
    first, second = fake_discord.replies_to(mid)
    assert "unreachable" in first.text.lower() and "Trade placed" in second.text
    assert fake_discord.reactions_on(mid) == ["❌", "✅"]
    assert len(trading_server.signal_attempts) == 1 and len(trading_server.trades) == 1


async def test_bot_backfill_checks_roles_of_authors_read_from_history(
    run_bot: Any, make_settings: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    settings = make_settings(allowed_role_ids=str(fake_discord.world.roles["Trader"]))
    async with run_bot(settings):
        await fake_discord.post_user_message(CHATTER)
        await asyncio.sleep(0.2)
    by_guest = await fake_discord.post_user_message(SIGNAL, author="bob")
    by_trader = await fake_discord.post_user_message(SHORT_SIGNAL, author="alice")
    async with run_bot(settings):
        assert await fake_discord.wait_until(lambda: fake_discord.reactions_on(by_trader))
        await asyncio.sleep(0.2)
    assert [a["symbol"] for a in trading_server.signal_attempts] == ["ETH-USDT"]
    assert fake_discord.replies_to(by_guest) == []
    member_path = f"/members/{fake_discord.user('alice').id}"
    assert any(path.endswith(member_path) for _, path, _ in fake_discord.requests)
