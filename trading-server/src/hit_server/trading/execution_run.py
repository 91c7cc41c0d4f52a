"""What one signal's execution works on (`Execution`) and how it ends (`Outcome`), with the three
endings the executor and the reconciliation give: placed, failed (nothing left open) and unknown
(not provably closed or clean: the position monitor keeps resolving it, `reconcile.py`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal

from hit_server.exchange.blofin_errors import BloFinError
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


# An entry sent at a HIGHER leverage than its plan's (the account's, while the plan's lower one is on its
# way) carries less margin than planned until the change lands: a move of 1/leverage against it would
# take all of that margin, and BloFin liquidates earlier, at the maintenance margin (under 1% of the
# notional on the tiers a signal's size falls in). Its stop must then lie well inside that move: within
# STOP_SHARE_OF_LIQUIDATION of what is left after MAINTENANCE_ALLOWANCE, the rest for the market fill's
# slippage. At 10x: a stop within 4.5% of the entry; at 20x within 2%; from 100x, never.
MAINTENANCE_ALLOWANCE = Decimal("0.01")
STOP_SHARE_OF_LIQUIDATION = Decimal("0.5")


@dataclass
class LeverageOnItsWay:
    """The plan's leverage sent to the exchange before the signal's intent was recorded
    (`TradingService._leverage_ahead`), its answer not yet in.

    The entry waits for that answer, except when it is safe to send it at the leverage the account
    holds now (`entry_may_go_first`), which saves the first signal on such a symbol one round trip
    (issue #18): a market entry, on an account whose leverage on the symbol is known, whose available
    margin carries the plan at that leverage, and
    - a raise (the account holds LESS than the plan asks): until the change lands the position is
      margined more than planned, its liquidation farther from the entry, never closer to the stop;
    - or a lowering (the account holds MORE) when the plan's stop lies well inside the move that would
      liquidate the position at the leverage held (MAINTENANCE_ALLOWANCE above): the stop, attached to
      the entry, closes the position first whatever happens to the change.
    Whichever of the two BloFin carries out first, the position ends as the sequential order leaves it
    (BloFin applies a leverage change to an open position). A change refused leaves the position at the
    leverage held, same size, same stop, told as an event. An unknown leverage on the exchange, a limit
    entry, or a lowering with a farther stop: the change is always set first."""

    symbol: str
    leverage: int
    held: int | None  # the leverage known on the exchange when the set was sent
    sent: asyncio.Task[BloFinError | None]  # the error that refused the set, or None

    def entry_may_go_first(self, plan: TradePlan, available: Decimal, fee_percent: Decimal) -> bool:
        """Whether `plan`'s entry may leave before the set's answer (see the class): `available`
        carries its margin at the leverage held, with `fee_percent` of its notional for fees
        (as the risk engine sized it at the plan's)."""
        held = self.held
        if not plan.is_market or plan.leverage != self.leverage or held is None or held == self.leverage:
            return False
        if held > self.leverage and not stop_well_inside_liquidation(plan, held):
            return False
        margin = plan.notional_usd / held + plan.notional_usd * fee_percent / 100
        return margin <= available

    @property
    def is_raise(self) -> bool:
        return self.held is not None and self.held < self.leverage

    async def answer(self) -> BloFinError | None:
        """Waits for the set's answer: None when BloFin carried it out, else why not. Shielded: a
        caller cancelled while it waits leaves the set to finish (what is known of the exchange's
        leverage is updated with its answer), never cut off half-way."""
        return await asyncio.shield(self.sent)


def stop_well_inside_liquidation(plan: TradePlan, leverage: int) -> bool:
    """Whether `plan`'s stop, from its reference price (the mark, for a market entry), lies within
    STOP_SHARE_OF_LIQUIDATION of the move that would liquidate it at `leverage` less the
    MAINTENANCE_ALLOWANCE."""
    if plan.reference_price <= 0:
        return False
    distance = abs(plan.reference_price - plan.stop_loss) / plan.reference_price
    return distance <= (Decimal(1) / leverage - MAINTENANCE_ALLOWANCE) * STOP_SHARE_OF_LIQUIDATION


@dataclass
class Execution:
    """The state of one signal's orders while it is being carried out."""

    signal: TradeSignal
    plan: TradePlan
    instrument: Instrument
    margin_mode: MarginMode
    records: list[OrderRecord]
    events: list[EventRecord] = field(default_factory=list)
    # the plan's leverage still on its way when the entry may go first (`LeverageOnItsWay`), else None:
    # the executor sets the leverage before the entry
    leverage_on_its_way: LeverageOnItsWay | None = None

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
