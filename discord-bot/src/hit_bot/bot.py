"""The Discord bot: a discord.py `commands.Bot` wired to the trading client, the state store and the parser.

`run_bot(settings)` is the whole life of the bot: it opens the collaborators, connects, and closes
everything on the way out. Tests build `HitBot` themselves and point it at a fake Discord through
DISCORD_API_BASE / DISCORD_GATEWAY_URL (see `point_at_discord`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import discord
import httpx
import yarl
from discord.ext import commands

from hit_bot.cogs.following import FollowingCog
from hit_bot.cogs.notify import NotifyCog
from hit_bot.cogs.operator import ErrorsCog, OperatorCog
from hit_bot.cogs.signals import SignalsCog
from hit_bot.cogs.trade_actions import TradeActionsCog
from hit_bot.cogs.trades import TradesCog
from hit_bot.pipeline import Parser
from hit_bot.settings import BotSettings
from hit_bot.state import StateStore
from hit_bot.trading_client import TradingClient

log = logging.getLogger(__name__)


def point_at_discord(api_base: str, gateway_url: str) -> None:
    """Aim discord.py's REST and gateway at these URLs (class attributes: call before login)."""
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def intents() -> discord.Intents:
    """Default intents plus message content (a privileged intent: enable it in the Developer Portal)."""
    wanted = discord.Intents.default()
    wanted.message_content = True
    return wanted


class HitBot(commands.Bot):
    def __init__(
        self, settings: BotSettings, trading: TradingClient, state: StateStore, parse: Parser
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned_or(settings.command_prefix),
            intents=intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=settings.guild_ready_timeout,
            help_command=None,
        )
        self.settings = settings
        self.trading = trading
        self.state = state
        self.parse = parse
        self.following = FollowingCog(self)  # management messages: the signals cog hands them on

    async def setup_hook(self) -> None:
        await self.add_cog(SignalsCog(self))
        await self.add_cog(self.following)
        await self.add_cog(OperatorCog(self))
        await self.add_cog(TradesCog(self))
        await self.add_cog(TradeActionsCog(self))
        await self.add_cog(ErrorsCog(self))
        if self.settings.notify_channel_id is not None:
            await self.add_cog(NotifyCog(self, self.settings.notify_channel_id))
        if self.settings.sync_slash_commands:
            try:
                await self.tree.sync()
            except discord.HTTPException as exc:
                log.warning("could not sync slash commands (%s); prefix commands still work", exc.status)

    async def on_ready(self) -> None:
        log.info(
            "connected as %s; watching channels %s",
            self.user,
            ", ".join(str(c) for c in self.settings.discord_channel_ids),
        )


def make_trading_client(http: httpx.AsyncClient, settings: BotSettings) -> TradingClient:
    return TradingClient(
        http,
        settings.trading_server_url,
        settings.trading_server_api_key.get_secret_value(),
        deadline=settings.trading_deadline_seconds,
        attempt_timeout=settings.trading_attempt_timeout_seconds,
    )


@asynccontextmanager
async def open_bot(settings: BotSettings, parse: Parser) -> AsyncIterator[HitBot]:
    """A bot with its collaborators open, aimed at the configured Discord; closed on exit.

    The caller starts it (`bot.start(token)`, or `login` + `connect` in tests).
    """
    point_at_discord(settings.discord_api_base, settings.discord_gateway_url)
    async with httpx.AsyncClient() as http:
        bot = HitBot(settings, make_trading_client(http, settings), StateStore(settings.state_dir), parse)
        async with bot:
            yield bot


def close_on_signals(bot: HitBot) -> None:
    """SIGTERM / SIGINT close the bot cleanly (state saved, sessions closed) where the platform allows."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, lambda: bot.loop.create_task(bot.close()))
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl+C still raises KeyboardInterrupt
            return


async def run_bot(settings: BotSettings, parse: Parser) -> None:
    """Run until closed. Raises discord.LoginFailure / PrivilegedIntentsRequired for the caller to explain."""
    async with open_bot(settings, parse) as bot:
        close_on_signals(bot)
        await bot.start(settings.discord_token.get_secret_value())
    log.info("bot stopped")
