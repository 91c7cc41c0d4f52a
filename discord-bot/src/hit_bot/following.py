"""Following a channel's management messages (issue #17): which trade a message is about, and what to do.

No Discord types here. The cog (cogs/following.py) gives the channel, the message replied to and the
parser's `Management` reading (hit_bot/parsing/management.py); this module answers with:
- `NoTrade`: the trade can't be told (none, or several): the reason, for a person; never a guess;
- a `Plan` (render_trades.Plan): one of the trading server's trade actions with its body;
- `Report`: a target or the stop reported hit: no order, only what our trade says about it;
- `Nothing`: the message asks for nothing that can be done, and why.

Which trade (the issue's order):
1. A reply to a signal the bot forwarded: that trade (its signal_id is `discord:<channel>:<message>`),
   whatever the text names.
2. Otherwise a symbol named, with exactly one open or pending trade from this channel.
3. Otherwise none.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hit_bot.parsing.management import Management, ManagementAction
from hit_bot.render_trades import Plan, cancel_summary, close_summary, headline, price, stop_text
from hit_bot.trading_client import TradeNotFound, TradingClient
from hit_shared.models import MAX_TAKE_PROFITS, Side, fmt
from hit_shared.trade_actions import (
    CancelRequest,
    CloseRequest,
    StopRequest,
    TargetsRequest,
    TradeAction,
)
from hit_shared.trades import TargetState, TradeState, TradeView

LIVE = (TradeState.OPEN, TradeState.PENDING)


@dataclass(frozen=True)
class NoTrade:
    reason: str


@dataclass(frozen=True)
class Nothing:
    reason: str


@dataclass(frozen=True)
class Report:
    """A target or the stop reported hit by the channel; `agrees`: our trade says the same."""

    trade: TradeView
    text: str
    agrees: bool


def signal_id_for(channel_id: int, message_id: int) -> str:
    """The signal_id the bot gave the signal posted as this message (cogs/signals.py)."""
    return f"discord:{channel_id}:{message_id}"


def idempotency_key(message_id: int, step: int = 0) -> str:
    """One key per management message and step (its first action, then each of `Management.also`): a
    second delivery, a backfill or an edit of it acts at most once."""
    return f"discord-follow-{message_id}" + (f"-{step + 1}" if step else "")


async def find_trade(
    client: TradingClient, *, channel_id: int, replied_to: int | None, symbol: str | None
) -> TradeView | NoTrade:
    """The trade a management message is about (see the module docstring). Raises TradingServerError
    when the server can't be asked."""
    if replied_to is not None:
        try:
            return await client.trade(signal_id_for(channel_id, replied_to))
        except TradeNotFound:
            if symbol is None:
                return NoTrade("the message it replies to is not a signal the bot traded")
    if symbol is None:
        return NoTrade("it names no symbol and replies to no signal: reply to the signal it is about")
    mine = f"discord:{channel_id}:"
    live = [
        trade
        for state in LIVE
        for trade in (await client.trades(state=state, symbol=symbol, limit=100)).trades
        if trade.signal_id.startswith(mine)
    ]
    if not live:
        return NoTrade(f"there is no open or pending {symbol} trade from this channel")
    if len(live) > 1:
        ids = ", ".join(f"`{t.signal_id}`" for t in live[:5])
        return NoTrade(f"{len(live)} {symbol} trades from this channel are live ({ids}): reply to the signal")
    return live[0]


