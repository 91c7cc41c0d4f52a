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
from typing import TypeVar

from sqlalchemy import Connection, DateTime, String, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

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
# free, lapsed or already ours: taken (one conditional statement: a concurrent taker re-reads the row it
# waited for and misses)
TAKE = (
    update(LEASES)
    .where(LEASES.c.signal_id == bindparam("sid"))
    .where(or_(LEASES.c.holder == bindparam("me"), LEASES.c.until <= bindparam("now")))
    .values(holder=bindparam("me"), until=bindparam("new_until"))
)
HOLDER = select(LEASES.c.holder).where(LEASES.c.signal_id == bindparam("sid"))
NEW_LEASE = insert(LEASES)
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
            db, me = self.db, self.holder
            if db.write(conn, TAKE, {"sid": signal_id, "me": me, "now": now, "new_until": until}) != 1:
                if db.column(conn, HOLDER, {"sid": signal_id}):
                    return False, None  # another process holds it
                db.write(conn, NEW_LEASE, {"signal_id": signal_id, "holder": me, "until": until})
            return True, read(conn)

        try:
            return await self.db.transaction(write)
        except IntegrityError:  # another process inserted the lease first
            return False, None

    async def give_back(self, signal_id: str) -> None:
        """Free the lease: its row stays, lapsed, so the next `take` is one UPDATE (a pass takes and gives
        back the lease of every open trade each time it runs)."""
        def write(conn: Connection) -> None:
            self.db.write(conn, GIVE_BACK, {"sid": signal_id, "me": self.holder, "new_until": GIVEN_BACK})

        await self.db.transaction(write)
