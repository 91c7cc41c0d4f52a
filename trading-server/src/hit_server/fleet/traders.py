"""The accounts a fleet worker trades, each with the single-account path unchanged.

An account's `Trader` is what the API server builds for the one account of today, built for that
account instead: settings with the account's keys and risk settings (`account_settings`), a journal of
its own (the PostgreSQL schema `account_<name>`, `Database.in_schema`: signals, orders, claims, trades
and events exactly as for one account, so every money rule holds per (signal, account) with the same
code), a `TradingService` (sizing from the account's own equity), and a position monitor following its
trades through its own private stream.

What the accounts of one worker share: the HTTP connection pool to BloFin (from the worker's egress
address), the per-IP rate limits (`RateLimiter.for_another_account`: one IP, one budget) and the
instruments (read once) and the mark prices (one public stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from pydantic import SecretStr

from hit_server.accounts.store import AccountCredentials, AccountStore
from hit_server.exchange.blofin_auth import BloFinAuth
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_rest import HttpRequester
from hit_server.exchange.paper import Exchange
from hit_server.exchange.ratelimit import ConnectionPacer, RateLimiter
from hit_server.fleet.journals import schema_name
from hit_server.journal import tables as journal_tables  # noqa: F401 - every table an account's journal has
from hit_server.journal.db import Database
from hit_server.journal.journal import Journal
from hit_server.lifecycle.monitor import PositionMonitor, open_monitor
from hit_server.settings import Settings
from hit_server.trading.service import MarkSource, TradingService

log = logging.getLogger(__name__)


# What an account may read while nothing happens, when hundreds share one IP's budget (BloFin: 1,500
# requests in 5 minutes, i.e. 300 a minute; 250 accounts leave about one request per account per minute):
# a stream that is down is polled every 5 minutes (not 5 s), the full REST pass runs every 15 minutes
# (not 5), the balance is believed 5 minutes (the private stream's `account` channel pushes every change
# anyway) and the mirror is read afresh every 30 minutes. bench/fanout.py showed the one-account values
# spending a worker's whole budget on idle reads, until BloFin suspended its IP.
FLEET_POLL_S = 300.0
FLEET_RECONCILE_MINUTES = 15.0
FLEET_BALANCE_MAX_AGE_S = 300.0
FLEET_RESEED_S = 1800.0
# How long a signal waits for the private stream to show its entry filled and stopped before it reads
# the exchange (one account alone: 0.5 s). During a fan-out the worker's event loop and the stream's
# pushes run late, and a read then spends the IP budget every other account of the worker waits for:
# the 1,000-account run read positions and TP/SL orders for a third of its accounts at 0.5 s.
FLEET_STREAM_WAIT_S = 3.0
# How long an account's first reconciliation waits for its mirror's first seed (positions, orders and
# TP/SL orders read once at start) to read the account from it rather than by REST a second time: the
# streams of 250 accounts on one IP open one a second (BloFin's limit), so a seed can take minutes.
FLEET_SEED_WAIT_S = FLEET_POLL_S  # no longer than a poll with the stream down
# How long an account's monitor pass waits for the account's signal being carried out to end
# (`PositionMonitor.signal_wait_s`; one account alone: 0.5 s): during a fan-out a job takes seconds. The
# pushes of its entry woke a pass while it ran, which found no trade to look at yet, and a fifth of the
# accounts of a 400-account fan-out then had no pass after their signal until the next timed one (30
# minutes on). Now every account's pushes make one pass, after its answer, which takes the trade in.
FLEET_SIGNAL_WAIT_S = 5.0
# How long an account's monitor pass waits for the fleet's jobs to end (`Traders.jobs_idle`: the worker's
# own, then every worker's, `JobQueue.until_fleet_idle`). The passes
# that follow a fan-out's fills (each account's trade taken in, ~6 journal transactions) took more than
# half the CPU of a fan-out while it ran: at 100 accounts on 4 workers, ~51 -> 28 ms per account-signal
# and every account placed in 1.4 s, not 2.5-2.9 (bench/fanout.py). They run once no worker has a job
# left (the database is shared: a group done early left the groups still placing its share), or after
# this long at most. The stops are on the exchange already (each entry carries its own);
# what waits is the monitor's reaction to a fill meanwhile (a target hit moving the stop, a stop-out
# cancelling the targets), at most this much later during a fan-out.
FLEET_JOBS_WAIT_S = 30.0


def account_settings(settings: Settings, account: AccountCredentials) -> Settings:
    """The server's settings as this account trades them: its keys, its risk and leverage caps (the
    default leverage never above its cap), no Discord webhook of the server's own, and the fleet's idle
    reads (above)."""
    keys = account.credentials
    return settings.model_copy(update={
        "monitor_poll_seconds": max(settings.monitor_poll_seconds, FLEET_POLL_S),
        "reconcile_minutes": max(settings.reconcile_minutes, FLEET_RECONCILE_MINUTES),
        "blofin_api_key": SecretStr(keys.api_key),
        "blofin_api_secret": keys.api_secret,
        "blofin_passphrase": keys.passphrase,
        "risk_per_trade_percent": account.risk_per_trade_percent,
        "max_position_size_usd": account.max_position_size_usd,
        "max_leverage": account.max_leverage,
        "default_leverage": min(settings.default_leverage, account.max_leverage),
        "discord_webhook_url": None,
    })


@dataclass
class Trader:
    account: AccountCredentials
    service: TradingService
    monitor: PositionMonitor


class Traders:
    """A worker's traders, built on an account's first job (or ahead, `warm`) and kept until `close`."""

    def __init__(
        self, settings: Settings, db: Database, store: AccountStore, http: HttpRequester,
        ip_limits: RateLimiter, public: BloFinClient, marks: MarkSource | None, pacer: ConnectionPacer,
        jobs_idle: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        """`public`: the worker's client for public data, whose instruments every account shares;
        `marks`: the worker's mark prices (one public stream for all its accounts), or None;
        `jobs_idle(within)`: waits until no job runs, at most `within` seconds (the queue's
        `until_fleet_idle`): the accounts' monitor passes wait for it (FLEET_JOBS_WAIT_S)."""
        self.settings = settings
        self.db = db
        self.store = store
        self.http = http
        self.ip_limits = ip_limits
        self.public = public
        self.marks = marks
        self.pacer = pacer
        self.jobs_idle = jobs_idle
        self._traders: dict[str, Trader] = {}
        self._building: dict[str, asyncio.Future[Trader]] = {}
        self._stack = AsyncExitStack()

    def __len__(self) -> int:
        return len(self._traders)

    async def get(self, name: str) -> Trader:
        """The account's trader; the first call builds and starts it (others wait for that one)."""
        trader = self._traders.get(name)
        if trader is not None:
            return trader
        pending = self._building.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Trader] = asyncio.get_running_loop().create_future()
        self._building[name] = future
        try:
            trader = await self._build(name)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: waiters get it raised, nobody else needs to
            raise
        finally:
            del self._building[name]
        self._traders[name] = trader
        future.set_result(trader)
        return trader

    def started(self) -> list[Trader]:
        """The traders built so far."""
        return list(self._traders.values())

    def forget(self, name: str) -> None:
        """Build the account afresh on its next job (its keys or settings changed). Its old monitor
        runs until `close`."""
        self._traders.pop(name, None)

    async def _build(self, name: str) -> Trader:
        account = await self.store.credentials(name)
        settings = account_settings(self.settings, account)
        journal = Journal(self.db.in_schema(schema_name(name)))
        await journal.db.create_schema()
        client = BloFinClient(
            self.http, BloFinAuth(account.credentials), rate_limiter=self.ip_limits.for_another_account()
        )
        client.share_instruments(self.public)
        service = TradingService(settings, client, journal)
        service.mirror.balance_max_age_s = FLEET_BALANCE_MAX_AGE_S
        service.mirror.reseed_s = FLEET_RESEED_S
        service.executor.stream_wait_s = FLEET_STREAM_WAIT_S
        service.marks = self.marks
        # What a signal needs warm but the account's own state is the worker's (instruments, marks). The
        # account's leverages are not read at start: on BloFin that is a read per 20 instruments per
        # account, more than the fleet's per-IP budget can pay then; the worker learns them later with
        # the IP's spare budget (`Worker._learn_leverages`).
        await service.start(read_leverages=False, own_instruments=False)
        self._stack.push_async_callback(service.stop)
        monitor = await self._stack.enter_async_context(
            open_monitor(settings, service, Exchange(client), pacer=self.pacer, seed_wait_s=FLEET_SEED_WAIT_S)
        )
        monitor.signal_wait_s = FLEET_SIGNAL_WAIT_S
        if self.jobs_idle is not None:
            monitor.yield_to = functools.partial(self.jobs_idle, FLEET_JOBS_WAIT_S)
        log.info("Fleet: account %s ready (journal schema %s)", name, schema_name(name))
        return Trader(account, service, monitor)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._stack.aclose()
        self._traders.clear()
