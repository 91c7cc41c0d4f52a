"""Paper mode across restarts (defect 7): the paper exchange keeps its account in DATA_DIR, so a
restarted server finds its trades' positions, orders and stops where it left them; an old trade whose
paper exchange is gone is ended honestly instead of taking over a new trade's position."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hit_server.blofin_sim import Simulator, persist
from hit_server.blofin_sim.autosave import AutoSave
from hit_server.blofin_sim.models import OrderParams, Side, TpslParams, TpslSpec
from hit_server.blofin_sim.testing import make_config
from hit_server.exchange.paper_reset import RESET_EVENT, end_paper_trades
from hit_server.journal.db import Database
from hit_server.journal.journal import Journal
from hit_server.testing import RunningServer, clean_env, paper_settings, running_server
from hit_server.testing import place_signal as place
from hit_server.testing import signal_body as signal
from hit_server.testing import until_event as until
from hit_server.testing import wait_until as wait

STATE_FILE = "paper_exchange.json"


def doge_short(signal_id: str) -> dict[str, Any]:
    return signal(signal_id, symbol="DOGE-USDT", side="short", stop_loss="0.155",
                  take_profits=["0.145", "0.14", "0.135"])


def doge_long(signal_id: str) -> dict[str, Any]:
    return signal(signal_id, symbol="DOGE-USDT", side="long", stop_loss="0.145",
                  take_profits=["0.155", "0.16", "0.165"])


def types(found: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in found]


async def passes(server: RunningServer, more: int) -> None:
    """Wait until the monitor has run `more` further passes (each a full look at every open trade)."""
    target = server.monitor.lifecycle.passes + more
    await wait(lambda: server.monitor.lifecycle.passes >= target, f"{more} monitor passes")


async def stats(server: RunningServer) -> dict[str, Any]:
    reply = await server.http.get("/api/v1/stats")
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


async def test_paper_restart_new_signal_on_the_symbol_of_an_old_trade_never_closes_its_position(
    tmp_path: Path,
) -> None:
    """The issue's scenario: an old DOGE short open, a restart, a new DOGE long signal."""
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05)
    async with running_server(settings) as server:
        await place(server, doge_short("old-doge-short"))
        await until(server, "old-doge-short", "entry_filled")

    async with running_server(settings) as server:
        reply = await server.http.post("/api/v1/signals", json=doge_long("new-doge-long"))
        await passes(server, 3)
        position = server.sim.positions.get("DOGE-USDT")
        answer = reply.json()
        if answer.get("status") == "placed":  # only when the old trade is no longer on the exchange
            assert position is not None and position.size > 0, "the new long's position was closed"
            assert {t.spec.sl_trigger for t in server.sim.live_tpsl("DOGE-USDT")} == {Decimal("0.145")}
        else:  # the old short still holds the symbol: one trade per symbol
            assert answer["status"] == "rejected", answer
            assert position is not None and position.size < 0
        new = await until(server, "new-doge-long", answer.get("status", "rejected"))
        assert "closed_for_safety" not in types(new) and "take_profit_failed" not in types(new)
        old = await server.http.get("/api/v1/events", params={"limit": 500})
        old_types = [e["type"] for e in old.json()["events"] if e["signal_id"] == "old-doge-short"]
        assert "closed_for_safety" not in old_types and "closed" not in old_types
        counted = await stats(server)
        assert counted["closed_trades"] == 0 and Decimal(counted["realized_pnl"]) == 0


async def test_paper_restart_without_the_exchange_state_ends_old_trades_and_leaves_new_ones_alone(
    tmp_path: Path,
) -> None:
    """The paper exchange's state is gone (first start with this version, or the file was deleted):
    the old trade is ended with an event, its P&L not counted, and never touches the new trade."""
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05)
    async with running_server(settings) as server:
        await place(server, doge_short("lost-doge-short"))
        await until(server, "lost-doge-short", "entry_filled")
    (tmp_path / STATE_FILE).unlink(missing_ok=True)

    async with running_server(settings) as server:
        ended = await until(server, "lost-doge-short", "paper_exchange_reset")
        await place(server, doge_long("fresh-doge-long"))
        await until(server, "fresh-doge-long", "entry_filled")
        await passes(server, 3)

        position = server.sim.positions.get("DOGE-USDT")
        assert position is not None and position.size > 0
        assert {t.spec.sl_trigger for t in server.sim.live_tpsl("DOGE-USDT")} == {Decimal("0.145")}
        assert len(server.sim.open_orders("DOGE-USDT")) == 3  # the new long's targets
        fresh = await until(server, "fresh-doge-long", "entry_filled")
        assert "closed_for_safety" not in types(fresh) and "take_profit_failed" not in types(fresh)
        assert types(ended).count("paper_exchange_reset") == 1
        assert "closed" not in types(ended) and "closed_for_safety" not in types(ended)
        old = await server.service.journal.get_signal("lost-doge-short")
        assert old is not None and not old.is_open and old.realized_pnl is None and old.closed_at is None
        counted = await stats(server)
        assert counted["closed_trades"] == 0 and counted["open_positions"] == 1


