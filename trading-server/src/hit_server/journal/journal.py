"""The trade journal: what was asked, what was sent, what came back, in that order.

The write order is the at-most-once guarantee: `record_intent` commits the signal and every order it
is about to send (state "sending") BEFORE the first order leaves; `finish` stores the answer. A row
still "sending" or "unknown" after a crash is resolved at the next start by looking its orders up on
the exchange by clientOrderId (see `service.TradingService.reconcile`).

A journal that cannot be written (read-only file, database down) raises `JournalUnavailable`, which
the API answers with 503: a signal is never traded unrecorded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, RowMapping, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hit_server.journal.claims import Claim, release_claim, take_claim
from hit_server.journal.db import Base, Database, EventRow, HaltRow, OrderRow, SignalRow, as_utc, utcnow

OPEN_STATES = ("received", "sending", "unknown")
SIGNALS, ORDERS = Base.metadata.tables["signals"], Base.metadata.tables["orders"]
STATE_CHANGES, EVENTS = Base.metadata.tables["state_changes"], Base.metadata.tables["events"]
HALT = Base.metadata.tables["halt"]
# The per-signal statements are built once: building a statement for every call costs more than
# SQLite takes to run it. Values are bound at execution.
GET_SIGNAL = select(SIGNALS).where(SIGNALS.c.signal_id == bindparam("sid"))
OPEN_SYMBOLS = select(SIGNALS.c.symbol).where(SIGNALS.c.is_open.is_(True)).distinct()
# a signal's first read (`signal_or_open_symbols`) in one statement: the signals with an open trade, and
# this signal_id's own row if it was received before
KNOWN_OR_OPEN = select(SIGNALS.c.signal_id, SIGNALS.c.symbol).where(
    or_(SIGNALS.c.is_open.is_(True), SIGNALS.c.signal_id == bindparam("sid"))
)
# the signals whose answer was never stored or whose outcome is unknown (`Journal.unresolved`)
UNRESOLVED = select(SIGNALS.c.signal_id).where(SIGNALS.c.state.in_(OPEN_STATES))
INSERT_SIGNAL, INSERT_ORDERS = insert(SIGNALS), insert(ORDERS)
INSERT_STATES, INSERT_EVENTS = insert(STATE_CHANGES), insert(EVENTS)
# An answer is stored only over a signal still without a settled one: a second process (a replay's or a
# monitor's reconciliation) may have answered it meanwhile, and that answer stands.
ANSWER = (
    update(SIGNALS)
    .where(SIGNALS.c.signal_id == bindparam("sid"), SIGNALS.c.state.in_(OPEN_STATES))
    .values(state=bindparam("new_state"), status=bindparam("new_status"), reason=bindparam("new_reason"),
            response=bindparam("new_response"), is_open=bindparam("new_is_open"),
            updated_at=bindparam("at"))
)
KNOWN_ORDERS = select(ORDERS.c.client_order_id).where(
    ORDERS.c.client_order_id.in_(bindparam("cids", expanding=True))
)
# one statement for the new states of many orders (executemany), by primary key
ORDER_STATES = (
    update(ORDERS)
    .where(ORDERS.c.client_order_id == bindparam("cid"))
    .values(state=bindparam("new_state"), order_id=bindparam("new_order_id"), updated_at=bindparam("at"))
)


# recorded for each trade whose position the kill switch closes, before it sends the close, so the
# position monitor reads that close as the halt's (exit "halt") rather than one by hand
HALT_CLOSE_EVENT = "halt_close"


class DuplicateSignal(Exception):
    """Another writer recorded this signal_id first (the unique constraint held)."""


class AnsweredElsewhere(Exception):
    """The signal already has a settled answer, stored by another process while this one was at work
    (e.g. two servers' monitors reconciling the same signal): nothing of this answer was written."""


@dataclass
class OrderRecord:
    """One order of a signal, as planned and as the exchange last reported it."""

    client_order_id: str
    role: str
    seq: int
    symbol: str
    side: str
    order_type: str
    size: Decimal
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    state: str = "sending"
    order_id: str | None = None


@dataclass(frozen=True)
class EventRecord:
    type: str
    message: str
    signal_id: str | None = None
    symbol: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Counts:
    received: int
    placed: int
    rejected: int
    failed: int
    replayed: int
    open_trades: int
    closed: int
    wins: int
    losses: int
    realized_pnl: Decimal
    pnl_by_symbol: dict[str, Decimal]


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _order_values(signal_id: str, order: OrderRecord, now: datetime) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "signal_id": signal_id,
        "role": order.role,
        "seq": order.seq,
        "symbol": order.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "price": _text(order.price),
        "trigger_price": _text(order.trigger_price),
        "size": str(order.size),
        "order_id": order.order_id,
        "state": order.state,
        "created_at": now,
        "updated_at": now,
    }


