"""Fanning a signal out to the fleet's accounts, and what an operator reads about it.

`FanOut.submit(signal)` runs in the API server for every signal it accepts while FLEET is on:
1. in one journal transaction: the `fanouts` row and one `fanout_jobs` row (`queued`) per enabled account
   of the moment; a signal_id fanned out before changes nothing (a retry of the POST, or a second server);
2. then one queue job per account (`queue.py`), all in one statement.
A crash or a queue that can't be reached between 1 and 2 leaves rows `queued` with no job: `requeue`
(at start, then every REQUEUE_EVERY_S) defers those again. The rows are the durable record of the
fan-out; the jobs only carry it out.

A job no worker takes (its egress group has no worker running, or the group's IP is suspended by the
exchange) must not wait for ever and then trade a signal long gone: once the signal is older than the
server's MAX_SIGNAL_AGE_SECONDS and EXPIRE_GRACE_S, `expire` cancels the job while it still waits and
writes the row `expired`, with the reason. A job a worker has begun is left to its worker's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from hit_server.accounts.store import ACCOUNTS
from hit_server.fleet.queue import JobQueue, job_lock
from hit_server.fleet.tables import EXPIRED, FANOUT_JOBS, FANOUTS, QUEUED
from hit_server.journal.db import Database, utcnow
from hit_server.settings import Settings
from hit_shared.models import TradeSignal

log = logging.getLogger(__name__)

REQUEUE_EVERY_S = 30.0
REQUEUE_AFTER_S = 10.0  # a row younger than this may be between its commit and its job's deferral
EXPIRE_GRACE_S = 60.0  # beyond the signal's age limit: a job begun just in time has had its chance


@dataclass(frozen=True)
class Fanned:
    accounts: int  # jobs recorded for this signal (0: no enabled account)
    new: bool  # False: the signal had been fanned out before; nothing was recorded or queued now
    queued: int  # jobs deferred now


class FanOut:
    def __init__(self, db: Database, queue: JobQueue, *, max_signal_age_s: float) -> None:
        self.db = db
        self.queue = queue
        self.max_signal_age_s = max_signal_age_s
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.queue.open()
        await self.expire()
        await self.requeue()
        self._sweeper = asyncio.create_task(self._sweep(), name="fanout-requeue")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.queue.close()

    async def submit(self, signal: TradeSignal) -> Fanned:
        body = signal.model_dump(mode="json")

        def record(conn: Connection) -> list[tuple[str, str]] | None:
            if conn.scalar(select(FANOUTS.c.signal_id).where(FANOUTS.c.signal_id == signal.signal_id)):
                return None
            accounts = [
                (name, group) for name, group in conn.execute(
                    select(ACCOUNTS.c.name, ACCOUNTS.c.egress_group)
                    .where(ACCOUNTS.c.enabled.is_(True)).order_by(ACCOUNTS.c.name)
                )
            ]
            now = utcnow()
            conn.execute(insert(FANOUTS).values(
                signal_id=signal.signal_id, symbol=signal.symbol, body=body, accounts=len(accounts),
                created_at=now,
            ))
            if accounts:
                conn.execute(insert(FANOUT_JOBS), [
                    {"signal_id": signal.signal_id, "account": name, "egress_group": group, "status": QUEUED,
                     "attempts": 0, "created_at": now, "updated_at": now}
                    for name, group in accounts
                ])
            return accounts

        try:
            accounts = await self.db.transaction(record)
        except IntegrityError:  # another server recorded it between our read and our write
            accounts = None
        if accounts is None:
            return Fanned(accounts=0, new=False, queued=0)
        queued = 0
        if accounts:
            try:
                queued = await self.queue.defer([(signal.signal_id, name, group) for name, group in accounts])
            except Exception as exc:  # recorded and queued later by `requeue`: never lost, only late
                log.error("Fan-out of %s: the job queue refused (%s); queued again within %.0f s",
                          signal.signal_id, type(exc).__name__, REQUEUE_EVERY_S)
        log.info("Fan-out of %s: %d account(s), %d job(s) queued", signal.signal_id, len(accounts), queued)
        return Fanned(accounts=len(accounts), new=True, queued=queued)

    async def requeue(self) -> int:
        """Defer again every job still `queued` that has no job waiting or running on the queue."""

        def orphans(conn: Connection) -> list[tuple[str, str, str]]:
            rows = _waiting_since(conn, REQUEUE_AFTER_S)
            live = _live_jobs(conn) if rows else {}
            return [(s, a, g) for s, a, g in rows if job_lock(s, a) not in live]

        lost = await self.db.transaction(orphans)
        if not lost:
            return 0
        queued = await self.queue.defer(lost)
        log.warning("Fan-out: %d job(s) recorded but not on the queue were queued again", queued)
        return queued

    async def expire(self) -> int:
        """Write `expired` the jobs still waiting when their signal is too old to trade (cancelling each
        on the queue first, so no worker takes it after); returns how many."""
        deadline_s = self.max_signal_age_s + EXPIRE_GRACE_S

        def overdue(conn: Connection) -> list[tuple[str, str, str, int | None, str | None]]:
            rows = _waiting_since(conn, deadline_s)
            jobs = _live_jobs(conn) if rows else {}
            return [(s, a, g, *jobs.get(job_lock(s, a), (None, None))) for s, a, g in rows]

        expired = 0
        for signal_id, account, group, job_id, status in await self.db.transaction(overdue):
            if status == "doing":
                continue  # its worker answers
            if job_id is not None and not await self.queue.cancel(job_id):
                continue  # a worker took it just now
            reason = (f"no worker of egress group '{group}' took the job within {deadline_s:.0f} s, and the "
                      "signal is too old to trade now; check that group's worker and its IP address")
            expired += await self._write_expired(signal_id, account, reason)
        if expired:
            log.error("Fan-out: %d job(s) expired with no worker to take them", expired)
        return expired

    async def _write_expired(self, signal_id: str, account: str, reason: str) -> int:
        def write(conn: Connection) -> int:
            return conn.execute(
                update(FANOUT_JOBS)
                .where(FANOUT_JOBS.c.signal_id == signal_id).where(FANOUT_JOBS.c.account == account)
                .where(FANOUT_JOBS.c.status == QUEUED)
                .values(status=EXPIRED, reason=reason, updated_at=utcnow())
            ).rowcount

        return await self.db.transaction(write)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(REQUEUE_EVERY_S)
            try:
                await self.expire()
                await self.requeue()
            except Exception as exc:  # the database or the queue is down: the next sweep tries again
                log.warning("Fan-out: the sweep failed (%s)", type(exc).__name__)


def _waiting_since(conn: Connection, seconds: float) -> list[tuple[str, str, str]]:
    """(signal_id, account, egress group) of the jobs still `queued` that were fanned out over `seconds`
    ago."""
    before = utcnow() - timedelta(seconds=seconds)
    rows = conn.execute(
        select(FANOUT_JOBS.c.signal_id, FANOUT_JOBS.c.account, FANOUT_JOBS.c.egress_group)
        .where(FANOUT_JOBS.c.status == QUEUED).where(FANOUT_JOBS.c.created_at < before)
    ).all()
    return [(s, a, g) for s, a, g in rows]


def _live_jobs(conn: Connection) -> dict[str, tuple[int, str]]:
    """The queue's jobs waiting or running: queueing lock -> (job id, `todo` or `doing`)."""
    return {lock: (job_id, status) for job_id, lock, status in conn.execute(text(
        "SELECT id, queueing_lock, status FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        " AND queueing_lock IS NOT NULL"
    ))}


@asynccontextmanager
async def open_fanout(settings: Settings, db: Database) -> AsyncIterator[FanOut | None]:
    """The API server's fan-out when FLEET is on (None otherwise), its queue opened and its sweeper
    running."""
    if not settings.fleet:
        yield None
        return
    fanout = FanOut(db, JobQueue(settings.journal_url), max_signal_age_s=settings.max_signal_age_seconds)
    await fanout.start()
    try:
        yield fanout
    finally:
        await fanout.stop()
