"""`python -m hit_server worker --egress <group>`: a fleet worker (issue #19).

It takes the jobs of one egress group's queue (`queue.py`) and trades each (signal, account) with that
account's `Trader` (`traders.py`), then writes the account's answer to `fanout_jobs`. Run as many as
wanted, on the machines whose IP addresses the group's BloFin keys are bound to; `--source-address`
picks the local address its requests leave from (on one machine, 127.0.0.2, 127.0.0.3, ... stand for
distinct egress IPs against the simulator).

At start it builds the traders of every enabled account of its group (their journals, their streams),
so that a signal finds them warm. A worker that dies mid-job leaves the job `doing`: every worker looks
for jobs whose worker's heartbeat stopped STALLED_AFTER_S ago and hands them back to the queue; the
account's journal then resumes the job where it was (at most once holds: the journal, not the queue,
guards it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import timedelta

from pydantic import SecretStr, ValidationError
from sqlalchemy import func, select

from hit_server.accounts.store import AccountError, AccountStore
from hit_server.exchange.blofin_auth import BloFinAuth, Credentials
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_errors import BloFinError
from hit_server.exchange.market_stream import MarkPrices, public_ws_url
from hit_server.exchange.pooled_http import PooledHttp
from hit_server.exchange.ratelimit import ConnectionPacer, RateLimiter
from hit_server.fleet.garbage import collect_when_quiet
from hit_server.fleet.lease import RENEW_S, SAFETY_S, TTL_S, EgressLease, Usage
from hit_server.fleet.progress import record_outcome
from hit_server.fleet.queue import JobQueue, queue_name
from hit_server.fleet.tables import FAILED, FANOUTS
from hit_server.fleet.traders import Traders
from hit_server.journal.db import Database, utcnow
from hit_server.settings import Settings, settings_problems
from hit_server.trading.service import INSTRUMENTS_REFRESH_S
from hit_shared.logs import configure_logging
from hit_shared.models import TradeSignal

log = logging.getLogger("hit_server.worker")

HEARTBEAT_S = 2.0
STALLED_AFTER_S = 10.0  # five missed heartbeats: the worker is gone
RESCUE_EVERY_S = 3.0
# A job `doing` on the queue that this worker (its group's only active one) has not been running for this
# long has no one to end it: procrastinate could not write its end (the database away at that moment),
# or its worker loop was started again (QUEUE_RESTART_S). Longer than a write waits for the database.
UNCLAIMED_AFTER_S = 45.0
QUEUE_RESTART_S = 1.0
# BloFin's limits per IP (500 requests a minute, 1,500 in 5 minutes; above them the IP is suspended for
# 5 minutes or an hour). A worker keeps under them less a reserve (`--ip-reserve`) for what else may send
# from the same address uncounted here: the API server's own account on the same host, an operator's
# script; none when the address is the worker's alone. Requests that wait between our count
# and BloFin's (in the connection pool of a busy machine, on the network) need no reserve: the limiter
# counts each one until a period after its answer, which covers its arrival (`exchange/ratelimit.py`).
IP_PER_MINUTE = 500
IP_PER_5_MINUTES = 1500
IP_RESERVE_PER_MINUTE = 20  # the default reserve (4%); 0 for an address nothing else sends from
# The accounts' leverages are learned in the background once the worker is ready (`_learn_leverages`), so
# that a first signal on a symbol whose leverage is already the plan's sends no set-leverage: a request
# per account less in a fan-out (3 -> 2), and a round trip less before its entry. Those reads use only the
# IP's spare budget: one goes out while no job runs and every IP window is under this share of its cap.
LEARN_SHARE = 0.5
LEARN_WAIT_S = 1.0
RECENT_SIGNAL_DAYS = 30  # the symbols signalled within this many days are learned first
LEASE_LOST_EXIT = 75  # the exit status of a worker that lost its group's lease (EX_TEMPFAIL: start it again)
WARM_AT_ONCE = 8  # accounts started at the same time (each reads its account before trading)
FANOUTS_REMEMBERED = 16  # the latest signals whose fan-out row a worker keeps read (the row never changes)
CONNECTIONS = 64  # the worker's HTTP connections to BloFin, shared by its accounts
# The worker's own PostgreSQL connections (the jobs' outcomes, the fan-outs' rows, the registry); its
# accounts' journals have their lanes besides (journal/db.py ACCOUNT_LANES), the lease one, the queue up
# to 4: ~24 a worker, so that an API server (up to ~34 with its own lanes) and 6 workers fit the fleet
# cluster's max_connections of 200 (tools/postgres.py); more workers want a larger max_connections.
OWN_CONNECTIONS = 4


def _exit_now() -> None:
    """The default on a lost lease: end the process at once, requests in flight and all (a standby may
    take the group over from now on; what this one left is the journal's to resume)."""
    logging.shutdown()
    os._exit(LEASE_LOST_EXIT)


class Worker:
    def __init__(self, settings: Settings, egress: str, *, source_address: str | None = None,
                 concurrency: int = 32, ip_reserve: int = IP_RESERVE_PER_MINUTE,
                 on_lease_lost: Callable[[], None] = _exit_now) -> None:
        """`ip_reserve`: requests a minute (three times that in 5 minutes) left unused of BloFin's per-IP
        limits for others sending from the same address (0 when the worker is alone on it)."""
        if not 0 <= ip_reserve < IP_PER_MINUTE:
            raise ValueError(f"--ip-reserve: 0 to {IP_PER_MINUTE - 1} requests a minute")
        if settings.exchange_url is None:
            raise ValueError(
                "A fleet worker trades on BloFin or a simulator: set BLOFIN_BASE_URL or TRADING_MODE."
            )
        self.settings = settings
        self.egress = egress
        self.concurrency = concurrency
        self.on_lease_lost = on_lease_lost
        self.db = Database(settings.journal_url, pool_size=OWN_CONNECTIONS)
        # the lease on a connection of its own: renewals never wait behind the jobs' and monitors'
        # transactions for one of `db`'s (a 1,000-account fan-out on a loaded machine lost its lease so)
        self.lease = EgressLease(Database(settings.journal_url, pool_size=1), egress)
        self._valid_until = 0.0  # time.monotonic() past which the lease may be another's
        self.queue = JobQueue(settings.journal_url, self.run_job)
        self.http = PooledHttp(
            settings.exchange_url, timeout=settings.exchange_timeout_seconds, connections=CONNECTIONS,
            local_address=source_address,
        )
        self.store = AccountStore(self.db, settings)
        self.ip_limits = ip_limits = RateLimiter(
            per_minute=IP_PER_MINUTE - ip_reserve, per_5_minutes=IP_PER_5_MINUTES - 3 * ip_reserve
        )
        # public data (instruments) needs no key: the client signs nothing it reads with this one
        self.public = BloFinClient(
            self.http, BloFinAuth(Credentials("", SecretStr(""), SecretStr(""))),
            rate_limiter=ip_limits.for_another_account(),
        )
        # every WebSocket this worker opens (its accounts' private streams, the public one) leaves from one
        # IP address, which BloFin lets open one new connection a second
        self.pacer = ConnectionPacer()
        self.marks = (
            MarkPrices(public_ws_url(settings.exchange_url), pacer=self.pacer) if settings.monitor_websocket
            else None
        )
        self._fanouts: dict[str, asyncio.Future[TradeSignal | str]] = {}  # fanned_signal's reads
        self.traders = Traders(
            settings, self.db, self.store, self.http, ip_limits, self.public, self.marks, self.pacer,
            jobs_idle=self.queue.until_fleet_idle,
        )

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Wait as a standby until this worker holds its group's lease (`lease.py`), then serve the
        group's queue and follow its accounts until `stop` is set (by default on SIGINT/SIGTERM) or the
        lease is lost (`on_lease_lost`: by default the process exits at once, the surest way to stop
        sending)."""
        stop = stop or _stop_on_signals()
        await self.db.create_schema()
        tasks: list[asyncio.Task[None]] = []
        active = False
        try:
            usage = await self._become_active(stop)
            if usage is None:
                return
            active = True
            self.ip_limits.seed_ip_usage(usage, time.time())
            if self.lease.unrecorded_until is not None:
                assumed = self.ip_limits.assume_ip_sent_all_it_could(self.lease.unrecorded_until, time.time())
                log.warning("Fleet: the previous worker of egress group %s stopped without handing over; "
                            "%d more requests are counted as sent from its IP at its end, the rest of what "
                            "the limits allowed it", self.egress, assumed)
            lost = asyncio.Event()
            tasks.append(asyncio.create_task(self._keep_lease(lost), name="lease"))
            await self.queue.open()
            tasks.append(asyncio.create_task(self._rescue_stalled(), name="rescue-stalled"))
            tasks.append(asyncio.create_task(self._keep_market(), name="market"))
            await self._read_market()
            await self.warm()
            log.info("Fleet worker for egress group %s ready: %d account(s)", self.egress, len(self.traders))
            worker = asyncio.create_task(self._serve_queue(), name="queue")
            tasks.append(asyncio.create_task(self._learn_leverages(), name="leverages"))
            tasks.append(asyncio.create_task(collect_when_quiet(self.queue.quiet_for), name="garbage"))
            await _until(worker, stop, lost)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.traders.close()
            if self.marks is not None:
                await self.marks.stop()
            if active:
                await self._hand_over()
                await self.queue.close()
            await self.http.aclose()
            await self.db.dispose()
            await self.lease.db.dispose()

    async def _become_active(self, stop: asyncio.Event) -> Usage | None:
        """Take the group's lease as soon as it is free; the IP's recent usage by the previous holder, or
        None if stopped first."""
        told = False
        while not stop.is_set():
            began = time.monotonic()
            try:
                usage = await self.lease.acquire()
            except Exception as exc:  # the database is away: try again
                log.warning("Fleet: the lease of egress group %s can't be read (%s)", self.egress,
                            type(exc).__name__)
                usage = None
            if usage is not None:
                self._valid_until = began + TTL_S - SAFETY_S
                log.info("Fleet worker is the active one of egress group %s (%s)", self.egress,
                         self.lease.holder)
                return usage
            if not told:
                log.info("Fleet worker for egress group %s: standby, another worker is active", self.egress)
                told = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RENEW_S)
        return None

    async def _keep_lease(self, lost: asyncio.Event) -> None:
        """Renew the lease every RENEW_S with the IP's usage; past `_valid_until` without a renewal, or
        told it is another's, the lease is lost."""
        while True:
            await asyncio.sleep(RENEW_S)
            began = time.monotonic()
            ours: bool | None = None
            try:
                async with asyncio.timeout(max(0.1, self._valid_until - began)):
                    ours = await self.lease.renew(self.ip_limits.ip_usage(time.time()))
            except Exception as exc:  # a slow or absent database: we still hold it until `_valid_until`
                log.warning("Fleet: the lease of egress group %s not renewed (%s)", self.egress,
                            type(exc).__name__)
            if ours:
                self._valid_until = began + TTL_S - SAFETY_S
            elif ours is False or time.monotonic() >= self._valid_until:
                log.error("Fleet: the lease of egress group %s is lost; this worker stops now", self.egress)
                lost.set()
                self.on_lease_lost()
                return

    async def _hand_over(self) -> None:
        """A clean stop gives the lease up at once, with the IP's usage, for a standby to take over."""
        with contextlib.suppress(Exception):
            await self.lease.release(self.ip_limits.ip_usage(time.time()))

    async def _read_market(self) -> None:
        """The instruments (read once for every account), and every live one's mark price watched."""
        try:
            instruments = await self.public.instruments(refresh=True)
        except BloFinError as exc:  # each signal reads them then (through the same shared cache)
            log.warning("Fleet: instruments not read (%s); read by the first signal", type(exc).__name__)
            return
        if self.marks is not None:
            self.marks.watch_all(symbol for symbol, inst in instruments.items() if inst.is_live)
            await self.marks.start()

    async def _keep_market(self) -> None:
        while True:
            await asyncio.sleep(INSTRUMENTS_REFRESH_S)
            await self._read_market()

    async def warm(self) -> None:
        """Start the traders of the group's enabled accounts, a few at a time; one that fails is left
        to its first job (which says why)."""
        enabled = await self.store.enabled_accounts(self.egress)
        gate = asyncio.Semaphore(WARM_AT_ONCE)

        async def start(name: str) -> None:
            async with gate:
                try:
                    await self.traders.get(name)
                except Exception as exc:
                    log.error("Fleet: account %s could not be started (%s)", name, type(exc).__name__)

        await asyncio.gather(*(start(account.name) for account in enabled.ready))

    async def _learn_leverages(self) -> None:
        """Read every started account's leverage on every live instrument, the symbols signalled lately
        first, with the IP's spare budget only (`_spare_budget`): once the executor knows an account's
        leverage on a symbol is the plan's, the symbol's first signal sets none. What was learned is
        forgotten when the exchange shows another leverage, as for one account. On BloFin a read covers
        20 instruments: 250 accounts and 500 instruments take 6,250 reads, about 40 minutes of half the
        IP's 5-minute budget; an account or a symbol not learned yet just sets the leverage as before."""
        try:
            symbols = await self._symbols_to_learn()
        except Exception as exc:  # the database is away: the accounts' first signals set their leverage
            log.warning("Fleet: leverages not learned (%s)", type(exc).__name__)
            return
        learned = 0
        for trader in self.traders.started():
            if await trader.service.read_leverages(symbols, before_each=self._spare_budget):
                learned += 1
        log.info("Fleet worker for egress group %s learned the leverages of %d account(s) on %d symbol(s)",
                 self.egress, learned, len(symbols))

    async def _symbols_to_learn(self) -> list[str]:
        """The live symbols, those of the fan-outs of the last RECENT_SIGNAL_DAYS first (most signalled
        first), then the others by name."""
        since = utcnow() - timedelta(days=RECENT_SIGNAL_DAYS)
        recent = await self.db.transaction(lambda conn: list(conn.scalars(
            select(FANOUTS.c.symbol).where(FANOUTS.c.created_at >= since)
            .group_by(FANOUTS.c.symbol).order_by(func.count().desc(), FANOUTS.c.symbol)
        )))
        live = {symbol for symbol, inst in self.public.cached_instruments.items() if inst.is_live}
        first = [symbol for symbol in recent if symbol in live]
        return first + sorted(live - set(first))

    async def _spare_budget(self) -> None:
        """Wait until no job runs here and every window of the IP is under LEARN_SHARE of its cap: a
        signal's jobs never wait behind a background read, and the reads leave most of the budget to the
        next signal."""
        # polled: the windows empty as time passes, and nothing signals that
        while self.queue.running or self.ip_limits.ip_share_used() >= LEARN_SHARE:  # noqa: ASYNC110
            await asyncio.sleep(LEARN_WAIT_S)

    async def run_job(self, signal_id: str, account: str, last: bool) -> None:
        """One (signal, account): the account's answer to `fanout_jobs`. A failure raises for the queue
        to run the job again; on its last attempt it is written as `failed` with its reason first."""
        try:
            reason = await self._trade(signal_id, account)
        except Exception as exc:
            why = str(exc) or type(exc).__name__
            if last:
                await record_outcome(self.db, signal_id, account, FAILED, f"gave up after retries: {why}")
            log.warning("Fleet: signal %s for account %s failed (%s)%s", signal_id, account, why,
                        "; given up" if last else "; the queue runs it again")
            raise
        if reason is not None:
            await record_outcome(self.db, signal_id, account, *reason)

    async def _trade(self, signal_id: str, account: str) -> tuple[str, str | None] | None:
        signal = await self.fanned_signal(signal_id)
        if isinstance(signal, str):
            return FAILED, signal
        try:
            trader = await self.traders.get(account)
        except AccountError as exc:
            return FAILED, str(exc)
        if not trader.account.may_trade(signal.symbol):
            return "rejected", f"{signal.symbol} is not traded by this account (its allowed/blocked symbols)"
        answer, _ = await trader.service.submit(signal)
        return answer.status.value, answer.reason

    async def fanned_signal(self, signal_id: str) -> TradeSignal | str:
        """The fan-out's signal as its jobs trade it, or why it can't be traded. Read once per worker:
        the row is written once, before its jobs, and the group's jobs of one signal (one per account,
        250 at a time) would otherwise read and validate it once each. A read that failed or found
        nothing is not kept: the next job reads again."""
        reading = self._fanouts.get(signal_id)
        if reading is None:
            reading = self._fanouts[signal_id] = asyncio.ensure_future(self._read_fanned(signal_id))
            while len(self._fanouts) > FANOUTS_REMEMBERED:
                del self._fanouts[next(iter(self._fanouts))]  # the oldest
        try:
            # shielded: a job cancelled while it waits does not cancel the read the others wait for
            signal = await asyncio.shield(reading)
        except Exception:
            self._forget_fanned(signal_id, reading)
            raise
        if isinstance(signal, str):
            self._forget_fanned(signal_id, reading)
        return signal

    def _forget_fanned(self, signal_id: str, reading: asyncio.Future[TradeSignal | str]) -> None:
        if self._fanouts.get(signal_id) is reading:  # not a newer read another job began meanwhile
            del self._fanouts[signal_id]

    async def _read_fanned(self, signal_id: str) -> TradeSignal | str:
        fanned = await self.db.transaction(
            lambda conn: conn.execute(select(FANOUTS.c.body, FANOUTS.c.created_at)
                                      .where(FANOUTS.c.signal_id == signal_id)).first()
        )
        if fanned is None:
            return "the fan-out's signal is not in the journal"
        body, fanned_at = fanned
        try:
            signal = TradeSignal.model_validate(body)
        except ValidationError:
            return "the fan-out's signal can no longer be read"
        if signal.posted_at is None:
            # a job may run late (workers down, retries): its age is counted from the fan-out, so the risk
            # check refuses it past MAX_SIGNAL_AGE_SECONDS as it would a signal posted then
            signal = signal.model_copy(update={"posted_at": fanned_at})
        return signal

    async def _serve_queue(self) -> None:
        """Take and run the group's jobs (procrastinate's worker), until cancelled. procrastinate's worker
        stops itself when one of its side tasks fails (its heartbeat's query cut by a database outage,
        for one): it is started again, and the jobs it left `doing` are handed back (`_rescue_stalled`)."""
        while True:
            try:
                await self.queue.app.run_worker_async(
                    queues=[queue_name(self.egress)], concurrency=self.concurrency,
                    name=f"{self.egress}-{os.getpid()}", update_heartbeat_interval=HEARTBEAT_S,
                    stalled_worker_timeout=STALLED_AFTER_S, install_signal_handlers=False,
                    delete_jobs="successful",
                )
                log.warning("Fleet: the job queue's worker stopped; it starts again")
            except Exception as exc:
                log.warning("Fleet: the job queue's worker failed (%s); it starts again", type(exc).__name__)
            await asyncio.sleep(QUEUE_RESTART_S)

    async def _rescue_stalled(self) -> None:
        """Hand back to the queue the jobs of this group that nobody runs: left `doing` by a worker that
        died (its heartbeat stopped), or `doing` but not running here for UNCLAIMED_AFTER_S."""
        unclaimed: dict[int, float] = {}  # job id -> since when it was seen `doing` and not running here
        while True:
            await asyncio.sleep(RESCUE_EVERY_S)
            try:
                for job in await self.queue.stalled(STALLED_AFTER_S, queue_name(self.egress)):
                    log.warning("Fleet: job %s of a stopped worker runs again", job.queueing_lock)
                    await self.queue.retry(job)
                unclaimed = await self._hand_back_unclaimed(unclaimed)
            except Exception as exc:  # the database is away: the next round tries again
                log.warning("Fleet: looking for stalled jobs failed (%s)", type(exc).__name__)

    async def _hand_back_unclaimed(self, unclaimed: dict[int, float]) -> dict[int, float]:
        now = time.monotonic()
        doing = await self.queue.doing(queue_name(self.egress))
        seen = {job_id: unclaimed.get(job_id, now) for job_id in doing - self.queue.running}
        for job_id, since in list(seen.items()):
            if now - since < UNCLAIMED_AFTER_S:
                continue
            del seen[job_id]
            log.warning("Fleet: job %d was left `doing` with no one running it; it runs again", job_id)
            try:
                await self.queue.retry_by_id(job_id)
            except Exception as exc:  # ended meanwhile: nothing to hand back
                log.info("Fleet: job %d not handed back (%s)", job_id, type(exc).__name__)
        return seen


async def _until(worker: asyncio.Task[None], *events: asyncio.Event) -> None:
    """Run `worker` until it ends or one of `events` is set (then it is cancelled)."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    await asyncio.wait({worker, *waiters}, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    if not worker.done():
        worker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (where the loop can watch signals: not on Windows, where
    Ctrl+C ends `asyncio.run` instead)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, AttributeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m hit_server worker", description=__doc__.split("\n")[0])
    parser.add_argument("--egress", default="default", help="the egress group whose jobs this worker takes")
    parser.add_argument("--source-address", default=None,
                        help="the local IP address requests to BloFin leave from")
    parser.add_argument("--concurrency", type=int, default=32, help="jobs run at once (default 32)")
    parser.add_argument("--ip-reserve", type=int, default=IP_RESERVE_PER_MINUTE,
                        help="requests a minute of BloFin's per-IP limit left to others sending from the "
                             f"same address (default {IP_RESERVE_PER_MINUTE}; 0 when nothing else does)")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.stderr.write(f"The worker cannot start: {settings_problems(exc)}\n")
        return 2
    # procrastinate logs two INFO lines per job (taken, ended): 500 a worker for a 250-account fan-out,
    # beside each account's own line about its signal. Its warnings and errors still show, and a failed
    # attempt is logged by `run_job`.
    configure_logging("fleet-worker", settings.log_level, settings.log_dir, chatty=("procrastinate",))
    try:
        worker = Worker(
            settings, args.egress, source_address=args.source_address, concurrency=args.concurrency,
            ip_reserve=args.ip_reserve,
        )
    except ValueError as exc:
        sys.stderr.write(f"The worker cannot start: {exc}\n")
        return 2
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
        runner.run(worker.run())
    return 0


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (it has no Windows build), else asyncio's own.

    A worker spends its time in sockets (PostgreSQL, the queue, BloFin's REST and streams), and uvloop's
    transports and callbacks are C where asyncio's are Python: at 400 accounts a later signal's worker
    CPU per account-signal went from 10.5-14.2 ms to 7.6-9.5 (bench/README, session 25). The API
    server and the simulator run under uvicorn, which picks uvloop by itself."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
