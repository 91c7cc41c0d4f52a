"""Nothing the bot logs or posts carries the Discord token or the trading server's API key."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from hit_bot.testing.fake_discord import FakeDiscord
from hit_bot.testing.fake_trading_server import FakeTradingServer
from hit_bot.testing.samples import API_KEY, INVALID, SIGNAL, TOKEN


async def test_bot_never_logs_or_posts_its_secrets(
    run_bot: Any,
    fake_discord: FakeDiscord,
    trading_server: FakeTradingServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with run_bot(trading_deadline_seconds=0.5, trading_attempt_timeout_seconds=0.2,
                       notify_channel_id=str(fake_discord.channel("notify"))):
        ok = await fake_discord.post_user_message(SIGNAL)
        bad = await fake_discord.post_user_message(INVALID)
        assert await fake_discord.wait_until(
            lambda: fake_discord.reactions_on(ok) and fake_discord.reactions_on(bad))
        trading_server.api_key = "another-key-the-bot-does-not-have-0123456789"  # 401s from now on
        refused = await fake_discord.post_user_message("SHORT ETH-USDT Entry: 3200 SL: 3300 TP: 3000")
        assert await fake_discord.wait_until(lambda: fake_discord.reactions_on(refused))
        trading_server.fail_next(1000)
        for text in ("!stats", "!health", "!halt now"):
            mid = await fake_discord.post_user_message(text, author="carol", channel="chatter")
            assert await fake_discord.wait_until(lambda mid=mid: fake_discord.replies_to(mid))
        await asyncio.sleep(0.2)
    assert "unauthorized" in fake_discord.replies_to(refused)[0].text  # the 401 was shown, not the key
    logged = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    assert "POST /api/v1/signals" in logged or "forwarding" in logged
    bodies = "\n".join(body for _, _, body in fake_discord.requests)
    assert len(fake_discord.posts) >= 6
    for secret in (TOKEN, API_KEY, TOKEN[:20], API_KEY[:20]):
        assert secret not in logged
        assert secret not in bodies
