"""`python -m hit_bot.parser "<message>"` shows how the message was read (issue #14): which words were
taken as which label, which numbers became which price, and why anything was refused or ignored."""

from __future__ import annotations

from typing import Any

import pytest

from hit_bot.cogs.operator import reading_block
from hit_bot.parser_cli import main
from hit_bot.parsing.explain import explain
from hit_bot.testing.fake_discord import FakeDiscord


def test_explain_names_each_label_and_its_prices() -> None:
    lines = explain("LONG BTC-USDT Entry: 60000 SL: 58000 TP1: 65000 TP2: 66000 Leverage: 10x")
    assert lines[0] == "how it was read:"
    assert '  "ENTRY" taken as entry: 60000' in lines
    assert '  "SL" taken as stop loss: 58000' in lines
    assert '  "TP1" taken as take profit: 65000' in lines
    assert '  "TP2" taken as take profit: 66000' in lines
    assert '  "LEVERAGE: 10X" taken as leverage: 10x' in lines
    assert "  direction: LONG (written)" in lines
    assert "  symbol: BTC-USDT" in lines


def test_explain_names_a_value_that_cannot_be_read() -> None:
    lines = explain("LONG BTC-USDT Entry: 60000 SL: 58000 TP1: 65000 TP2: 6600O")
    assert '  "TP2" taken as take profit: "6600O" is not a price that can be read' in lines


def test_explain_shows_prices_taken_as_the_entry_without_a_label() -> None:
    lines = explain("LONG BTC-USDT 60000 SL 58000 TP 65000")
    assert "  prices before the labels, taken as the entry (no entry label): 60000" in lines


def test_explain_shows_an_inferred_direction() -> None:
    lines = explain("OP-USDT\nEntry: 1.95\nTargets: 2.05 - 2.15\nSL: 1.85")
    assert "  direction: LONG (none written; inferred from the prices)" in lines


def test_explain_shows_a_translated_label_as_the_english_word() -> None:
    lines = explain("APT/USDT ЛОНГ\nВход: 8.40\nСтоп: 8.10\nТейк 1: 8.90")
    assert '  "ENTRY" taken as entry: 8.4' in lines
    assert '  "STOP" taken as stop loss: 8.1' in lines


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Should I long BTC-USDT at 60000?", "it asks a question"),
        ("Example: LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000", "it closes, cancels, withdraws"),
        ("BTC-USDT is at 60000 today", "no entry, stop loss or take profit label carries a price"),
        ("gm everyone", "it has no number"),
    ],
)
def test_explain_says_why_a_message_is_ignored(text: str, why: str) -> None:
    last = explain(text)[-1]
    assert last.startswith(f"  ignored because {why}")


def test_parser_cli_prints_how_the_message_was_read(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("signal (standard)\n")
    assert '\n  "SL" taken as stop loss: 58000\n' in out


async def test_bot_test_command_shows_how_the_message_was_read(
    run_bot: Any, fake_discord: FakeDiscord
) -> None:
    async with run_bot():
        mid = await fake_discord.post_user_message(
            "!test LONG BTC-USDT Entry: 60000 SL: 58000 TP1: 65000 TP2: 6600O",
            author="alice",
            channel="chatter",
        )
        assert await fake_discord.wait_until(lambda: fake_discord.replies_to(mid))
    [reply] = fake_discord.replies_to(mid)
    assert "Invalid signal" in reply.text
    assert '"SL" taken as stop loss: 58000' in reply.text
    assert '"TP2" taken as take profit: "6600O" is not a price that can be read' in reply.text


def test_bot_test_reading_is_a_code_block_within_discord_limits() -> None:
    block = reading_block("LONG BTC-USDT Entry: 60000 SL: 58000 " + "TP: 65000 " * 400)
    assert block.startswith("```\nhow it was read:\n") and block.endswith("...\n```")
    assert len(block) <= 2000


def test_explain_shows_each_clause_of_a_management_message() -> None:
    lines = explain("Тейк 1 взяли, стоп двигаем в точку входа. Пока не закрываем")
    assert '  clause 1 "тейк 1 взяли": "тейк" target, "взяли" hit -> tp_hit' in lines
    assert (
        '  clause 2 "стоп двигаем в точку входа": "стоп" stop, "двигаем" move, "точку входа" breakeven '
        "-> move_stop"
    ) in lines
    assert '  not taken: "закрываем": negated by "не"' in lines
    assert lines[-1].startswith('  management: move_stop because it moves the stop: "стоп" + "двигаем"')


def test_explain_says_why_a_management_reading_does_not_replace_an_invalid_signal() -> None:
    lines = explain("XRPUSDT 🟢\nНОВАЯ ЦЕЛЬ\nВход: 1.4125\nТейки: 1.4140-1.4152")
    why = "it is shaped like a signal, so it stays an invalid signal"
    assert f"  not read as management (update_targets): {why}" in lines


def test_explain_lists_management_words_of_an_ignored_message() -> None:
    lines = explain("Should we close ETH here?")
    assert '  clause 1 "should we close eth here": "close" close -> other' in lines
    assert '  not taken: "close": it is asked, or depends on a condition' in lines


async def test_bot_test_command_shows_a_management_reading(run_bot: Any, fake_discord: FakeDiscord) -> None:
    async with run_bot():
        mid = await fake_discord.post_user_message(
            "!test #SOL Фиксируем половину, стоп в безубыток", author="alice", channel="chatter"
        )
        assert await fake_discord.wait_until(lambda: fake_discord.replies_to(mid))
    [reply] = fake_discord.replies_to(mid)
    assert "Management: partial_close: SOL-USDT" in reply.text
    assert "0.5 of the position" in reply.text
    assert '"фиксируем" take_profit, "половину" half -> partial_close' in reply.text
