"""Commands for people: !stats, !health, !test, and the admin-only !halt and !resume (also as slash); the
error handler of every command (the trading console's too: `trades.py`, `trade_actions.py`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from hit_bot import render
from hit_bot.checks import admin_only, allowed_user
from hit_bot.cogs.trade_lookup import TradeProblem
from hit_bot.parsing.explain import explain
from hit_bot.pipeline import classify
from hit_bot.trading_client import TradingServerError
from hit_shared.models import HaltRequest

if TYPE_CHECKING:
    from hit_bot.bot import HitBot

log = logging.getLogger(__name__)
Context = commands.Context["HitBot"]
Callback = Callable[..., Coroutine[Any, Any, None]]


def hybrid(name: str, description: str) -> Callable[[Callback], commands.HybridCommand[Any, ..., None]]:
    """A prefix + slash command. (discord.py's own decorator signature is one mypy cannot solve.)"""
    return commands.hybrid_command(name=name, description=description)


class OperatorCog(commands.Cog, name="Operator"):
    def __init__(self, bot: HitBot) -> None:
        self.bot = bot

    @hybrid("stats", "The trading server's statistics")
    @commands.check(allowed_user)
    async def stats(self, ctx: Context) -> None:
        await ctx.reply(embed=render.stats_embed(await self.bot.trading.stats()), mention_author=False)

    @hybrid("health", "Bot latency and the trading server's health")
    @commands.check(allowed_user)
    async def health(self, ctx: Context) -> None:
        latency = self.bot.latency * 1000 if math.isfinite(self.bot.latency) else None
        try:
            health, problem = await self.bot.trading.health(), None
        except TradingServerError as exc:
            health, problem = None, str(exc)
        await ctx.reply(embed=render.health_embed(latency, health, problem), mention_author=False)

    @hybrid("test", "Parse a message as a signal without trading it")
    @commands.check(allowed_user)
    async def test(self, ctx: Context, *, message: str) -> None:
        await ctx.reply(
            reading_block(message),
            embed=render.parse_embed(classify(message, self.bot.parse)),
            mention_author=False,
        )

    @hybrid("halt", "Stop all new trades (admins only)")
    @commands.check(admin_only)
    async def halt(self, ctx: Context, *, reason: str = "halted from Discord") -> None:
        who = f"{reason} (by {ctx.author})"[:500]
        state = await self.bot.trading.halt(HaltRequest(reason=who))
        log.warning("trading halted by %s (%s): %s", ctx.author, ctx.author.id, reason)
        await ctx.reply(
            f"🛑 Trading halted: {state.reason}. New signals will be rejected until `resume`.",
            mention_author=False,
        )

    @hybrid("resume", "Allow new trades again (admins only)")
    @commands.check(admin_only)
    async def resume(self, ctx: Context) -> None:
        await self.bot.trading.resume()
        log.warning("trading resumed by %s (%s)", ctx.author, ctx.author.id)
        await ctx.reply("▶️ Trading resumed: new signals will be traded again.", mention_author=False)


# Discord refuses a message longer than 2000 characters; the code fence takes the rest.
_READING_LIMIT = 1900


def reading_block(message: str) -> str:
    """`!test`: how the parser read the message (hit_bot.parsing.explain), as a code block. The lines hold
    only the normalised text (no markdown, no backtick), so the message cannot break out of the block."""
    lines = "\n".join(explain(message))
    if len(lines) > _READING_LIMIT:
        lines = lines[: _READING_LIMIT - 3] + "..."
    return f"```\n{lines}\n```"


class ErrorsCog(commands.Cog, name="Errors"):
    """The one place where command errors become replies."""

    def __init__(self, bot: HitBot) -> None:
        self.bot = bot

    @staticmethod
    def message_for(ctx: Context, error: commands.CommandError) -> str | None:
        """The reply for a known error, None for unknown ones (and for ignored ones: see caller)."""
        wrapped = (commands.CommandInvokeError, commands.HybridCommandError)
        original = error.original if isinstance(error, wrapped) else error
        if isinstance(original, commands.CommandInvokeError):
            original = original.original
        if isinstance(original, TradeProblem):
            return f"🔎 {original}"
        if isinstance(original, TradingServerError):
            return f"❌ Trading server: {original}"
        if isinstance(original, commands.MissingRequiredArgument):
            usage = (
                f"{ctx.clean_prefix}{ctx.command.qualified_name} {ctx.command.signature}"
                if ctx.command
                else ""
            )
            return f"Missing `{original.param.name}`. Usage: `{usage.strip()}`"
        if isinstance(original, commands.CheckFailure | commands.UserInputError):
            return f"⛔ {original}" if str(original) else "⛔ You can't use this command here."
        return None

    @commands.Cog.listener()
    async def on_command_error(self, ctx: Context, error: commands.CommandError) -> None:
        if isinstance(error, commands.CommandNotFound):
            return
        text = self.message_for(ctx, error)
        if text is None:
            log.error("command %s failed", ctx.command, exc_info=getattr(error, "original", error))
            text = "Something went wrong; the error was logged."
        try:
            await ctx.reply(text, mention_author=False)
        except discord.HTTPException as exc:
            log.warning("could not send the error reply: %s", exc.status)
