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
import sys

import httpx
from pydantic import ValidationError

from hit_server.accounts.store import AccountError, AccountStore
from hit_server.exchange.ratelimit import RateLimiter
from hit_server.fleet.progress import record_outcome
from hit_server.fleet.queue import JobQueue, queue_name
from hit_server.fleet.tables import FAILED, FANOUTS
from hit_server.fleet.traders import Traders
from hit_server.journal.db import Database
from hit_server.settings import Settings
from hit_shared.logs import configure_logging
from hit_shared.models import TradeSignal

log = logging.getLogger("hit_server.worker")

HEARTBEAT_S = 2.0
STALLED_AFTER_S = 10.0  # five missed heartbeats: the worker is gone
RESCUE_EVERY_S = 3.0
WARM_AT_ONCE = 8  # accounts started at the same time (each reads its account before trading)
CONNECTIONS = 64  # the worker's HTTP connections to BloFin, shared by its accounts


class Worker:
    def __init__(self, settings: Settings, egress: str, *, source_address: str | None = None,
                 concurrency: int = 32) -> None:
        if settings.exchange_url is None:
            raise ValueError(
                "A fleet worker trades on BloFin or a simulator: set BLOFIN_BASE_URL or TRADING_MODE."
            )
        self.settings = settings
        self.egress = egress
        self.concurrency = concurrency
        self.db = Database(settings.journal_url)
        self.queue = JobQueue(settings.journal_url, self.run_job)
        transport = httpx.AsyncHTTPTransport(
            local_address=source_address,
            limits=httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS),
        )
        self.http = httpx.AsyncClient(
            base_url=settings.exchange_url, timeout=settings.exchange_timeout_seconds, transport=transport
        )
        self.store = AccountStore(self.db, settings)
        self.traders = Traders(settings, self.db, self.store, self.http, RateLimiter())

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Serve the group's queue until `stop` is set (or, by default, SIGINT/SIGTERM)."""
        await self.db.create_schema()
        await self.queue.open()
        rescue = asyncio.create_task(self._rescue_stalled(), name="rescue-stalled")
        try:
            await self.warm()
            log.info("Fleet worker for egress group %s ready: %d account(s)", self.egress, len(self.traders))
            worker = asyncio.create_task(self.queue.app.run_worker_async(
                queues=[queue_name(self.egress)], concurrency=self.concurrency,
                name=f"{self.egress}-{os.getpid()}", update_heartbeat_interval=HEARTBEAT_S,
                stalled_worker_timeout=STALLED_AFTER_S, install_signal_handlers=stop is None,
                delete_jobs="successful",
            ))
            if stop is None:
                await worker
            else:
                await _until(stop, worker)
        finally:
            rescue.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rescue
            await self.traders.close()
            await self.queue.close()
            await self.http.aclose()
            await self.db.dispose()

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

    async def run_job(self, signal_id: str, account: str, last: bool) -> None:
        """One (signal, account): the account's answer to `fanout_jobs`. A failure raises for the queue
        to run the job again; on its last attempt it is written as `failed` with its reason first."""
        try:
            reason = await self._trade(signal_id, account)
        except Exception as exc:
            if last:
                why = str(exc) or type(exc).__name__
                await record_outcome(self.db, signal_id, account, FAILED, f"gave up after retries: {why}")
            raise
        if reason is not None:
            await record_outcome(self.db, signal_id, account, *reason)

    async def _trade(self, signal_id: str, account: str) -> tuple[str, str | None] | None:
        body = await self.db.transaction(
            lambda conn: conn.scalar(FANOUTS.select().with_only_columns(FANOUTS.c.body)
                                     .where(FANOUTS.c.signal_id == signal_id))
        )
        if body is None:
            return FAILED, "the fan-out's signal is not in the journal"
        try:
            signal = TradeSignal.model_validate(body)
        except ValidationError:
            return FAILED, "the fan-out's signal can no longer be read"
        try:
            trader = await self.traders.get(account)
        except AccountError as exc:
            return FAILED, str(exc)
        if not trader.account.may_trade(signal.symbol):
            return "rejected", f"{signal.symbol} is not traded by this account (its allowed/blocked symbols)"
        answer, _ = await trader.service.submit(signal)
        return answer.status.value, answer.reason

    async def _rescue_stalled(self) -> None:
        """Hand back to the queue the jobs of this group left `doing` by a worker that died."""
        while True:
            await asyncio.sleep(RESCUE_EVERY_S)
            try:
                for job in await self.queue.stalled(STALLED_AFTER_S, queue_name(self.egress)):
                    log.warning("Fleet: job %s of a stopped worker runs again", job.queueing_lock)
                    await self.queue.retry(job)
            except Exception as exc:  # the database is away: the next round tries again
                log.warning("Fleet: looking for stalled jobs failed (%s)", type(exc).__name__)


async def _until(stop: asyncio.Event, worker: asyncio.Task[None]) -> None:
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({waiter, worker}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if not worker.done():
        worker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m hit_server worker", description=__doc__.split("\n")[0])
    parser.add_argument("--egress", default="default", help="the egress group whose jobs this worker takes")
    parser.add_argument("--source-address", default=None,
                        help="the local IP address requests to BloFin leave from")
    parser.add_argument("--concurrency", type=int, default=32, help="jobs run at once (default 32)")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())
        sys.stderr.write(f"The worker cannot start: {problems}\n")
        return 2
    configure_logging("fleet-worker", settings.log_level, settings.log_dir)
    try:
        worker = Worker(
            settings, args.egress, source_address=args.source_address, concurrency=args.concurrency
        )
    except ValueError as exc:
        sys.stderr.write(f"The worker cannot start: {exc}\n")
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(worker.run())
    return 0
