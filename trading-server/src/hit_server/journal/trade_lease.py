"""Which server process works on a trade right now: one lease per trade, in the journal.

Two processes on one journal and account (a restart overlapping the old process, a second instance
by mistake) both run the position monitor. Saving a trade under optimistic concurrency (`trade_book`)
keeps the journal's record of it consistent, but not the exchange: both passes could place a batch of
targets under the same derived clientOrderIds with different sizes, and the slower one would take the
other's orders, of another size, for its own (found by the whole-system simulation: targets covering
less than the position). So a process works on a trade only while it holds the trade's lease: taken
before the trade's work in a pass, given back after it, and lapsing after LEASE_S if its holder died
while working (the trade then waits at most that long for another process). The other process skips
the trade for that pass; a trade is never left unwatched for longer than a lease.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, DateTime, String, Table, bindparam, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.dml import ValuesBase

from hit_server.journal.db import Base, Database, utcnow

LEASE_S = 20.0  # longer than one trade's work in a pass, retries included
GIVEN_BACK = datetime(2000, 1, 1, tzinfo=UTC)  # the `until` of a lease given back: long lapsed
T = TypeVar("T")


class TradeLeaseRow(Base):
    __tablename__ = "trade_leases"

    signal_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))


LEASES = Base.metadata.tables["trade_leases"]


def _take(insert: Callable[[Table], Any]) -> ValuesBase:
    """The lease taken in one statement, by dialect (their INSERT ... ON CONFLICT are each its own
    construct): made, or when it exists, taken if it is free, lapsed or already ours; one row changed
    when taken, none when another holds it. A concurrent taker's insert waits for the first one's row
    and then misses, as its update would."""
    new = insert(LEASES).values(
        signal_id=bindparam("sid"), holder=bindparam("me"), until=bindparam("new_until")
    )
    taken: ValuesBase = new.on_conflict_do_update(
        index_elements=[LEASES.c.signal_id],
        set_={"holder": new.excluded.holder, "until": new.excluded.until},
        where=or_(LEASES.c.holder == new.excluded.holder, LEASES.c.until <= bindparam("now")),
    )
    return taken


TAKE = {"postgresql": _take(postgresql.insert), "sqlite": _take(sqlite.insert)}
GIVE_BACK = (
    update(LEASES)
    .where(LEASES.c.signal_id == bindparam("sid"), LEASES.c.holder == bindparam("me"))
    .values(until=bindparam("new_until"))
)


class TradeLeases:
    """The leases one process takes; `holder` names the process (a fresh id per monitor)."""

    def __init__(self, db: Database, holder: str | None = None, seconds: float = LEASE_S) -> None:
        self.db = db
        self.holder = holder or uuid.uuid4().hex
        self.seconds = seconds
        self._held: set[str] = set()  # the trades whose lease this process took and has not given back

    async def take(self, signal_id: str) -> bool:
        """True when this process may work on the trade now (the lease was free, lapsed or its own)."""
        taken, _ = await self.take_and_read(signal_id, lambda _conn: None)
        return taken

    async def take_and_read(self, signal_id: str, read: Callable[[Connection], T]) -> tuple[bool, T | None]:
        """`take`, and when taken, `read` in the same transaction (the monitor's pass reads the trade's
        version so: one transaction per trade instead of two)."""
        now = utcnow()
        until = now + timedelta(seconds=self.seconds)

        def write(conn: Connection) -> tuple[bool, T | None]:
            params = {"sid": signal_id, "me": self.holder, "now": now, "new_until": until}
            if self.db.write(conn, TAKE[conn.dialect.name], params) != 1:
                return False, None  # another process holds it
            return True, read(conn)

        taken, value = await self.db.transaction(write)
        if taken:
            self._held.add(signal_id)
        return taken, value

    async def give_back(self, signal_id: str) -> None:
        """Free the lease: its row stays, lapsed, so that another process may take it at once. Nothing
        is sent when this process gave it back already, with the trade's save (`give_back_in`)."""
        if signal_id not in self._held:
            return
        await self.db.transaction(lambda conn: self.give_back_in(conn, signal_id))
        self.given_back(signal_id)

    def give_back_in(self, conn: Connection, signal_id: str) -> None:
        """Free the lease inside a transaction of this database that writes something else (a pass's save
        of the trade: one transaction less per trade it changed); `given_back` once it committed."""
        self.db.write(conn, GIVE_BACK, {"sid": signal_id, "me": self.holder, "new_until": GIVEN_BACK})

    def given_back(self, signal_id: str) -> None:
        self._held.discard(signal_id)
