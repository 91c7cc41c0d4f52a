"""The trading console's embeds: numbers as people read them, long lists cut with "and N more", and every
embed inside Discord's limits (checked by the fake Discord's own rules, which refuse what Discord would)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import discord

from hit_bot import render_trades
from hit_bot.testing.fake_interactions import message_problem
from hit_bot.trading_client import ExchangePosition
from hit_shared.models import Side, TradingMode
from hit_shared.trades import (
    EventOut,
    StopView,
    TargetState,
    TargetView,
    TradeDetail,
    TradesPage,
    TradeState,
    TradeView,
)

NOW = datetime(2025, 1, 2, 3, 4, tzinfo=UTC)


def _trade(n: int, state: TradeState = TradeState.OPEN, **fields: object) -> TradeView:
    values: dict[str, object] = {
        "signal_id": f"discord:2001:{n}",
        "state": state,
        "symbol": f"C{n}-USDT",
        "side": Side.LONG,
        "size": Decimal("2.5"),
        "filled_size": Decimal("2.5"),
        "avg_entry": Decimal("0.00012"),
        "stop": StopView(price=Decimal("0.0001")),
        "created_at": NOW,
        "targets": (
            TargetView(number=1, price=Decimal("0.00015"), size=Decimal(1), state=TargetState.HIT),
            TargetView(number=2, price=Decimal("0.0002"), size=Decimal("1.5"), state=TargetState.OPEN),
        ),
    }
    values.update(fields)
    return TradeView.model_validate(values)


def _fits(embed: discord.Embed) -> None:
    assert message_problem({"embeds": [embed.to_dict()]}, creating=True) is None


def test_money_has_a_sign_two_decimals_and_separators_and_prices_stay_exact() -> None:
    assert render_trades.money(Decimal("1234.5")) == "+1,234.50 USDT"
    assert render_trades.money(Decimal("-0.004")) == "-0.00 USDT"
    assert render_trades.money(None) == "n/a"
    assert render_trades.amount(Decimal("10000")) == "10,000.00 USDT"
    assert (
        render_trades.price(Decimal("6E+4")) == "60000"
        and render_trades.price(Decimal("0.00012")) == "0.00012"
    )


def test_positions_show_the_next_open_target_and_cut_a_long_list() -> None:
    trades = tuple(_trade(n) for n in range(13))
    marks = {
        "C0-USDT": ExchangePosition(
            inst_id="C0-USDT",
            positions=Decimal("2.5"),
            average_price=Decimal(1),
            mark_price=Decimal("0.00013"),
            unrealized_pnl=Decimal("12.345"),
        )
    }
    embed = render_trades.positions_embed(TradesPage(trades=trades[:10], total=13, limit=10, offset=0), marks)
    text = "\n".join(f"{f.name}\n{f.value}" for f in embed.fields)
    assert len(embed.fields) == 10 and embed.footer.text == "… and 3 more"
    assert "2.5 contracts @ 0.00012\nmark 0.00013 · uP&L +12.35 USDT\nstop 0.0001 · next TP2 0.0002" in text
    assert "no position on the exchange" in text  # C1..C9: the exchange shows none
    _fits(embed)
    unread = render_trades.positions_embed(TradesPage(trades=trades[:1], total=1, limit=10, offset=0), None)
    assert "mark n/a" in str(unread.fields[0].value) and "could not be read" in str(unread.footer.text)


def test_trades_list_is_cut_with_the_count_of_the_rest() -> None:
    trades = tuple(
        _trade(n, TradeState.CLOSED, realized_pnl=Decimal("-3.2"), exit_reason="stopped_out")
        for n in range(15)
    )
    embed = render_trades.trades_embed(TradesPage(trades=trades, total=40, limit=15, offset=0), "closed")
    assert embed.title == "Trades: closed (40)" and embed.footer.text == "… and 25 more"
    assert "-3.20 USDT · stopped out · `discord:2001:0`" in str(embed.description)
    _fits(embed)


def test_a_trade_with_long_texts_and_many_events_stays_within_discords_limits() -> None:
    events = tuple(EventOut(id=i, type="stop_moved", message="m" * 500, created_at=NOW) for i in range(30))
    detail = TradeDetail.model_validate(
        {
            **_trade(1).model_dump(),
            "reason": "r" * 5000,
            "events": events,
            "mode": TradingMode.PAPER,
            "leverage": 5,
        }
    )
    embed = render_trades.trade_embed(detail)
    assert "… 24 earlier" in str(embed.fields[-1].value)
    assert "✅ TP1 0.00015 × 1 (hit)\n· TP2 0.0002 × 1.5 (open)" in str(embed.fields[3].value)
    _fits(embed)
