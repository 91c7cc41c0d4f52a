"""How outcomes look in Discord: embeds, reactions and short texts. Pure functions of their inputs."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import discord

from hit_bot.parsing.management import Management
from hit_bot.pipeline import Forwarded, InvalidSignal, Outcome, ParsedLike, Verdict, reason_of, verdict
from hit_bot.trading_client import Delivered, ServerEvent
from hit_shared.models import (
    HealthResponse,
    OrderInfo,
    OrderRole,
    SignalCore,
    StatsResponse,
    TradeSignal,
    fmt,
)

REACTIONS: dict[Verdict, str] = {
    Verdict.PLACED: "✅",
    Verdict.REJECTED: "⚠️",
    Verdict.INVALID: "⚠️",
    Verdict.REFUSED: "⚠️",
    Verdict.FAILED: "❌",
    Verdict.UNREACHABLE: "❌",
}
COLOURS: dict[str, discord.Colour] = {
    "✅": discord.Colour.green(),
    "⚠️": discord.Colour.gold(),
    "❌": discord.Colour.red(),
}
TITLES: dict[Verdict, str] = {
    Verdict.PLACED: "Trade placed",
    Verdict.REJECTED: "Signal rejected",
    Verdict.INVALID: "Signal not understood",
    Verdict.REFUSED: "Signal refused by the trading server",
    Verdict.FAILED: "Trade failed",
    Verdict.UNREACHABLE: "Trading server unreachable",
}
UNREACHABLE_HINT = ("The signal may or may not have reached the server. Do not re-post it: the bot asks "
                    "again (safely, same signal id) when it reconnects or restarts, within the age limit.")
EDIT_NOTICE = "Edits don't change a trade already sent: this signal was forwarded when first posted."


def _clip(text: str | None, limit: int = 1500) -> str:
    """Discord caps embed text; a server's reason is never allowed to make the reply fail."""
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reaction_for(outcome: Outcome) -> str | None:
    return REACTIONS.get(verdict(outcome))


def _prices(values: Sequence[Decimal]) -> str:
    return ", ".join(fmt(v) for v in values)


def _targets(values: Sequence[Decimal]) -> str:
    return "\n".join(f"TP{i}: {fmt(v)}" for i, v in enumerate(values, start=1))


def _placed_entries(orders: Sequence[OrderInfo]) -> str | None:
    """The entry orders the server placed, `price × contracts` each, or None when it lists none.

    These are what the reply must show: a zone's two prices become a ladder of more rungs, each with
    its own size, and a signal's entries may be merged or dropped by the server's rules."""
    entries = [order for order in orders if order.role is OrderRole.ENTRY]
    if not entries:
        return None
    lines = [f"{'market' if o.price is None else fmt(o.price)} × {fmt(o.size)}" for o in entries]
    return _clip("\n".join(lines), 1024)  # a field's limit


def _signal_fields(embed: discord.Embed, core: SignalCore, placed: Sequence[OrderInfo] = ()) -> None:
    """Entries (those placed when the server lists them, else those parsed), stop loss and targets."""
    entries = _placed_entries(placed)
    if entries is not None:
        embed.add_field(name="Entries placed (price × contracts)", value=entries)
    else:
        embed.add_field(name="Entries", value=_prices(core.entries) if core.entries else "market")
    embed.add_field(name="Stop loss", value=fmt(core.stop_loss))
    embed.add_field(name="Targets", value=_targets(core.take_profits), inline=False)


def _headline(signal: TradeSignal | SignalCore) -> str:
    return f"{signal.side.value.upper()} {signal.symbol}"


def outcome_embed(outcome: Outcome) -> discord.Embed:
    """The reply to a signal: what was placed, or why not."""
    kind = verdict(outcome)
    emoji = REACTIONS.get(kind, "")
    title = f"{emoji} {TITLES.get(kind, kind.value)}"
    if not isinstance(outcome, Forwarded):
        return discord.Embed(title=title, description=_clip(reason_of(outcome)), colour=COLOURS.get(emoji))
    signal, result = outcome.signal, outcome.result
    embed = discord.Embed(title=f"{title}: {_headline(signal)}", colour=COLOURS.get(emoji))
    reason = reason_of(outcome)
    if reason:
        embed.description = _clip(reason) + ("\n" + UNREACHABLE_HINT if kind is Verdict.UNREACHABLE else "")
    if isinstance(result, Delivered) and kind is Verdict.PLACED:
        trade = result.response
        embed.add_field(name="Size", value=f"{fmt(trade.size)} contracts")
        _signal_fields(embed, signal, trade.orders)
        embed.add_field(name="Leverage", value=f"{trade.leverage}x" if trade.leverage else "server default")
        embed.add_field(name="Mode", value=trade.mode.value)
    if isinstance(result, Delivered):
        embed.set_footer(text=f"{signal.signal_id}{' (already received)' if result.replayed else ''}")
    else:
        embed.set_footer(text=signal.signal_id)
    return embed


