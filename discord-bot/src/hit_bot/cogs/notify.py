"""Posts the trading server's events (fills, stops hit, closes) to NOTIFY_CHANNEL_ID.

Polls GET /api/v1/events?after=<last id> every EVENTS_POLL_SECONDS. A 404 means the server has no
event feed (yet): the poller keeps quiet and tries again later. On the very first run (no cursor yet)
old events are skipped, not replayed into the channel. An event about a Discord signal posted in the
notify channel is a reply to that message; otherwise it carries a link to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from hit_bot import render
from hit_bot.trading_client import FeatureMissing, ServerEvent, TradingServerError

if TYPE_CHECKING:
    from hit_bot.bot import HitBot

log = logging.getLogger(__name__)
DISCORD_SIGNAL = re.compile(r"^discord:(\d+):(\d+)$")


class NotifyCog(commands.Cog):
    def __init__(self, bot: HitBot, channel_id: int) -> None:
        self.bot = bot
        self.channel_id = channel_id
        self._task: asyncio.Task[None] | None = None
        self._missing_logged = False

    async def cog_load(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hit-bot-events")

    async def cog_unload(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        await self.bot.wait_until_ready()
        while not self.bot.is_closed():
            await self.poll_once()
            await asyncio.sleep(self.bot.settings.events_poll_seconds)

    async def poll_once(self) -> int:
        """Fetch and post new events; returns how many were posted. Never raises for server trouble."""
        cursor = self.bot.state.event_cursor
        try:
            events = await self.bot.trading.events(cursor)
        except FeatureMissing:
            if not self._missing_logged:
                log.info("the trading server has no event feed (404); notifications wait for it")
                self._missing_logged = True
            return 0
        except TradingServerError as exc:
            log.warning("could not fetch server events: %s", exc)
            return 0
        if cursor is None:
            if events:
                self.bot.state.set_event_cursor(max(e.id for e in events))
                log.info("skipped %d event(s) from before the bot's first start", len(events))
            else:
                self.bot.state.set_event_cursor(0)
            return 0
        posted = 0
        for event in sorted(events, key=lambda e: e.id):
            if await self.post(event):
                posted += 1
            self.bot.state.set_event_cursor(event.id)
        return posted

    async def post(self, event: ServerEvent) -> bool:
        channel = self.bot.get_channel(self.channel_id)
        if not isinstance(channel, discord.TextChannel):
            log.warning("NOTIFY_CHANNEL_ID %s is not a text channel the bot can see", self.channel_id)
            return False
        reference, jump = None, None
        match = DISCORD_SIGNAL.match(event.signal_id or "")
        if match:
            signal_channel, message_id = int(match[1]), int(match[2])
            if signal_channel == channel.id:
                reference = discord.MessageReference(message_id=message_id, channel_id=signal_channel,
                                                     guild_id=channel.guild.id, fail_if_not_exists=False)
            else:
                jump = f"https://discord.com/channels/{channel.guild.id}/{signal_channel}/{message_id}"
        try:
            if reference is not None:
                await channel.send(render.event_text(event, jump), reference=reference,
                                   mention_author=False)
            else:
                await channel.send(render.event_text(event, jump))
        except discord.HTTPException as exc:
            log.warning("could not post event %s: %s", event.id, exc.status)
            return False
        return True
