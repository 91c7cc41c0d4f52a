"""The money invariants, checked against the exchange (the simulator's own state) and the journal.

Checked after every step (`Watch.after_step`):
(a) every position has reduce-only stop coverage of its whole size; a window without it may not last
    longer than NAKED_LIMIT_S of simulated time while the exchange works (time under injected faults
    does not count: no server can place a stop on an exchange that refuses every request; nor does
    time in which no server process was alive: a crashed server is started again only between steps);
(b) every clientOrderId of ours reached the exchange at most once, and only after the journal had
    recorded it (intent before sending); a signal's entries are only those it planned;
(c) never a second signal's entry on a symbol that holds a position or a resting entry of another
    signal of ours.
Checked once the run has settled (faults off, the monitor given a few passes: `Watch.settled`):
(d) every position of ours is covered by its targets, less what definitive refusals and lot rounding
    leave uncovered;
(e) the journal agrees with the exchange: a position belongs to a trade the journal holds open; a trade
    the journal calls closed, ended or failed holds no position and no resting order; an open trade
    with fills has its position;
(f) every signal has a terminal answer (no "sending" or "unknown" left) and its answer is true: a
    rejected signal sent nothing;
(g) the position monitor of every live process is still running, and every step (a request, a clean
    shutdown) finishes within STEP_LIMIT_S of simulated time (`driver.py`);
(h) each position's P&L is counted once: a closed position of the exchange belongs to one trade at most,
    and a trade reports "closed" once.
Checked by the driver on every answer: (i) a trader's action answers every request sent again under its
Idempotency-Key the same (503 aside: busy or unclear, carried on by the retry). Its close at market
(`<prefix>x<n>`) is held to (b): recorded on the action's journal row before it reaches the exchange,
and there once.

With several accounts on the one simulator (the fleet), (a) to (i) hold for each account, its journal
against its own engine, and (j) isolation holds:
(j) every request of an account's server acts on that account's engine, never another's (`world.py`,
    checked on each request); and an account no step touched (no fault, crash, process, sweep, hand or
    action of its own: the generator leaves one per run) is not touched by what is done to the others:
    its one server never died, every signal got its final answer from its first request, and its trades
    come out exactly as they do when the same signals and prices meet that account alone, at the same
    simulated times, in a world without the others (`outcome`, compared by `driver.run_steps`).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

NAKED_LIMIT_S = 2.0
OURS = re.compile(r"^([0-9a-f]{24})(e[0-9]+|t[0-9]+(?:b[0-9]+)?|sl[0-9]*|cl|s[0-9]+|c[0-9]+|x[0-9]+)$")
ENTRY = re.compile(r"^e[0-9]+$")
CLOSE = re.compile(r"^(cl|c[0-9]+)$")
ACTION_CLOSE = re.compile(r"^x[0-9]+$")


def _stop_coverage(sim: Any, inst: str, position: Any) -> Decimal:
    """Contracts the live stops on the closing side of this position close when they fire."""
    held = abs(position.size)
    close_side = "sell" if position.size > 0 else "buy"
    covered = Decimal(0)
    for tpsl in sim.live_tpsl(inst):
        if tpsl.side == close_side and tpsl.spec.sl_trigger is not None:
            covered = held if tpsl.size is None else covered + tpsl.size
    return covered


def _overlap(start: float, end: float, spans: Sequence[tuple[float, float]]) -> float:
    """How much of [start, end] the spans cover (they do not overlap each other)."""
    return sum(max(0.0, min(end, to) - max(start, since)) for since, to in spans)


def split_cid(cid: str) -> tuple[str, str] | None:
    """(signal prefix, role code) of one of our clientOrderIds, None for anyone else's."""
    found = OURS.match(cid or "")
    return (found.group(1), found.group(2)) if found else None


