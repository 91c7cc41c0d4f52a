"""The fleet's journal and fan-out on a real PostgreSQL (issue #19): one journal schema per account with
the single-account journal unchanged, and the fan-out's rows and queue jobs."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError

from hit_server.accounts.models import AccountCreate
from hit_server.accounts.store import AccountStore
from hit_server.api.http_errors import JournalUnavailable
from hit_server.exchange.ratelimit import RateLimiter
from hit_server.fleet.fanout import EXPIRE_GRACE_S, FanOut
from hit_server.fleet.journals import schema_name
from hit_server.fleet.lease import SAFETY_S, TTL_S, EgressLease
from hit_server.fleet.progress import progress, record_outcome
from hit_server.fleet.queue import JobQueue
from hit_server.fleet.tables import EGRESS_LEASES, FANOUT_JOBS, FANOUTS
from hit_server.journal.db import ACCOUNT_JOURNAL_TABLES, SIGNALS_TABLE, Database, fleet_wide, utcnow
from hit_server.journal.journal import Journal
from hit_server.settings import Settings
from hit_shared.models import TradeSignal

MASTER = "ZmFrZS1idXQtd2VsbC1mb3JtZWQtbWFzdGVyLWtleSE="


def signal(signal_id: str = "sig-1", symbol: str = "BTC-USDT") -> TradeSignal:
    return TradeSignal.model_validate({
        "signal_id": signal_id, "symbol": symbol, "side": "long",
        "stop_loss": "60000", "take_profits": ["70000"],
    })


@pytest.fixture
async def db(fresh_postgres: str) -> Any:
    database = Database(fresh_postgres)
    await database.create_schema()
    yield database
    await database.dispose()


async def test_each_account_has_a_journal_of_its_own(db: Database) -> None:
    """The same signal_id in two account journals is two signals; neither sees the other's."""
    alice, bob = (Journal(db.in_schema(schema_name(name))) for name in ("alice", "bob-2"))
    await asyncio.gather(alice.db.create_schema(), bob.db.create_schema(), alice.db.create_schema())
    rows_before = await db.transaction(lambda c: c.execute(text("SELECT count(*) FROM signals")).scalar())
    for journal in (alice, bob):  # through the journal's own table: the schema map sends it to the account's
        await journal.db.transaction(lambda c: c.execute(insert(SIGNALS_TABLE).values(
            signal_id="sig-1", body_hash="h", body={}, symbol="BTC-USDT", side="long", state="sending",
        )))
    assert (await alice.get_signal("sig-1")) is not None
    assert (await bob.get_signal("sig-1")) is not None
    rows_after = await db.transaction(lambda c: c.execute(text("SELECT count(*) FROM signals")).scalar())
    assert rows_after == rows_before  # nothing went to the default schema's journal
    schemas = await db.transaction(lambda c: set(c.scalars(text(
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'account_%'"))))
    assert schemas == {"account_alice", "account_bob-2"}
    tables = await db.transaction(lambda c: set(c.scalars(text(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'account_alice'"))))
    assert tables == set(ACCOUNT_JOURNAL_TABLES)  # every one, trade_actions too (a worker once made none)
    assert not tables & {"accounts", "fanouts", "fanout_jobs"}  # fleet-wide tables live once


async def test_accounts_on_one_connection_each_read_and_write_their_own_journal(fresh_postgres: str) -> None:
    """The accounts' statements have one text (each transaction sets its schema as its search_path), so one
    connection's prepared statements serve every account and the default journal in turn: PostgreSQL
    analyses a statement again under another search_path, and each account still reads its own rows."""
    # the accounts' transactions all on one connection (one lane), the default journal's on another
    one = Database(fresh_postgres, pool_size=1, account_lanes=1)
    try:
        await one.create_schema()
        names = ["carol", "dave-3", "erin"]
        journals = [Journal(one.in_schema(schema_name(name))) for name in names]
        for journal in journals:
            await journal.db.create_schema()
        default = Journal(one)
        everyone = [*journals, default]
        for round_ in range(7):  # past PostgreSQL's 5 custom plans, so a generic plan is cached too
            for index, journal in enumerate(everyone):
                signal_id = f"r{round_}-j{index}"
                await journal.record_intent(signal_id, body_hash="h", body={"of": index}, symbol="BTC-USDT",
                                            side="long", orders=(), state="received")
                row, _ = await journal.signal_or_open_symbols(signal_id)
                assert row is not None and row.body == {"of": index}
        for index, journal in enumerate(everyone):
            ids = await journal.db.transaction(
                lambda c: set(c.scalars(text("SELECT signal_id FROM signals")))
            )
            assert ids == {f"r{r}-j{index}" for r in range(7)}, (index, ids)
        fleet_table = text("SELECT count(*) FROM fanout_jobs")
        await one.transaction(lambda c: c.execute(fleet_table))  # the fleet-wide table, in public
        with pytest.raises(JournalUnavailable):  # invisible from an account's journal: never read by mistake
            await journals[0].db.transaction(lambda c: c.execute(fleet_table))
    finally:
        await one.dispose()


async def test_an_accounts_transactions_always_go_over_its_own_connection(fresh_postgres: str) -> None:
    """Each account's journal keeps to one connection of the database's account lanes (PostgreSQL learns
    an account's tables once per connection), whatever runs at the same time; the accounts spread over
    the lanes, and the database's own transactions use its own pool."""
    db = Database(fresh_postgres, pool_size=2, account_lanes=3)
    backend = text("SELECT pg_backend_pid()")
    try:
        await db.create_schema()
        views = {name: db.in_schema(schema_name(name)) for name in (f"m{i}" for i in range(12))}
        for view in views.values():
            await view.create_schema()

        async def pids(view: Database) -> set[int]:
            seen = await asyncio.gather(*(view.transaction(lambda c: c.scalar(backend)) for _ in range(6)))
            return set(seen)

        rounds = await asyncio.gather(*(pids(view) for view in views.values() for _ in range(3)))
        by_account: dict[str, set[int]] = {}
        for name, seen in zip([n for n in views for _ in range(3)], rounds, strict=True):
            by_account.setdefault(name, set()).update(seen)
        assert all(len(seen) == 1 for seen in by_account.values()), by_account
        lanes = set().union(*by_account.values())
        assert len(lanes) == 3, by_account  # 12 names over 3 lanes: every lane serves some
        own = set(await asyncio.gather(*(db.transaction(lambda c: c.scalar(backend)) for _ in range(8))))
        assert own and not own & lanes
        again = db.in_schema(schema_name("m0"))  # a view made again rides the same lane
        assert await again.transaction(lambda c: c.scalar(backend)) in by_account["m0"]
    finally:
        await db.dispose()


async def test_a_single_statement_commits_alone_and_fails_as_a_transaction_would(fresh_postgres: str) -> None:
    """`single_statement` (autocommit on PostgreSQL: no BEGIN, no COMMIT) writes for good; a duplicate key is
    still an IntegrityError, a broken statement a JournalUnavailable (on a lane: test_journal_lanes)."""
    db = Database(fresh_postgres)
    row = {"signal_id": "s1", "symbol": "BTC-USDT", "body": {}, "accounts": 1, "created_at": utcnow()}
    try:
        await db.create_schema()
        await db.single_statement(lambda conn: conn.execute(insert(FANOUTS), row))
        assert await db.transaction(lambda c: c.scalar(select(FANOUTS.c.symbol))) == "BTC-USDT"
        with pytest.raises(IntegrityError):
            await db.single_statement(lambda conn: conn.execute(insert(FANOUTS), row))
        with pytest.raises(JournalUnavailable):
            await db.single_statement(lambda conn: conn.execute(text("SELECT * FROM no_such_table")))
    finally:
        await db.dispose()


async def add_accounts(db: Database, settings: Settings, names: list[str], group: str = "g1") -> None:
    store = AccountStore(db, settings)
    for name in names:
        await store.add(AccountCreate.model_validate({
            "name": name, "api_key": f"key-{name}", "api_secret": "s" * 16, "passphrase": "p" * 8,
            "egress_group": group,
        }))


@pytest.fixture
def settings(fresh_postgres: str) -> Settings:
    return Settings(database_url=fresh_postgres, hit_master_key=SecretStr(MASTER), fleet=True, _env_file=None)


async def queued_jobs(db: Database) -> list[tuple[str, str, str, str]]:
    rows = await db.transaction(lambda c: c.execute(text(
        "SELECT queue_name, lock, queueing_lock, status FROM procrastinate_jobs ORDER BY lock")).all())
    return [tuple(row) for row in rows]


async def test_a_signal_fans_out_once_one_job_per_enabled_account(db: Database, settings: Settings) -> None:
    await add_accounts(db, settings, ["alice", "bob", "carol"])
    await AccountStore(db, settings).set_enabled("carol", False)
    fanout = FanOut(db, JobQueue(settings.journal_url), max_signal_age_s=settings.max_signal_age_seconds)
    await fanout.start()
    try:
        first = await fanout.submit(signal())
        again = await fanout.submit(signal())
        assert (first.accounts, first.new, first.queued) == (2, True, 2)
        assert (again.accounts, again.new, again.queued) == (0, False, 0)
        assert await queued_jobs(db) == [
            ("egress_g1", "alice", "sig-1/alice", "todo"), ("egress_g1", "bob", "sig-1/bob", "todo"),
        ]
        seen = await progress(db, "sig-1")
        assert seen is not None and seen.total == 2 and seen.by_status == {"queued": 2}
        await record_outcome(db, "sig-1", "alice", "placed", None)
        await record_outcome(db, "sig-1", "bob", "rejected", "BTC-USDT: size under the minimum")
        seen = await progress(db, "sig-1")
        assert seen is not None and seen.by_status == {"placed": 1, "rejected": 1}
        not_placed = [(j.account, j.reason) for j in seen.not_placed]
        assert not_placed == [("bob", "BTC-USDT: size under the minimum")]
        assert await progress(db, "never") is None
    finally:
        await fanout.stop()


async def test_jobs_recorded_but_never_queued_are_queued_again(db: Database, settings: Settings) -> None:
    """A crash between the fan-out's commit and its jobs' deferral (here: the jobs deleted) loses
    nothing: requeue finds the rows with no job and defers them, once."""
    await add_accounts(db, settings, ["alice", "bob"])
    fanout = FanOut(db, JobQueue(settings.journal_url), max_signal_age_s=settings.max_signal_age_seconds)
    await fanout.start()
    try:
        await fanout.submit(signal())
        assert await fanout.requeue() == 0  # too young: may be between commit and deferral
        await db.transaction(lambda c: c.execute(
            update(FANOUT_JOBS).values(created_at=FANOUT_JOBS.c.created_at - timedelta(minutes=1))))
        assert await fanout.requeue() == 0  # both jobs wait on the queue
        await db.transaction(lambda c: c.execute(text(
            "DELETE FROM procrastinate_jobs WHERE lock = 'bob'")))
        assert await fanout.requeue() == 1
        assert await fanout.requeue() == 0
        assert [job[1] for job in await queued_jobs(db)] == ["alice", "bob"]
    finally:
        await fanout.stop()


async def test_a_job_no_worker_takes_expires_with_its_reason(db: Database, settings: Settings) -> None:
    """Its group has no worker: once the signal is too old to trade, the waiting job is cancelled on the
    queue and its row says why; a job a worker has begun is left to that worker's answer."""
    await add_accounts(db, settings, ["alice", "bob"], group="lonely")
    fanout = FanOut(db, JobQueue(settings.journal_url), max_signal_age_s=settings.max_signal_age_seconds)
    await fanout.start()
    try:
        await fanout.submit(signal())
        assert await fanout.expire() == 0  # just fanned out: waits for a worker
        too_old = timedelta(seconds=settings.max_signal_age_seconds + EXPIRE_GRACE_S + 1)
        await db.transaction(lambda c: c.execute(
            update(FANOUT_JOBS).values(created_at=FANOUT_JOBS.c.created_at - too_old)))
        await db.transaction(lambda c: c.execute(text(  # a worker takes bob's job
            "UPDATE procrastinate_jobs SET status = 'doing' WHERE lock = 'bob'")))
        assert await fanout.expire() == 1
        assert await fanout.expire() == 0
        assert await fanout.requeue() == 0  # an expired job is never queued again
        seen = await progress(db, "sig-1")
        assert seen is not None and seen.by_status == {"expired": 1, "queued": 1}
        [alice] = seen.not_placed[:1]
        assert alice.account == "alice" and alice.status == "expired"
        assert alice.reason is not None and "egress group 'lonely'" in alice.reason
        assert await queued_jobs(db) == [
            ("egress_lonely", "alice", "sig-1/alice", "cancelled"),
            ("egress_lonely", "bob", "sig-1/bob", "doing"),
        ]
    finally:
        await fanout.stop()


async def test_a_job_left_doing_that_no_one_runs_is_handed_back(db: Database, settings: Settings) -> None:
    """procrastinate could not write a job's end (the database away) or its worker loop stopped: the job
    stays `doing` with no one running it. The group's active worker hands it back once it has seen it so
    for UNCLAIMED_AFTER_S; a job its handler is running is left alone."""
    from hit_server.fleet import worker as worker_module

    await add_accounts(db, settings, ["alice", "bob"])
    worker = worker_module.Worker(settings.model_copy(update={"blofin_base_url": "http://127.0.0.1:9"}), "g1")
    fanout = FanOut(db, JobQueue(settings.journal_url), max_signal_age_s=settings.max_signal_age_seconds)
    await fanout.start()
    await worker.queue.open()
    try:
        await fanout.submit(signal())
        await db.transaction(lambda c: c.execute(text("UPDATE procrastinate_jobs SET status = 'doing'")))
        ids = dict(await db.transaction(
            lambda c: c.execute(text("SELECT lock, id FROM procrastinate_jobs")).all()))
        worker.queue.running.add(ids["bob"])  # bob's job is in this worker's handler

        first = await worker._hand_back_unclaimed({})
        assert set(first) == {ids["alice"]}  # seen unclaimed from now on, not handed back yet
        assert [job[3] for job in await queued_jobs(db)] == ["doing", "doing"]
        long_ago = {ids["alice"]: first[ids["alice"]] - worker_module.UNCLAIMED_AFTER_S}
        assert await worker._hand_back_unclaimed(long_ago) == {}
        assert [(job[1], job[3]) for job in await queued_jobs(db)] == [("alice", "todo"), ("bob", "doing")]
    finally:
        await worker.queue.close()
        await fanout.stop()
        await worker.http.aclose()
        await worker.db.dispose()


async def test_a_worker_reads_a_fanned_out_signal_once_for_all_its_jobs(
    db: Database, settings: Settings
) -> None:
    """The group's jobs of one signal (one per account) share one read of the fan-out's row, which is
    written once; a signal not (yet) there is not remembered as missing."""
    from hit_server.fleet import worker as worker_module

    await add_accounts(db, settings, ["alice"])
    worker = worker_module.Worker(settings.model_copy(update={"blofin_base_url": "http://127.0.0.1:9"}), "g1")
    fanout = FanOut(db, JobQueue(settings.journal_url), max_signal_age_s=settings.max_signal_age_seconds)
    await fanout.start()
    try:
        assert await worker.fanned_signal("sig-1") == "the fan-out's signal is not in the journal"
        await fanout.submit(signal())
        read = await asyncio.gather(*(worker.fanned_signal("sig-1") for _ in range(20)))
        assert all(isinstance(s, TradeSignal) and s.signal_id == "sig-1" for s in read)
        assert read[0].posted_at is not None  # the fan-out's time stands for a signal posted without one
        await db.transaction(lambda c: c.execute(text("DELETE FROM fanouts")))
        assert await worker.fanned_signal("sig-1") == read[0]  # remembered, not read again
    finally:
        await fanout.stop()
        await worker.http.aclose()
        await worker.db.dispose()


async def test_a_failed_attempt_is_logged_and_the_last_one_answers_the_account_with_its_reason(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """procrastinate's own lines per job are off in a worker (below WARNING): a failed attempt is the
    worker's to log, and its last one is the account's answer, `failed` with the reason."""
    from hit_server.fleet import worker as worker_module

    await add_accounts(db, settings, ["alice"])
    worker = worker_module.Worker(settings.model_copy(update={"blofin_base_url": "http://127.0.0.1:9"}), "g1")
    fanout = FanOut(db, JobQueue(settings.journal_url), max_signal_age_s=settings.max_signal_age_seconds)
    await fanout.start()

    async def down(signal_id: str, account: str) -> None:
        raise RuntimeError("the exchange is down")

    monkeypatch.setattr(worker, "_trade", down)
    try:
        await fanout.submit(signal())
        with caplog.at_level("WARNING", logger="hit_server.worker"), pytest.raises(RuntimeError):
            await worker.run_job("sig-1", "alice", False)
        assert "sig-1 for account alice failed (the exchange is down); the queue runs it again" in caplog.text
        seen = await progress(db, "sig-1")
        assert seen is not None and seen.by_status == {"queued": 1}  # not answered: it runs again
        with caplog.at_level("WARNING", logger="hit_server.worker"), pytest.raises(RuntimeError):
            await worker.run_job("sig-1", "alice", True)
        assert "failed (the exchange is down); given up" in caplog.text
        seen = await progress(db, "sig-1")
        assert seen is not None and seen.by_status == {"failed": 1}
        assert seen.not_placed[0].reason == "gave up after retries: the exchange is down"
    finally:
        await fanout.stop()
        await worker.http.aclose()
        await worker.db.dispose()


async def test_leverages_are_learned_only_with_the_ips_spare_budget(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The background reads of the accounts' leverages wait while a job runs and while any of the IP's
    windows is half full, so a signal never queues behind them and finds most of the budget free."""
    from hit_server.fleet import worker as worker_module

    worker = worker_module.Worker(settings.model_copy(update={"blofin_base_url": "http://127.0.0.1:9"}), "g1",
                                  ip_reserve=0)
    monkeypatch.setattr(worker_module, "LEARN_WAIT_S", 0.0)
    now = [1000.0]
    worker.ip_limits = RateLimiter(per_minute=500, per_5_minutes=1500, clock=lambda: now[0])

    async def still_waiting(task: asyncio.Task[None]) -> bool:
        for _ in range(50):  # the wait looks again on every turn of the loop here
            await asyncio.sleep(0)
        return not task.done()

    try:
        worker.queue.running.add(7)  # a job runs
        waiting = asyncio.create_task(worker._spare_budget())
        assert await still_waiting(waiting)
        for _ in range(250):  # half of the minute's 500
            await worker.ip_limits.acquire("GET", "/api/v1/account/balance")
        worker.queue.running.clear()
        assert await still_waiting(waiting)  # no job now, but the minute's window is half full
        now[0] += 61.0  # the minute passes; the 5-minute window holds 250 of 1,500
        await asyncio.wait_for(waiting, 5)
        assert worker.ip_limits.ip_share_used() == pytest.approx(250 / 1500)
    finally:
        await worker.http.aclose()
        await worker.db.dispose()
        await worker.lease.db.dispose()


async def test_the_queue_is_idle_once_no_job_has_run_for_a_moment(settings: Settings) -> None:
    """What the accounts' monitor passes wait for (`JobQueue.until_idle`): no job running and none
    ended within IDLE_AFTER_S (a fan-out's next job follows the one that ended), or the wait's bound."""
    from hit_server.fleet import queue as queue_module

    queue = JobQueue(settings.journal_url)
    loop = asyncio.get_running_loop()
    await asyncio.wait_for(queue.until_idle(60), 5)  # no job ever ran
    queue._started(1)
    queue._started(2)
    waiting = asyncio.create_task(queue.until_idle(60))
    queue._ended(1)
    await asyncio.sleep(2 * queue_module.IDLE_AFTER_S)
    assert not waiting.done()  # job 2 still runs
    queue._ended(2)
    ended = loop.time()
    await asyncio.wait_for(waiting, 5)
    assert loop.time() - ended >= queue_module.IDLE_AFTER_S * 0.9  # a moment without a job first
    queue._started(3)
    bounded = loop.time()
    await asyncio.wait_for(queue.until_idle(0.3), 5)  # job 3 runs on: the bound ends the wait
    assert loop.time() - bounded >= 0.29 and queue.running == {3}


async def test_the_fleet_is_idle_once_no_worker_of_any_group_runs_a_job(
    db: Database, settings: Settings
) -> None:
    """The monitors' passes during a fan-out wait for every group's jobs (`until_fleet_idle`), not only
    their own worker's: a job `doing` on the queue for another group keeps them waiting until it ends,
    or the wait's bound."""
    from procrastinate import jobs

    from hit_server.fleet import queue as queue_module

    await add_accounts(db, settings, ["far"], group="g2")
    fanout = FanOut(db, JobQueue(settings.journal_url), max_signal_age_s=settings.max_signal_age_seconds)
    await fanout.start()
    queue = JobQueue(settings.journal_url)  # a worker of group g1: none of its own jobs runs
    await queue.open()
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(queue.until_fleet_idle(60), 5)  # nothing runs anywhere
        await fanout.submit(signal())
        await asyncio.wait_for(queue.until_fleet_idle(60), 5)  # queued, not run by anyone yet
        worker_id = await db.transaction(lambda c: c.execute(
            text("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id")).scalar_one())
        manager = queue.app.job_manager
        job = await manager.fetch_job(["egress_g2"], worker_id)  # g2's worker takes its job
        assert job is not None
        await asyncio.sleep(queue_module.FLEET_POLL_S)  # the last answer (none ran) is asked afresh now
        waiting = asyncio.create_task(queue.until_fleet_idle(60))
        bounded = loop.time()
        await asyncio.wait_for(queue.until_fleet_idle(0.6), 5)  # the bound ends a wait
        assert loop.time() - bounded >= 0.59
        assert not waiting.done()
        await manager.finish_job(job, status=jobs.Status.SUCCEEDED, delete_job=True)
        await asyncio.wait_for(waiting, 5)
    finally:
        await queue.close()
        await fanout.stop()


async def test_a_worker_fetches_its_next_jobs_one_at_a_time(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """procrastinate's free slots fetch their jobs through one query at a time per process (racing
    fetches cost PostgreSQL twice the CPU per job); the jobs run at once all the same, each taken once."""
    import procrastinate

    from hit_server.fleet import queue as queue_module

    await add_accounts(db, settings, [f"m{i}" for i in range(8)])
    fanout = FanOut(db, JobQueue(settings.journal_url), max_signal_age_s=settings.max_signal_age_seconds)
    await fanout.start()
    queue = JobQueue(settings.journal_url)
    await queue.open()
    fetching, most = 0, 0
    plain = procrastinate.PsycopgConnector.execute_query_one_async

    async def counted(self: Any, query: Any, **arguments: Any) -> Any:
        nonlocal fetching, most
        if query != queue_module.FETCH_JOB:
            return await plain(self, query, **arguments)
        fetching += 1
        most = max(most, fetching)
        try:
            await asyncio.sleep(0.01)  # long enough for every other slot to try its own fetch meanwhile
            return await plain(self, query, **arguments)
        finally:
            fetching -= 1

    monkeypatch.setattr(procrastinate.PsycopgConnector, "execute_query_one_async", counted)
    try:
        await fanout.submit(signal())
        worker_id = await db.transaction(lambda c: c.execute(
            text("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id")).scalar_one())
        manager = queue.app.job_manager
        taken = await asyncio.gather(*(manager.fetch_job(["egress_g1"], worker_id) for _ in range(8)))
        assert sorted(job.lock for job in taken if job is not None) == [f"m{i}" for i in range(8)]
        assert most == 1
    finally:
        await queue.close()
        await fanout.stop()


async def test_deferring_jobs_refreshes_the_planners_count_of_the_queue(
    db: Database, settings: Settings
) -> None:
    """A drained queue is recorded as empty by autovacuum (pages, no rows), and procrastinate's fetch
    planned from that compares every waiting job with every other one on each fetch: after a deferral
    PostgreSQL counts the table again, in the background, without the deferral waiting for it."""
    queue = JobQueue(settings.journal_url)
    await queue.open()

    async def counted() -> float:
        return float(await db.transaction(lambda c: c.scalar(text(
            "SELECT reltuples FROM pg_class WHERE relname = 'procrastinate_jobs'"))))

    try:
        # a fan-out run and drained, then counted as autovacuum would: pages left, no rows
        await queue.defer([("old", f"acct-{n}", "g1") for n in range(40)])
        async with await psycopg.AsyncConnection.connect(queue.conninfo, autocommit=True) as conn:
            await conn.execute("DELETE FROM procrastinate_jobs")
            await conn.execute("ANALYZE procrastinate_jobs")
        assert await counted() == 0
        # fewer than autovacuum's 50 changes: only the refresh counts them
        assert await queue.defer([("new", f"acct-{n}", "g1") for n in range(40)]) == 40
        async with asyncio.timeout(30):
            while await counted() < 40:  # noqa: ASYNC110 - another backend's work: polled
                await asyncio.sleep(0.05)
    finally:
        await queue.close()


async def test_the_queues_connections_are_in_autocommit_and_checked_only_after_a_rest(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No BEGIN/COMMIT around procrastinate's one-statement queries, no check round trip for a
    connection that served a query a moment ago; one that rested is checked, so a connection the
    database dropped meanwhile is replaced without its query failing."""
    import psycopg_pool

    from hit_server.fleet import queue as queue_module

    checks = 0
    plain_check = psycopg_pool.AsyncConnectionPool.check_connection

    async def counted(connection: Any) -> None:
        nonlocal checks
        checks += 1
        await plain_check(connection)

    monkeypatch.setattr(psycopg_pool.AsyncConnectionPool, "check_connection", counted)
    queue = JobQueue(settings.journal_url)
    await queue.open()
    try:
        connector = queue.app.connector
        pool = connector.pool  # type: ignore[attr-defined]
        row = await connector.execute_query_one_async("SELECT pg_backend_pid() AS pid, now() AS at")
        again = await connector.execute_query_one_async("SELECT pg_backend_pid() AS pid, now() AS at")
        assert row["at"] != again["at"]  # each statement its own transaction: now() moved on
        async with pool.connection() as connection:
            assert connection.autocommit
        checks_fresh = checks

        monkeypatch.setattr(queue_module, "CHECK_AFTER_REST_S", 0.0)  # from now on, every lend has rested
        async with pool.connection() as connection:
            pid = connection.info.backend_pid
        await db.transaction(lambda c: c.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}))
        row = await connector.execute_query_one_async("SELECT pg_backend_pid() AS pid")
        assert row["pid"] != pid  # the dropped connection failed its check and was replaced
        assert checks_fresh == 0 and checks >= 2
    finally:
        await queue.close()


def test_a_workers_ip_reserve_is_left_out_of_its_limits(settings: Settings) -> None:
    from hit_server.fleet import worker as worker_module

    remote = settings.model_copy(update={"blofin_base_url": "http://127.0.0.1:9"})
    with pytest.raises(ValueError, match="ip-reserve"):
        worker_module.Worker(remote, "g1", ip_reserve=500)
    shared = worker_module.Worker(remote, "g1")
    alone = worker_module.Worker(remote, "g1", ip_reserve=0)
    minute, five = shared.ip_limits._overall
    assert (minute.limit, five.limit) == (480, 1440)  # 20 a minute, 60 in 5 minutes left to others
    assert tuple(window.limit for window in alone.ip_limits._overall) == (500, 1500)  # BloFin's own


def test_a_worker_runs_on_uvloop_where_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvloop's transports and callbacks are C (a later signal's worker CPU at 400 accounts 10.5-14.2 ->
    7.6-9.5 ms per account-signal, bench/README session 25). Without uvloop (Windows) the worker runs on
    asyncio's own loop."""
    from hit_server.fleet import worker as worker_module

    factory = worker_module._event_loop_factory()
    if sys.platform == "win32":  # uvloop has no Windows build
        assert factory is None
        return
    assert factory is not None
    loop = factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as where it is not installed: import fails
    assert worker_module._event_loop_factory() is None


async def test_the_job_queues_worker_is_started_again_when_it_stops_on_its_own(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """procrastinate's worker ends itself when a side task fails (a heartbeat's query cut by a database
    outage): the fleet worker starts it again instead of serving no jobs until restarted."""
    from hit_server.fleet import worker as worker_module

    worker = worker_module.Worker(settings.model_copy(update={"blofin_base_url": "http://127.0.0.1:9"}), "g1")
    monkeypatch.setattr(worker_module, "QUEUE_RESTART_S", 0.0)
    runs: list[str] = []
    serving = asyncio.Event()

    async def procrastinate_worker(**_: Any) -> None:
        runs.append("run")
        if len(runs) == 1:
            raise RuntimeError("side task failed")  # the heartbeat's query cut
        if len(runs) == 2:
            return  # stopped itself, cleanly
        serving.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(worker.queue.app, "run_worker_async", procrastinate_worker)
    task = asyncio.create_task(worker._serve_queue())
    try:
        await asyncio.wait_for(serving.wait(), 10)
        assert runs == ["run", "run", "run"] and not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await worker.http.aclose()
        await worker.db.dispose()


async def test_the_lease_is_renewed_while_every_connection_of_the_jobs_is_busy(settings: Settings) -> None:
    """Under load the jobs and monitors can hold every connection of the worker's pool: the lease's renewal
    has a connection of its own, so it never waits behind them (it did: a worker of a 1,000-account
    fan-out lost its lease, and stopped, while its pool was busy)."""
    import psycopg

    from hit_server.fleet import worker as worker_module
    from hit_server.testing import libpq_conninfo

    worker = worker_module.Worker(settings.model_copy(update={"blofin_base_url": "http://127.0.0.1:9"}), "g1")
    await worker.db.create_schema()
    gate = await psycopg.AsyncConnection.connect(libpq_conninfo(settings.journal_url), autocommit=True)
    holders: list[asyncio.Task[Any]] = []
    try:
        assert await worker.lease.acquire() == {}
        await gate.execute("SELECT pg_advisory_lock(4242)")  # every holder below waits on it
        busy = worker_module.OWN_CONNECTIONS  # every connection of the worker's own pool
        holders = [asyncio.create_task(worker.db.transaction(
            lambda c: c.execute(text("SELECT pg_advisory_lock_shared(4242)")))) for _ in range(busy)]

        async def waiting() -> int:
            cursor = await gate.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            row = await cursor.fetchone()
            return int(row[0]) if row else 0

        async with asyncio.timeout(30):
            while await waiting() < busy:  # noqa: ASYNC110 - PostgreSQL's view, no event to wait on
                await asyncio.sleep(0.05)
        assert await asyncio.wait_for(worker.lease.renew({1_700_000_000: 1}), 10)
    finally:
        await gate.execute("SELECT pg_advisory_unlock_all()")
        await asyncio.gather(*holders, return_exceptions=True)
        await gate.close()
        await worker.http.aclose()
        await worker.db.dispose()
        await worker.lease.db.dispose()


def test_an_account_journal_has_every_table_of_the_journal_but_the_fleet_wide_ones() -> None:
    from hit_server.journal import tables

    own = {name for name, table in tables.TABLES.items() if not fleet_wide(table)}
    assert own == set(ACCOUNT_JOURNAL_TABLES)


def test_fleet_needs_postgresql() -> None:
    with pytest.raises(ValueError, match="FLEET needs the journal on PostgreSQL"):
        Settings(fleet=True, _env_file=None)


async def test_one_active_worker_per_egress_group_and_the_next_knows_what_the_ip_sent(db: Database) -> None:
    first, second = EgressLease(db, "g1", "first"), EgressLease(db, "g1", "second")
    assert await first.acquire() == {}
    assert await second.acquire() is None  # held
    assert await EgressLease(db, "g2", "second").acquire() == {}  # another group, another IP
    assert await first.renew({1_700_000_000: 3, 1_700_000_001: 2})
    assert await first.acquire() == {1_700_000_000: 3, 1_700_000_001: 2}  # the holder may take it again
    assert await second.holder_now() == "first"

    # the first dies: its lease runs out (here: its last renewal moved a minute back), the second takes
    # over with its usage
    leases = EGRESS_LEASES.c
    minute = timedelta(minutes=1)
    await db.transaction(lambda c: c.execute(update(EGRESS_LEASES).values(
        expires_at=leases.expires_at - minute, updated_at=leases.updated_at - minute)))
    renewed = await db.transaction(lambda c: c.scalar(
        text("SELECT extract(epoch FROM updated_at) FROM egress_leases WHERE egress_group = 'g1'")))
    assert await second.holder_now() is None
    assert await second.acquire() == {1_700_000_000: 3, 1_700_000_001: 2}
    assert not await first.renew({})  # too late: it must stop sending
    # what the first sent after its last renewal was never written: the second hears until when it may
    # have gone on sending (TTL_S - SAFETY_S after that renewal, which PostgreSQL stamped)
    assert second.unrecorded_until is not None
    assert second.unrecorded_until == pytest.approx(float(renewed) + TTL_S - SAFETY_S, abs=1e-3)
    await second.release({1_700_000_005: 1})  # a clean stop: free at once, everything recorded
    assert await first.acquire() == {1_700_000_005: 1}
    assert first.unrecorded_until is None


def test_a_worker_that_stopped_without_handing_over_leaves_its_ips_budget_counted_as_spent() -> None:
    """The previous holder may have sent, unrecorded, until it gave up: the taker counts, at that moment,
    as many requests as the IP's windows still allowed then, and waits for them to leave the windows."""
    wall = 50_000.0  # the taker's wall clock at its monotonic 100
    taker = RateLimiter(per_minute=10, per_5_minutes=12, clock=lambda: 100.0)
    taker.seed_ip_usage({49_990: 4}, wall)  # recorded: 4 sent 10 s ago
    assumed = taker.assume_ip_sent_all_it_could(wall - 3, wall)  # it may have sent until 3 s ago
    assert assumed == 6  # the minute allowed 6 more then (the 5 minutes 8)
    minute, five = taker._overall
    assert minute.wait_needed(100.0) > 0 and five.wait_needed(100.0) == 0  # 10 of 10 and 10 of 12
    # the four recorded leave the minute at 100 - 9.5 + 60.5 = 151; the 6 assumed at 100 - 3 + 60.5
    assert minute.room_at(150.9) == 0
    assert minute.wait_needed(157.6) == 0

    # long enough ago, it counts in no window
    assert RateLimiter(per_minute=10, per_5_minutes=12).assume_ip_sent_all_it_could(wall - 400, wall) == 0
    # and where the 5 minutes had less room than the minute, they bound the guess
    tight = RateLimiter(per_minute=10, per_5_minutes=5, clock=lambda: 100.0)
    tight.seed_ip_usage({49_800: 3}, wall)  # 200 s ago: out of the minute, in the 5 minutes
    assert tight.assume_ip_sent_all_it_could(wall - 3, wall) == 2


def test_the_ip_budget_is_handed_over_between_processes() -> None:
    """What one process sent from an IP counts in the next one's windows, by wall-clock second."""
    now = [1000.0]
    sender = RateLimiter(per_minute=5, per_5_minutes=8, clock=lambda: now[0])
    sent_at = [1000.0, 1010.0, 1010.5]
    for at in sent_at:
        now[0] = at
        sender._overall[0].record(at)
        sender._overall[1].record(at)
    now[0] = 1020.0
    wall = 50_000.0  # the wall clock at monotonic 1020
    usage = sender.ip_usage(wall)
    assert usage == {49_980: 1, 49_990: 2}

    taker_now = [7.0]  # another process, another monotonic clock
    taker = RateLimiter(per_minute=5, per_5_minutes=8, clock=lambda: taker_now[0])
    taker.seed_ip_usage(usage, wall + 1)  # a second later
    assert taker._overall[0].wait_needed(7.0) == 0  # 3 of 5 used
    taker._overall[0].seed([7.0, 7.0])  # two more sends: the minute is full
    # the oldest handed-over send (second 49,980, counted at its middle) leaves the window at
    # 7 - (50,001 - 49,980.5) + 60.5 = 47.0 on the taker's clock
    assert taker._overall[0].wait_needed(46.9) > 0
    assert taker._overall[0].wait_needed(47.0) == 0


def test_a_fleet_account_trades_with_its_own_keys_and_limits_and_reads_little_while_idle(
    settings: Settings,
) -> None:
    """Hundreds of accounts share one IP's budget (about one request per account per minute when
    idle): an account's settings keep its keys and risk and slow its idle reads down."""
    from decimal import Decimal

    from hit_server.accounts.store import AccountCredentials
    from hit_server.exchange.blofin_auth import Credentials
    from hit_server.fleet.traders import FLEET_POLL_S, account_settings

    account = AccountCredentials(
        name="alice", credentials=Credentials("key-alice", SecretStr("s"), SecretStr("p")),
        risk_per_trade_percent=Decimal("0.5"), max_position_size_usd=Decimal(200), max_leverage=3,
        allowed_symbols=(), blocked_symbols=(), egress_group="g1",
    )
    mine = account_settings(settings.model_copy(update={"default_leverage": 5}), account)
    assert mine.blofin_api_key.get_secret_value() == "key-alice"
    assert (mine.risk_per_trade_percent, mine.max_position_size_usd) == (Decimal("0.5"), Decimal(200))
    assert (mine.max_leverage, mine.default_leverage) == (3, 3)  # never a default above its cap
    assert mine.monitor_poll_seconds == FLEET_POLL_S and mine.reconcile_minutes >= 15
    assert mine.discord_webhook_url is None