def plan(management: Management, trade: TradeView) -> Plan | Report | Nothing:
    """What to do on `trade` for this message."""
    if trade.state not in LIVE and management.moves_money:
        return Nothing(f"{headline(trade)} is already {trade.state.value}: nothing to do")
    action = management.action
    if action is ManagementAction.CLOSE:
        return _close(trade, Decimal(1))
    if action is ManagementAction.PARTIAL_CLOSE:
        if management.fraction is None:
            return Nothing("it does not say how much to close (write a part: half, 30%)")
        return _close(trade, min(management.fraction, Decimal(1)))
    if action is ManagementAction.CANCEL:
        return Plan(TradeAction.CANCEL, trade, CancelRequest(), cancel_summary(trade))
    if action is ManagementAction.MOVE_STOP:
        return _move_stop(management, trade)
    if action is ManagementAction.UPDATE_TARGETS:
        return _targets(management, trade)
    if action is ManagementAction.TP_HIT:
        return _target_report(trade)
    if action is ManagementAction.SL_HIT:
        return _stop_report(trade)
    return Nothing("it reports on the trade but asks for nothing")


def _close(trade: TradeView, fraction: Decimal) -> Plan | Nothing:
    if not trade.filled_size:
        if fraction < 1:
            return Nothing(f"nothing of {headline(trade)} has filled yet: no part of it to close")
        return Plan(TradeAction.CANCEL, trade, CancelRequest(), cancel_summary(trade))  # close, unfilled
    return Plan(TradeAction.CLOSE, trade, CloseRequest(fraction=fraction), close_summary(trade, fraction))


def _move_stop(management: Management, trade: TradeView) -> Plan | Nothing:
    if management.breakeven:
        if trade.avg_entry is None:
            return Nothing(f"nothing of {headline(trade)} has filled yet: no entry to move the stop to")
        request = StopRequest(breakeven=True)
        to = f"breakeven ({price(trade.avg_entry)})"
    elif management.price is not None:
        request = StopRequest(price=management.price)
        to = price(management.price)
    else:
        return Nothing("it gives no new stop price")
    summary = f"Move the stop of {headline(trade)} from {stop_text(trade)} to {to}."
    return Plan(TradeAction.STOP, trade, request, summary)


def _targets(management: Management, trade: TradeView) -> Plan | Nothing:
    if not management.targets:
        return Nothing("it gives no target prices")
    targets = list(management.targets)
    if management.added:  # `add TP4 at 3.10`: the targets not hit yet stay, the new ones join them
        kept = [t.price for t in trade.targets if t.state is TargetState.OPEN and t.price is not None]
        targets = sorted(set(kept) | set(targets), reverse=trade.side is Side.SHORT)
    if len(targets) > MAX_TAKE_PROFITS:
        return Nothing(f"that makes {len(targets)} targets; at most {MAX_TAKE_PROFITS} are supported")
    shown = ", ".join(fmt(t) for t in targets)
    summary = f"Replace the targets of {headline(trade)} not hit yet with {shown}."
    return Plan(TradeAction.TARGETS, trade, TargetsRequest(targets=tuple(targets)), summary)


def _target_report(trade: TradeView) -> Report:
    hit = [t for t in trade.targets if t.state is TargetState.HIT]
    if hit:
        done = ", ".join(f"TP{t.number} {price(t.price)}" for t in hit)
        return Report(trade, f"Ours agrees: {done} filled on {headline(trade)}.", agrees=True)
    waiting = next((t for t in trade.targets if t.state is TargetState.OPEN), None)
    left = f" (next: TP{waiting.number} {price(waiting.price)})" if waiting is not None else ""
    return Report(
        trade,
        f"The channel reports a target hit, but none of ours on {headline(trade)} has filled{left}. "
        "Nothing was done; check the trade with `!trade`.",
        agrees=False,
    )


def _stop_report(trade: TradeView) -> Report:
    if trade.state is TradeState.CLOSED and trade.exit_reason == "stopped_out":
        return Report(trade, f"Ours agrees: {headline(trade)} closed at its stop.", agrees=True)
    if trade.state in LIVE:
        return Report(
            trade,
            f"The channel reports the stop hit, but ours ({stop_text(trade)}) has not triggered: "
            f"{headline(trade)} is still {trade.state.value}. Nothing was done; close it with `!close` "
            "if you want out.",
            agrees=False,
        )
    how = trade.exit_reason or "over"
    return Report(trade, f"{headline(trade)} is {trade.state.value} ({how}).", agrees=True)