@dataclass
class JournalView:
    """The journal as a reader sees it (a read-only connection of its own)."""

    signals: dict[str, dict[str, Any]]
    orders: dict[str, dict[str, Any]]  # by clientOrderId
    trades: dict[str, dict[str, Any]]
    closed_events: dict[str, int]
    action_orders: set[str]  # the clientOrderIds recorded on the trade actions' rows

    @classmethod
    def read(cls, path: Path) -> JournalView:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            signals = {r["signal_id"]: dict(r) for r in conn.execute("SELECT * FROM signals")}
            orders = {r["client_order_id"]: dict(r) for r in conn.execute("SELECT * FROM orders")}
            trades = {r["signal_id"]: dict(r) for r in conn.execute("SELECT * FROM trades")}
            closed: dict[str, int] = defaultdict(int)
            for row in conn.execute("SELECT signal_id FROM events WHERE type = 'closed'"):
                closed[row["signal_id"]] += 1
            recorded = "SELECT client_order_id FROM trade_actions WHERE client_order_id IS NOT NULL"
            action_orders = {r["client_order_id"] for r in conn.execute(recorded)}
        finally:
            conn.close()
        return cls(signals, orders, trades, dict(closed), action_orders)

    def signal_of_prefix(self) -> dict[str, str]:
        found = {}
        for cid, row in self.orders.items():
            parts = split_cid(cid)
            if parts is not None:
                found[parts[0]] = row["signal_id"]
        return found


