"""What the fan-out's workers write and what an operator reads: one `fanout_jobs` row per (signal,
account). Kept apart from `fanout.py` so the API reads progress without the queue's library."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import Connection, bindparam, func, select, update

from hit_server.fleet.tables import FANOUT_JOBS, FANOUTS
from hit_server.journal.db import Database, utcnow


class JobOutcome(BaseModel):
    account: str
    status: str
    reason: str | None = None


class FanoutProgress(BaseModel):
    """`total` accounts, how many answered each status (`queued`: not answered yet), and every account
    not placed with its reason."""

    signal_id: str
    total: int
    by_status: dict[str, int]
    not_placed: list[JobOutcome]


OUTCOME = (
    update(FANOUT_JOBS)
    .where(FANOUT_JOBS.c.signal_id == bindparam("sid")).where(FANOUT_JOBS.c.account == bindparam("of"))
    .values(status=bindparam("new_status"), reason=bindparam("new_reason"),
            attempts=FANOUT_JOBS.c.attempts + 1, updated_at=bindparam("at"))
)


async def record_outcome(db: Database, signal_id: str, account: str, status: str, reason: str | None) -> None:
    """A worker's answer for one (signal, account): one statement, committed alone."""

    def write(conn: Connection) -> None:
        db.write(conn, OUTCOME, {
            "sid": signal_id, "of": account, "new_status": status, "new_reason": reason, "at": utcnow(),
        })

    await db.single_statement(write)


async def progress(db: Database, signal_id: str) -> FanoutProgress | None:
    """The fan-out of `signal_id` as it stands, or None if it was never fanned out."""

    def read(conn: Connection) -> FanoutProgress | None:
        total = conn.scalar(select(FANOUTS.c.accounts).where(FANOUTS.c.signal_id == signal_id))
        if total is None:
            return None
        counts: dict[str, int] = dict(conn.execute(
            select(FANOUT_JOBS.c.status, func.count())
            .where(FANOUT_JOBS.c.signal_id == signal_id).group_by(FANOUT_JOBS.c.status)
        ).all())
        others = conn.execute(
            select(FANOUT_JOBS.c.account, FANOUT_JOBS.c.status, FANOUT_JOBS.c.reason)
            .where(FANOUT_JOBS.c.signal_id == signal_id).where(FANOUT_JOBS.c.status != "placed")
            .order_by(FANOUT_JOBS.c.account)
        ).all()
        return FanoutProgress(
            signal_id=signal_id, total=total, by_status=counts,
            not_placed=[JobOutcome(account=a, status=s, reason=r) for a, s, r in others],
        )

    return await db.transaction(read)