def _state_values(signal_id: str, order: OrderRecord, now: datetime) -> dict[str, Any]:
    return {"signal_id": signal_id, "client_order_id": order.client_order_id, "state": order.state,
            "note": None, "at": now}


def _event_values(item: EventRecord, now: datetime) -> dict[str, Any]:
    return {"type": item.type, "signal_id": item.signal_id, "symbol": item.symbol, "message": item.message,
            "data": item.data, "created_at": now}


def to_record(row: OrderRow | Row[Any]) -> OrderRecord:
    """An order's journal row (the ORM's or a Core row of the orders table) as the record trading uses."""
    return OrderRecord(
        client_order_id=row.client_order_id,
        role=row.role,
        seq=row.seq,
        symbol=row.symbol,
        side=row.side,
        order_type=row.order_type,
        size=Decimal(row.size),
        price=None if row.price is None else Decimal(row.price),
        trigger_price=None if row.trigger_price is None else Decimal(row.trigger_price),
        state=row.state,
        order_id=row.order_id,
    )


class Journal:
    """The journal's reads and writes; each method is one transaction of `Database` (see db.py)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- signals -------------------------------------------------------------------------------

    async def get_signal(self, signal_id: str) -> SignalRow | None:
        """The signal's row (detached: read it, don't write through it), or None."""

        return await self.db.read(lambda conn: _signal_row(conn, signal_id))

    async def signal_or_open_symbols(self, signal_id: str) -> tuple[SignalRow | None, set[str]]:
        """What a signal needs first, in one read: its row if this signal_id was received before (to
        replay it), else the symbols with an open trade of ours (to admit it)."""

        def read(conn: Connection) -> tuple[SignalRow | None, set[str]]:
            found = self.db.rows(conn, KNOWN_OR_OPEN, {"sid": signal_id})
            if any(sid == signal_id for sid, _ in found):  # seldom: the whole row is read then
                return _signal_row(conn, signal_id), set()
            return None, {symbol for _, symbol in found}

        return await self.db.read(read)

    async def record_intent(
        self,
        signal_id: str,
        *,
        body_hash: str,
        body: dict[str, Any],
        symbol: str,
        side: str,
        orders: Sequence[OrderRecord],
        state: str,
        claim: Claim | None = None,
    ) -> None:
        """Commit the signal and the orders about to be sent; raises DuplicateSignal if already there.
        `claim` (a signal that will send orders): its symbol is claimed in the same transaction, or
        ClaimRefused is raised and nothing is recorded (see claims.py)."""
        now = utcnow()

        def write(conn: Connection) -> None:
            self.db.write(conn, INSERT_SIGNAL, {
                "signal_id": signal_id, "body_hash": body_hash, "body": body, "symbol": symbol, "side": side,
                "state": state, "status": None, "reason": None, "response": None, "is_open": False,
                "replays": 0, "realized_pnl": None, "created_at": now, "updated_at": now, "closed_at": None,
            })
            if claim is not None:  # after the signal's row: a duplicate signal_id is a replay, not a refusal
                take_claim(self.db, conn, signal_id, claim, now)
            if orders:
                self.db.write(conn, INSERT_ORDERS, [_order_values(signal_id, o, now) for o in orders])
            self.db.write(conn, INSERT_STATES, {
                "signal_id": signal_id, "client_order_id": None, "state": state, "note": None, "at": now,
            })

        try:
            await self.db.transaction(write)
        except IntegrityError as exc:
            raise DuplicateSignal(signal_id) from exc

    async def reserve_order(self, signal_id: str, order: OrderRecord) -> bool:
        """Journal the intent of an order under a clientOrderId not used before; False, writing
        nothing, when that id is already journaled (another process took it first). Two processes
        placing a fresh stop at once thus never send one id twice (see `journal_fresh_order`)."""
        values = _order_values(signal_id, order, utcnow())

        def write(conn: Connection) -> None:
            conn.execute(INSERT_ORDERS, values)

        try:
            await self.db.transaction(write)
        except IntegrityError:
            return False
        return True

    async def add_or_update_orders(self, signal_id: str, orders: Sequence[OrderRecord]) -> None:
        """Commit orders' current states (e.g. "sending" just before they are sent)."""
        if not orders:
            return
        now = utcnow()

        def write(conn: Connection) -> None:
            _merge_orders(self.db, conn, signal_id, orders, now)
            self.db.write(conn, INSERT_STATES, [_state_values(signal_id, o, now) for o in orders])

        await self.db.transaction(write)

    async def finish(
        self,
        signal_id: str,
        *,
        status: str,
        reason: str | None,
        response: dict[str, Any],
        orders: Sequence[OrderRecord],
        is_open: bool,
        events: Sequence[EventRecord] = (),
        state: str = "answered",
        all_recorded: bool = False,
    ) -> None:
        """Store the answer, every order's last known state, and the events it produced; a signal
        answered with nothing open releases its claim. Raises AnsweredElsewhere, writing nothing, when
        the signal was answered meanwhile by someone else.
        `all_recorded`: every order was committed by `record_intent`, so none needs inserting."""
        now = utcnow()

        def write(conn: Connection) -> None:
            answered = self.db.write(conn, ANSWER, {
                "sid": signal_id, "new_state": state, "new_status": status, "new_reason": reason,
                "new_response": response, "new_is_open": is_open, "at": now,
            })
            if answered == 0:  # the transaction rolls back: nothing below is written either
                raise AnsweredElsewhere(signal_id)
            if not is_open and state == "answered":
                release_claim(conn, signal_id)
            _merge_orders(self.db, conn, signal_id, orders, now, all_recorded=all_recorded)
            changes = [_state_values(signal_id, o, now) for o in orders]
            changes.append({"signal_id": signal_id, "client_order_id": None, "state": state, "note": status,
                            "at": now})
            self.db.write(conn, INSERT_STATES, changes)
            if events:
                self.db.write(conn, INSERT_EVENTS, [_event_values(item, now) for item in events])

        await self.db.transaction(write)

    async def count_replay(self, signal_id: str) -> None:
        def write(conn: Connection) -> None:
            conn.execute(
                update(SIGNALS).where(SIGNALS.c.signal_id == signal_id).values(replays=SIGNALS.c.replays + 1)
            )

        await self.db.transaction(write)

    async def orders_of(self, signal_id: str) -> list[OrderRecord]:
        def read(session: Session) -> list[OrderRecord]:
            rows = session.scalars(
                select(OrderRow).where(OrderRow.signal_id == signal_id).order_by(OrderRow.created_at)
            )
            return [to_record(row) for row in rows]

        return await self.db.session(read)

    async def unresolved(self) -> list[str]:
        """The signal_ids of the signals whose answer was never stored or whose orders' outcome is unknown.
        Ids only (one Core read, a third of loading the rows through the ORM): every position monitor pass
        asks, and the answer is nearly always none; whoever resolves one reads it afresh under its lock."""

        def read(conn: Connection) -> list[str]:
            return self.db.column(conn, UNRESOLVED)

        return await self.db.read(read)

    async def open_symbols(self) -> set[str]:
        def read(conn: Connection) -> set[str]:
            return set(self.db.column(conn, OPEN_SYMBOLS))

        return await self.db.read(read)

    async def open_signals(self) -> dict[str, list[tuple[str, str]]]:
        """The open signals by symbol: (signal_id, side) each, oldest first."""
        def read(conn: Connection) -> dict[str, list[tuple[str, str]]]:
            found: dict[str, list[tuple[str, str]]] = {}
            rows = conn.execute(
                select(SIGNALS.c.symbol, SIGNALS.c.signal_id, SIGNALS.c.side)
                .where(SIGNALS.c.is_open.is_(True)).order_by(SIGNALS.c.created_at)
            )
            for symbol, signal_id, side in rows:
                found.setdefault(symbol, []).append((signal_id, side))
            return found

        return await self.db.transaction(read)

    async def answers(
        self, *, status: str | None, symbol: str | None, limit: int, offset: int
    ) -> tuple[list[SignalRow], int]:
        """Answered signals, newest first, with the total matching count (GET /api/v1/signals)."""
        query = select(SignalRow).where(SignalRow.response.is_not(None))
        if status:
            query = query.where(SignalRow.status == status)
        if symbol:
            query = query.where(SignalRow.symbol == symbol)

        def read(session: Session) -> tuple[list[SignalRow], int]:
            total = session.scalar(select(func.count()).select_from(query.subquery()))
            rows = session.scalars(
                query.order_by(SignalRow.created_at.desc(), SignalRow.signal_id.desc())
                .limit(limit)
                .offset(offset)
            )
            return list(rows), int(total or 0)

        return await self.db.session(read)

    async def counts(self) -> Counts:
        return await self.db.transaction(_counts)

    # -- events and halt -------------------------------------------------------------------------

    async def add_events(self, events: Sequence[EventRecord]) -> None:
        now = utcnow()

        def write(conn: Connection) -> None:
            if events:
                self.db.write(conn, INSERT_EVENTS, [_event_values(item, now) for item in events])

        await self.db.transaction(write)

    async def events(self, *, after: int, limit: int, signal_id: str | None = None) -> list[EventRow]:
        """Up to `limit` events with an id greater than `after`, oldest first; only `signal_id`'s if given."""
        query = select(EventRow).where(EventRow.id > after)
        if signal_id is not None:
            query = query.where(EventRow.signal_id == signal_id)

        def read(session: Session) -> list[EventRow]:
            return list(session.scalars(query.order_by(EventRow.id).limit(limit)))

        return await self.db.session(read)

    async def has_event(self, signal_id: str, kind: str) -> bool:
        """Whether an event of this type was recorded for the signal."""
        def read(conn: Connection) -> bool:
            query = select(EVENTS.c.id).where(EVENTS.c.signal_id == signal_id, EVENTS.c.type == kind).limit(1)
            return conn.scalar(query) is not None

        return await self.db.transaction(read)

    async def last_event_id(self) -> int:
        def read(conn: Connection) -> int:
            return int(conn.scalar(select(func.coalesce(func.max(EVENTS.c.id), 0))) or 0)

        return await self.db.transaction(read)

    async def halt_state(self) -> HaltRow:
        def read(session: Session) -> HaltRow:
            row = session.get(HaltRow, 1)
            if row is None:
                row = HaltRow(id=1, halted=False)
            if row.since is not None:
                row.since = as_utc(row.since)
            return row

        return await self.db.session(read)

    async def halt_trading(self, reason: str) -> tuple[HaltRow, bool]:
        """Halt trading unless it already is: the halt that stands, and whether this call began it.

        A halt while halted changes nothing and records no event: the first reason and time stand
        (the operator's first word on why trading stopped is the one worth keeping). The test and the
        change are one conditional UPDATE, so two processes sharing the journal can't both begin it."""
        now = utcnow()

        def write(conn: Connection) -> tuple[HaltRow, bool]:
            began = conn.execute(
                update(HALT).where(HALT.c.id == 1, HALT.c.halted.is_(False))
                .values(halted=True, reason=reason, since=now)
            ).rowcount
            if not began:
                standing = conn.execute(select(HALT).where(HALT.c.id == 1)).mappings().first()
                if standing is not None:
                    return _halt_row(standing), False
                conn.execute(insert(HALT).values(id=1, halted=True, reason=reason, since=now))
            conn.execute(INSERT_EVENTS, _event_values(EventRecord(type="halted", message=reason), now))
            return HaltRow(id=1, halted=True, reason=reason, since=now), True

        try:
            return await self.db.transaction(write)
        except IntegrityError:  # another process wrote the first halt row meanwhile: now it is there
            return await self.db.transaction(write)

    async def resume_trading(self) -> bool:
        """End the halt; True when trading was halted. Only a real resume records a "resumed" event."""
        now = utcnow()

        def write(conn: Connection) -> bool:
            ended = conn.execute(
                update(HALT).where(HALT.c.id == 1, HALT.c.halted.is_(True))
                .values(halted=False, reason=None, since=None)
            ).rowcount
            if ended:
                record = EventRecord(type="resumed", message="trading resumed")
                conn.execute(INSERT_EVENTS, _event_values(record, now))
            return bool(ended)

        return await self.db.transaction(write)