# -- the saved account -----------------------------------------------------------------------------

NOW_MS = 1_767_000_000_000


def fixed_clock() -> int:
    return NOW_MS


def market(inst_id: str, side: Side, size: str, cid: str, **tpsl: Decimal) -> OrderParams:
    return OrderParams(inst_id=inst_id, side=side, order_type="market", size=Decimal(size),
                       margin_mode="cross", client_order_id=cid, tpsl=TpslSpec(**tpsl))


def limit(
    inst_id: str, side: Side, size: str, price: str, cid: str, *, reduce_only: bool = False
) -> OrderParams:
    return OrderParams(inst_id=inst_id, side=side, order_type="limit", size=Decimal(size),
                       price=Decimal(price), margin_mode="cross", client_order_id=cid,
                       reduce_only=reduce_only)


def busy_simulator() -> Simulator:
    """An account with something of everything: open and closed positions, resting, filled, partly
    filled and cancelled orders, live, fired and cancelled TP/SL orders, fills, leverage."""
    sim = Simulator(make_config(balance=Decimal("50000.00")), clock_ms=fixed_clock)
    sim.set_leverage("SOL-USDT", 10, "cross")
    stops = {"sl_trigger": Decimal(140), "tp_trigger": Decimal(170)}
    sim.place_order(market("SOL-USDT", "buy", "10", "sol_entry", **stops))
    sim.place_order(limit("SOL-USDT", "sell", "4", "160.5", "sol_tp1", reduce_only=True))
    sim.place_order(limit("SOL-USDT", "sell", "6", "165", "sol_tp2", reduce_only=True))
    sim.place_tpsl(TpslParams(inst_id="SOL-USDT", side="sell", margin_mode="cross", size=None,
                              tpsl=TpslSpec(sl_trigger=Decimal("145.5")), client_order_id="sol_stop"))
    sim.place_order(limit("ETH-USDT", "buy", "1.5", "2900.10", "eth_entry"))
    sim.place_order(limit("LINK-USDT", "buy", "3", "14", "link_entry"))
    sim.cancel_order(None, "", "link_entry")
    sim.place_order(market("DOGE-USDT", "sell", "5", "doge_entry", sl_trigger=Decimal("0.16")))
    sim.set_price("DOGE-USDT", Decimal("0.16100"))  # the short's stop fires: a closed position
    sim.set_price("SOL-USDT", Decimal("161"))  # TP1 fills: the long is smaller
    return sim


def saved(sim: Simulator) -> dict[str, Any]:
    """The account as the file holds it (decimals as written: 0.10 is not 0.1)."""
    account: dict[str, Any] = json.loads(persist.dumps(sim))["account"]
    return account


def test_persist_round_trip_is_exact(tmp_path: Path) -> None:
    sim = busy_simulator()
    path = tmp_path / "paper_exchange.json"
    persist.save(sim, path)

    again = Simulator(make_config(), clock_ms=fixed_clock)
    assert persist.load(again, path) is True

    assert saved(again) == saved(sim)  # decimals compared as written
    indexes = ["orders_by_client_id", "tpsl_by_client_id", "_open_orders", "_live_tpsl"]
    for name in [*sorted(persist.SAVED - {"_ids", "_seq"}), *indexes]:
        assert getattr(again, name) == getattr(sim, name), name
    assert again.position_history and again.fills and again.live_tpsl("SOL-USDT")
    assert [o.client_order_id for o in again.open_orders()] == ["sol_tp2", "eth_entry"]
    # and both go on the same way: same ids, same fills, same refusals of a used clientOrderId
    for each in (sim, again):
        each.place_order(limit("SOL-USDT", "sell", "2", "170", "sol_tp3", reduce_only=True))
        each.set_price("SOL-USDT", Decimal(145))
    assert saved(again) == saved(sim)
    assert "sol_entry" in again.used_client_ids and again.positions == {}


