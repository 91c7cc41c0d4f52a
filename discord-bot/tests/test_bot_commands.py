"""Prefix commands through the real client: !test, !stats, !health, !halt / !resume and their checks."""

from __future__ import annotations

import asyncio
from typing import Any

from hit_bot.testing.fake_discord import FakeDiscord
from hit_bot.testing.fake_trading_server import FakeTradingServer
from hit_bot.testing.samples import INVALID, SIGNAL


async def _command(fake: FakeDiscord, text: str, author: str = "alice", channel: str = "chatter") -> str:
    mid = await fake.post_user_message(text, author=author, channel=channel)
    assert await fake.wait_until(lambda: fake.replies_to(mid)), f"no reply to {text!r}"
    [reply] = fake.replies_to(mid)
    return reply.text


async def test_bot_test_command_shows_fields_or_reason_and_never_trades(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    async with run_bot():
        valid = await _command(fake_discord, "!test " + SIGNAL)
        invalid = await _command(fake_discord, "!test " + INVALID)
        chatter = await _command(fake_discord, "!test hello there")
        missing = await _command(fake_discord, "!test")
    assert "Valid signal: LONG BTC-USDT" in valid and "TP1: 65000" in valid and "58000" in valid
    assert "Invalid signal" in invalid and "61000" in invalid
    assert "Not a signal" in chatter
    assert "Missing `message`" in missing
    assert trading_server.signal_attempts == []


async def test_bot_stats_and_health_show_the_server(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    async with run_bot():
        mid = await fake_discord.post_user_message(SIGNAL)
        assert await fake_discord.wait_until(lambda: fake_discord.reactions_on(mid))
        stats = await _command(fake_discord, "!stats")
        health = await _command(fake_discord, "!health")
    assert "Trading stats" in stats and "Placed\n1" in stats and "paper" in stats
    assert "Bot latency" in health and "reachable (ok, vfake)" in health
    assert "Exchange\nreachable" in health and "Halted\nno" in health


async def test_bot_health_says_unreachable_when_the_server_is_down(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    async with run_bot(trading_deadline_seconds=0.5, trading_attempt_timeout_seconds=0.2):
        await asyncio.sleep(0.1)
        trading_server.fail_next(1000)
        health = await _command(fake_discord, "!health")
        stats = await _command(fake_discord, "!stats")
    assert "unreachable" in health and "HTTP 503" in health
    assert stats.startswith("❌ Trading server:") and "did not answer" in stats


async def test_bot_halt_and_resume_work_for_admins_only(
    run_bot: Any, fake_discord: FakeDiscord, trading_server: FakeTradingServer
) -> None:
    async with run_bot():
        refused = await _command(fake_discord, "!halt because", author="alice")
        assert not trading_server.halt_state.halted
        halted = await _command(fake_discord, "!halt news event", author="carol")
        assert trading_server.halt_state.halted
        mid = await fake_discord.post_user_message(SIGNAL)
        assert await fake_discord.wait_until(lambda: fake_discord.reactions_on(mid))
        refused_resume = await _command(fake_discord, "!resume", author="bob")
        resumed = await _command(fake_discord, "!resume", author="carol")
    assert refused.startswith("⛔") and "only admins" in refused
    assert "Trading halted: news event (by carol)" in halted
    assert "halted" in fake_discord.replies_to(mid)[0].text and fake_discord.reactions_on(mid) == ["⚠️"]
    assert refused_resume.startswith("⛔")
    assert "Trading resumed" in resumed and not trading_server.halt_state.halted


async def test_bot_commands_refuse_authors_outside_the_allow_lists(
    run_bot: Any, fake_discord: FakeDiscord
) -> None:
    async with run_bot(allowed_role_ids=str(fake_discord.world.roles["Trader"])):
        refused = await _command(fake_discord, "!stats", author="bob")
        allowed = await _command(fake_discord, "!stats", author="alice")
    assert refused.startswith("⛔") and "allow-list" in refused
    assert "Trading stats" in allowed


async def test_bot_syncs_the_slash_commands(run_bot: Any, fake_discord: FakeDiscord) -> None:
    async with run_bot():
        pass
    assert {c["name"] for c in fake_discord.synced_commands} == {
        "stats",
        "health",
        "test",
        "halt",
        "resume",  # the operator's
        "positions",
        "trades",
        "trade",
        "pnl",
        "balance",
        "close",
        "cancel",
        "sl",  # the trading console's
    }


async def test_bot_unknown_command_error_is_logged_with_traceback_and_answered_briefly(
    run_bot: Any, fake_discord: FakeDiscord, caplog: Any
) -> None:
    async def broken_stats() -> None:
        raise RuntimeError("boom inside stats")

    async with run_bot() as bot:
        bot.trading.stats = broken_stats  # the one failure no fake produces: a bug in our own code
        reply = await _command(fake_discord, "!stats")
        unknown = await fake_discord.post_user_message("!nosuchcommand")
        await asyncio.sleep(0.2)
    assert reply == "Something went wrong; the error was logged."
    [record] = [r for r in caplog.records if r.getMessage() == "command stats failed"]
    assert record.exc_info is not None and "boom inside stats" in str(record.exc_info[1])
    assert fake_discord.replies_to(unknown) == []