def _halt_row(values: RowMapping) -> HaltRow:
    since = values["since"]
    return HaltRow(id=1, halted=values["halted"], reason=values["reason"],
                   since=None if since is None else as_utc(since))


def _counts(conn: Connection) -> Counts:
    grouped = conn.execute(select(SIGNALS.c.status, func.count()).group_by(SIGNALS.c.status))
    by_status: dict[str | None, int] = {row[0]: row[1] for row in grouped}
    received = conn.scalar(select(func.count()).select_from(SIGNALS))
    replayed = conn.scalar(select(func.coalesce(func.sum(SIGNALS.c.replays), 0)))
    open_trades = conn.scalar(select(func.count()).select_from(SIGNALS).where(SIGNALS.c.is_open.is_(True)))
    closed = conn.execute(
        select(SIGNALS.c.symbol, SIGNALS.c.realized_pnl).where(SIGNALS.c.closed_at.is_not(None))
    ).all()
    pnl_by_symbol: dict[str, Decimal] = {}
    wins = losses = 0
    for symbol, pnl_text in closed:
        pnl = Decimal(pnl_text or 0)
        pnl_by_symbol[symbol] = pnl_by_symbol.get(symbol, Decimal(0)) + pnl
        wins += pnl > 0
        losses += pnl < 0
    return Counts(
        received=int(received or 0),
        placed=int(by_status.get("placed", 0)),
        rejected=int(by_status.get("rejected", 0)),
        failed=int(by_status.get("failed", 0)),
        replayed=int(replayed or 0),
        open_trades=int(open_trades or 0),
        closed=len(closed),
        wins=wins,
        losses=losses,
        realized_pnl=sum(pnl_by_symbol.values(), Decimal(0)),
        pnl_by_symbol=pnl_by_symbol,
    )