def test_persist_encoder_remembers_only_records_that_cannot_change() -> None:
    """One Encoder across a trade's life (what AutoSave does) writes what a fresh one writes."""
    sim = Simulator(make_config(), clock_ms=fixed_clock)
    encoder = persist.Encoder()
    steps = [
        lambda: sim.place_order(limit("SOL-USDT", "buy", "10", "149", "enc_entry")),
        lambda: sim.set_price("SOL-USDT", Decimal(149)),  # the entry fills: an open position
        lambda: sim.place_tpsl(TpslParams(inst_id="SOL-USDT", side="sell", margin_mode="cross", size=None,
                                          tpsl=TpslSpec(sl_trigger=Decimal(140)), client_order_id="enc_sl")),
        lambda: sim.place_order(limit("SOL-USDT", "sell", "4", "155", "enc_tp1", reduce_only=True)),
        lambda: sim.place_order(limit("SOL-USDT", "sell", "6", "160", "enc_tp2", reduce_only=True)),
        lambda: sim.set_price("SOL-USDT", Decimal(156)),  # TP1 fills
        lambda: sim.set_price("SOL-USDT", Decimal(139)),  # the stop closes the rest
        lambda: sim.cancel_order(None, "", "enc_tp2"),
        sim.reset,  # another account, whose ids start again from the same number
        lambda: sim.place_order(market("SOL-USDT", "buy", "3", "enc_again")),
        lambda: sim.close_position("SOL-USDT", "cross", "enc_close"),
    ]
    for n, step in enumerate(steps):
        step()
        cached = json.loads(encoder.dumps(sim))["account"]
        assert cached == saved(sim), f"after step {n}"


def test_persist_every_simulator_attribute_is_saved_or_named_transient() -> None:
    names = set(vars(Simulator(make_config())))
    assert names - persist.SAVED - persist.TRANSIENT == set()
    assert persist.SAVED <= names


def test_persist_load_without_a_file_restores_nothing(tmp_path: Path) -> None:
    sim = Simulator(make_config())
    assert persist.load(sim, tmp_path / "paper_exchange.json") is False
    assert sim.cash == make_config().balance and sim.orders == {}


DAMAGES = ["half-written", "not ours", "newer version", "missing field", "bad decimal", "float size",
           "unknown instrument", "unknown state", "binary"]


def damaged_documents() -> dict[str, str]:
    good = json.loads(persist.dumps(busy_simulator()))
    missing_field = json.loads(json.dumps(good))
    del missing_field["account"]["orders"][0]["size"]
    bad_decimal = json.loads(json.dumps(good))
    bad_decimal["account"]["cash"] = "lots"
    float_size = json.loads(json.dumps(good))
    float_size["account"]["positions"][0]["size"] = 7.5
    unknown_inst = json.loads(json.dumps(good))
    unknown_inst["account"]["orders"][0]["inst_id"] = "NOPE-USDT"
    bad_state = json.loads(json.dumps(good))
    bad_state["account"]["tpsl_orders"][0]["state"] = "sleeping"
    return {
        "half-written": persist.dumps(busy_simulator())[:500],
        "not ours": json.dumps({"hello": "world"}),
        "newer version": json.dumps({**good, "version": persist.VERSION + 1}),
        "missing field": json.dumps(missing_field),
        "bad decimal": json.dumps(bad_decimal),
        "float size": json.dumps(float_size),
        "unknown instrument": json.dumps(unknown_inst),
        "unknown state": json.dumps(bad_state),
        "binary": "\udcff",
    }


