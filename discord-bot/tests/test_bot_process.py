"""`python -m hit_bot` as a process, aimed at the fakes through DISCORD_API_BASE / DISCORD_GATEWAY_URL."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from hit_bot.testing.fake_discord import FakeDiscord
from hit_bot.testing.fake_trading_server import FakeTradingServer
from hit_bot.testing.samples import API_KEY, SIGNAL, TOKEN


async def test_bot_process_reads_env_vars_and_trades_a_signal(
    fake_discord: FakeDiscord, trading_server: FakeTradingServer, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("DISCORD_", "TRADING_"))}
    env.update(
        DISCORD_TOKEN=TOKEN, DISCORD_CHANNEL_IDS=str(fake_discord.channel("signals")),
        DISCORD_API_BASE=fake_discord.api_base, DISCORD_GATEWAY_URL=fake_discord.gateway_url,
        TRADING_SERVER_URL=trading_server.url, TRADING_SERVER_API_KEY=API_KEY,
        STATE_DIR=str(tmp_path / "state"), GUILD_READY_TIMEOUT="0.1", LOG_LEVEL="DEBUG",
    )
    empty = tmp_path / "none.env"
    empty.write_text("")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hit_bot", "--env-file", str(empty), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert await fake_discord.wait_until(lambda: fake_discord.identifies == 1, within=20)
        await asyncio.sleep(0.3)
        mid = await fake_discord.post_user_message(SIGNAL)
        assert await fake_discord.wait_until(lambda: fake_discord.reactions_on(mid), within=10)
    finally:
        proc.terminate()
        output, _ = await asyncio.wait_for(proc.communicate(), 20)
    logged = output.decode()
    assert fake_discord.reactions_on(mid) == ["✅"] and len(trading_server.trades) == 1
    assert "connected as hit-bot" in logged and "bot stopped" in logged  # SIGTERM closed it cleanly
    assert proc.returncode == 0
    assert TOKEN not in logged and API_KEY not in logged
