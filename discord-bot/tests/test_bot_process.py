"""`python -m hit_bot` as a process, aimed at the fakes through DISCORD_API_BASE / DISCORD_GATEWAY_URL."""

from __future__ import annotations

import asyncio
import os
import socket
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


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _bot_that_cannot_get_in(tmp_path: Path, **settings: str) -> tuple[int, str, str]:
    """`python -m hit_bot` with these settings; (exit code, console output, logs/discord-bot.log)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("DISCORD_", "TRADING_"))}
    env.update(DISCORD_CHANNEL_IDS="1", TRADING_SERVER_API_KEY=API_KEY, STATE_DIR=str(tmp_path / "state"),
               LOG_DIR=str(tmp_path / "logs"), SYNC_SLASH_COMMANDS="false", **settings)
    empty = tmp_path / "none.env"
    empty.write_text("")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hit_bot", "--env-file", str(empty), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), 60)
    log_file = tmp_path / "logs" / "discord-bot.log"
    assert proc.returncode is not None
    return proc.returncode, output.decode(), log_file.read_text(encoding="utf-8")


async def test_bot_process_without_network_says_one_sentence_on_the_console_and_in_its_log(
    tmp_path: Path,
) -> None:
    port = _closed_port()
    code, console, logged = await _bot_that_cannot_get_in(
        tmp_path, DISCORD_TOKEN=TOKEN, DISCORD_API_BASE=f"http://127.0.0.1:{port}/api/v10")
    sentence = f"Could not reach Discord at 127.0.0.1:{port}"
    assert code == 1
    assert "Traceback" not in console
    [line] = [line for line in console.splitlines() if "ERROR" in line]
    assert sentence in line and "check this machine's internet connection" in line
    assert sentence in logged
    assert TOKEN not in console + logged


async def test_bot_process_with_a_refused_token_says_so_on_the_console_and_in_its_log(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    code, console, logged = await _bot_that_cannot_get_in(
        tmp_path, DISCORD_TOKEN="not-" + TOKEN, DISCORD_API_BASE=fake_discord.api_base,
        DISCORD_GATEWAY_URL=fake_discord.gateway_url)
    sentence = "Discord refused DISCORD_TOKEN: copy the bot's token again"
    assert code == 1
    assert "Traceback" not in console
    [line] = [line for line in console.splitlines() if "ERROR" in line]
    assert sentence in line
    assert sentence in logged
    assert TOKEN not in console + logged


async def _bot_command(env_file: Path, *args: str) -> tuple[int, str]:
    """`python -m hit_bot --env-file ENV_FILE ARGS...` with no bot or vocabulary setting in its environment:
    (exit code, console output)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("DISCORD_", "TRADING_", "PARSER_", "LOG_", "STATE_"))
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hit_bot", "--env-file", str(env_file), *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, output.decode()


async def test_bot_takes_parser_vocabulary_from_its_env_file(
    trading_server: FakeTradingServer, tmp_path: Path
) -> None:
    words = tmp_path / "words.toml"
    words.write_text('[labels]\ntarget = ["ZIEL"]\n', encoding="utf-8")
    messages = tmp_path / "messages.jsonl"
    messages.write_text('{"text": "LONG BTC-USDT Entry: 60000 SL: 58000 Ziel: 65000"}\n', encoding="utf-8")
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"TRADING_SERVER_URL={trading_server.url}\nTRADING_SERVER_API_KEY={API_KEY}\n"
        f"LOG_DIR={tmp_path / 'logs'}\nPARSER_VOCABULARY={words}\n"
    )
    code, output = await _bot_command(env_file, "replay", str(messages))
    assert code == 0, output
    assert len(trading_server.trades) == 1  # read as a signal only with the file's word for a target


async def test_bot_with_an_unusable_vocabulary_file_says_so_in_one_sentence_and_does_not_start(
    tmp_path: Path,
) -> None:
    words = tmp_path / "words.toml"
    words.write_text('[labels]\nprofit = ["ZIEL"]\n', encoding="utf-8")
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"DISCORD_TOKEN={TOKEN}\nDISCORD_CHANNEL_IDS=1\nTRADING_SERVER_API_KEY={API_KEY}\n"
        f"STATE_DIR={tmp_path / 'state'}\nLOG_DIR={tmp_path / 'logs'}\nPARSER_VOCABULARY={words}\n"
    )
    code, output = await _bot_command(env_file)
    sentence = f"hit-bot cannot start: vocabulary file {words}: labels.profit is not a kind"
    assert code == 2
    assert "Traceback" not in output
    assert sentence in output
    assert sentence in (tmp_path / "logs" / "discord-bot.log").read_text(encoding="utf-8")
