"""Who may do what, written once: watched channels, allowed signal authors, command users, admins.

Empty ALLOWED_USER_IDS and ALLOWED_ROLE_IDS mean everyone; empty ADMIN_ROLE_IDS means nobody is admin.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from hit_bot.settings import BotSettings

if TYPE_CHECKING:
    from hit_bot.bot import HitBot

log = logging.getLogger(__name__)


class NotAllowed(commands.CheckFailure):
    """The author is not on the allow-lists."""


class NotAdmin(commands.CheckFailure):
    """The command needs one of ADMIN_ROLE_IDS."""


def is_watched_channel(settings: BotSettings, channel_id: int) -> bool:
    return channel_id in settings.discord_channel_ids


def _role_ids(author: discord.abc.User) -> set[int]:
    return {role.id for role in author.roles} if isinstance(author, discord.Member) else set()


def is_allowed_author(settings: BotSettings, author: discord.abc.User) -> bool:
    """An allowed user or a holder of an allowed role; everyone when both lists are empty. Never a bot."""
    if author.bot:
        return False
    if not settings.allowed_user_ids and not settings.allowed_role_ids:
        return True
    return author.id in settings.allowed_user_ids or bool(_role_ids(author) & set(settings.allowed_role_ids))


def is_admin(settings: BotSettings, author: discord.abc.User) -> bool:
    return not author.bot and bool(_role_ids(author) & set(settings.admin_role_ids))


async def resolve_member(message: discord.Message) -> discord.abc.User:
    """The author with roles. Messages read from history carry a bare User; fetch the Member then."""
    author = message.author
    if isinstance(author, discord.Member) or message.guild is None:
        return author
    try:
        return await message.guild.fetch_member(author.id)
    except discord.HTTPException as exc:
        log.info("could not look up member %s (%s); treating as having no roles", author.id, exc.status)
        return author


async def may_post_signals(settings: BotSettings, message: discord.Message) -> bool:
    """A message counts as a possible signal: watched channel, allowed human author, not a command."""
    if not is_watched_channel(settings, message.channel.id) or message.author.bot:
        return False
    if message.content.startswith(settings.command_prefix):
        return False
    if settings.allowed_role_ids and not isinstance(message.author, discord.Member):
        return is_allowed_author(settings, await resolve_member(message))
    return is_allowed_author(settings, message.author)


async def allowed_user(ctx: commands.Context[HitBot]) -> bool:
    """Command check (`@commands.check(allowed_user)`): the author is on the signal allow-lists."""
    if not is_allowed_author(ctx.bot.settings, ctx.author):
        raise NotAllowed("you are not on this bot's allow-list")
    return True


async def admin_only(ctx: commands.Context[HitBot]) -> bool:
    """Command check (`@commands.check(admin_only)`): the author holds one of ADMIN_ROLE_IDS."""
    if not is_admin(ctx.bot.settings, ctx.author):
        raise NotAdmin("only admins can do that")
    return True
