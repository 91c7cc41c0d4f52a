"""The bot killed (SIGKILL) in the middle of a stream of signals, messages posted while it is down,
then started again with the same STATE_DIR: backfill trades each missed signal once, nothing already
answered is sent or answered again. Real processes; fixtures in tests/conftest.py."""

from __future__ import annotations

from typing import Any

from hit_bot.testing.samples import CHATTER

# market entries, each target within the server's 5% deviation guard of the simulator's price
LIVE = ["LONG SOL-USDT Entry: market SL: 145 TP: 156", "LONG LINK-USDT Entry: market SL: 14.5 TP: 15.6"]
MISSED = ["LONG AVAX-USDT Entry: market SL: 29 TP: 31", "SHORT LTC-USDT SL: 82 TP: 78",
          "LONG BNB-USDT Entry: market SL: 566 TP: 600"]


async def test_fault_bot_restarted_mid_burst_backfills_missed_signals_once(
    sim: Any, start_server: Any, fake_discord: Any, start_bot: Any, wait_for: Any, tmp_path: Any
) -> None:
    fake = fake_discord
    server = await start_server()
    state_dir = tmp_path / "bot-state"
    bot = await start_bot(server, state_dir)
    live = [await fake.post_user_message(text) for text in LIVE]
    await wait_for(lambda: all(fake.reactions_on(m) for m in live), 30, "the live signals' reactions")

    bot.kill9()
    await wait_for(lambda: not fake.connected, 10, "the fake Discord to see the bot gone")
    missed = [await fake.post_user_message(text) for text in MISSED]
    chatter = await fake.post_user_message(CHATTER)
    assert not any(fake.reactions_on(m) for m in missed)  # nobody listening

    restarted = await start_bot(server, state_dir, name="bot-restarted")
    await wait_for(lambda: all(fake.reactions_on(m) for m in missed), 30, "backfill to answer them")
    await wait_for(lambda: "backfill: " in restarted.output(), 10, "the restarted bot to end its backfill")
    state = await sim.state()

    channel = fake.channel("signals")
    for mid in live + missed:
        assert fake.reactions_on(mid) == ["✅"], (mid, fake.reactions_on(mid))
        assert len(fake.replies_to(mid)) == 1, [p.text for p in fake.replies_to(mid)]
        assert len(state.entry_orders(f"discord:{channel}:{mid}")) == 1
    assert fake.replies_to(chatter) == []
    assert state.duplicate_client_ids() == []
    assert len(state.positions) == len(live) + len(missed)
    assert fake.identifies == 2
    assert "backfill: 4 missed message(s) handled" in restarted.output()  # 3 signals and the chatter

