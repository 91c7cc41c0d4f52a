"""Fixtures for the bot's tests: a fake Discord, a fake trading server, settings, and a running bot."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import discord
import pytest

import hit_bot.parser
from hit_bot.bot import HitBot, open_bot, point_at_discord
from hit_bot.pipeline import Parser
from hit_bot.settings import BotSettings, load_settings
from hit_bot.state import StateStore
from hit_bot.testing.fake_discord import FakeDiscord
from hit_bot.testing.fake_trading_server import FakeTradingServer
from hit_bot.testing.samples import API_KEY, TOKEN
from hit_bot.trading_client import TradingClient
from hit_server.testing import BASE_URL, TEST_API_KEY, RunningServer, paper_settings, running_server


@pytest.fixture
def parse() -> Parser:
    return hit_bot.parser.parse


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from each test, never from the machine's environment."""
    for name in list(os.environ):
        if name.upper() in {field.upper() for field in BotSettings.model_fields}:
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def restore_discord_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bot aims discord.py's class attributes at the fake; put them back after each test."""
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY",
                        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(TOKEN) as fake:
        yield fake


@pytest.fixture
async def trading_server() -> AsyncIterator[FakeTradingServer]:
    async with FakeTradingServer(API_KEY) as server:
        yield server


SettingsFactory = Callable[..., BotSettings]


@pytest.fixture
def make_settings(
    fake_discord: FakeDiscord, trading_server: FakeTradingServer, tmp_path: Any
) -> SettingsFactory:
    def make(**overrides: Any) -> BotSettings:
        values: dict[str, Any] = {
            "discord_token": TOKEN,
            "discord_channel_ids": str(fake_discord.channel("signals")),
            "admin_role_ids": str(fake_discord.world.roles["Admin"]),
            "trading_server_url": trading_server.url,
            "trading_server_api_key": API_KEY,
            "state_dir": tmp_path / "state",
            "discord_api_base": fake_discord.api_base,
            "discord_gateway_url": fake_discord.gateway_url,
            "guild_ready_timeout": 0.1,
            "trading_deadline_seconds": 3.0,
            "trading_attempt_timeout_seconds": 1.0,
            "events_poll_seconds": 0.05,
        }
        values.update(overrides)
        return load_settings(None, **values)

    return make


BotRunner = Callable[..., AbstractAsyncContextManager[HitBot]]


@pytest.fixture
def run_bot(make_settings: SettingsFactory, parse: Parser) -> BotRunner:
    """`async with run_bot(**setting_overrides) as bot:` a real discord.py bot, connected and ready."""

    @asynccontextmanager
    async def run(settings: BotSettings | None = None, **overrides: Any) -> AsyncIterator[HitBot]:
        settings = settings or make_settings(**overrides)
        async with open_bot(settings, parse) as bot:
            await bot.login(settings.discord_token.get_secret_value())
            task = asyncio.create_task(bot.connect())
            try:
                await asyncio.wait_for(bot.wait_until_ready(), 10)
                await asyncio.sleep(0.05)  # let on_ready listeners (backfill) start
                yield bot
            finally:
                await bot.close()
                await asyncio.wait_for(task, 10)

    return run


@pytest.fixture
async def paper(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """The real trading server in paper mode, in this process, its monitor polling every 50 ms."""
    data = tmp_path / "server"
    data.mkdir()
    async with running_server(paper_settings(data, monitor_poll_seconds=0.05)) as server:
        yield server


@pytest.fixture
def run_bot_on_paper(paper: RunningServer, make_settings: SettingsFactory, parse: Parser) -> BotRunner:
    """`async with run_bot_on_paper(**setting_overrides) as bot:` the real discord.py bot on the fake
    Discord, trading on the real paper server (`paper`), connected and ready."""

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[HitBot]:
        settings = make_settings(
            trading_server_url=BASE_URL, trading_server_api_key=TEST_API_KEY, **overrides
        )
        point_at_discord(settings.discord_api_base, settings.discord_gateway_url)
        trading = TradingClient(paper.http, BASE_URL, TEST_API_KEY, deadline=10.0, attempt_timeout=5.0)
        async with HitBot(settings, trading, StateStore(settings.state_dir), parse) as bot:
            await bot.login(settings.discord_token.get_secret_value())
            task = bot.loop.create_task(bot.connect())
            try:
                await bot.wait_until_ready()
                yield bot
            finally:
                await bot.close()
                await task

    return run
