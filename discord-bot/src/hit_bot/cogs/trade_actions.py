"""The trading console's actions (issue #15), for admins: !close, !cancel, !sl. Prefix and slash.

Each names a live trade (`cogs/trade_lookup.py`), says what it will do, and waits for the admin's
Confirm (`cogs/confirm.py`). The request then carries `Idempotency-Key: discord-<action>-<command id>`
(the command message's id, or the slash command's interaction id): every attempt of the trading
client, a second press, and "Try again" after no answer all send the same key, so the server acts once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from discord import app_commands
from discord.ext import commands

from hit_bot import render_trades
from hit_bot.checks import admin_only
from hit_bot.cogs.confirm import ConfirmView, Done
from hit_bot.cogs.operator import Context, hybrid
from hit_bot.cogs.trade_lookup import (
    TradeProblem,
    find_trade,
    is_percent,
    is_stop,
    parse_percent,
    parse_stop,
    trade_and_argument,
)
from hit_bot.render_trades import Plan, cancel_summary, close_summary, headline, price
from hit_bot.trading_client import ServerRefused, ServerUnreachable, TradingClient, TradingServerError
from hit_shared.trade_actions import CancelRequest, CloseRequest, TradeAction
from hit_shared.trades import TradeState, TradeView

if TYPE_CHECKING:
    from hit_bot.bot import HitBot

log = logging.getLogger(__name__)
CONFIRM_TIMEOUT_SECONDS = 60.0
TRADE_HELP = "a symbol (ETH, ETH-USDT) or a trade id (discord:…)"


def idempotency_key(action: TradeAction, ctx: Context) -> str:
    """One key per command: a slash command's context message carries the interaction's id."""
    return f"discord-{action.value}-{ctx.message.id}"


class TradeActionsCog(commands.Cog, name="Trade actions"):
    def __init__(self, bot: HitBot, confirm_timeout: float = CONFIRM_TIMEOUT_SECONDS) -> None:
        self.bot = bot
        self.confirm_timeout = confirm_timeout

    @hybrid("close", "Close a trade at market: all of it, or a percentage (admins only)")
    @app_commands.describe(trade=TRADE_HELP, percent="how much to close, 1 to 100 (default: all)")
    @commands.check(admin_only)
    async def close(self, ctx: Context, trade: str | None = None, percent: str | None = None) -> None:
        ref, amount = await trade_and_argument(self.bot, ctx.message, trade, percent, is_percent)
        fraction = parse_percent(amount)
        await ctx.defer()
        found = await self._live_trade(ref)
        if not found.filled_size:
            raise TradeProblem(f"Nothing of {headline(found)} has filled: `!cancel` its entries instead.")
        body = CloseRequest(fraction=fraction)
        await self._ask(ctx, Plan(TradeAction.CLOSE, found, body, close_summary(found, fraction)))

    @hybrid("cancel", "Cancel a trade's unfilled entries (admins only)")
    @app_commands.describe(trade=TRADE_HELP)
    @commands.check(admin_only)
    async def cancel(self, ctx: Context, trade: str | None = None) -> None:
        ref, _ = await trade_and_argument(self.bot, ctx.message, trade, None)
        await ctx.defer()
        found = await self._live_trade(ref)
        await self._ask(ctx, Plan(TradeAction.CANCEL, found, CancelRequest(), cancel_summary(found)))

    @hybrid("sl", "Move a trade's stop: a price, or be for breakeven (admins only)")
    @app_commands.describe(trade=TRADE_HELP, stop="the new stop price, or be for the average entry")
    @commands.check(admin_only)
    async def sl(self, ctx: Context, trade: str | None = None, stop: str | None = None) -> None:
        ref, given = await trade_and_argument(self.bot, ctx.message, trade, stop, is_stop)
        request = parse_stop(given)
        await ctx.defer()
        found = await self._live_trade(ref)
        to = f"breakeven ({price(found.avg_entry)})" if request.breakeven else price(request.price)
        summary = f"Move the stop of {headline(found)} from {render_trades.stop_text(found)} to {to}."
        await self._ask(ctx, Plan(TradeAction.STOP, found, request, summary))

    async def _live_trade(self, ref: str) -> TradeView:
        found = await find_trade(self.bot.trading, ref, live_only=True)
        if found.state not in (TradeState.OPEN, TradeState.PENDING):
            raise TradeProblem(
                f"{headline(found)} (`{found.signal_id}`) is {found.state.value}: nothing to do."
            )
        return found

    async def _ask(self, ctx: Context, plan: Plan) -> None:
        key = idempotency_key(plan.action, ctx)

        async def run(who: str) -> Done:
            return await self.carry_out(plan, key, who)

        view = ConfirmView(plan, ctx.author.id, self.confirm_timeout, run)
        view.message = await ctx.reply(
            embed=render_trades.confirm_embed(plan, self.confirm_timeout), view=view, mention_author=False
        )

    async def carry_out(self, plan: Plan, key: str, who: str) -> Done:
        return await carry_out(self.bot.trading, plan, key, who)


async def carry_out(client: TradingClient, plan: Plan, key: str, who: str) -> Done:
    """Send a decided action under `key`; the outcome as an embed (the server's own sentence when it
    refuses). Also used by the channel's management messages (cogs/following.py)."""
    log.warning("%s on %s decided by %s (key %s)", plan.action.value, plan.signal_id, who, key)
    try:
        result = await client.act(plan.action, plan.signal_id, key, plan.body)
    except ServerUnreachable as exc:
        return Done(render_trades.unreachable_embed(plan, str(exc)), may_retry=True)
    except ServerRefused as exc:
        log.info("%s on %s refused: %s (%s)", plan.action.value, plan.signal_id, exc.message, exc.code)
        return Done(render_trades.refused_embed(plan, exc.message))
    except TradingServerError as exc:
        return Done(render_trades.refused_embed(plan, str(exc)))
    log.warning("%s on %s: %s", plan.action.value, plan.signal_id, result.message)
    return Done(render_trades.result_embed(plan, result, who), acted=True)
