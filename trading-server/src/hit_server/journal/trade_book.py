"""What the position monitor remembers about each trade, beside the journal's signals and orders.

One `trades` row per placed signal the monitor has seen: the stop level in force (it moves to
breakeven), the fills and targets already reported (so a restart never reports them twice), the
exchange's position ids (to find the trade's closed positions in BloFin's positions-history) and,
once it is over, how it ended with the realised P&L and fees. The table is created beside the
journal's (`create_schema`); closing a trade also writes the signal's `is_open`, `realized_pnl` and
`closed_at`, which `GET /api/v1/stats` reads.

Each save is conditional on the version it read (optimistic concurrency), so when two processes follow
the same trade (a restart overlapping the old process, a second instance by mistake) only one of them
records each change: a close is reported and counted once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    DateTime,
    Integer,
    String,
    Text,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from hit_server.journal.claims import release_claim
from hit_server.journal.db import Base, Database, SignalRow, as_utc, utcnow
from hit_server.journal.journal import (
    EVENTS,
    ORDERS,
    SIGNALS,
    STATE_CHANGES,
    EventRecord,
    OrderRecord,
    to_record,
)
from hit_server.journal.trade_lease import TradeLeases

OPEN, CLOSED, ENDED = "open", "closed", "ended"  # ended: no entry ever filled
ORDERS_OF = (
    select(ORDERS).where(ORDERS.c.signal_id.in_(bindparam("signal_ids", expanding=True)))
    .order_by(ORDERS.c.created_at)
)


class TradeMovedOn(Exception):
    """Another process saved this trade after this one read it (two servers on one journal, e.g. a
    restart overlapping the old process): this pass's view of the trade is stale, so its changes and
    events are dropped and the trade is read afresh at the next pass. What the stale pass did on the
    exchange was done under the trade's derived clientOrderIds, so it cannot have been done twice."""


class TradeRow(Base):
    __tablename__ = "trades"

    signal_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), index=True)
    stop_price: Mapped[str] = mapped_column(String(40))
    stop_moves: Mapped[int] = mapped_column(Integer, default=0)  # stops this monitor placed
    at_breakeven: Mapped[bool] = mapped_column(Boolean, default=False)
    tp_batches: Mapped[int] = mapped_column(Integer, default=0)
    fills: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # entry cid -> filled contracts
    targets_hit: Mapped[list[Any]] = mapped_column(JSON, default=list)  # TP numbers reported
    position_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    entries_done: Mapped[bool] = mapped_column(Boolean, default=False)  # expired or cancelled
    exit_reason: Mapped[str | None] = mapped_column(Text, default=None)
    realized_pnl: Mapped[str | None] = mapped_column(String(40), default=None)
    fee: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # bumped by every save: a save from a stale read is refused (see TradeMovedOn)
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


TRADES = Base.metadata.tables["trades"]


@dataclass
class Trade:
    """A trade as the monitor works on it; `save` writes it back."""

    signal_id: str
    symbol: str
    side: str
    body: dict[str, Any]
    opened_at: datetime  # when the signal was received
    state: str = OPEN
    stop_price: Decimal = Decimal(0)
    stop_moves: int = 0
    at_breakeven: bool = False
    tp_batches: int = 0
    fills: dict[str, Decimal] = field(default_factory=dict)
    targets_hit: list[int] = field(default_factory=list)
    position_ids: list[str] = field(default_factory=list)
    entries_done: bool = False
    exit_reason: str | None = None
    realized_pnl: Decimal | None = None
    fee: Decimal | None = None
    version: int = 0  # the row's version when read; `save` bumps it

    @property
    def filled(self) -> Decimal:
        return sum(self.fills.values(), Decimal(0))

    @property
    def is_long(self) -> bool:
        return self.side == "long"


