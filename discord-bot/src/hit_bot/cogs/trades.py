"""The trading console's read commands (issue #15): !positions, !trades, !trade, !pnl, !balance.

Prefix and slash (hybrid), for the allowed users (`checks.allowed_user`). Each defers first, so a slow
server never makes Discord drop a slash command (it must be acknowledged within 3 seconds).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from discord import app_commands
from discord.ext import commands

from hit_bot import render_trades
from hit_bot.checks import allowed_user
from hit_bot.cogs.operator import Context, hybrid
from hit_bot.cogs.trade_lookup import TradeProblem, find_trade, trade_and_argument
from hit_bot.trading_client import ExchangePosition, TradingServerError
from hit_shared.trades import PnlPeriod, TradeState

if TYPE_CHECKING:
    from hit_bot.bot import HitBot

log = logging.getLogger(__name__)
TRADE_STATES = {state.value: state for state in TradeState}


class TradesCog(commands.Cog, name="Trades"):
    def __init__(self, bot: HitBot) -> None:
        self.bot = bot

    async def _marks(self) -> dict[str, ExchangePosition] | None:
        """The exchange's positions by symbol; None (shown as "mark n/a") when they can't be read. One
        attempt's timeout: the trades are worth showing without the marks."""
        try:
            positions = await self.bot.trading.positions(
                deadline=self.bot.settings.trading_attempt_timeout_seconds
            )
        except TradingServerError as exc:
            log.info("positions not readable for !positions: %s", exc)
            return None
        return {p.inst_id: p for p in positions}

    @hybrid("positions", "Open trades: size, entry, mark, unrealised P&L, stop, next target")
    @commands.check(allowed_user)
    async def positions(self, ctx: Context) -> None:
        await ctx.defer()
        page = await self.bot.trading.trades(state=TradeState.OPEN, limit=render_trades.MAX_POSITIONS)
        marks = await self._marks() if page.trades else {}
        await ctx.reply(embed=render_trades.positions_embed(page, marks), mention_author=False)

    @hybrid("trades", "Recent trades, newest first: all, or only open, pending, closed, cancelled, failed")
    @app_commands.describe(state="all (default), open, pending, closed, cancelled or failed")
    @commands.check(allowed_user)
    async def trades(self, ctx: Context, state: str = "all") -> None:
        wanted = state.strip().lower()
        if wanted != "all" and wanted not in TRADE_STATES:
            raise TradeProblem(f"`{state[:30]}` is not a state: all, {', '.join(TRADE_STATES)}.")
        await ctx.defer()
        page = await self.bot.trading.trades(
            state=TRADE_STATES.get(wanted), limit=render_trades.MAX_TRADE_LINES
        )
        await ctx.reply(embed=render_trades.trades_embed(page, wanted), mention_author=False)

    @hybrid("trade", 'One trade in detail, by symbol or id (or reply to my "Trade placed" message)')
    @app_commands.describe(trade="a symbol (ETH, ETH-USDT) or a trade id (discord:…)")
    @commands.check(allowed_user)
    async def trade(self, ctx: Context, trade: str | None = None) -> None:
        await ctx.defer()
        ref, _ = await trade_and_argument(self.bot, ctx.message, trade, None)
        found = await find_trade(self.bot.trading, ref, live_only=False)
        detail = await self.bot.trading.trade(found.signal_id)
        await ctx.reply(embed=render_trades.trade_embed(detail), mention_author=False)

    @hybrid("pnl", "Realised P&L per day, week or month")
    @app_commands.describe(period="day (default), week or month")
    @commands.check(allowed_user)
    async def pnl(self, ctx: Context, period: str = "day") -> None:
        try:
            chosen = PnlPeriod(period.strip().lower())
        except ValueError:
            raise TradeProblem(f"`{period[:30]}` is not a period: day, week or month.") from None
        await ctx.defer()
        await ctx.reply(
            embed=render_trades.pnl_embed(await self.bot.trading.pnl(chosen)), mention_author=False
        )

    @hybrid("balance", "The exchange account: equity, available margin, unrealised P&L")
    @commands.check(allowed_user)
    async def balance(self, ctx: Context) -> None:
        await ctx.defer()
        await ctx.reply(
            embed=render_trades.balance_embed(await self.bot.trading.account()), mention_author=False
        )
