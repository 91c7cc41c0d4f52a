"""Which trade a management message is about, and what it asks of it (hit_bot/following.py, issue #17):
the trade found against the real paper server, the plan from the parser's own reading of real wordings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from hit_bot import following
from hit_bot.following import Nothing, NoTrade, Report
from hit_bot.parser import parse
from hit_bot.parsing.management import Management
from hit_bot.render_trades import Plan
from hit_bot.trading_client import TradingClient
from hit_server.testing import (
    BASE_URL,
    TEST_API_KEY,
    RunningServer,
    place_signal,
)
from hit_shared.models import Side
from hit_shared.trade_actions import CancelRequest, CloseRequest, StopRequest, TargetsRequest, TradeAction
from hit_shared.trades import StopView, TargetState, TargetView, TradeState, TradeView

CHANNEL, OTHER_CHANNEL = 2001, 2002


def _reading(text: str) -> Management:
    result = parse(text)
    assert result.kind == "management" and result.management is not None, (text, result)
    return result.management


def _trade(state: TradeState = TradeState.OPEN, side: Side = Side.LONG, filled: str = "10") -> TradeView:
    return TradeView(
        signal_id=f"discord:{CHANNEL}:1",
        state=state,
        symbol="ETH-USDT",
        side=side,
        size=Decimal(10),
        filled_size=Decimal(filled),
        avg_entry=Decimal(3000) if Decimal(filled) else None,
        stop=StopView(price=Decimal(2900)),
        targets=(
            TargetView(number=1, price=Decimal(3300), size=Decimal(5), state=TargetState.HIT),
            TargetView(number=2, price=Decimal(3500), size=Decimal(5), state=TargetState.OPEN),
        ),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _plan(text: str, trade: TradeView | None = None) -> Plan | Report | Nothing:
    return following.plan(_reading(text), trade or _trade())


# ---- what each message asks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "action", "body"),
    [
        ("Close ETH now", TradeAction.CLOSE, CloseRequest()),
        ("close half here", TradeAction.CLOSE, CloseRequest(fraction=Decimal("0.5"))),
        ("Закрываю 30% позиции", TradeAction.CLOSE, CloseRequest(fraction=Decimal("0.3"))),
        ("move SL to entry", TradeAction.STOP, StopRequest(breakeven=True)),
        ("Move SL to 3050", TradeAction.STOP, StopRequest(price=Decimal(3050))),
        ("cancel the ETH setup", TradeAction.CANCEL, CancelRequest()),
        (
            "New targets: 3400, 3600",
            TradeAction.TARGETS,
            TargetsRequest(targets=(Decimal(3400), Decimal(3600))),
        ),
        ("Add TP3 at 3700", TradeAction.TARGETS, TargetsRequest(targets=(Decimal(3500), Decimal(3700)))),
    ],
)
def test_following_plans_the_action_the_message_asks(text: str, action: TradeAction, body: object) -> None:
    decided = _plan(text)
    assert isinstance(decided, Plan), decided
    assert (decided.action, decided.body) == (action, body)


def test_following_close_of_an_unfilled_trade_cancels_its_entries_and_a_part_is_refused() -> None:
    pending = _trade(TradeState.PENDING, filled="0")
    decided = _plan("Close ETH now", pending)
    assert isinstance(decided, Plan) and decided.action is TradeAction.CANCEL
    assert isinstance(_plan("close half here", pending), Nothing)
    assert isinstance(_plan("move SL to entry", pending), Nothing)  # no entry to move it to


def test_following_never_guesses_a_part_or_acts_on_a_trade_that_is_over() -> None:
    assert isinstance(_plan("Closing part of the position here"), Nothing)  # how much? never guessed
    over = _plan("Close ETH now", _trade(TradeState.CLOSED))
    assert isinstance(over, Nothing) and "already closed" in over.reason


def test_following_reports_say_when_the_exchange_disagrees() -> None:
    agrees = _plan("TP1 hit ✅")
    assert isinstance(agrees, Report) and agrees.agrees and "TP1 3300" in agrees.text
    none_hit = _trade().model_copy(
        update={
            "targets": (TargetView(number=1, price=Decimal(3300), size=Decimal(10), state=TargetState.OPEN),)
        }
    )
    disagrees = _plan("TP1 hit ✅", none_hit)
    assert isinstance(disagrees, Report) and not disagrees.agrees and "none of ours" in disagrees.text
    stop = _plan("Stopped out on ETH")
    assert isinstance(stop, Report) and not stop.agrees and "still open" in stop.text


# ---- which trade -----------------------------------------------------------------------------------


async def _place(paper: RunningServer, channel: int, symbol: str, stop: str, target: str) -> str:
    sid = f"discord:{channel}:{uuid.uuid4().int % 10**12}"
    body = {"signal_id": sid, "side": "long", "symbol": symbol, "entries": [], "stop_loss": stop,
            "take_profits": [target]}  # fmt: skip
    await place_signal(paper, body)
    return sid


async def test_following_finds_the_trade_by_reply_or_by_its_only_live_trade_never_by_guess(
    paper: RunningServer,
) -> None:
    client = TradingClient(paper.http, BASE_URL, TEST_API_KEY, deadline=10.0, attempt_timeout=5.0)
    eth = await _place(paper, CHANNEL, "ETH-USDT", "2900", "3300")
    await _place(paper, OTHER_CHANNEL, "BTC-USDT", "58000", "62000")  # another channel's trade

    async def find(replied_to: int | None, symbol: str | None) -> TradeView | NoTrade:
        return await following.find_trade(client, channel_id=CHANNEL, replied_to=replied_to, symbol=symbol)

    by_reply = await find(int(eth.rsplit(":", 1)[1]), "BTC-USDT")  # a reply wins over the name in the text
    assert isinstance(by_reply, TradeView) and by_reply.signal_id == eth
    by_name = await find(None, "ETH-USDT")
    assert isinstance(by_name, TradeView) and by_name.signal_id == eth
    other_channel = await find(None, "BTC-USDT")
    assert isinstance(other_channel, NoTrade) and "no open or pending BTC-USDT trade" in other_channel.reason
    nameless = await find(None, None)
    assert isinstance(nameless, NoTrade) and "reply to the signal" in nameless.reason
    not_a_signal = await find(12345, None)
    assert isinstance(not_a_signal, NoTrade) and "not a signal the bot traded" in not_a_signal.reason
