"""The trading console (issue #15) through the real discord.py client and the fake Discord, against the real
trading server (paper mode, its in-process BloFin simulator): the read commands as prefix and slash
commands, and the admin actions with their confirmation buttons.

What each test checks is what the server itself says (its positions, account, P&L, events), so a wrong
field, a second close or a close nobody confirmed shows up here.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest

from hit_bot import render_trades
from hit_bot.bot import HitBot
from hit_bot.cogs.trade_actions import TradeActionsCog
from hit_bot.testing.fake_discord import FakeDiscord
from hit_server.testing import (
    TEST_API_KEY,
    RunningServer,
    place_signal,
    trade_view,
)
from hit_server.testing import signal_events as server_events

ETH, BTC = "ETH-USDT", "BTC-USDT"
WAIT = 15.0  # seconds: a bound on a busy machine, never a sleep


@pytest.fixture
def sent(paper: RunningServer) -> list[tuple[str, str | None]]:
    """(path, Idempotency-Key) of every action request that reaches the server (httpx's request hook)."""
    seen: list[tuple[str, str | None]] = []

    async def record(request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path.startswith("/api/v1/trades/"):
            seen.append((request.url.path, request.headers.get("Idempotency-Key")))

    paper.http.event_hooks["request"].append(record)
    return seen


Console = Callable[..., AbstractAsyncContextManager[HitBot]]


@pytest.fixture
def console(run_bot_on_paper: Console) -> Console:
    """`async with console(confirm_timeout=30):` the bot on the fake Discord and the real server."""

    @asynccontextmanager
    async def run(confirm_timeout: float = 30.0, **overrides: Any) -> AsyncIterator[HitBot]:
        async with run_bot_on_paper(**overrides) as bot:
            actions = bot.get_cog("Trade actions")
            assert isinstance(actions, TradeActionsCog)
            actions.confirm_timeout = confirm_timeout
            yield bot

    return run


# ---- helpers -----------------------------------------------------------------------------------------


async def open_trade(paper: RunningServer, symbol: str, stop: str, targets: list[str], **fields: Any) -> str:
    """A market long placed on the server, once the position monitor shows it open; its signal_id."""
    sid = f"discord:2001:{uuid.uuid4().int % 10**12}"
    await place_signal(
        paper,
        {
            "signal_id": sid,
            "side": "long",
            "symbol": symbol,
            "entries": [],
            "stop_loss": stop,
            "take_profits": targets,
            **fields,
        },
    )
    await until_state(paper, sid, "open")
    return sid


async def until_state(paper: RunningServer, sid: str, state: str) -> dict[str, Any]:
    """The trade once the server shows it in `state` (open: with its average entry known)."""
    deadline = time.monotonic() + WAIT
    while True:
        seen = await trade_view(paper, sid)
        if seen["state"] == state and (state != "open" or seen["avg_entry"]):
            return seen
        assert time.monotonic() < deadline, f"{sid} never {state}: {seen}"
        await asyncio.sleep(0.05)


async def manual(paper: RunningServer, sid: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in await server_events(paper, sid) if e["type"] == kind]


async def command(
    fake: FakeDiscord,
    text: str,
    *,
    author: str = "carol",
    reply_to: int | None = None,
    channel: str = "chatter",
) -> tuple[int, str]:
    """A prefix command; (the bot's reply id, its text)."""
    mid = await fake.post_user_message(text, author=author, channel=channel, reply_to=reply_to)
    assert await fake.wait_until(lambda: fake.replies_to(mid), WAIT), f"no reply to {text!r}"
    reply = fake.replies_to(mid)[0]
    return reply.id, reply.text


async def slash(fake: FakeDiscord, name: str, *, author: str = "carol", **options: Any) -> tuple[int, str]:
    """A slash command; (the id of the message that answers it, its text once the bot has filled it)."""
    iid = await fake.slash(name, author=author, **options)

    def answered() -> bool:
        answers = fake.interaction(iid).answers
        return bool(answers) and bool(fake.text_of(answers[0].id))

    assert await fake.wait_until(answered, WAIT), f"no answer to /{name}"
    first = fake.interaction(iid).answers[0].id
    return first, fake.text_of(first)


async def settled(fake: FakeDiscord, message_id: int, marker: str) -> str:
    """The message's text once it holds `marker` (the bot edits its prompt as things happen)."""
    assert await fake.wait_until(lambda: marker in fake.text_of(message_id), WAIT), fake.text_of(message_id)
    return fake.text_of(message_id)


async def double_click(fake: FakeDiscord, message_id: int, label: str, author: str) -> list[int]:
    """Two clicks at once, again while the bot took neither (see `FakeDiscord.press`); every click's id."""
    clicks: list[int] = []
    for _ in range(5):
        pair = [await fake.click(message_id, label, author=author) for _ in range(2)]
        clicks += pair
        if await fake.wait_until(
            lambda both=pair: any(fake.interaction(c).acknowledged for c in both),
            fake.interactions.ack_within,
        ):
            return clicks
    raise AssertionError(f"the bot took none of the clicks on {label!r}")


def labels(fake: FakeDiscord, message_id: int) -> list[str]:
    return [b.get("label", "") for b in fake.buttons(message_id)]


# ---- reads -------------------------------------------------------------------------------------------


async def test_positions_show_each_open_trade_with_the_exchanges_mark_and_upnl(
    console: Console, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    eth = await open_trade(paper, ETH, "2900", ["3300", "3500"])
    btc = await open_trade(paper, BTC, "58000", ["62000"])
    await paper.set_price(ETH, "3030")
    positions = {p["instId"]: p for p in (await paper.http.get("/api/v1/positions")).json()["positions"]}
    eth_view = await trade_view(paper, eth)

    async with console():
        _, prefix = await command(fake_discord, "!positions", author="alice")
        _, slashed = await slash(fake_discord, "positions", author="alice")

    for text in (prefix, slashed):
        assert "Open positions (2)" in text
        assert "LONG ETH-USDT" in text and "LONG BTC-USDT" in text and eth in text and btc in text
        size, entry = eth_view["filled_size"], eth_view["avg_entry"]
        assert f"{size} contracts @ {entry}" in text
        assert "mark 3030" in text
        upnl = render_trades.money(Decimal(positions[ETH]["unrealizedPnl"]))
        assert f"uP&L {upnl}" in text and upnl.startswith("+") and upnl != "+0.00 USDT"
        assert "stop 2900 · next TP1 3300" in text and "stop 58000 · next TP1 62000" in text


async def test_trades_trade_pnl_and_balance_answer_as_prefix_and_slash(
    console: Console, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    eth = await open_trade(paper, ETH, "2900", ["3100", "3300"])
    sol = await open_trade(paper, "SOL-USDT", "140", ["160"])
    await paper.set_price("SOL-USDT", "161")  # its only target: the trade closes with a profit
    closed = await until_state(paper, sol, "closed")
    account = (await paper.http.get("/api/v1/account")).json()
    pnl_week = (await paper.http.get("/api/v1/pnl", params={"period": "week"})).json()

    async with console():
        _, everything = await command(fake_discord, "!trades", author="alice")
        _, only_closed = await command(fake_discord, "!trades closed", author="alice")
        _, slash_open = await slash(fake_discord, "trades", author="alice", state="open")
        _, one = await command(fake_discord, "!trade eth", author="alice")
        _, one_by_id = await slash(fake_discord, "trade", author="alice", trade=sol)
        _, pnl = await command(fake_discord, "!pnl week", author="alice")
        _, pnl_day = await slash(fake_discord, "pnl", author="alice")
        _, bad_period = await command(fake_discord, "!pnl year", author="alice")
        _, balance = await command(fake_discord, "!balance", author="alice")
        _, slash_balance = await slash(fake_discord, "balance", author="alice")

    assert "Trades: all (2)" in everything and eth in everything and sol in everything
    assert "Trades: closed (1)" in only_closed and sol in only_closed and eth not in only_closed
    profit = render_trades.money(Decimal(closed["realized_pnl"]))
    assert profit in only_closed and "targets" in only_closed
    assert "Trades: open (1)" in slash_open and eth in slash_open and sol not in slash_open
    assert "LONG ETH-USDT: open" in one and "TP1 3100" in one and "Stop\n2900" in one and eth in one
    assert "LONG SOL-USDT: closed" in one_by_id and f"Realised P&L\n{profit}" in one_by_id
    assert "Exit\ntargets" in one_by_id and "take_profit_hit" in one_by_id
    assert "Realised P&L per week" in pnl and render_trades.money(Decimal(pnl_week["realized_pnl"])) in pnl
    assert "1 (1W/0L, 100%)" in pnl and "Realised P&L per day" in pnl_day
    assert bad_period.startswith("🔎") and "day, week or month" in bad_period
    equity = render_trades.amount(Decimal(account["equity"]))
    for text in (balance, slash_balance):
        assert "Account (paper)" in text and f"Equity\n{equity}" in text and "Open positions\n1" in text
        assert render_trades.amount(Decimal(account["available_margin"])) in text
        assert TEST_API_KEY not in text


async def test_unknown_symbols_and_ids_are_named_in_the_answer(
    console: Console, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    async with console():
        _, symbol = await command(fake_discord, "!trade DOGE", author="alice")
        _, trade_id = await command(fake_discord, "!close discord:1:999", author="carol")
        _, nonsense = await command(fake_discord, "!trade <@everyone>", author="alice")
        _, no_trade = await command(fake_discord, "!cancel", author="carol")
        _, slash_symbol = await slash(fake_discord, "sl", author="carol", trade="XRP", stop="be")
    assert symbol == "🔎 No trade on DOGE-USDT."
    assert trade_id == "🔎 No trade has the id `discord:1:999`."
    assert "neither a symbol" in nonsense
    assert "Name the trade" in no_trade
    assert slash_symbol == "🔎 No open or pending trade on XRP-USDT."


# ---- actions -----------------------------------------------------------------------------------------


async def test_close_asks_for_confirmation_and_a_confirm_closes_once(
    console: Console, fake_discord: FakeDiscord, paper: RunningServer, sent: list[tuple[str, str | None]]
) -> None:
    sid = await open_trade(paper, ETH, "2900", ["3300"])
    async with console():
        prompt, text = await command(fake_discord, "!close ETH", author="carol")
        assert "Confirm: close LONG ETH-USDT" in text and "Close all of LONG ETH-USDT" in text and sid in text
        assert labels(fake_discord, prompt) == ["Confirm", "Cancel"]
        assert await manual(paper, sid, "manual_close") == []  # nothing before the click
        clicks = await double_click(fake_discord, prompt, "Confirm", author="carol")
        done = await settled(fake_discord, prompt, "✅ Closed")
    answers = [fake_discord.interaction(c).callback for c in clicks]
    # one click turned the prompt into "working…" (7); every other found the decision made (6: taken,
    # nothing changed) or the view already gone (never taken: Discord says the interaction failed)
    assert answers.count(7) == 1 and set(answers) <= {7, 6, None}
    command_id = next(p.reply_to for p in fake_discord.posts if p.id == prompt)
    assert {key for _, key in sent} == {f"discord-close-{command_id}"}  # one key, whatever the retries
    assert {path for path, _ in sent} == {f"/api/v1/trades/{sid}/close"}
    assert "confirmed by carol" in done and sid in done
    assert fake_discord.buttons(prompt) == []
    assert len(await manual(paper, sid, "manual_close")) == 1
    assert (await until_state(paper, sid, "closed"))["exit_reason"] == "manual"


async def test_cancel_button_and_timeout_act_not_at_all(
    console: Console, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    sid = await open_trade(paper, ETH, "2900", ["3300"])
    before = (await trade_view(paper, sid))["filled_size"]
    async with console():
        prompt, _ = await command(fake_discord, "!close ETH 50", author="carol")
        await fake_discord.press(prompt, "Cancel", author="carol")
        cancelled = await settled(fake_discord, prompt, "Cancelled")
    async with console(confirm_timeout=2.0):
        slash_prompt, _ = await slash(fake_discord, "close", author="carol", trade="eth-usdt")
        timed_out = await settled(fake_discord, slash_prompt, "Timed out")
    shown = [body for mid, body in fake_discord.edits if mid == slash_prompt]
    asked = [b["label"] for row in shown[0]["components"] for b in row["components"]]  # the first showing
    assert asked == ["Confirm", "Cancel"] and "Confirm within 2 s" in shown[0]["embeds"][0]["description"]
    assert "Close 50% of LONG ETH-USDT" in cancelled and "Nothing was done" in cancelled
    assert "No confirmation within 2 s: nothing was done" in timed_out
    assert fake_discord.buttons(prompt) == [] and fake_discord.buttons(slash_prompt) == []
    assert await manual(paper, sid, "manual_close") == []
    after = await trade_view(paper, sid)
    assert after["state"] == "open" and after["filled_size"] == before


async def test_non_admins_are_refused_and_cannot_press_an_admins_button(
    console: Console, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    sid = await open_trade(paper, ETH, "2900", ["3300"])
    async with console():
        _, prefix = await command(fake_discord, "!close ETH", author="alice")
        _, slashed = await slash(fake_discord, "sl", author="alice", trade="ETH", stop="be")
        _, cancel = await command(fake_discord, "!cancel ETH", author="bob")
        prompt, _ = await command(fake_discord, "!close ETH", author="carol")
        click = await fake_discord.press(prompt, "Confirm", author="alice")
        assert await fake_discord.wait_until(lambda: fake_discord.interaction(click).answers, WAIT)
        refusal = fake_discord.interaction(click).answers[0]
    for text in (prefix, slashed, cancel):
        assert text == "⛔ only admins can do that"
    assert refusal.body["flags"] & 64 and "Only the admin who asked" in refusal.text  # ephemeral
    assert labels(fake_discord, prompt) == ["Confirm", "Cancel"]  # still waiting for carol
    assert await manual(paper, sid, "manual_close") == [] and await manual(paper, sid, "manual_stop") == []


async def test_sl_moves_the_stop_to_a_price_and_to_breakeven_and_shows_a_refusal(
    console: Console, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    sid = await open_trade(paper, ETH, "2900", ["3300"])
    await paper.set_price(ETH, "3100")
    entry = (await trade_view(paper, sid))["avg_entry"]
    async with console():
        prompt, text = await command(fake_discord, "!sl ETH 2950", author="carol")
        assert "from 2900 to 2950" in text
        await fake_discord.press(prompt, "Confirm", author="carol")
        moved = await settled(fake_discord, prompt, "✅ Stop moved")
        after_price = (await trade_view(paper, sid))["stop"]

        prompt, text = await command(fake_discord, "!sl ETH be", author="carol")
        assert f"to breakeven ({entry})" in text
        await fake_discord.press(prompt, "Confirm", author="carol")
        await settled(fake_discord, prompt, "✅ Stop moved")
        after_be = (await trade_view(paper, sid))["stop"]

        wrong, _ = await slash(fake_discord, "sl", author="carol", trade=sid, stop="3200")  # above the mark
        await fake_discord.press(wrong, "Confirm", author="carol")
        refused = await settled(fake_discord, wrong, "Not done")
    assert after_price["price"] == "2950" and "Stop\n2950" in moved
    assert (
        after_be == {"price": entry, "at_breakeven": after_be["at_breakeven"]} and after_be["price"] == entry
    )
    direct = await paper.http.post(
        f"/api/v1/trades/{sid}/stop", json={"price": "3200"}, headers={"Idempotency-Key": "test-direct-3200"}
    )
    sentence = direct.json()["error"]["message"]
    assert direct.status_code == 422 and direct.json()["error"]["code"] == "stop_refused"
    assert f"The trading server refused: {sentence}" in refused
    assert (await trade_view(paper, sid))["stop"]["price"] == entry  # the refusal left the stop alone


async def test_a_reply_to_the_placed_message_names_the_trade(
    console: Console, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    async with console():
        signal = await fake_discord.post_user_message(
            "LONG ETH-USDT Entry: market SL: 2900 TP: 3300, 3500", author="alice"
        )
        assert await fake_discord.wait_until(lambda: fake_discord.replies_to(signal), WAIT)
        placed = fake_discord.replies_to(signal)[0]
        assert "Trade placed: LONG ETH-USDT" in placed.text
        sid = f"discord:{fake_discord.channel('signals')}:{signal}"
        await until_state(paper, sid, "open")

        _, shown = await command(
            fake_discord, "!trade", author="alice", channel="signals", reply_to=placed.id
        )
        prompt, asked = await command(
            fake_discord, "!close 50", author="carol", channel="signals", reply_to=placed.id
        )
        assert "Close 50% of LONG ETH-USDT" in asked and sid in asked
        await fake_discord.press(prompt, "Confirm", author="carol")
        done = await settled(fake_discord, prompt, "✅ Partly closed")
    assert "LONG ETH-USDT: open" in shown and sid in shown
    assert sid in done
    [event] = await manual(paper, sid, "manual_close")
    assert event["data"]["outcome"] == "partly_closed"
