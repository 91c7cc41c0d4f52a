"""Watches the signal channels: new messages, edits, and messages missed while disconnected.

The work itself is `hit_bot.pipeline.process`; this cog decides which messages go there and shows
the outcome (a reply and a reaction). Each signal_id is handled under its own lock, so a live message
and the backfill reading the same message never send it twice (the server's idempotency is the
second guard).
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from hit_bot import render
from hit_bot.checks import is_watched_channel, may_post_signals
from hit_bot.pipeline import Forwarded, ManagementMessage, NotSignal, Origin, Outcome, process
from hit_bot.trading_client import TradingServerError, Unreachable
from hit_shared.logs import signal_context
from hit_shared.models import SignalSource, TradeSignal

if TYPE_CHECKING:
    from hit_bot.bot import HitBot

log = logging.getLogger(__name__)
ANSWERED_IN_MEMORY = 10_000
PENDING_ID = re.compile(r"^discord:(\d+):(\d+)$")


def signal_id_of(message: discord.Message) -> str:
    return f"discord:{message.channel.id}:{message.id}"


def posted_at(message: discord.Message) -> datetime:
    """When the text took its present form: an edit that turned chatter into a signal posts it anew."""
    return message.edited_at or message.created_at


def origin_of(message: discord.Message) -> Origin:
    channel_name = getattr(message.channel, "name", None)
    return Origin(
        signal_id=signal_id_of(message),
        posted_at=posted_at(message),
        source=SignalSource(platform="discord", channel=f"{message.channel.id} #{channel_name}"[:128],
                            message=str(message.id), author=f"{message.author.id} {message.author}"[:128]),
    )


class SignalsCog(commands.Cog):
    def __init__(self, bot: HitBot) -> None:
        self.bot = bot
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._answered: OrderedDict[str, None] = OrderedDict()  # shown this session (any outcome)
        self._backfill_lock = asyncio.Lock()

    # ---- events -----------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if not is_watched_channel(self.bot.settings, message.channel.id):
            return
        try:
            if await may_post_signals(self.bot.settings, message):
                await self.handle(message)
        finally:
            self.bot.state.saw(message.channel.id, message.id)

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        message = payload.message
        if "content" not in payload.data or not await may_post_signals(self.bot.settings, message):
            return
        if payload.cached_message is not None and payload.cached_message.content == message.content:
            return  # an embed unfurled, a pin: not a change of text
        if self.bot.state.send_state(signal_id_of(message)) is not None:
            before = payload.cached_message.content if payload.cached_message is not None else None
            if not await self.bot.following.signal_edited(message, before):
                await self._reply(message, content=render.EDIT_NOTICE)
            return
        await self.handle(message, edited=True)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        await self.backfill()

    @commands.Cog.listener()
    async def on_resumed(self) -> None:
        await self.backfill()

    # ---- the work ---------------------------------------------------------------------------------

    async def handle(self, message: discord.Message, *, edited: bool = False) -> Outcome | None:
        """Parse, forward, show. Returns None when this message was already answered.

        A live message and the backfill may both bring the same message: the per-message lock and
        the answered marks make the second one a no-op (and the server's idempotency backs that up).
        """
        signal_id = signal_id_of(message)
        lock = self._locks.get(signal_id)
        if lock is None:
            lock = self._locks[signal_id] = asyncio.Lock()
        with signal_context(signal_id):
            return await self._handle_locked(message, lock, signal_id, edited=edited)

    async def _handle_locked(
        self, message: discord.Message, lock: asyncio.Lock, signal_id: str, *, edited: bool
    ) -> Outcome | None:
        async with lock:
            if self.bot.state.send_state(signal_id) == "done":
                return None
            if signal_id in self._answered and not edited:
                return None
            outcome = await process(message.content, origin_of(message), parse=self.bot.parse,
                                    client=self.bot.trading, before_send=self._record_intent)
            unknown = isinstance(outcome, Forwarded) and isinstance(outcome.result, Unreachable)
            if isinstance(outcome, Forwarded) and not unknown:
                self.bot.state.mark_answered(signal_id)
            if not unknown:
                self._remember(signal_id)
            await self.show(message, outcome, edited=edited)
        return outcome

    def _remember(self, signal_id: str) -> None:
        self._answered[signal_id] = None
        while len(self._answered) > ANSWERED_IN_MEMORY:
            self._answered.popitem(last=False)

    def _record_intent(self, signal: TradeSignal) -> None:
        self.bot.state.mark_sending(signal.signal_id)

    async def show(self, message: discord.Message, outcome: Outcome, *, edited: bool = False) -> None:
        if isinstance(outcome, ManagementMessage):
            await self.bot.following.follow(message, outcome.management, edited=edited)
            return
        if isinstance(outcome, NotSignal):
            return
        await self._reply(message, embed=render.outcome_embed(outcome))
        emoji = render.reaction_for(outcome)
        if emoji:
            try:
                await message.add_reaction(emoji)
            except discord.HTTPException as exc:
                log.warning("could not react to message %s: %s", message.id, exc.status)

    async def _reply(self, message: discord.Message, *, content: str | None = None,
                     embed: discord.Embed | None = None) -> None:
        try:
            if embed is not None:
                await message.reply(content=content, embed=embed, mention_author=False)
            else:
                await message.reply(content=content, mention_author=False)
        except discord.HTTPException as exc:
            log.warning("could not reply to message %s: %s", message.id, exc.status)

    # ---- missed messages --------------------------------------------------------------------------

    async def max_age_seconds(self) -> int:
        """The server's signal age limit if it says one, else MAX_SIGNAL_AGE_SECONDS."""
        try:
            health = await self.bot.trading.health()
        except TradingServerError as exc:
            log.info("no age limit from /health (%s); using the setting", exc)
            return self.bot.settings.max_signal_age_seconds
        return health.max_signal_age_seconds or self.bot.settings.max_signal_age_seconds

    async def backfill(self) -> int:
        """Process messages posted after the last one seen, no older than the age limit. Returns a count."""
        async with self._backfill_lock:
            cutoff = datetime.now(UTC) - timedelta(seconds=await self.max_age_seconds())
            handled = await self._retry_pending(cutoff)
            for channel_id in self.bot.settings.discord_channel_ids:
                handled += await self._backfill_channel(channel_id, cutoff)
            return handled

    async def _retry_pending(self, cutoff: datetime) -> int:
        """Ask again about signals sent without an answer; the same signal_id makes it safe."""
        handled = 0
        for signal_id in self.bot.state.pending():
            match = PENDING_ID.match(signal_id)
            channel = self.bot.get_channel(int(match[1])) if match else None
            if match is None or not isinstance(channel, discord.TextChannel):
                continue
            try:
                message = await channel.fetch_message(int(match[2]))
            except discord.HTTPException as exc:
                log.info("pending signal %s: message not readable (%s)", signal_id, exc.status)
                continue
            if posted_at(message) >= cutoff and await may_post_signals(self.bot.settings, message):
                log.info("asking the server again about %s", signal_id)
                handled += await self.handle(message) is not None
        return handled

    async def _backfill_channel(self, channel_id: int, cutoff: datetime) -> int:
        last = self.bot.state.last_seen(channel_id)
        channel = self.bot.get_channel(channel_id)
        if last is None or not isinstance(channel, discord.abc.Messageable):
            log.info("no backfill for channel %s (%s)", channel_id,
                     "nothing seen yet" if last is None else "channel not visible")
            return 0
        after = discord.Object(id=max(last, discord.utils.time_snowflake(cutoff)))
        handled = 0
        try:
            async for message in channel.history(limit=None, after=after, oldest_first=True):
                if posted_at(message) >= cutoff and await may_post_signals(self.bot.settings, message):
                    handled += await self.handle(message) is not None
                self.bot.state.saw(channel_id, message.id)
        except discord.HTTPException as exc:
            log.warning("could not read the history of channel %s: %s", channel_id, exc.status)
        if handled:
            log.info("backfill: %d missed message(s) handled in channel %s", handled, channel_id)
        return handled
