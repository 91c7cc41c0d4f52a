"""What one signal's execution works on (`Execution`) and how it ends (`Outcome`), with the three
endings the executor and the reconciliation give: placed, failed (nothing left open) and unknown
(not provably closed or clean: the position monitor keeps resolving it, `reconcile.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from hit_server.exchange.blofin_models import MarginMode
from hit_server.exchange.instruments import Instrument
from hit_server.journal.journal import EventRecord, OrderRecord
from hit_server.risk.engine import TradePlan
from hit_shared.models import OrderRole, TradeSignal, fmt


@dataclass
class Outcome:
    """How a signal ended: its status, reason, orders' last known states and the events to record.

    `state` is the journal state: "answered", or "unknown" when the server could not establish that
    nothing is left open (the position monitor looks at it again at every pass: `reconcile.py`)."""

    status: str
    reason: str | None
    records: list[OrderRecord]
    events: list[EventRecord]
    is_open: bool
    state: str = "answered"


@dataclass
class Execution:
    """The state of one signal's orders while it is being carried out."""

    signal: TradeSignal
    plan: TradePlan
    instrument: Instrument
    margin_mode: MarginMode
    records: list[OrderRecord]
    events: list[EventRecord] = field(default_factory=list)

    def of(self, role: OrderRole) -> list[OrderRecord]:
        return [r for r in self.records if r.role == role]

    @property
    def stop(self) -> OrderRecord:
        return self.of(OrderRole.STOP_LOSS)[0]

    def event(self, kind: str, message: str) -> None:
        self.events.append(
            EventRecord(
                type=kind, message=message, signal_id=self.signal.signal_id, symbol=self.signal.symbol
            )
        )


def placed(run: Execution, filled: Decimal) -> Outcome:
    plan, signal = run.plan, run.signal
    entry = (
        "at market"
        if plan.entries[0].price is None
        else (f"limit {', '.join(fmt(e.price or Decimal(0)) for e in plan.entries)}")
    )
    run.event(
        "placed",
        f"{signal.symbol} {signal.side.value} placed: {fmt(plan.size)} contracts {entry}, "
        f"stop {fmt(plan.stop_loss)}, {len(plan.take_profits)} target(s), {plan.leverage}x; "
        f"filled {fmt(filled)}",
    )
    return Outcome(status="placed", reason=None, records=run.records, events=run.events, is_open=True)

def failed(run: Execution, reason: str) -> Outcome:
    run.event("failed", f"{run.signal.symbol} {run.signal.side.value} failed: {reason}")
    return Outcome(status="failed", reason=reason, records=run.records, events=run.events, is_open=False)

def unknown(run: Execution, reason: str, *, followed: bool = True) -> Outcome:
    """Not provably closed or clean: the signal stays "unknown", and the position monitor looks it
    up at every pass (reconcile.py) until it is protected and managed, or over."""
    if followed:
        reason += (
            "; the server could not confirm that nothing is open and keeps checking the exchange "
            "(anything found is protected and reported)"
        )
    run.event("failed", f"{run.signal.symbol} {run.signal.side.value} failed: {reason}")
    return Outcome(
        status="failed",
        reason=reason,
        records=run.records,
        events=run.events,
        is_open=True,
        state="unknown",
    )