def outcome(sim: Any, journal_path: Path, answers: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    """What one account's trades came to at a moment: its answers, its journal's signals and trades, and
    its engine's cash, positions, resting orders, stops and targets. Exchange ids, times and prices paid
    are left out only where they differ between worlds (ids are per account); clientOrderIds are kept
    (they are the signal's and the role's, the same in every world)."""
    journal = JournalView.read(journal_path)
    return {
        "answers": {sid: None if a is None else a.get("status") for sid, a in sorted(answers.items())},
        "signals": {sid: [row["status"], row["state"], bool(row["is_open"])]
                    for sid, row in sorted(journal.signals.items())},
        "trades": {sid: trade["state"] for sid, trade in sorted(journal.trades.items())},
        "cash": str(sim.cash),
        "positions": {inst: str(position.size) for inst, position in sorted(sim.positions.items())},
        "orders": sorted([o.client_order_id, o.side, str(o.price), str(o.size), str(o.filled_size)]
                         for o in sim.open_orders()),
        "stops and targets": sorted([t.client_order_id, t.side, str(t.size), str(t.spec.sl_trigger),
                                     str(t.spec.tp_trigger)] for t in sim.live_tpsl()),
        "fills": len(sim.fills),
    }


def differences(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """The parts of two `outcome`s that differ, each as [first, second] (for a short report)."""
    found: dict[str, Any] = {}
    for part in first:
        if first[part] == second.get(part):
            continue
        if isinstance(first[part], dict):
            keys = sorted(set(first[part]) | set(second[part]))
            found[part] = {k: [first[part].get(k), second[part].get(k)] for k in keys
                           if first[part].get(k) != second[part].get(k)}
        else:
            found[part] = [first[part], second.get(part)]
    return found


@dataclass
class Watch:
    """Follows the exchange and the journal through a run and collects every violation."""

    journal_path: Path
    violations: list[str] = field(default_factory=list)
    _fills_seen: int = 0
    _net: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    _owners: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    _position_owner: dict[str, str] = field(default_factory=dict)  # exchange position id -> prefix
    _naked_since: dict[str, float] = field(default_factory=dict)
    _naked_time: dict[str, float] = field(default_factory=dict)
    _last_check: float | None = None

    def fail(self, message: str) -> None:
        if message not in self.violations:
            self.violations.append(message)

    # -- after every step ----------------------------------------------------------------------------

    def after_step(self, sim: Any, now: float, exchange_works: bool,
                   downtime: Sequence[tuple[float, float]] = ()) -> None:
        """`downtime`: the (from, to) spans in which no server process was alive."""
        journal = JournalView.read(self.journal_path)
        self._follow_fills(sim)
        self._check_coverage(sim, now, exchange_works, downtime)
        self._check_once(sim, journal)
        self._check_one_per_symbol(sim)
        self._last_check = now

    def _follow_fills(self, sim: Any) -> None:
        """Who owns each position, from the exchange's fills in order: a position belongs to the signals
        whose entries filled into it since it was last flat."""
        fills = sim.fills
        for fill in fills[self._fills_seen:]:
            order = sim.orders.get(fill.order_id)
            inst = fill.inst_id
            self._net[inst] += fill.size if fill.side == "buy" else -fill.size
            parts = split_cid(order.client_order_id if order is not None else "")
            if parts is not None and ENTRY.match(parts[1]):
                self._owners[inst].add(parts[0])
                position = sim.positions.get(inst)
                if position is not None:
                    self._position_owner.setdefault(position.position_id, parts[0])
            if self._net[inst] == 0:
                self._owners[inst].clear()
        self._fills_seen = len(fills)
        for inst, owners in self._owners.items():
            if len(owners) > 1:
                self.fail(f"(c) one position on {inst} holds the entries of {len(owners)} signals: "
                          f"{sorted(owners)}")
        for inst, net in self._net.items():
            position = sim.positions.get(inst)
            held = position.size if position is not None else Decimal(0)
            if held != net:
                self.fail(f"(watch) fills of {inst} add up to {net}, the exchange holds {held}")

    def watch_stops(self, sim: Any, clock: Any) -> None:
        """Follow stop coverage on every change of the exchange, so a naked window is timed from the
        change that opened it, not from the next check."""

        def changed(event: Any) -> None:
            inst = event.data.get("instId") if isinstance(event.data, dict) else None
            if inst:
                self._note_coverage(sim, inst, clock())

        sim.subscribe(changed)

    def _note_coverage(self, sim: Any, inst: str, now: float) -> None:
        position = sim.positions.get(inst)
        if position is None or _stop_coverage(sim, inst, position) >= abs(position.size):
            self._naked_since.pop(inst, None)
            self._naked_time.pop(inst, None)
        elif inst not in self._naked_since:
            self._naked_since[inst] = now
            self._naked_time[inst] = 0.0

    def _check_coverage(self, sim: Any, now: float, exchange_works: bool,
                        downtime: Sequence[tuple[float, float]]) -> None:
        last = now if self._last_check is None else self._last_check
        for inst in list(sim.positions):
            self._note_coverage(sim, inst, now)
        for inst in list(self._naked_since):
            if exchange_works:
                since = max(self._naked_since[inst], last)
                self._naked_time[inst] += now - since - _overlap(since, now, downtime)
            if self._naked_time[inst] > NAKED_LIMIT_S:
                position = sim.positions[inst]
                covered = _stop_coverage(sim, inst, position)
                self.fail(f"(a) the position on {inst} ({position.size} contracts) had stops for only "
                          f"{covered} for {self._naked_time[inst]:.1f} s of working exchange")

    def _check_once(self, sim: Any, journal: JournalView) -> None:
        seen: dict[str, int] = defaultdict(int)
        for item in [*sim.orders.values(), *sim.tpsl_orders.values()]:
            cid = item.client_order_id
            parts = split_cid(cid)
            if parts is None:
                continue
            seen[cid] += 1
            if CLOSE.match(parts[1]):
                continue
            if ACTION_CLOSE.match(parts[1]):
                if cid not in journal.action_orders:
                    self.fail(f"(b) close {cid} reached the exchange without being recorded on its action")
                continue
            if cid not in journal.orders:
                self.fail(f"(b) order {cid} reached the exchange without being recorded in the journal")
            elif ENTRY.match(parts[1]) and journal.orders[cid]["role"] != "entry":
                self.fail(f"(b) entry {cid} was journaled as a {journal.orders[cid]['role']}")
        for cid, count in seen.items():
            if count > 1:
                self.fail(f"(b) clientOrderId {cid} reached the exchange {count} times")

    def _check_one_per_symbol(self, sim: Any) -> None:
        for inst in {o.inst_id for o in sim.open_orders()} | set(self._owners):
            signals = set(self._owners.get(inst, set()))
            for order in sim.open_orders(inst):
                parts = split_cid(order.client_order_id)
                if parts is not None and ENTRY.match(parts[1]):
                    signals.add(parts[0])
            if len(signals) > 1:
                self.fail(f"(c) {inst} has positions or resting entries of {len(signals)} signals at once: "
                          f"{sorted(signals)}")

    # -- once the run has settled ----------------------------------------------------------------------

    def settled_problems(self, sim: Any, answers: dict[str, dict[str, Any] | None]) -> list[str]:
        """The settled invariants (d), (e), (f), (h) that fail now (empty: all hold)."""
        journal = JournalView.read(self.journal_path)
        signal_of = journal.signal_of_prefix()
        problems: list[str] = []
        problems += self._positions_agree(sim, journal, signal_of)
        problems += self._finished_hold_nothing(sim, journal, signal_of)
        problems += self._answers_are_terminal(sim, journal, answers)
        problems += self._counted_once(journal)
        return problems

    def _positions_agree(self, sim: Any, journal: JournalView, signal_of: dict[str, str]) -> list[str]:
        problems = []
        for inst, position in sim.positions.items():
            owners = self._owners.get(inst, set())
            if not owners:
                problems.append(f"(e) the position on {inst} has no entry of ours behind it")
                continue
            prefix = next(iter(owners))
            signal_id = signal_of.get(prefix, prefix)
            row = journal.signals.get(signal_id)
            if row is None or not row["is_open"] or row["status"] != "placed":
                state = None if row is None else (row["state"], row["status"], bool(row["is_open"]))
                problems.append(f"(e) the position on {inst} belongs to {signal_id}, which the journal "
                                f"holds as {state}")
                continue
            problems += self._targets_cover(sim, journal, inst, position, prefix, signal_id)
        return problems

    @staticmethod
    def _targets_cover(
        sim: Any, journal: JournalView, inst: str, position: Any, prefix: str, signal_id: str
    ) -> list[str]:
        held = abs(position.size)
        resting = sum(
            (o.size - o.filled_size for o in sim.open_orders(inst)
             if o.reduce_only and (split_cid(o.client_order_id) or ("", ""))[0] == prefix),
            Decimal(0),
        )
        refused = sum(
            (Decimal(o["size"]) for o in journal.orders.values()
             if o["signal_id"] == signal_id and o["role"] == "take_profit" and o["state"] == "failed"),
            Decimal(0),
        )
        targets = len(json.loads(journal.signals[signal_id]["body"])["take_profits"])
        slack = sim.instruments[inst].min_size * targets  # lot rounding of each target's share
        if resting + refused + slack < held:
            return [f"(d) {signal_id}: the position of {held} on {inst} has targets for {resting} "
                    f"({refused} refused)"]
        return []

    def _finished_hold_nothing(self, sim: Any, journal: JournalView, signal_of: dict[str, str]) -> list[str]:
        problems = []
        finished = {sid for sid, row in journal.signals.items() if not row["is_open"]}
        for order in sim.open_orders():
            parts = split_cid(order.client_order_id)
            if parts is None:
                continue
            signal_id = signal_of.get(parts[0])
            if signal_id in finished:
                row = journal.signals[signal_id]
                problems.append(f"(e) {signal_id} is {row['status']} and over, but its order "
                                f"{order.client_order_id} still rests on {order.inst_id}")
        for signal_id, row in journal.signals.items():
            trade = journal.trades.get(signal_id)
            if not row["is_open"] or row["status"] != "placed" or trade is None:
                continue
            fills = sum((Decimal(str(v)) for v in json.loads(trade["fills"] or "{}").values()), Decimal(0))
            owners = self._owners.get(row["symbol"], set())
            prefix = next((p for p, s in signal_of.items() if s == signal_id), None)
            if fills > 0 and prefix not in owners:
                problems.append(f"(e) {signal_id} is open in the journal with {fills} filled, but the "
                                f"exchange holds no position of it on {row['symbol']}")
        return problems

    @staticmethod
    def _answers_are_terminal(
        sim: Any, journal: JournalView, answers: dict[str, dict[str, Any] | None]
    ) -> list[str]:
        problems = []
        sent_prefixes = {p[0] for p in (split_cid(o.client_order_id) for o in sim.orders.values()) if p}
        for signal_id, row in journal.signals.items():
            if row["state"] != "answered":
                problems.append(f"(f) {signal_id} is still '{row['state']}' in the journal")
        for signal_id, answer in answers.items():
            if answer is None:
                problems.append(f"(f) {signal_id} got no answer after the run settled")
                continue
            if answer.get("status") not in ("placed", "rejected", "failed"):
                problems.append(f"(f) {signal_id} was answered {answer}")
            if answer.get("status") == "rejected":
                prefix = next((o["client_order_id"][:24] for o in journal.orders.values()
                               if o["signal_id"] == signal_id), None)
                if prefix is not None and prefix in sent_prefixes:
                    problems.append(f"(f) {signal_id} was answered 'rejected' but sent orders")
        return problems

    @staticmethod
    def _counted_once(journal: JournalView) -> list[str]:
        problems = []
        for signal_id, count in journal.closed_events.items():
            if count > 1:
                problems.append(f"(h) {signal_id} reported 'closed' {count} times")
        owner: dict[str, str] = {}
        for signal_id, trade in journal.trades.items():
            if trade["state"] != "closed":
                continue
            for position_id in json.loads(trade["position_ids"] or "[]"):
                if position_id in owner:
                    problems.append(f"(h) position {position_id} is counted by {owner[position_id]} and "
                                    f"{signal_id}")
                owner[position_id] = signal_id
        return problems
