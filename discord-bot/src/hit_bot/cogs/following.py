"""Follows a signal channel's management messages (issue #17): "close half", "SL to entry", "cancel ETH".

The signals cog hands over every message the parser reads as management (`follow`), from an author
allowed to post signals there. Per channel, FOLLOW_MANAGEMENT (FOLLOW_MANAGEMENT_CHANNELS) says:
- off: nothing;
- confirm (the default): a reply saying exactly what would be done, with a Confirm button any admin may
  press (and Cancel); nothing happens without it;
- act: it is done at once, and the reply says what the server did.
Which trade and which action: hit_bot/following.py. Every request carries the Idempotency-Key
`discord-follow-<message id>`, so a second delivery, a backfill after a reconnect, a restart or an edit of
the same message acts at most once; the server journals the action under that key and puts it in the
action's event (GET /api/v1/events).

Also here: a member who may not post signals asking for an order (a reply, or naming a live trade's
symbol) is told no; an edit of a
forwarded signal that changes its stop or its targets moves the stop or replaces the targets (the entry is
never traded again); a forwarded signal deleted before anything filled has its entries cancelled (act).
"""

from __future__ import annotations

import hashlib
import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from hit_bot import following, render_trades
from hit_bot.checks import is_admin, is_watched_channel, may_post_signals
from hit_bot.cogs.confirm import ConfirmView, Done, Pressers
from hit_bot.cogs.trade_actions import carry_out
from hit_bot.following import Nothing, NoTrade, Report
from hit_bot.parsing.management import Management
from hit_bot.render_trades import Plan, headline
from hit_bot.trading_client import TradeNotFound, TradingServerError
from hit_shared.models import fmt
from hit_shared.trade_actions import CancelRequest, StopRequest, TargetsRequest, TradeAction
from hit_shared.trades import TradeState, TradeView

if TYPE_CHECKING:
    from hit_bot.bot import HitBot

log = logging.getLogger(__name__)
ADMINS_ONLY = "Only an admin can confirm or cancel what the channel asked."
NOT_ALLOWED = "Only members allowed to post signals here can manage trades: nothing was done."
EDITED_AFTER_ACTING = (
    "This message was already acted on; an edit of it does nothing more. Post a new message for a new order."
)
NO_ADMINS = (
    "Nothing was done: FOLLOW_MANAGEMENT=confirm waits for an admin's Confirm, and no admin role is set "
    "(ADMIN_ROLE_IDS). Set one, or FOLLOW_MANAGEMENT=act to act at once, or off."
)


