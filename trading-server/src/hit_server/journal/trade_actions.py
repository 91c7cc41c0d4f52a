"""The journal of a trader's actions on trades (close, cancel, stop, targets): one row per Idempotency-Key.

A row is written before the action does anything (`claim`), with the action's number on its trade
(`seq`, 1, 2, ...: the clientOrderId of the action's close at market is derived from it,
`ids.action_close_id`) and a fingerprint of the request (the trade, the action and its body), so the
same key with another request is told apart from a retry. Before an order leaves, its clientOrderId is
written on the row (`record_order`), so a retry or a restart after a crash looks that order up instead
of sending another.
The answer (status and body: a result, or a refusal in the error shape) is stored with the action's event
in one transaction (`finish`); a retry with the same key is then answered with it, across restarts too.

state: "working" from the claim until the answer is stored, then "done". An answer that is not final (the
trade busy, the exchange unreachable, an order's outcome not known yet) is not stored: the row stays
"working" and a retry with the same key carries the action on from where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Integer,
    String,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from hit_server.journal.db import Base, Database, as_utc, utcnow
from hit_server.journal.journal import EVENTS, EventRecord

WORKING, DONE = "working", "done"


class TradeActionRow(Base):
    __tablename__ = "trade_actions"
    __table_args__ = (UniqueConstraint("signal_id", "seq", name="uq_trade_actions_signal_seq"),)

    key: Mapped[str] = mapped_column(String(128), primary_key=True)  # the Idempotency-Key
    signal_id: Mapped[str] = mapped_column(String(128), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # the action's number on its trade, from 1
    kind: Mapped[str] = mapped_column(String(16))  # close, cancel, stop, targets
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    client_order_id: Mapped[str | None] = mapped_column(String(32), default=None)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


ACTIONS = Base.metadata.tables["trade_actions"]


@dataclass(frozen=True)
class ActionRecord:
    key: str
    signal_id: str
    seq: int
    kind: str
    fingerprint: str
    state: str
    client_order_id: str | None
    status_code: int | None
    answer: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime  # when its order was recorded, or its answer stored

    @property
    def done(self) -> bool:
        return self.state == DONE


def _record(row: Any) -> ActionRecord:
    return ActionRecord(
        key=row.key,
        signal_id=row.signal_id,
        seq=row.seq,
        kind=row.kind,
        fingerprint=row.fingerprint,
        state=row.state,
        client_order_id=row.client_order_id,
        status_code=row.status_code,
        answer=row.answer,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


class ActionStore:
    """The rows' reads and writes; each method is one transaction of `Database` (see db.py)."""

    CLAIM_TRIES = 5

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key: str) -> ActionRecord | None:
        def read(conn: Connection) -> ActionRecord | None:
            row = conn.execute(select(ACTIONS).where(ACTIONS.c.key == key)).first()
            return None if row is None else _record(row)

        return await self.db.transaction(read)

    async def claim(self, key: str, signal_id: str, kind: str, fingerprint: str) -> ActionRecord:
        """The row of this key: the one already there (a retry, or another request under the same key:
        compare the fingerprint), or a new one numbered after the trade's last action."""
        now = utcnow()

        def write(conn: Connection) -> ActionRecord:
            row = conn.execute(select(ACTIONS).where(ACTIONS.c.key == key)).first()
            if row is not None:
                return _record(row)
            last = conn.scalar(select(func.max(ACTIONS.c.seq)).where(ACTIONS.c.signal_id == signal_id))
            values = {
                "key": key,
                "signal_id": signal_id,
                "seq": int(last or 0) + 1,
                "kind": kind,
                "fingerprint": fingerprint,
                "state": WORKING,
                "client_order_id": None,
                "status_code": None,
                "answer": None,
                "created_at": now,
                "updated_at": now,
            }
            conn.execute(insert(ACTIONS).values(**values))
            return _record(conn.execute(select(ACTIONS).where(ACTIONS.c.key == key)).one())

        for _ in range(self.CLAIM_TRIES):
            try:
                return await self.db.transaction(write)
            except IntegrityError:  # another request took this key or this number first: read again
                continue
        raise RuntimeError(f"could not record the action under key {key!r}")

    async def record_order(self, key: str, client_order_id: str | None) -> None:
        """Write the clientOrderId of the order the action is about to send (before it is sent); None
        when the exchange provably did not take it (a retry may then send afresh)."""

        def write(conn: Connection) -> None:
            conn.execute(
                update(ACTIONS)
                .where(ACTIONS.c.key == key)
                .values(client_order_id=client_order_id, updated_at=utcnow())
            )

        await self.db.transaction(write)

    async def finish(
        self, key: str, status_code: int, answer: dict[str, Any], events: list[EventRecord]
    ) -> ActionRecord:
        """Store the answer and the action's events; the answer that stands (an earlier one, if another
        request under this key stored one first)."""
        now = utcnow()

        def write(conn: Connection) -> ActionRecord:
            stored = conn.execute(
                update(ACTIONS)
                .where(ACTIONS.c.key == key, ACTIONS.c.state == WORKING)
                .values(state=DONE, status_code=status_code, answer=answer, updated_at=now)
            )
            if stored.rowcount == 1 and events:
                conn.execute(
                    insert(EVENTS),
                    [
                        {
                            "type": e.type,
                            "signal_id": e.signal_id,
                            "symbol": e.symbol,
                            "message": e.message,
                            "data": e.data,
                            "created_at": now,
                        }
                        for e in events
                    ],
                )
            row = conn.execute(select(ACTIONS).where(ACTIONS.c.key == key)).one()
            return _record(row)

        return await self.db.transaction(write)
