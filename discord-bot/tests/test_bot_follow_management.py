"""Following the channel (issue #17), end to end: the real discord.py client on the fake Discord, the real
trading server in paper mode and its BloFin simulator. A signal is posted in the channel and traded; then
the channel's management messages (mostly Discord replies to the signal) act on that trade.

Each test checks what the server says afterwards (the trade's size, stop, targets, state, P&L, and the
action events with their Idempotency-Key), so a second close, a close nobody asked for or a wrong stop
shows up here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hit_bot.bot import HitBot
from hit_bot.cogs.following import ADMINS_ONLY, EDITED_AFTER_ACTING, NO_ADMINS, NOT_ALLOWED
from hit_bot.testing.fake_discord import FakeDiscord
from hit_server.testing import RunningServer, trade_view
from hit_server.testing import signal_events as server_events

WAIT = 15.0  # seconds: a bound on a busy machine, never a sleep
SIGNAL = "LONG ETH-USDT\nEntry: market\nSL: 2900\nTP1: 3300\nTP2: 3500"
RESTING = "LONG ETH-USDT\nEntry: 2900\nSL: 2800\nTP1: 3300"  # below the price (3000): it rests


Follower = Callable[..., AbstractAsyncContextManager[HitBot]]


@pytest.fixture
def follower(run_bot_on_paper: Follower) -> Follower:
    """`async with follower(follow_management="act"):` the bot on the fake Discord and the real server."""
    return run_bot_on_paper


# ---- helpers -----------------------------------------------------------------------------------------


async def until(
    paper: RunningServer, sid: str, ok: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """The trade once `ok` holds for it (the server's view, polled; bounded, never a fixed sleep)."""
    deadline = time.monotonic() + WAIT
    while True:
        seen = await trade_view(paper, sid)
        if ok(seen):
            return seen
        assert time.monotonic() < deadline, f"{sid} never {what}: {seen}"
        await asyncio.sleep(0.05)


async def post_signal(fake: FakeDiscord, paper: RunningServer, text: str, state: str) -> tuple[int, str]:
    """The signal posted in the channel and traded by the bot; (its message id, its trade's signal_id)."""
    mid = await fake.post_user_message(text, author="alice")
    sid = f"discord:{fake.channel('signals')}:{mid}"
    assert await fake.wait_until(lambda: fake.replies_to(mid), WAIT), "the signal got no reply"
    await until(
        paper, sid, lambda t: t["state"] == state and (state != "open" or bool(t["avg_entry"])), state
    )
    return mid, sid


async def actions(paper: RunningServer, sid: str, kind: str) -> list[dict[str, Any]]:
    """The trade's action events of this kind that did something (refusals left out)."""
    return [
        e
        for e in await server_events(paper, sid)
        if e["type"] == kind and e["data"].get("outcome") != "refused"
    ]


async def reply_text(fake: FakeDiscord, mid: int) -> str:
    assert await fake.wait_until(lambda: fake.replies_to(mid), WAIT), "no reply"
    return fake.text_of(fake.replies_to(mid)[0].id)


async def position(paper: RunningServer, symbol: str) -> Decimal:
    """The contracts the exchange holds on `symbol` (GET /api/v1/positions), 0 when none."""
    reply = await paper.http.get("/api/v1/positions")
    assert reply.status_code == 200, reply.text
    held = [Decimal(p["positions"]) for p in reply.json()["positions"] if p["instId"] == symbol]
    return sum(held, Decimal(0))


async def until_position(paper: RunningServer, symbol: str, ok: Callable[[Decimal], bool]) -> Decimal:
    deadline = time.monotonic() + WAIT
    while not ok(held := await position(paper, symbol)):
        assert time.monotonic() < deadline, f"the {symbol} position stayed {held}"
        await asyncio.sleep(0.05)
    return held


# ---- act mode ----------------------------------------------------------------------------------------


async def test_act_mode_close_half_then_stop_to_entry_then_close(
    follower: Follower, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    async with follower(follow_management="act"):
        signal, sid = await post_signal(fake_discord, paper, SIGNAL, "open")
        filled = await until_position(paper, "ETH-USDT", lambda held: held > 0)

        half = await fake_discord.post_user_message("close half here", reply_to=signal)
        left = await until_position(paper, "ETH-USDT", lambda held: held < filled)
        assert filled / 2 - 1 <= left <= filled / 2 + 1  # half closed, to the lot
        assert "Partly closed" in await reply_text(fake_discord, half)
        after_half = await trade_view(paper, sid)
        open_targets = [t for t in after_half["targets"] if t["state"] == "open"]
        assert sum(Decimal(t["size"]) for t in open_targets) == left  # the targets re-split over the rest
        live_stops = [o for o in after_half["orders"] if o["role"] == "stop_loss" and o["state"] == "live"]
        assert len(live_stops) == 1  # one stop, reduce-only: it closes what is held, at most its size
        assert Decimal(live_stops[0]["size"]) >= left  # so it covers the rest

        await paper.set_price("ETH-USDT", "3100")  # above the entry: a stop there is below the mark
        be = await fake_discord.post_user_message("TP1 done ✅ move SL to entry", reply_to=signal)
        moved = await until(paper, sid, lambda t: t["stop"]["price"] == t["avg_entry"], "at breakeven")
        assert "Stop moved" in await reply_text(fake_discord, be)
        assert moved["state"] == "open"

        close = await fake_discord.post_user_message("Close ETH now", reply_to=signal)
        closed = await until(paper, sid, lambda t: t["state"] == "closed", "closed")
        assert "Closed" in await reply_text(fake_discord, close)
    assert closed["exit_reason"] == "manual" and closed["realized_pnl"] is not None
    for kind, message in (("manual_close", half), ("manual_stop", be), ("manual_close", close)):
        keys = [e["data"]["key"] for e in await actions(paper, sid, kind)]
        assert f"discord-follow-{message}" in keys  # the journal and the feed name the source message


async def test_act_mode_carries_out_each_step_of_a_message_once(
    follower: Follower, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    async with follower(follow_management="act"):
        signal, sid = await post_signal(fake_discord, paper, SIGNAL, "open")
        filled = await until_position(paper, "ETH-USDT", lambda held: held > 0)
        await paper.set_price("ETH-USDT", "3100")
        both = await fake_discord.post_user_message("TP1 ✅ closing half, SL to entry", reply_to=signal)
        await until(paper, sid, lambda t: t["stop"]["price"] == t["avg_entry"], "at breakeven")
        await fake_discord.redeliver("signals", both)
        assert await fake_discord.wait_until(lambda: len(fake_discord.replies_to(both)) >= 2, WAIT)
    left = await position(paper, "ETH-USDT")
    assert filled / 2 - 1 <= left <= filled / 2 + 1
    assert [e["data"]["key"] for e in await actions(paper, sid, "manual_close")] == [f"discord-follow-{both}"]
    stops = await actions(paper, sid, "manual_stop")
    assert [e["data"]["key"] for e in stops] == [f"discord-follow-{both}-2"]


async def test_act_mode_cancel_before_the_fill_cancels_the_entries(
    follower: Follower, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    async with follower(follow_management="act"):
        _, sid = await post_signal(fake_discord, paper, RESTING, "pending")
        said = await fake_discord.post_user_message("ETH setup cancelled, not filled")  # by symbol, no reply
        ended = await until(paper, sid, lambda t: t["state"] == "cancelled", "cancelled")
        assert "Cancelled" in await reply_text(fake_discord, said)
    assert ended["filled_size"] in ("0", 0)
    assert len(await actions(paper, sid, "manual_cancel")) == 1


async def test_the_same_reply_delivered_twice_and_again_to_a_restarted_bot_acts_once(
    follower: Follower, fake_discord: FakeDiscord, paper: RunningServer, tmp_path: Path
) -> None:
    async with follower(follow_management="act"):
        signal, sid = await post_signal(fake_discord, paper, SIGNAL, "open")
        close = await fake_discord.post_user_message("close half", reply_to=signal)
        await fake_discord.redeliver("signals", close)
        await until(
            paper, sid, lambda t: any(e["type"] == "manual_close" for e in t["events"]), "closed half"
        )
        halved = await position(paper, "ETH-USDT")
    # a bot that remembers nothing (new state directory) is sent the same message after a reconnect
    async with follower(follow_management="act", state_dir=tmp_path / "fresh-state") as bot:
        await fake_discord.redeliver("signals", close)
        assert await fake_discord.wait_until(lambda: len(fake_discord.replies_to(close)) >= 2, WAIT)
        assert bot.is_ready()
    assert len(await actions(paper, sid, "manual_close")) == 1
    assert await position(paper, "ETH-USDT") == halved


async def test_an_edit_of_a_management_reply_never_acts_a_second_time(
    follower: Follower, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    async with follower(follow_management="act"):
        signal, sid = await post_signal(fake_discord, paper, SIGNAL, "open")
        filled = await until_position(paper, "ETH-USDT", lambda held: held > 0)
        half = await fake_discord.post_user_message("close half", reply_to=signal)
        left = await until_position(paper, "ETH-USDT", lambda held: held < filled)
        await fake_discord.edit_user_message("signals", half, "close half 🔥")  # the same order again
        assert await fake_discord.wait_until(lambda: len(fake_discord.replies_to(half)) >= 2, WAIT)
        await fake_discord.edit_user_message("signals", half, "close all")  # another order, same message
        assert await fake_discord.wait_until(lambda: len(fake_discord.replies_to(half)) >= 3, WAIT)
        said = [fake_discord.text_of(r.id) for r in fake_discord.replies_to(half)]
    assert "Partly closed" in said[0] and said[1:] == [EDITED_AFTER_ACTING, EDITED_AFTER_ACTING]
    assert await position(paper, "ETH-USDT") == left
    assert (await trade_view(paper, sid))["state"] == "open"
    assert len(await actions(paper, sid, "manual_close")) == 1


async def test_a_reply_edited_into_an_order_is_acted_on_once(
    follower: Follower, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    async with follower(follow_management="act"):
        signal, sid = await post_signal(fake_discord, paper, SIGNAL, "open")
        filled = await until_position(paper, "ETH-USDT", lambda held: held > 0)
        note = await fake_discord.post_user_message("nice move so far", reply_to=signal)
        await fake_discord.edit_user_message("signals", note, "nice move so far, close half")
        left = await until_position(paper, "ETH-USDT", lambda held: held < filled)
        assert "Partly closed" in await reply_text(fake_discord, note)
    assert filled / 2 - 1 <= left <= filled / 2 + 1
    assert [e["data"]["key"] for e in await actions(paper, sid, "manual_close")] == [f"discord-follow-{note}"]


async def test_a_reply_posted_during_an_outage_is_acted_on_once_by_the_backfill(
    follower: Follower, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    async with follower(follow_management="act"):
        signal, sid = await post_signal(fake_discord, paper, SIGNAL, "open")
        filled = await until_position(paper, "ETH-USDT", lambda held: held > 0)
        await fake_discord.drop_connection(hold=True)
        missed = await fake_discord.post_user_message("close half", reply_to=signal)  # not delivered live
        fake_discord.release_gateway()
        left = await until_position(paper, "ETH-USDT", lambda held: held < filled)  # read back on resume
        assert "Partly closed" in await reply_text(fake_discord, missed)
        await fake_discord.drop_connection()  # another reconnect, and the message delivered once more
        assert await fake_discord.wait_until(lambda: fake_discord.resumes >= 2, WAIT)
        await fake_discord.redeliver("signals", missed)
        await post_signal(fake_discord, paper, "LONG BTC-USDT Entry: market SL: 58000 TP: 62000", "open")
    assert await position(paper, "ETH-USDT") == left
    assert len(await actions(paper, sid, "manual_close")) == 1
    assert len(fake_discord.replies_to(missed)) == 1


async def test_a_reply_by_a_member_not_allowed_to_post_signals_is_refused(
    follower: Follower, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    alice = str(fake_discord.user("alice").id)
    async with follower(follow_management="act", allowed_user_ids=alice):
        signal, sid = await post_signal(fake_discord, paper, SIGNAL, "open")
        before = await trade_view(paper, sid)
        nope = await fake_discord.post_user_message("close it all now", author="bob", reply_to=signal)
        assert await reply_text(fake_discord, nope) == NOT_ALLOWED
        named = await fake_discord.post_user_message("Close ETH now", author="bob")  # by symbol
        assert await reply_text(fake_discord, named) == NOT_ALLOWED
        chat = await fake_discord.post_user_message("I closed my SOL, cancel that", author="bob")
        await post_signal(fake_discord, paper, "LONG BTC-USDT Entry: market SL: 58000 TP: 62000", "open")
        assert fake_discord.replies_to(chat) == []  # no trade of it here: chat, left alone
    after = await trade_view(paper, sid)
    assert after["state"] == "open" and after["filled_size"] == before["filled_size"]
    assert await actions(paper, sid, "manual_close") == []


async def test_a_target_reported_hit_that_ours_has_not_filled_is_said_and_nothing_is_done(
    follower: Follower, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    async with follower(follow_management="act"):
        signal, sid = await post_signal(fake_discord, paper, SIGNAL, "open")
        held = await position(paper, "ETH-USDT")
        hit = await fake_discord.post_user_message("TP2 hit ✅✅", reply_to=signal)
        said = await reply_text(fake_discord, hit)
        assert await fake_discord.wait_until(lambda: fake_discord.reactions_on(hit) == ["👀"], WAIT)
    assert "none of ours on LONG ETH-USDT has filled (next: TP1 3300)" in said
    assert (await trade_view(paper, sid))["state"] == "open" and await position(paper, "ETH-USDT") == held
    for kind in ("manual_close", "manual_stop", "manual_targets", "manual_cancel"):
        assert await actions(paper, sid, kind) == []


# ---- confirm mode ------------------------------------------------------------------------------------


async def test_confirm_mode_does_nothing_until_an_admin_confirms(
    follower: Follower, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    async with follower():  # FOLLOW_MANAGEMENT defaults to confirm
        signal, sid = await post_signal(fake_discord, paper, SIGNAL, "open")
        close = await fake_discord.post_user_message("Close this one", reply_to=signal)
        prompt_text = await reply_text(fake_discord, close)
        prompt = fake_discord.replies_to(close)[0].id
        assert "Confirm: close LONG ETH-USDT" in prompt_text and "The channel asks: Close all" in prompt_text
        assert [b.get("label") for b in fake_discord.buttons(prompt)] == ["Confirm", "Cancel"]
        assert await actions(paper, sid, "manual_close") == []
        # a trader, not an admin (pressed as a person does: again if the buttons were not registered yet)
        refused = await fake_discord.press(prompt, "Confirm", author="alice")
        assert [a.text for a in fake_discord.interaction(refused).answers] == [ADMINS_ONLY]
        assert (await trade_view(paper, sid))["state"] == "open"
        await fake_discord.press(prompt, "Confirm", author="carol")
        await until(paper, sid, lambda t: t["state"] == "closed", "closed")
        assert await fake_discord.wait_until(lambda: "Closed" in fake_discord.text_of(prompt), WAIT)
    assert len(await actions(paper, sid, "manual_close")) == 1


async def test_off_mode_ignores_management_and_a_name_with_no_trade_is_said(
    follower: Follower, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    channel = fake_discord.channel("signals")
    async with follower(follow_management="act", follow_management_channels=f"{channel}:off"):
        signal, sid = await post_signal(fake_discord, paper, SIGNAL, "open")
        quiet = await fake_discord.post_user_message("close half", reply_to=signal)
        # a later signal answered: the bot, which reads a management message without a round trip, is past it
        await post_signal(fake_discord, paper, "LONG BTC-USDT Entry: market SL: 58000 TP: 62000", "open")
        assert fake_discord.replies_to(quiet) == []
    async with follower(follow_management="act"):
        unknown = await fake_discord.post_user_message("Close SOL now")
        assert "no open or pending SOL-USDT trade from this channel" in await reply_text(
            fake_discord, unknown
        )
    assert (await trade_view(paper, sid))["state"] == "open"
    assert await actions(paper, sid, "manual_close") == []


# ---- edits and deletions of the signal -----------------------------------------------------------------


async def test_an_edit_of_the_signals_stop_moves_the_stop_and_never_trades_the_entry_again(
    follower: Follower, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    async with follower(follow_management="act"):
        signal, sid = await post_signal(fake_discord, paper, SIGNAL, "open")
        held = await position(paper, "ETH-USDT")
        await fake_discord.edit_user_message("signals", signal, SIGNAL.replace("SL: 2900", "SL: 2950"))
        moved = await until(paper, sid, lambda t: t["stop"]["price"] == "2950", "moved to 2950")
        await fake_discord.edit_user_message(
            "signals", signal, SIGNAL.replace("SL: 2900", "SL: 2950") + "\n🚀"
        )
        assert await fake_discord.wait_until(lambda: len(fake_discord.replies_to(signal)) >= 3, WAIT)
        notice = fake_discord.text_of(fake_discord.replies_to(signal)[-1].id)
    assert "Stop moved" in fake_discord.text_of(fake_discord.replies_to(signal)[1].id)
    assert "Edits don't change a trade already sent" in notice  # nothing of its levels changed
    assert moved["state"] == "open" and await position(paper, "ETH-USDT") == held  # no second entry
    keys = [e["data"]["key"] for e in await actions(paper, sid, "manual_stop")]
    assert len(keys) == 1 and keys[0].startswith(f"discord-edit-{signal}-stop-")


async def test_an_edit_of_the_signals_targets_replaces_them_once(
    follower: Follower, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    edited = SIGNAL.replace("TP2: 3500", "TP2: 3600")
    async with follower(follow_management="act"):
        signal, sid = await post_signal(fake_discord, paper, SIGNAL, "open")
        held = await position(paper, "ETH-USDT")
        await fake_discord.edit_user_message("signals", signal, edited)
        changed = await until(
            paper, sid, lambda t: [x["price"] for x in t["targets"]] == ["3300", "3600"], "new targets"
        )
        await fake_discord.redeliver("signals", signal)  # the signal again: never a second entry
        await post_signal(fake_discord, paper, "LONG BTC-USDT Entry: market SL: 58000 TP: 62000", "open")
    assert changed["state"] == "open" and await position(paper, "ETH-USDT") == held
    keys = [e["data"]["key"] for e in await actions(paper, sid, "manual_targets")]
    assert len(keys) == 1 and keys[0].startswith(f"discord-edit-{signal}-targets-")


async def test_a_signal_deleted_before_its_fill_has_its_entries_cancelled(
    follower: Follower, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    async with follower(follow_management="act"):
        signal, sid = await post_signal(fake_discord, paper, RESTING, "pending")
        await fake_discord.delete_user_message("signals", signal)
        ended = await until(paper, sid, lambda t: t["state"] == "cancelled", "cancelled")
        assert await fake_discord.wait_until(
            lambda: any("was deleted" in p.text for p in fake_discord.posts_in("signals")), WAIT
        )
    assert ended["filled_size"] in ("0", 0)
    assert [e["data"]["key"] for e in await actions(paper, sid, "manual_cancel")] == [
        f"discord-delete-{signal}"
    ]


async def test_confirm_mode_without_an_admin_role_says_so_and_does_nothing(
    follower: Follower, fake_discord: FakeDiscord, paper: RunningServer
) -> None:
    async with follower(admin_role_ids=""):
        signal, sid = await post_signal(fake_discord, paper, SIGNAL, "open")
        close = await fake_discord.post_user_message("close it here", reply_to=signal)
        assert await reply_text(fake_discord, close) == NO_ADMINS
    assert (await trade_view(paper, sid))["state"] == "open"
    assert await actions(paper, sid, "manual_close") == []
