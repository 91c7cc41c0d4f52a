"""Server events are posted to the notify channel; a 404 on /events is tolerated."""

from __future__ import annotations

import asyncio
from typing import Any

from hit_bot.testing.fake_discord import FakeDiscord
from hit_bot.testing.fake_trading_server import FakeTradingServer
from hit_bot.testing.samples import SIGNAL


async def test_bot_posts_new_server_events_to_the_notify_channel(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    trading_server.add_event("placed", "from before the bot's first start")
    notify, signals = fake_discord.channel("notify"), fake_discord.channel("signals")
    async with run_bot(notify_channel_id=str(notify), discord_channel_ids=f"{signals},{notify}"):
        in_notify = await fake_discord.post_user_message(SIGNAL, channel="notify")
        assert await fake_discord.wait_until(lambda: fake_discord.reactions_on(in_notify))
        await asyncio.sleep(0.2)
        trading_server.add_event("stop_repaired", "stop re-placed at 58000", f"discord:{notify}:{in_notify}")
        trading_server.add_event("closed_for_safety", "ETH closed", f"discord:{signals}:123")
        trading_server.add_event("halted", "trading halted by operator")
        assert await fake_discord.wait_until(lambda: len(fake_discord.posts_in("notify")) == 4)
        await asyncio.sleep(0.2)
    posts = fake_discord.posts_in("notify")[1:]  # the first is the signal's own reply
    assert len(posts) == 3
    assert posts[0].reply_to == in_notify and "**stop_repaired**: stop re-placed at 58000" in posts[0].text
    assert posts[1].reply_to is None and f"/{signals}/123" in posts[1].text
    assert posts[2].text == "**halted**: trading halted by operator"
    assert "from before" not in "".join(p.text for p in fake_discord.posts)


async def test_bot_notifications_tolerate_a_server_without_an_event_feed(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    def feed_reads() -> int:
        return sum(1 for _, path in trading_server.requests if path.startswith("/api/v1/events"))

    trading_server.events_enabled = False
    async with run_bot(notify_channel_id=str(fake_discord.channel("notify"))):
        assert await fake_discord.wait_until(lambda: feed_reads() >= 2)  # refused (404), asked again
        trading_server.events_enabled = True
        trading_server.add_event("placed", "now there is a feed")
        # the next read sees the feed, this first event only: the bot's starting point, not posted
        seen = feed_reads()
        assert await fake_discord.wait_until(lambda: feed_reads() > seen)
        trading_server.add_event("placed", "and a second event")
        assert await fake_discord.wait_until(lambda: fake_discord.posts_in("notify"))
    assert any(path.startswith("/api/v1/events") for _, path in trading_server.requests[:5])
    assert [p.text for p in fake_discord.posts_in("notify")] == ["**placed**: and a second event"]