def parse_embed(parsed: ParsedLike | InvalidSignal) -> discord.Embed:
    """`!test`: what the parser understood, without trading."""
    if isinstance(parsed, InvalidSignal) or parsed.kind == "invalid":
        return discord.Embed(title="⚠️ Invalid signal", description=_clip(parsed.reason), colour=COLOURS["⚠️"])
    management = getattr(parsed, "management", None)
    if parsed.kind == "management" and isinstance(management, Management):
        return _management_embed(management)
    if parsed.kind != "signal" or parsed.signal is None:
        return discord.Embed(title="Not a signal", description="This message would be ignored.",
                             colour=discord.Colour.light_grey())
    core = parsed.signal
    embed = discord.Embed(title=f"✅ Valid signal: {_headline(core)}", colour=COLOURS["✅"],
                          description="Parsed only: nothing was sent to the trading server.")
    _signal_fields(embed, core)
    embed.add_field(name="Leverage", value=f"{core.leverage}x" if core.leverage else "server default")
    if parsed.format:
        embed.set_footer(text=f"format: {parsed.format}")
    return embed


def _management_embed(m: Management) -> discord.Embed:
    """`!test` of a management message (issue #17): the action read, its figures and why; no trade."""
    headline = m.action.value + (f": {m.symbol}" if m.symbol else "")
    kind = "asks for an action on a running trade" if m.moves_money else "a report, nothing to do"
    embed = discord.Embed(title=f"Management: {headline}", colour=discord.Colour.blue(),
                          description=_clip(f"Read as {kind}: {m.reason}. Parsed only: nothing was done."))
    if m.breakeven:
        embed.add_field(name="Stop to", value="breakeven (the entry)")
    elif m.price is not None:
        embed.add_field(name="Price", value=fmt(m.price))
    if m.fraction is not None:
        embed.add_field(name="Part", value=f"{fmt(m.fraction)} of the position")
    if m.targets:
        name = "Targets added" if m.added else "New targets"
        embed.add_field(name=name, value=_targets(m.targets), inline=False)
    if m.also:
        steps = "\n".join(f"{n}. {step.reason}" for n, step in enumerate(m.also, start=2))
        embed.add_field(name="Then", value=_clip(steps), inline=False)
    return embed


def stats_embed(stats: StatsResponse) -> discord.Embed:
    embed = discord.Embed(title="Trading stats", colour=discord.Colour.blurple())
    embed.add_field(name="Signals", value=str(stats.signals_received))
    embed.add_field(name="Placed", value=str(stats.placed))
    embed.add_field(name="Rejected", value=str(stats.rejected))
    embed.add_field(name="Failed", value=str(stats.failed))
    embed.add_field(name="Replayed", value=str(stats.replayed))
    embed.add_field(name="Open positions", value=str(stats.open_positions))
    rate = f"{stats.win_rate:.0%}" if stats.win_rate is not None else "n/a"
    closed = f"{stats.closed_trades} ({stats.wins}W/{stats.losses}L, {rate})"
    embed.add_field(name="Closed trades", value=closed)
    embed.add_field(name="Realized PnL", value=fmt(stats.realized_pnl))
    embed.add_field(name="Mode", value=stats.mode.value + (" (halted)" if stats.halted else ""))
    embed.set_footer(text=f"server up {stats.uptime_seconds / 3600:.1f} h")
    return embed


def health_embed(
    latency_ms: float | None, health: HealthResponse | None, problem: str | None
) -> discord.Embed:
    ok = health is not None and health.status == "ok" and not health.halted
    embed = discord.Embed(title="Health", colour=discord.Colour.green() if ok else discord.Colour.red())
    embed.add_field(name="Bot latency", value=f"{latency_ms:.0f} ms" if latency_ms is not None else "unknown")
    if health is None:
        embed.add_field(name="Trading server", value=f"unreachable: {problem}", inline=False)
        return embed
    embed.add_field(name="Trading server", value=f"reachable ({health.status}, v{health.version})")
    embed.add_field(name="Exchange", value=health.exchange)
    embed.add_field(name="Mode", value=health.mode.value)
    embed.add_field(name="Halted", value="yes" if health.halted else "no")
    return embed


def event_text(event: ServerEvent, jump_url: str | None) -> str:
    text = f"**{event.type}**: {event.message}" if event.message else f"**{event.type}**"
    if event.signal_id:
        text += f"\nsignal `{event.signal_id}`"
    if jump_url:
        text += f" ({jump_url})"
    return text[:2000]