class OrderOwner(NamedTuple):
    """The signal an order of ours belongs to. `state` is the journal's ("received", "sending",
    "unknown" while it is carried out or unresolved; "answered" once its answer is stored)."""

    signal_id: str
    is_open: bool
    state: str

    @property
    def finished(self) -> bool:
        """Answered and no longer open: nothing of this signal should rest on the exchange."""
        return self.state == "answered" and not self.is_open


def _trade(row: TradeRow, signal: SignalRow) -> Trade:
    return Trade(
        signal_id=row.signal_id,
        symbol=row.symbol,
        side=row.side,
        body=signal.body,
        opened_at=as_utc(signal.created_at),
        state=row.state,
        stop_price=Decimal(row.stop_price),
        stop_moves=row.stop_moves,
        at_breakeven=row.at_breakeven,
        tp_batches=row.tp_batches,
        fills={cid: Decimal(str(v)) for cid, v in (row.fills or {}).items()},
        targets_hit=[int(n) for n in row.targets_hit or []],
        position_ids=[str(p) for p in row.position_ids or []],
        entries_done=row.entries_done,
        exit_reason=row.exit_reason,
        realized_pnl=None if row.realized_pnl is None else Decimal(row.realized_pnl),
        fee=None if row.fee is None else Decimal(row.fee),
        version=row.version or 0,
    )


def values_of(trade: Trade) -> dict[str, Any]:
    return {
        "state": trade.state,
        "stop_price": str(trade.stop_price),
        "stop_moves": trade.stop_moves,
        "at_breakeven": trade.at_breakeven,
        "tp_batches": trade.tp_batches,
        "fills": {cid: str(v) for cid, v in trade.fills.items()},
        "targets_hit": list(trade.targets_hit),
        "position_ids": list(trade.position_ids),
        "entries_done": trade.entries_done,
        "exit_reason": trade.exit_reason,
        "realized_pnl": None if trade.realized_pnl is None else str(trade.realized_pnl),
        "fee": None if trade.fee is None else str(trade.fee),
    }


def version_in(conn: Connection, signal_id: str) -> int | None:
    """The trade's version as saved (None when it has no row), inside a transaction."""
    return conn.scalar(select(TRADES.c.version).where(TRADES.c.signal_id == signal_id))


