"""The reply to a placed signal shows what the server placed, not only what was parsed."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import discord

from hit_bot.parser import parse
from hit_bot.pipeline import Forwarded
from hit_bot.render import outcome_embed, parse_embed
from hit_bot.trading_client import Delivered
from hit_shared.models import OrderInfo, OrderRole, Side, TradeResponse, TradeSignal, TradeStatus, TradingMode

ZONE = TradeSignal(
    signal_id="discord:1:2", side=Side.LONG, symbol="DOGE-USDT", entries=(Decimal("0.149"), Decimal("0.147")),
    stop_loss=Decimal("0.143"), take_profits=(Decimal("0.155"), Decimal("0.16")),
)


def order(role: OrderRole, size: str, price: str | None = None, trigger: str | None = None) -> OrderInfo:
    return OrderInfo(role=role, client_order_id=f"c{role.value}{price}{trigger}", type="limit",
                     price=Decimal(price) if price else None,
                     trigger_price=Decimal(trigger) if trigger else None, size=Decimal(size), state="live")


def placed(*orders: OrderInfo) -> Forwarded:
    size = sum((o.size for o in orders if o.role is OrderRole.ENTRY), Decimal(0))
    response = TradeResponse(
        signal_id=ZONE.signal_id, status=TradeStatus.PLACED, mode=TradingMode.PAPER, symbol=ZONE.symbol,
        side=ZONE.side, leverage=5, size=size, orders=orders, created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return Forwarded(ZONE, Delivered(response, replayed=False))


def fields(embed: discord.Embed) -> dict[str, str]:
    return {str(field.name): str(field.value) for field in embed.fields}


def test_outcome_embed_lists_the_ladder_the_server_placed_for_a_zone() -> None:
    ladder = (order(OrderRole.ENTRY, "400", "0.149"), order(OrderRole.ENTRY, "400", "0.148"),
              order(OrderRole.ENTRY, "300", "0.147"), order(OrderRole.STOP_LOSS, "1100", trigger="0.143"),
              order(OrderRole.TAKE_PROFIT, "550", trigger="0.155"))
    shown = fields(outcome_embed(placed(*ladder)))
    assert shown["Entries placed (price × contracts)"] == "0.149 × 400\n0.148 × 400\n0.147 × 300"
    assert "Entries" not in shown
    assert shown["Size"] == "1100 contracts"
    assert shown["Stop loss"] == "0.143"


def test_outcome_embed_shows_a_market_entry_as_market_with_its_size() -> None:
    shown = fields(outcome_embed(placed(order(OrderRole.ENTRY, "12"))))
    assert shown["Entries placed (price × contracts)"] == "market × 12"


def test_outcome_embed_falls_back_to_the_parsed_entries_when_the_server_lists_no_entry_order() -> None:
    shown = fields(outcome_embed(placed(order(OrderRole.STOP_LOSS, "5", trigger="0.143"))))
    assert shown["Entries"] == "0.149, 0.147"
    assert "Entries placed (price × contracts)" not in shown


def test_test_command_embed_shows_each_step_of_a_management_message() -> None:
    embed = parse_embed(parse("Close half, move SL to entry"))
    fields = {field.name: field.value for field in embed.fields}
    assert embed.title == "Management: partial_close"
    assert fields["Part"] == "0.5 of the position"
    assert fields["Then"] == '2. it moves the stop: "sl" + "move" + "entry", to breakeven'
    assert "Then" not in {f.name for f in parse_embed(parse("Close ETH now")).fields}