class FollowingCog(commands.Cog, name="Following"):
    def __init__(self, bot: HitBot) -> None:
        self.bot = bot

    # ---- management messages ------------------------------------------------------------------------

    async def follow(self, message: discord.Message, management: Management, *, edited: bool = False) -> None:
        """Carries out (or asks an admin about) what a management message says, per the channel's mode.
        `edited`: the message's text changed; once its order was acted on, an edit acts no more."""
        mode = self.bot.settings.follow_mode(message.channel.id)
        if mode == "off":
            return
        trade = await self._trade_of(message, management)
        if trade is None:
            return
        if edited and management.moves_money and await self._acted_on(message, trade):
            await _reply(message, EDITED_AFTER_ACTING)
            return
        if mode == "confirm" and management.moves_money and not self.bot.settings.admin_role_ids:
            await _reply(message, NO_ADMINS)
            return
        await self._steps(message, management, trade, act=mode == "act")

    async def _trade_of(self, message: discord.Message, management: Management) -> TradeView | None:
        """The trade the message is about; None (and, for an order, a reply saying why) when not found."""
        reference = message.reference
        replied = reference.message_id if reference is not None else None
        try:
            found = await following.find_trade(
                self.bot.trading, channel_id=message.channel.id, replied_to=replied, symbol=management.symbol
            )
        except TradingServerError as exc:
            if management.moves_money:
                await _reply(message, f"⚠️ Nothing was done: the trading server did not answer ({exc}).")
            return None
        if isinstance(found, NoTrade):
            if management.moves_money:
                await _reply(message, f"🔎 Nothing was done: {found.reason}.")
            return None
        return found

    async def _acted_on(self, message: discord.Message, trade: TradeView) -> bool:
        """The trade's events hold an action sent under one of this message's keys (done or refused: the
        server keeps its answer for that key either way). Unknown (server unreachable): False, and the
        server's own key check still stops a second action."""
        try:
            detail = await self.bot.trading.trade(trade.signal_id)
        except TradingServerError:
            return False
        first = following.idempotency_key(message.id)
        keys = {str(event.data.get("key", "")) for event in detail.events}
        return any(key == first or key.startswith(f"{first}-") for key in keys)

    async def _steps(
        self, message: discord.Message, management: Management, trade: TradeView, act: bool
    ) -> None:
        """The message's action, then each of its other steps on the trade as the one before left it (a
        part closed: its sizes are new); a step not done stops the rest."""
        for step, asked in enumerate((management, *management.also)):
            if step:
                try:
                    trade = await self.bot.trading.trade(trade.signal_id)
                except TradingServerError as exc:
                    await _reply(
                        message, f"⚠️ The rest was not done: the trading server did not answer ({exc})"
                    )
                    return
            decided = following.plan(asked, trade)
            key = following.idempotency_key(message.id, step)
            if not await self._do(message, decided, key, asked.moves_money, act):
                return

    async def _do(
        self, message: discord.Message, decided: Plan | Report | Nothing, key: str, asked: bool, act: bool
    ) -> bool:
        """One step of a management message; False when the steps after it must wait (it was not done)."""
        if isinstance(decided, Nothing):
            if asked:
                await _reply(message, f"🔎 Nothing was done: {decided.reason}.")
            return False
        if isinstance(decided, Report):
            await _react(message, "✅" if decided.agrees else "👀")
            if not decided.agrees:
                await _reply(message, decided.text)
            return False
        return await self.carry_out_or_ask(message, decided, key, act)

    async def carry_out_or_ask(self, message: discord.Message, plan: Plan, key: str, act: bool) -> bool:
        """In act mode the action is sent at once (True when the server did it); otherwise a prompt waits
        for an admin's Confirm (True: the next step gets its own prompt)."""
        pressers = Pressers(lambda user: is_admin(self.bot.settings, user), ADMINS_ONLY)
        timeout = self.bot.settings.follow_confirm_seconds

        async def run(who: str) -> Done:
            return await carry_out(self.bot.trading, plan, key, who)

        if act:
            done = await run(f"FOLLOW_MANAGEMENT=act, asked by {message.author}")
            view = None
            if done.may_retry:
                view = ConfirmView(plan, 0, timeout, run, retry=True, pressers=pressers)
            posted = await _reply(message, embed=done.embed, view=view)
            if view is not None:
                view.message = posted
            return done.acted
        view = ConfirmView(plan, 0, timeout, run, pressers=pressers)
        embed = render_trades.confirm_embed(plan, timeout)
        embed.description = f"The channel asks: {plan.summary}\nAn admin may confirm within {timeout:g} s."
        view.message = await _reply(message, embed=embed, view=view)
        return True

    # ---- members who may not manage trades ----------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """An order about a trade by a member who may not post signals (a reply, or a message naming the
        symbol of this channel's one live trade of it): told no, nothing done. Other chat stays unanswered."""
        settings = self.bot.settings
        if message.author.bot or not is_watched_channel(settings, message.channel.id):
            return
        if settings.follow_mode(message.channel.id) == "off" or await may_post_signals(settings, message):
            return
        if message.content.startswith(settings.command_prefix):
            return
        parsed = self.bot.parse(message.content)
        management = parsed.management
        if parsed.kind != "management" or management is None or not management.moves_money:
            return
        if message.reference is None:
            if management.symbol is None:
                return
            try:
                found = await following.find_trade(
                    self.bot.trading, channel_id=message.channel.id, replied_to=None, symbol=management.symbol
                )
            except TradingServerError:
                return
            if isinstance(found, NoTrade):
                return
        await _reply(message, NOT_ALLOWED)

    # ---- edits and deletions of a forwarded signal ------------------------------------------------

    async def signal_edited(self, message: discord.Message, before: str | None) -> bool:
        """An edit of a signal already forwarded: a changed stop or changed targets are carried out (or
        asked about) like a management message; True when it was such an edit. The entry is never traded
        again. `before`: the text as it was, when discord.py still holds it (without it, what changed
        can't be told, and nothing is done)."""
        mode = self.bot.settings.follow_mode(message.channel.id)
        if mode == "off" or before is None:
            return False
        old, new = self.bot.parse(before), self.bot.parse(message.content)
        if old.signal is None or new.signal is None or old.signal.symbol != new.signal.symbol:
            return False
        changes: list[tuple[TradeAction, StopRequest | TargetsRequest]] = []
        if new.signal.stop_loss != old.signal.stop_loss:
            changes.append((TradeAction.STOP, StopRequest(price=new.signal.stop_loss)))
        if new.signal.take_profits != old.signal.take_profits:
            changes.append((TradeAction.TARGETS, TargetsRequest(targets=new.signal.take_profits)))
        if not changes:
            return False
        try:
            trade = await self.bot.trading.trade(following.signal_id_for(message.channel.id, message.id))
        except TradingServerError as exc:
            await _reply(message, f"⚠️ The edit changed the signal's levels, but nothing was done: {exc}.")
            return True
        if trade.state not in following.LIVE:
            return False
        for action, body in changes:
            plan = Plan(action, trade, body, _edit_summary(trade, body))
            await self.carry_out_or_ask(message, plan, _edit_key(message.id, action, body), mode == "act")
        return True

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        """A forwarded signal deleted before anything filled: its entries are cancelled (act mode), or an
        admin is told how to cancel them (confirm mode)."""
        settings = self.bot.settings
        mode = settings.follow_mode(payload.channel_id)
        signal_id = following.signal_id_for(payload.channel_id, payload.message_id)
        if mode == "off" or not is_watched_channel(settings, payload.channel_id):
            return
        if self.bot.state.send_state(signal_id) is None:
            return
        channel = self.bot.get_channel(payload.channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            return
        try:
            trade = await self.bot.trading.trade(signal_id)
        except TradeNotFound:
            return
        except TradingServerError as exc:
            log.warning("deleted signal %s: could not look its trade up (%s)", signal_id, exc)
            return
        if trade.state is not TradeState.PENDING or trade.filled_size:
            return
        if mode == "confirm":
            await _send(
                channel,
                f"🗑️ The signal {headline(trade)} (`{signal_id}`) was deleted; its entries still rest. "
                f"An admin can cancel them: `!cancel {signal_id}`.",
            )
            return
        plan = Plan(TradeAction.CANCEL, trade, CancelRequest(), render_trades.cancel_summary(trade))
        key = f"discord-delete-{payload.message_id}"
        done = await carry_out(self.bot.trading, plan, key, "the signal's deletion")
        await _send(channel, f"🗑️ The signal {headline(trade)} (`{signal_id}`) was deleted.", done.embed)


def _edit_summary(trade: TradeView, body: StopRequest | TargetsRequest) -> str:
    if isinstance(body, StopRequest):
        new_stop = fmt(body.price or Decimal(0))
        return f"The signal was edited: move the stop of {headline(trade)} to {new_stop}."
    shown = ", ".join(fmt(t) for t in body.targets)
    return f"The signal was edited: replace the targets of {headline(trade)} not hit yet with {shown}."


def _edit_key(message_id: int, action: TradeAction, body: StopRequest | TargetsRequest) -> str:
    """One key per edit's new levels: the same edit delivered twice acts once, a later edit acts anew."""
    digest = hashlib.sha256(body.model_dump_json().encode()).hexdigest()[:16]
    return f"discord-edit-{message_id}-{action.value}-{digest}"


async def _reply(
    message: discord.Message,
    content: str | None = None,
    *,
    embed: discord.Embed | None = None,
    view: discord.ui.View | None = None,
) -> discord.Message | None:
    extra: dict[str, Any] = {}
    if embed is not None:
        extra["embed"] = embed
    if view is not None:
        extra["view"] = view
    try:
        return await message.reply(content=content, mention_author=False, **extra)
    except discord.HTTPException as exc:
        log.warning("could not reply to message %s: %s", message.id, exc.status)
        return None


async def _send(channel: discord.abc.Messageable, content: str, embed: discord.Embed | None = None) -> None:
    try:
        if embed is None:
            await channel.send(content)
        else:
            await channel.send(content, embed=embed)
    except discord.HTTPException as exc:
        log.warning("could not post about a deleted signal: %s", exc.status)


async def _react(message: discord.Message, emoji: str) -> None:
    try:
        await message.add_reaction(emoji)
    except discord.HTTPException as exc:
        log.warning("could not react to message %s: %s", message.id, exc.status)
