"""How trades, the account and P&L look in Discord (the console commands of issue #15).

Pure functions of the server's models. Prices are shown as the exchange has them (`fmt`: never rounded,
never `6E+4`), money with two decimals, a sign and thousands separators. Lists are cut to what stays
readable in one embed, and say how many more there are. Nothing here can hold a secret: the server's
models carry none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import discord
from pydantic import BaseModel

from hit_bot.trading_client import ExchangePosition
from hit_shared.models import fmt
from hit_shared.trade_actions import ActionOutcome, TradeAction, TradeActionResult
from hit_shared.trades import (
    AccountResponse,
    PnlResponse,
    TargetState,
    TradeDetail,
    TradesPage,
    TradeState,
    TradeView,
)

MAX_POSITIONS = 10  # one field each
MAX_TRADE_LINES = 15
MAX_EVENTS = 6
MAX_BUCKETS = 7
STATE_ICONS: dict[TradeState, str] = {
    TradeState.PENDING: "⏳",
    TradeState.OPEN: "🟢",
    TradeState.CLOSED: "⚪",
    TradeState.CANCELLED: "⚫",
    TradeState.FAILED: "❌",
}
TARGET_ICONS: dict[TargetState, str] = {
    TargetState.OPEN: "·",
    TargetState.HIT: "✅",
    TargetState.CANCELLED: "✖",
    TargetState.FAILED: "❌",
}
BLUE, GREEN, GOLD, RED, GREY = (
    discord.Colour.blurple(),
    discord.Colour.green(),
    discord.Colour.gold(),
    discord.Colour.red(),
    discord.Colour.light_grey(),
)


# ---- numbers -----------------------------------------------------------------------------------------


def money(value: Decimal | None, currency: str = "USDT") -> str:
    """`+1,234.50 USDT`; `n/a` when the server does not know it yet."""
    if value is None:
        return "n/a"
    return f"{_cents(value):+,.2f} {currency}"


def amount(value: Decimal, currency: str = "USDT") -> str:
    """A balance: `10,000.00 USDT` (no sign)."""
    return f"{_cents(value):,.2f} {currency}"


def _cents(value: Decimal) -> Decimal:
    """Rounded half up, as people round money (Python's format would round 12.345 to even: 12.34)."""
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def price(value: Decimal | None) -> str:
    return "—" if value is None else fmt(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _more(shown: int, total: int) -> str:
    return f"… and {total - shown} more" if total > shown else ""


# ---- one trade in a line or a field ----------------------------------------------------------------------


def headline(trade: TradeView) -> str:
    return f"{trade.side.value.upper()} {trade.symbol}"


def stop_text(trade: TradeView) -> str:
    text = price(trade.stop.price)
    return f"{text} (breakeven)" if trade.stop.at_breakeven else text


def next_target(trade: TradeView) -> str:
    waiting = [t for t in trade.targets if t.state is TargetState.OPEN]
    if not waiting:
        return "none left"
    first = min(waiting, key=lambda t: t.number)
    return f"TP{first.number} {price(first.price)}"


def _position_value(trade: TradeView, position: ExchangePosition | None, marks_known: bool) -> str:
    if position is not None:
        mark = f"mark {fmt(position.mark_price)} · uP&L {money(position.unrealized_pnl)}"
    else:
        mark = "mark n/a" if not marks_known else "no position on the exchange"
    return "\n".join(
        [
            f"{fmt(trade.filled_size)} contracts @ {price(trade.avg_entry)}",
            mark,
            f"stop {stop_text(trade)} · next {next_target(trade)}",
            f"`{trade.signal_id}`",
        ]
    )


def trade_line(trade: TradeView) -> str:
    """`🟢 LONG ETH-USDT · 0.5 @ 3000 · +12.00 USDT · discord:1:2` for lists."""
    parts = [f"{STATE_ICONS.get(trade.state, '')} **{headline(trade)}**"]
    if trade.filled_size:
        parts.append(f"{fmt(trade.filled_size)} @ {price(trade.avg_entry)}")
    if trade.state is TradeState.CLOSED or trade.realized_pnl is not None:
        parts.append(money(trade.realized_pnl))
    if trade.exit_reason:
        parts.append(trade.exit_reason.replace("_", " "))
    elif trade.state is not TradeState.CLOSED:
        parts.append(trade.state.value)
    parts.append(f"`{trade.signal_id}`")
    return " · ".join(parts)


# ---- read commands -----------------------------------------------------------------------------------


def positions_embed(page: TradesPage, marks: Mapping[str, ExchangePosition] | None) -> discord.Embed:
    """`!positions`: each open trade with its size, entry, mark, unrealised P&L, stop and next target."""
    trades = page.trades[:MAX_POSITIONS]
    embed = discord.Embed(title=f"Open positions ({page.total})", colour=BLUE)
    if not trades:
        embed.description = "No open trade."
        return embed
    for trade in trades:
        position = marks.get(trade.symbol) if marks is not None else None
        embed.add_field(
            name=headline(trade), value=_position_value(trade, position, marks is not None), inline=False
        )
    notes = [_more(len(trades), page.total)]
    if marks is None:
        notes.append("mark and uP&L unavailable: the exchange's positions could not be read")
    embed.set_footer(text=" · ".join(n for n in notes if n) or "uP&L as the exchange marks it")
    return embed


def trades_embed(page: TradesPage, which: str) -> discord.Embed:
    """`!trades`: newest first, one line each."""
    embed = discord.Embed(title=f"Trades: {which} ({page.total})", colour=BLUE)
    lines = [trade_line(t) for t in page.trades[:MAX_TRADE_LINES]]
    embed.description = _clip("\n".join(lines), 4000) if lines else "No trade."
    more = _more(len(lines), page.total)
    if more:
        embed.set_footer(text=more)
    return embed


def _targets_text(trade: TradeView) -> str:
    if not trade.targets:
        return "none"
    lines = [
        f"{TARGET_ICONS.get(t.state, '')} TP{t.number} {price(t.price)} × {fmt(t.size)} ({t.state.value})"
        for t in trade.targets
    ]
    return _clip("\n".join(lines), 1024)


def _events_text(detail: TradeDetail) -> str:
    events = detail.events[-MAX_EVENTS:]
    lines = [f"{e.created_at:%m-%d %H:%M} {e.type}: {_clip(e.message, 120)}" for e in events]
    more = len(detail.events) - len(events)
    if more:
        lines.insert(0, f"… {more} earlier")
    return _clip("\n".join(lines), 1024)


def trade_embed(detail: TradeDetail) -> discord.Embed:
    """`!trade`: one trade in full."""
    colour = {TradeState.OPEN: GREEN, TradeState.PENDING: GOLD, TradeState.FAILED: RED}.get(
        detail.state, GREY
    )
    embed = discord.Embed(
        title=f"{STATE_ICONS.get(detail.state, '')} {headline(detail)}: {detail.state.value}", colour=colour
    )
    if detail.reason:
        embed.description = _clip(detail.reason, 1500)
    embed.add_field(name="Size", value=f"{fmt(detail.filled_size)} of {fmt(detail.size)} contracts filled")
    embed.add_field(name="Entry", value=price(detail.avg_entry))
    embed.add_field(name="Stop", value=stop_text(detail))
    embed.add_field(name="Targets", value=_targets_text(detail), inline=False)
    if detail.realized_pnl is not None or detail.state is TradeState.CLOSED:
        embed.add_field(name="Realised P&L", value=money(detail.realized_pnl))
        embed.add_field(name="Fees", value="n/a" if detail.fees is None else amount(detail.fees))
    if detail.exit_reason:
        embed.add_field(name="Exit", value=detail.exit_reason.replace("_", " "))
    embed.add_field(name="Leverage", value=f"{detail.leverage}x" if detail.leverage else "—")
    embed.add_field(name="Mode", value=detail.mode.value if detail.mode else "—")
    if detail.events:
        embed.add_field(name="Events", value=_events_text(detail), inline=False)
    opened = f" · opened {detail.opened_at:%Y-%m-%d %H:%M} UTC" if detail.opened_at else ""
    closed = f" · ended {detail.closed_at:%Y-%m-%d %H:%M} UTC" if detail.closed_at else ""
    embed.set_footer(text=f"{detail.signal_id}{opened}{closed}")
    return embed


def pnl_embed(pnl: PnlResponse) -> discord.Embed:
    """`!pnl`: realised P&L per period, the current one first."""
    decided = pnl.wins + pnl.losses
    rate = f"{pnl.wins / decided:.0%}" if decided else "n/a"
    embed = discord.Embed(
        title=f"Realised P&L per {pnl.period.value}", colour=GREEN if pnl.realized_pnl >= 0 else RED
    )
    embed.add_field(name="Total", value=money(pnl.realized_pnl))
    embed.add_field(name="Fees", value=amount(pnl.fees))
    embed.add_field(name="Closed trades", value=f"{pnl.closed_trades} ({pnl.wins}W/{pnl.losses}L, {rate})")
    lines = [
        f"{b.start:%Y-%m-%d}: {money(b.realized_pnl)} ({b.closed_trades} closed)"
        for b in pnl.buckets[:MAX_BUCKETS]
    ]
    embed.add_field(name="Periods (newest first)", value="\n".join(lines) or "none", inline=False)
    embed.set_footer(text=f"net of fees, as the exchange reported · as of {pnl.as_of:%Y-%m-%d %H:%M} UTC")
    return embed


def balance_embed(account: AccountResponse) -> discord.Embed:
    """`!balance`: the exchange account now."""
    embed = discord.Embed(title=f"Account ({account.mode.value})", colour=BLUE)
    embed.add_field(name="Equity", value=amount(account.equity, account.currency))
    embed.add_field(name="Available margin", value=amount(account.available_margin, account.currency))
    embed.add_field(name="In use", value=amount(account.frozen, account.currency))
    embed.add_field(name="Unrealised P&L", value=money(account.unrealized_pnl, account.currency))
    embed.add_field(name="Open positions", value=str(account.open_positions))
    embed.set_footer(text=f"as of {account.as_of:%Y-%m-%d %H:%M:%S} UTC")
    return embed


# ---- actions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """An action an admin asked for, waiting for their confirmation."""

    action: TradeAction
    trade: TradeView
    body: BaseModel | None
    summary: str  # what will be done, in one sentence

    @property
    def signal_id(self) -> str:
        return self.trade.signal_id


def close_summary(trade: TradeView, fraction: Decimal) -> str:
    part = "all" if fraction == 1 else f"{fmt(fraction * 100)}%"
    return (
        f"Close {part} of {headline(trade)} at market ({fmt(trade.filled_size)} contracts filled, "
        f"entry {price(trade.avg_entry)})."
    )


def cancel_summary(trade: TradeView) -> str:
    if trade.filled_size:
        return (
            f"Cancel the unfilled entries of {headline(trade)}; the {fmt(trade.filled_size)} contracts "
            "filled stay open with their stop and targets."
        )
    return f"Cancel the entries of {headline(trade)} (nothing filled): the trade ends."


def confirm_embed(plan: Plan, timeout: float) -> discord.Embed:
    embed = discord.Embed(
        title=f"Confirm: {plan.action.value} {headline(plan.trade)}",
        colour=GOLD,
        description=f"{plan.summary}\nConfirm within {timeout:g} s, or nothing is done.",
    )
    _trade_now(embed, plan.trade)
    return embed


def _trade_now(embed: discord.Embed, trade: TradeView) -> None:
    embed.add_field(
        name="Filled", value=f"{fmt(trade.filled_size)} of {fmt(trade.size)} @ {price(trade.avg_entry)}"
    )
    embed.add_field(name="Stop", value=stop_text(trade))
    embed.add_field(name="Next target", value=next_target(trade))
    embed.set_footer(text=trade.signal_id)


def settled_embed(plan: Plan, title: str, text: str, colour: discord.Colour) -> discord.Embed:
    """The prompt once decided without acting: cancelled or timed out."""
    embed = discord.Embed(title=title, colour=colour, description=f"{plan.summary}\n{text}")
    embed.set_footer(text=plan.signal_id)
    return embed


def working_embed(plan: Plan) -> discord.Embed:
    return settled_embed(
        plan, f"⏳ {plan.action.value.capitalize()}: working…", "Sent to the trading server.", GOLD
    )


OUTCOME_TITLES: dict[ActionOutcome, str] = {
    ActionOutcome.CLOSED: "Closed",
    ActionOutcome.PARTLY_CLOSED: "Partly closed",
    ActionOutcome.CANCELLED: "Cancelled",
    ActionOutcome.ENTRIES_CANCELLED: "Entries cancelled",
    ActionOutcome.STOP_MOVED: "Stop moved",
    ActionOutcome.TARGETS_REPLACED: "Targets replaced",
}


def result_embed(plan: Plan, result: TradeActionResult, who: str) -> discord.Embed:
    """What the server did, in its own sentence, and the trade as it is after it."""
    title = f"✅ {OUTCOME_TITLES.get(result.outcome, result.outcome.value)}: {headline(plan.trade)}"
    embed = discord.Embed(title=title, colour=GREEN, description=_clip(result.message, 1500))
    if result.closed_size is not None:
        embed.add_field(name="Closed", value=f"{fmt(result.closed_size)} contracts")
    if result.cancelled_orders:
        embed.add_field(name="Orders cancelled", value=str(result.cancelled_orders))
    if result.trade is not None:
        embed.add_field(
            name="Now", value=f"{result.trade.state.value}, {fmt(result.trade.filled_size)} filled"
        )
        embed.add_field(name="Stop", value=stop_text(result.trade))
    embed.set_footer(text=f"{plan.signal_id} · confirmed by {who}")
    return embed


def refused_embed(plan: Plan, message: str) -> discord.Embed:
    return settled_embed(
        plan,
        f"⚠️ Not done: {plan.action.value} {headline(plan.trade)}",
        f"The trading server refused: {_clip(message, 1500)}",
        GOLD,
    )


def unreachable_embed(plan: Plan, problem: str) -> discord.Embed:
    return settled_embed(
        plan,
        f"❌ No answer: {plan.action.value} {headline(plan.trade)}",
        f"{_clip(problem, 500)}\nIt may or may not have been done. **Try again** repeats this same request "
        "(the server acts on it at most once).",
        RED,
    )


def failed_embed(plan: Plan) -> discord.Embed:
    return settled_embed(
        plan,
        f"❌ Error: {plan.action.value} {headline(plan.trade)}",
        f"Something went wrong in the bot; the error was logged. Check `!trade {plan.signal_id}` "
        "before acting again.",
        RED,
    )


def live_trades_text(symbol: str, trades: Sequence[TradeView]) -> str:
    """More than one live trade on a symbol: which one?"""
    lines = [f"• {trade_line(t)}" for t in trades[:MAX_TRADE_LINES]]
    more = _more(len(lines), len(trades))
    return _clip(
        f"{symbol} has {len(trades)} live trades; name one by its id:\n"
        + "\n".join(lines)
        + (f"\n{more}" if more else ""),
        1900,
    )
