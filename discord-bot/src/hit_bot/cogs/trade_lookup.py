"""Which trade a command means, and what its arguments say: shared by the read and the action commands.

A trade is named by its id (the signal_id, `discord:<channel>:<message>`, shown in every reply), by its
symbol (`ETH`, `eth-usdt`, `ETHUSDT`: the one live trade on it; with two, the bot asks for the id), or by
replying to the bot's "Trade placed" message (or to the signal itself) with the command.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from hit_bot import render_trades
from hit_bot.trading_client import ServerRefused, TradeNotFound, TradingClient
from hit_shared.trade_actions import MAX_PRICE, StopRequest
from hit_shared.trades import TradeState, TradeView

if TYPE_CHECKING:
    from hit_bot.bot import HitBot

SIGNAL_ID = re.compile(r"^[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-]+)+$")  # ids with a colon: the bot's, replay's
ANY_ID = re.compile(r"^[A-Za-z0-9:_.\-]{1,128}$")  # TradeSignal's pattern: other sources' ids
PAIR = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{2,10}$")
BARE = re.compile(r"^[A-Z0-9]{1,20}$")
QUOTE = "USDT"
LIVE = (TradeState.OPEN, TradeState.PENDING)
BREAKEVEN_WORDS = frozenset({"be", "breakeven", "break-even", "b/e", "entry"})


class TradeProblem(commands.CommandError):
    """The command can't name a trade or read an argument; the text says what to do instead."""


def normalise_symbol(text: str) -> str | None:
    """`eth`, `ETHUSDT`, `eth/usdt`, `ETH-USDT` -> `ETH-USDT`; None when it can't be a symbol."""
    word = text.strip().upper().replace("/", "-").replace("_", "-")
    if PAIR.match(word):
        return word
    if BARE.match(word):
        base = word[: -len(QUOTE)] if word.endswith(QUOTE) and len(word) > len(QUOTE) else word
        return f"{base}-{QUOTE}"
    return None


def parse_percent(text: str | None) -> Decimal:
    """`50`, `50%`, `12.5` -> the fraction to close (0.5); none -> all of it."""
    if text is None:
        return Decimal(1)
    try:
        value = Decimal(text.strip().rstrip("%").strip())
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or not 0 < value <= 100:
        raise TradeProblem(f"`{text}` is not a percentage from 1 to 100 (e.g. `50` closes half).")
    return value / 100


def is_percent(text: str) -> bool:
    try:
        parse_percent(text)
    except TradeProblem:
        return False
    return True


def parse_stop(text: str | None) -> StopRequest:
    """`be` (or breakeven) -> the stop to the average entry; a number -> the stop at that price."""
    if text is None:
        raise TradeProblem("Give the new stop: a price, or `be` for breakeven (e.g. `!sl ETH be`).")
    if text.strip().lower() in BREAKEVEN_WORDS:
        return StopRequest(breakeven=True)
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or not 0 < value < MAX_PRICE:
        raise TradeProblem(f"`{text}` is not a price: give a number, or `be` for breakeven.")
    return StopRequest(price=value)


def is_stop(text: str) -> bool:
    try:
        parse_stop(text)
    except TradeProblem:
        return False
    return True


async def find_trade(client: TradingClient, ref: str, *, live_only: bool) -> TradeView:
    """The trade `ref` names. By symbol: its one live trade; for a read (not `live_only`) the latest
    trade on it when none lives. Raises `TradeProblem` with the sentence to show."""
    ref = ref.strip()
    if SIGNAL_ID.match(ref):
        found = await _by_id(client, ref)
        if found is None:
            raise TradeProblem(f"No trade has the id `{ref}`.")
        return found
    symbol = normalise_symbol(ref)
    if symbol is None:
        raise TradeProblem(
            f"`{ref[:60]}` is neither a symbol (`ETH`, `ETH-USDT`) nor a trade id (`discord:…`)."
        )
    found = await _by_symbol(client, ref, symbol, live_only=live_only)
    if found is None and ANY_ID.match(ref):
        found = await _by_id(client, ref)  # an id of another source, without a colon
    if found is None:
        raise TradeProblem(f"No {'open or pending ' if live_only else ''}trade on {symbol}.")
    return found


async def _by_id(client: TradingClient, signal_id: str) -> TradeView | None:
    try:
        return await client.trade(signal_id)
    except TradeNotFound:
        return None


async def _by_symbol(client: TradingClient, ref: str, symbol: str, *, live_only: bool) -> TradeView | None:
    try:
        live = [
            t for state in LIVE for t in (await client.trades(state=state, symbol=symbol, limit=20)).trades
        ]
        if len(live) == 1:
            return live[0]
        if len(live) > 1:
            raise TradeProblem(render_trades.live_trades_text(symbol, live))
        latest = () if live_only else (await client.trades(symbol=symbol, limit=1)).trades
    except ServerRefused as exc:
        if exc.status_code == 422:
            raise TradeProblem(f"`{ref[:60]}` is not a symbol the server knows how to read.") from None
        raise
    return latest[0] if latest else None


def _footer_id(message: discord.Message) -> str | None:
    """The signal_id in the footer of the bot's outcome embed (`discord:1:2`, maybe `(already received)`)."""
    for embed in message.embeds:
        text = (embed.footer.text or "").split(" ")[0] if embed.footer else ""
        if SIGNAL_ID.match(text):
            return text
    return None


async def trade_named_by_reply(bot: HitBot, message: discord.Message) -> str | None:
    """The trade id a command message names by replying: to the bot's outcome message (its footer, or
    the signal it answered), or to the signal message itself. None when it is not a reply."""
    ref = message.reference
    if ref is None or ref.message_id is None:
        return None
    target = ref.resolved if isinstance(ref.resolved, discord.Message) else None
    if target is None:
        try:
            target = await message.channel.fetch_message(ref.message_id)
        except discord.HTTPException:
            raise TradeProblem("The message you replied to can't be read; name the trade instead.") from None
    if bot.user is not None and target.author.id == bot.user.id:
        named = _footer_id(target)
        if named is not None:
            return named
        inner = target.reference
        if inner is None or inner.message_id is None:
            raise TradeProblem("That message of mine is not about a trade; name the trade instead.")
        return f"discord:{inner.channel_id}:{inner.message_id}"
    return f"discord:{target.channel.id}:{target.id}"


async def trade_and_argument(
    bot: HitBot,
    message: discord.Message,
    first: str | None,
    second: str | None,
    is_argument: Callable[[str], bool] | None = None,
) -> tuple[str, str | None]:
    """(trade ref, argument) of `!cmd <trade> [argument]`. In a reply that names a trade, the trade may be
    left out: `!close` or `!close 50`, `!sl be`. Raises `TradeProblem` when nothing names a trade."""
    replied = await trade_named_by_reply(bot, message)
    if replied is not None:
        if first is None:
            return replied, None
        if second is None and is_argument is not None and is_argument(first):
            return replied, first
    if first is None:
        raise TradeProblem(
            'Name the trade: a symbol (`ETH`), its id (`discord:…`), or reply to my "Trade placed" message.'
        )
    return first, second
