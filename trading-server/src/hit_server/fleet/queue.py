"""The fan-out's job queue: procrastinate on the journal's PostgreSQL (issue #19; why this engine:
ARCHITECTURE.md, "The fleet").

One task, `trade_for_account(signal_id, account)`, deferred once per (signal, account) on the queue of the
account's egress group (`egress_<group>`: only workers whose machine has that group's IP address, to which
the account's BloFin keys are bound, take it), with:
- `lock=account`: jobs of one account run one at a time, in the order they were deferred (two signals on
  one account never race each other's orders or its one-trade-per-symbol rule);
- `queueing_lock=<signal>/<account>`: the same job cannot be queued twice while it waits, so deferring it
  again after a crash (`FanOut.requeue`) is harmless.

The queue delivers a job at least once (a worker killed mid-job leaves it `doing`; `worker.py` hands it
back once the worker's heartbeat stops). At most once is the account journal's business, exactly as for
one account: a job run twice replays the stored answer or resumes from the journal, never sends anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, LiteralString

import procrastinate
import psycopg
import psycopg_pool
from sqlalchemy import make_url

log = logging.getLogger(__name__)

TASK_NAME = "trade_for_account"
SCHEMA_LOCK = 719_001  # a pg_advisory_lock key: one process at a time installs the queue's tables
MAX_RETRIES = 5
# A job whose account path raised (exchange unreachable, journal down) is run again up to MAX_RETRIES
# times, 2, 4, 8, 16 and 32 s apart. A signal older than MAX_SIGNAL_AGE_SECONDS is refused by the risk
# check meanwhile, so a late retry can only answer, never trade a stale signal.
RETRY = procrastinate.RetryStrategy(max_attempts=MAX_RETRIES, exponential_wait=2)

# A worker is idle once no job has run in it for this long: between two jobs of a fan-out (one ends, the
# queue hands over the next) it is not.
IDLE_AFTER_S = 0.2

# How often a worker asks the queue whether a worker of the fleet runs a job (`JobQueue.until_fleet_idle`):
# one query per this long per worker at most, whatever the number of its accounts' monitors waiting.
FLEET_POLL_S = 0.25
FLEET_BUSY = (
    "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE status = 'doing' AND task_name = %(task)s) AS busy"
)

# The planner's statistics of the jobs table, refreshed after every deferral (`JobQueue.defer`). A fan-out
# drains the queue and autovacuum then records the table as empty (pages but no rows); procrastinate's
# fetch is planned from that (PostgreSQL keeps a function's plan for its session) and, taking the queue
# for empty, compares every waiting job with every other one on each fetch (a nested loop over two
# sequential scans): bench/fanout.py's later signals at 400 accounts spent 4.3 ms a fetch (0.65 in the
# first, planned before any autovacuum). SKIP_LOCKED: an autovacuum busy with the table leaves it as is
# (that one records what it finds, the queued jobs among it).
REFRESH_STATISTICS = "ANALYZE (SKIP_LOCKED) procrastinate_jobs"

# (signal_id, account, last): `last` is True on the job's last attempt (its failure is then final)
Handler = Callable[[str, str, bool], Awaitable[None]]


def queue_name(egress_group: str) -> str:
    return f"egress_{egress_group}"


def job_lock(signal_id: str, account: str) -> str:
    return f"{signal_id}/{account}"


def conninfo(journal_url: str) -> str:
    """libpq's form of the journal's SQLAlchemy URL (`postgresql+asyncpg://...` -> `postgresql://...`)."""
    url = make_url(journal_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError("The fleet's job queue needs the journal on PostgreSQL (DATABASE_URL).")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


FETCH_JOB = procrastinate.sql.queries["fetch_job"]


# A connection handed back to the pool less than this long ago is lent again without a check (below)
CHECK_AFTER_REST_S = 1.0


class OneFetchAtATime(procrastinate.PsycopgConnector):
    """procrastinate's connector, with one job fetch at a time in this process, and a pool that spends
    no round trip a query does not need.

    Each free slot of procrastinate's worker fetches its next job as soon as it frees: with 32 slots,
    dozens of fetches at once race for the same first rows of the queue (FOR UPDATE SKIP LOCKED), each
    walking past the rows the others have just locked or taken. Measured with 32 connections taking 250
    of 1,000 queued jobs (fetch and finish, on the dev PostgreSQL): PostgreSQL spent 1.4-2.1 ms of CPU per
    job, 0.7-1.0 ms with the fetches one at a time, and a fetch takes ~0.4 ms, so one at a time still
    hands out over 2,000 jobs a second: far more than the IP's budget lets a worker send. The jobs
    themselves still run 32 at a time.

    The pool: every query procrastinate sends here is one statement (a call of one of its functions),
    atomic by itself, so its connections are in autocommit, with no BEGIN and COMMIT around each; and
    a connection is checked (a round trip) before it is lent only when it rested CHECK_AFTER_REST_S or
    more since it was handed back, not when it served a query a moment ago. A connection that broke
    in between fails its query, as one that breaks after a check does: procrastinate's worker then
    stops and is started again (`Worker._serve_queue`). Measured with `JobQueue`'s worker running 1,000
    trivial jobs, 32 at once, on the dev PostgreSQL: per job the worker's CPU 0.88-1.04 ms -> 0.55-0.56,
    PostgreSQL's 0.48-0.55 -> 0.34-0.36."""

    def __init__(self, **kwargs: Any) -> None:
        self._handed_back: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )
        super().__init__(
            pool_factory=self._pool, configure=self._configure, reset=self._handed_back_now, **kwargs
        )
        self._fetching = asyncio.Lock()

    def _pool(self, **kwargs: Any) -> psycopg_pool.AsyncConnectionPool:
        kwargs["check"] = self._check_if_rested  # instead of procrastinate's check on every lend
        return psycopg_pool.AsyncConnectionPool(**kwargs)

    async def _configure(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """A new connection: in autocommit, and as good as one handed back just now."""
        await connection.set_autocommit(True)
        self._handed_back[connection] = time.monotonic()

    async def _handed_back_now(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self._handed_back[connection] = time.monotonic()

    async def _check_if_rested(self, connection: psycopg.AsyncConnection[Any]) -> None:
        rested = time.monotonic() - self._handed_back.get(connection, 0.0)
        if rested >= CHECK_AFTER_REST_S:
            await psycopg_pool.AsyncConnectionPool.check_connection(connection)

    async def execute_query_one_async(self, query: LiteralString, **arguments: Any) -> dict[str, Any]:
        if query != FETCH_JOB:
            row: dict[str, Any] = await super().execute_query_one_async(query, **arguments)
            return row
        async with self._fetching:
            fetched: dict[str, Any] = await super().execute_query_one_async(query, **arguments)
            return fetched


class JobQueue:
    """The procrastinate app, opened on the journal's database. `handler` runs a job (workers only)."""

    def __init__(self, journal_url: str, handler: Handler | None = None) -> None:
        self.conninfo = conninfo(journal_url)
        # small pools: a worker's jobs talk to the journal through SQLAlchemy, not through this pool
        connector = OneFetchAtATime(conninfo=self.conninfo, min_size=1, max_size=4)
        self.app = procrastinate.App(connector=connector)
        self._handler = handler
        self.running: set[int] = set()  # the ids of the jobs in this process's handler now
        self._none_running = asyncio.Event()  # set while `running` is empty
        self._none_running.set()
        self._last_ran = 0.0  # time.monotonic() when a job last started or ended here
        self._fleet_asked: asyncio.Future[bool] | None = None  # `_fleet_busy`'s last question
        self._fleet_asked_at = 0.0
        self._statistics: asyncio.Task[None] | None = None  # `_refresh_statistics` running
        self._statistics_again = False  # jobs were deferred while it ran

        async def trade_for_account(context: procrastinate.JobContext, signal_id: str, account: str) -> None:
            if self._handler is None:
                raise RuntimeError("this process defers jobs; it does not run them")
            job_id = context.job.id
            assert job_id is not None  # noqa: S101 - a job taken from the queue has its id
            self._started(job_id)
            try:
                await self._handler(signal_id, account, context.job.attempts >= MAX_RETRIES)
            finally:
                self._ended(job_id)

        self.task = self.app.task(name=TASK_NAME, retry=RETRY, pass_context=True)(trade_for_account)

    def _started(self, job_id: int) -> None:
        self.running.add(job_id)
        self._none_running.clear()
        self._last_ran = time.monotonic()

    def _ended(self, job_id: int) -> None:
        self.running.discard(job_id)
        self._last_ran = time.monotonic()
        if not self.running:
            self._none_running.set()

    def quiet_for(self) -> float:
        """Seconds since a job last ran in this process (0 while one runs)."""
        return 0.0 if self.running else time.monotonic() - self._last_ran

    async def until_idle(self, within: float) -> None:
        """Wait until no job has run in this process for IDLE_AFTER_S, at most `within` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while True:
                    await self._none_running.wait()
                    quiet = self.quiet_for()
                    if quiet >= IDLE_AFTER_S:
                        return
                    await asyncio.sleep(IDLE_AFTER_S - quiet if not self.running else 0)

    async def until_fleet_idle(self, within: float) -> None:
        """`until_idle`, then until no worker of the fleet runs a job (any egress group's: `doing` on the
        queue), at most `within` seconds in all. What an account's monitor pass waits for during a
        fan-out: the workers share the database (and, here, the machine), so a worker done with its
        group's jobs leaves both to the groups still placing theirs. A job left `doing` by a dead worker
        is handed back within STALLED_AFTER_S (`Worker._rescue_stalled`); the bound covers the rest."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self.until_idle(within)
                while await self._fleet_busy():  # noqa: ASYNC110 - other processes' jobs: polled
                    await asyncio.sleep(FLEET_POLL_S)

    async def _fleet_busy(self) -> bool:
        """Whether a job runs anywhere, asked once per FLEET_POLL_S for every waiter of this process."""
        asked = self._fleet_asked
        if asked is None or (asked.done() and time.monotonic() - self._fleet_asked_at >= FLEET_POLL_S):
            self._fleet_asked_at = time.monotonic()
            asked = self._fleet_asked = asyncio.ensure_future(self._ask_fleet_busy())
        return await asyncio.shield(asked)

    async def _ask_fleet_busy(self) -> bool:
        try:
            row = await self.app.connector.execute_query_one_async(FLEET_BUSY, task=TASK_NAME)
        except Exception as exc:  # the queue unreachable: nothing known to wait for (the bound holds anyway)
            log.warning("Fleet: could not ask the queue whether jobs run (%s)", type(exc).__name__)
            return False
        return bool(row["busy"])

    async def open(self) -> None:
        await self.app.open_async()
        await self.install()

    async def close(self) -> None:
        if self._statistics is not None:
            self._statistics.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._statistics
        await self.app.close_async()

    async def install(self) -> None:
        """Create procrastinate's tables once in this database (first start of any fleet process)."""
        async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
            await conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
            try:
                found = await (await conn.execute("SELECT to_regclass('procrastinate_jobs')")).fetchone()
                if found is None or found[0] is None:
                    await self.app.schema_manager.apply_schema_async()
                    log.info("Fleet: the job queue's tables were created")
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))

    async def defer(self, jobs: list[tuple[str, str, str]]) -> int:
        """Defer (signal_id, account, egress group) jobs, all in one statement; when one of them is
        waiting already (deferred again after a crash), one by one, skipping those. Returns how many were
        queued."""
        queued = await self._defer(jobs)
        if queued:
            self._refresh_statistics_soon()
        return queued

    async def _defer(self, jobs: list[tuple[str, str, str]]) -> int:
        made = [self._job(*job) for job in jobs]
        try:
            await self.app.job_manager.batch_defer_jobs_async(made)
            return len(made)
        except procrastinate.exceptions.AlreadyEnqueued:
            pass
        queued = 0
        for job in made:
            try:
                await self.app.job_manager.defer_job_async(job)
                queued += 1
            except procrastinate.exceptions.AlreadyEnqueued:
                log.info("Fleet: job %s is waiting already", job.queueing_lock)
        return queued

    def _refresh_statistics_soon(self) -> None:
        """Have PostgreSQL count the jobs table again (REFRESH_STATISTICS), in the background: the caller
        (a signal's POST) does not wait for it. One at a time; deferrals meanwhile ask for one more."""
        if self._statistics is not None and not self._statistics.done():
            self._statistics_again = True
            return
        self._statistics = asyncio.create_task(self._refresh_statistics(), name="queue-statistics")

    async def _refresh_statistics(self) -> None:
        again = True
        while again:
            self._statistics_again = False
            try:
                await self.app.connector.execute_query_async(REFRESH_STATISTICS)
            except Exception as exc:  # the jobs run all the same, only their fetches cost more
                log.warning("Fleet: the job queue's statistics were not refreshed (%s)", type(exc).__name__)
            again = self._statistics_again

    def _job(self, signal_id: str, account: str, group: str) -> procrastinate.jobs.Job:
        deferrer = self.task.configure(
            queue=queue_name(group), lock=account, queueing_lock=job_lock(signal_id, account)
        )
        return deferrer.make_new_job(signal_id=signal_id, account=account)

    async def stalled(self, seconds_since_heartbeat: float, queue: str) -> list[Any]:
        """Jobs of `queue` `doing` on a worker whose heartbeat stopped that long ago (the worker died)."""
        found = await self.app.job_manager.get_stalled_jobs(
            queue=queue, seconds_since_heartbeat=seconds_since_heartbeat
        )
        return list(found)

    async def cancel(self, job_id: int) -> bool:
        """Cancel a job still waiting (`todo`); False when a worker has it already, or it is gone."""
        return await self.app.job_manager.cancel_job_by_id_async(job_id)

    async def retry(self, job: Any) -> None:
        await self.app.job_manager.retry_job(job)

    async def doing(self, queue: str) -> set[int]:
        """The ids of the jobs of `queue` marked `doing` on the queue, whoever runs them."""
        rows = await self.app.job_manager.list_jobs_async(queue=queue, status="doing")
        return {job.id for job in rows if job.id is not None}

    async def retry_by_id(self, job_id: int) -> None:
        """Hand a `doing` job back to the queue, to be taken again at once."""
        now = datetime.now(UTC)
        await self.app.job_manager.retry_job_by_id_async(job_id, retry_at=now)