@pytest.mark.parametrize("kind", DAMAGES)
def test_persist_load_of_a_damaged_file_says_which_file_and_what_to_do(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "paper_exchange.json"
    text = damaged_documents()[kind]
    if kind == "binary":
        path.write_bytes(b"\xff\xfe{not text")
    else:
        path.write_text(text, encoding="utf-8")
    sim = Simulator(make_config())

    with pytest.raises(persist.SavedStateError) as raised:
        persist.load(sim, path)

    message = str(raised.value)
    assert str(path) in message and "move paper_exchange.json aside" in message
    assert sim.orders == {} and sim.cash == make_config().balance  # untouched


async def test_autosave_writes_soon_after_changes_never_inside_the_change(tmp_path: Path) -> None:
    sim = Simulator(make_config())
    path = tmp_path / "paper_exchange.json"
    saver = AutoSave(sim, path, interval_s=0.05)
    await saver.start()
    assert path.exists()
    written = saver.saves

    for n in range(50):  # fifty changes, each one calls the saver's subscriber
        sim.place_order(limit("BTC-USDT", "buy", "0.1", "50000", f"burst_{n}"))
    assert saver.saves == written and "burst_49" not in path.read_text()  # nothing written inside them

    await wait(lambda: "burst_49" in path.read_text(), "the burst to be saved")
    assert saver.saves == written + 1  # fifty changes, one write
    sim.set_price("BTC-USDT", Decimal(61000))  # a price alone is no event: saved at close
    await saver.close()
    again = Simulator(make_config())
    assert persist.load(again, path) and again.prices["BTC-USDT"] == Decimal(61000)
    assert len(again.open_orders("BTC-USDT")) == 50


# -- the paper server across restarts ------------------------------------------------------------------


async def test_paper_restart_keeps_the_account_and_the_trade_is_still_managed(tmp_path: Path) -> None:
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05)
    async with running_server(settings) as server:
        await place(server, signal("kept-btc"))
        await until(server, "kept-btc", "entry_filled")
        await wait(lambda: len(server.sim.open_orders("BTC-USDT")) == 3, "the three targets")
        before = saved(server.sim)
        cash = server.sim.cash

    async with running_server(settings) as server:
        sim = server.sim
        assert saved(sim) == before
        assert sim.cash == cash and sim.positions["BTC-USDT"].size > 0
        assert [t.spec.sl_trigger for t in sim.live_tpsl("BTC-USDT")] == [Decimal(58000)]
        assert len(sim.open_orders("BTC-USDT")) == 3

        await server.set_price("BTC-USDT", "62100")  # TP1: the restarted monitor moves the stop
        await until(server, "kept-btc", "stop_moved")
        await server.set_price("BTC-USDT", "59000")  # and the breakeven stop closes the rest
        found = await until(server, "kept-btc", "closed")
        counted = await stats(server)
        row = await server.service.journal.get_signal("kept-btc")

    assert types(found).count("entry_filled") == 1 and types(found).count("take_profit_hit") == 1
    assert "paper_exchange_reset" not in types(found)
    closed = [c.position for c in sim.position_history if c.position.inst_id == "BTC-USDT"]
    realized = sum((p.realized_pnl - p.fees for p in closed), Decimal(0))
    assert row is not None and row.realized_pnl is not None and Decimal(row.realized_pnl) == realized
    assert counted["closed_trades"] == 1 and Decimal(counted["realized_pnl"]) == realized


async def test_paper_server_refuses_to_start_on_a_damaged_state_file(tmp_path: Path) -> None:
    settings = paper_settings(tmp_path, monitor_poll_seconds=0.05)
    async with running_server(settings) as server:
        await place(server, signal("kept-through-damage"))
    path = tmp_path / STATE_FILE
    path.write_text('{"format": "hit-paper-exchange", "version": 1, "account": {"cash": ', encoding="utf-8")

    with pytest.raises(persist.SavedStateError, match=r"move paper_exchange\.json aside"):
        async with running_server(settings):
            pass

    assert path.read_text(encoding="utf-8").endswith('"cash": ')  # left as it was, for the user
    db = Database(settings.journal_url)
    row = await Journal(db).get_signal("kept-through-damage")
    await db.dispose()
    assert row is not None and row.is_open  # the trade was not ended


def test_paper_server_program_on_a_damaged_state_file_prints_the_message_without_a_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / STATE_FILE).write_text("not json", encoding="utf-8")
    env = clean_env(
        TRADING_MODE="paper", DATA_DIR=str(tmp_path), LOG_DIR=str(tmp_path / "logs"),
        API_KEYS="key-for-the-damaged-state-test-000001", PORT="1",
    )
    done = subprocess.run(
        [sys.executable, "-m", "hit_server"], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert done.returncode == 2, done.stderr
    assert str(tmp_path / STATE_FILE) in done.stderr and "Traceback" not in done.stderr
    assert "cannot start" in done.stderr and os.listdir(tmp_path).count(STATE_FILE) == 1


async def test_paper_reset_ends_only_open_paper_trades(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'journal.db'}")
    await db.create_schema()
    journal = Journal(db)
    for signal_id, mode, is_open in (("paper-open", "paper", True), ("demo-open", "demo", True),
                                     ("paper-done", "paper", False)):
        await journal.record_intent(signal_id, body_hash="h", body=signal(signal_id), symbol="BTC-USDT",
                                    side="long", orders=[], state="sending")
        await journal.finish(signal_id, status="placed", reason=None, response={"mode": mode}, orders=[],
                             is_open=is_open)

    ended = await end_paper_trades(db)

    assert ended == ["paper-open"]
    rows = {sid: await journal.get_signal(sid) for sid in ("paper-open", "demo-open", "paper-done")}
    assert {sid: row.is_open for sid, row in rows.items() if row is not None} == {
        "paper-open": False, "demo-open": True, "paper-done": False}
    events = await journal.events(after=0, limit=10)
    assert [(e.type, e.signal_id) for e in events] == [(RESET_EVENT, "paper-open")]
    assert "P&L is not counted" in events[0].message
    assert (await journal.counts()).closed == 0
    await end_paper_trades(db)  # a second start ends nothing more
    assert len(await journal.events(after=0, limit=10)) == 1
    await db.dispose()