class TradeBook:
    """The monitor's reads and writes; each method is one transaction of `Database` (see db.py)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.leases = TradeLeases(db)  # which process works on a trade now (trade_lease.py)

    async def open_trades(self) -> list[Trade]:
        """Every placed signal still open, oldest first; a row is created for one seen the first time
        (with stop_price 0: the caller sets it from the journaled stop order). Two readers may make the
        same new row at once (the monitor's pass and a trader's action, whose transactions interleave on
        PostgreSQL): the loser's insert fails, and its second read finds the row made."""
        try:
            return await self.db.session(_open_trades)
        except IntegrityError:
            return await self.db.session(_open_trades)

    async def save(
        self, trade: Trade, events: Sequence[EventRecord] = (), *, give_back: bool = False
    ) -> None:
        """Write the trade, its events, and, when it is over, the signal's closing figures; with
        `give_back`, this process's lease on the trade is given back in the same transaction (the work
        on it is over)."""
        now = utcnow()
        values = values_of(trade)
        if trade.state != OPEN:
            values["closed_at"] = now

        def write(conn: Connection) -> None:
            saved = conn.execute(
                update(TRADES)
                .where(TRADES.c.signal_id == trade.signal_id, TRADES.c.version == trade.version)
                .values(**values, version=trade.version + 1)
            )
            if saved.rowcount == 0:  # nothing below is written either: the transaction rolls back
                raise TradeMovedOn(trade.signal_id)
            if trade.state != OPEN:
                conn.execute(
                    update(SIGNALS)
                    .where(SIGNALS.c.signal_id == trade.signal_id)
                    .values(
                        is_open=False,
                        realized_pnl=None if trade.realized_pnl is None else str(trade.realized_pnl),
                        closed_at=now if trade.state == CLOSED else None,
                        updated_at=now,
                    )
                )
                release_claim(conn, trade.signal_id)  # the symbol is free for the next trade (claims.py)
                conn.execute(insert(STATE_CHANGES).values(
                    signal_id=trade.signal_id, client_order_id=None, state=trade.state,
                    note=trade.exit_reason, at=now,
                ))
            if events:
                conn.execute(insert(EVENTS), [
                    {"type": e.type, "signal_id": e.signal_id, "symbol": e.symbol, "message": e.message,
                     "data": e.data, "created_at": now}
                    for e in events
                ])
            if give_back:
                self.leases.give_back_in(conn, trade.signal_id)

        await self.db.transaction(write)
        trade.version += 1
        if give_back:
            self.leases.given_back(trade.signal_id)

    async def lease_unless_moved_on(self, trade: Trade) -> bool:
        """Take the trade's lease (`leases.take`) and check in the same transaction that nobody saved
        the trade since `trade` was read: True when this process may work on it now; False when
        another holds the lease; TradeMovedOn (the lease given back) when the trade was saved since."""
        taken, version = await self.leases.take_and_read(
            trade.signal_id, functools.partial(version_in, signal_id=trade.signal_id)
        )
        if taken and version != trade.version:
            await self.leases.give_back(trade.signal_id)
            raise TradeMovedOn(trade.signal_id)
        return taken

    async def orders_of(self, signal_ids: Sequence[str]) -> dict[str, list[OrderRecord]]:
        """The journaled orders of these signals in one query, by signal_id (oldest first)."""
        found: dict[str, list[OrderRecord]] = {sid: [] for sid in signal_ids}
        if not signal_ids:
            return found

        def read(conn: Connection) -> None:  # Core rows: every pass asks, and the ORM costs three times
            for row in conn.execute(ORDERS_OF, {"signal_ids": list(signal_ids)}):
                found[row.signal_id].append(to_record(row))

        await self.db.read(read)
        return found

    async def get(self, signal_id: str) -> TradeRow | None:
        def read(session: Session) -> TradeRow | None:
            return session.get(TradeRow, signal_id)

        return await self.db.session(read)

    async def signal_of_order(self, client_order_ids: Sequence[str]) -> dict[str, OrderOwner]:
        """For each of these clientOrderIds journaled by us: its signal, with that signal's state."""
        if not client_order_ids:
            return {}

        def read(conn: Connection) -> dict[str, OrderOwner]:
            rows = conn.execute(
                select(ORDERS.c.client_order_id, SIGNALS.c.signal_id, SIGNALS.c.is_open, SIGNALS.c.state)
                .join(SIGNALS, SIGNALS.c.signal_id == ORDERS.c.signal_id)
                .where(ORDERS.c.client_order_id.in_(list(client_order_ids)))
            )
            return {cid: OrderOwner(sid, bool(is_open), state) for cid, sid, is_open, state in rows.all()}

        return await self.db.transaction(read)


def _open_trades(session: Session) -> list[Trade]:
    signals = list(
        session.scalars(
            select(SignalRow)
            .where(SignalRow.is_open.is_(True), SignalRow.state == "answered")
            .where(SignalRow.status == "placed")
            .order_by(SignalRow.created_at)
        )
    )
    if not signals:
        return []
    rows = {
        r.signal_id: r
        for r in session.scalars(
            select(TradeRow).where(TradeRow.signal_id.in_([s.signal_id for s in signals]))
        )
    }
    trades = []
    for signal in signals:
        row = rows.get(signal.signal_id)
        if row is None:
            row = TradeRow(
                signal_id=signal.signal_id, symbol=signal.symbol, side=signal.side, state=OPEN,
                stop_price="0", fills={}, targets_hit=[], position_ids=[], stop_moves=0,
                tp_batches=0, at_breakeven=False, entries_done=False,
            )
            session.add(row)
        if row.state == OPEN:
            trades.append(_trade(row, signal))
    return trades