def _signal_row(conn: Connection, signal_id: str) -> SignalRow | None:
    """The signal's row (detached: read it, don't write through it), or None."""
    row = conn.execute(GET_SIGNAL, {"sid": signal_id}).mappings().first()
    return None if row is None else SignalRow(**row)


Reserve = Callable[[str, OrderRecord], Awaitable[bool]]
FRESH_ID_TRIES = 50


async def journal_fresh_order(
    reserve: Reserve, signal_id: str, make: Callable[[int], OrderRecord], number: int
) -> OrderRecord:
    """The order `make(n)` for the first n from `number` whose clientOrderId was never journaled, its
    intent journaled (rule 1). Used where two processes may add an order to one signal at the same
    moment (a stop repaired by the executor and by the monitor of another process): each number goes
    to one of them, so one id never reaches the exchange twice (found by the simulation, seed 68)."""
    for n in range(number, number + FRESH_ID_TRIES):
        record = make(n)
        if await reserve(signal_id, record):
            return record
    raise RuntimeError(f"no free clientOrderId for signal {signal_id} after {FRESH_ID_TRIES} tries")


def _merge_orders(
    db: Database,
    conn: Connection,
    signal_id: str,
    orders: Sequence[OrderRecord],
    now: datetime,
    *,
    all_recorded: bool = False,
) -> None:
    """Upsert the orders' states: new ones inserted, known ones updated (one executemany each)."""
    if not orders:
        return
    ids = [order.client_order_id for order in orders]
    if all_recorded:
        known = set(ids)
    else:
        known = set(conn.scalars(KNOWN_ORDERS, {"cids": ids}))
    new = [_order_values(signal_id, o, now) for o in orders if o.client_order_id not in known]
    if new:
        db.write(conn, INSERT_ORDERS, new)
    updates = [
        {"cid": o.client_order_id, "new_state": o.state, "new_order_id": o.order_id, "at": now}
        for o in orders
        if o.client_order_id in known
    ]
    if updates:
        db.write(conn, ORDER_STATES, updates)
