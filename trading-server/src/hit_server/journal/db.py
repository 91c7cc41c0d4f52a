"""The journal's tables (SQLAlchemy 2) and the database that holds them (`Database`).

SQLite by default, PostgreSQL (asyncpg) through DATABASE_URL (`postgresql+asyncpg://...`). Tables
are created at start (`Database.create_schema`); there is no migration tool yet. Prices and sizes are stored
as decimal text so no float ever touches them, whatever the backend.

signals        one row per signal_id (the DB-level at-most-once guard: primary key)
orders         one row per clientOrderId (unique), written BEFORE the order is sent
state_changes  every state a signal or an order went through, with its time
events         the trade feed served by GET /api/v1/events
halt           the kill switch (a single row), so a halt survives a restart
claims         one row per (account, symbol) with an open trade of ours: the database's guard of one open
               trade per symbol per account and of MAX_OPEN_POSITIONS, across processes (claims.py)
claim_locks    one row per account, updated first by every claim so claims of one account are taken one
               transaction at a time
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    Select,
    String,
    Table,
    Text,
    TextClause,
    create_engine,
    event,
    insert,
    inspect,
    make_url,
    or_,
    select,
    text,
)
from sqlalchemy.exc import DisconnectionError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.sql.dml import ValuesBase

from hit_server import clock
from hit_server.api.http_errors import JournalUnavailable
from hit_server.journal.lanes import run_on_lane
from hit_server.journal.prepared import Preparable, Prepared, prepare

T = TypeVar("T")
log = logging.getLogger(__name__)
BACKSTOP_CHECKPOINT_PAGES = 10_000  # SQLite's default is 1,000 pages


def utcnow() -> datetime:
    """Now, from the server's one clock (`hit_server.clock`)."""
    return clock.utcnow()


def as_utc(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; they were stored as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class SignalRow(Base):
    __tablename__ = "signals"

    signal_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    side: Mapped[str] = mapped_column(String(8))
    # received -> sending -> answered; "unknown" when an order's outcome could not be established
    state: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str | None] = mapped_column(String(16), index=True, default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    is_open: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    replays: Mapped[int] = mapped_column(Integer, default=0)
    realized_pnl: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class OrderRow(Base):
    __tablename__ = "orders"

    client_order_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    signal_id: Mapped[str] = mapped_column(ForeignKey("signals.signal_id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(Integer)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    order_type: Mapped[str] = mapped_column(String(16))
    price: Mapped[str | None] = mapped_column(String(40), default=None)
    trigger_price: Mapped[str | None] = mapped_column(String(40), default=None)
    size: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # planned -> sending -> live/filled/... | pending (not sent yet) | failed | unknown
    state: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StateChangeRow(Base):
    __tablename__ = "state_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    signal_id: Mapped[str] = mapped_column(String(128), index=True)
    client_order_id: Mapped[str | None] = mapped_column(String(32), default=None)
    state: Mapped[str] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(Text, default=None)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(32))
    signal_id: Mapped[str | None] = mapped_column(String(128), default=None)
    symbol: Mapped[str | None] = mapped_column(String(32), default=None)
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HaltRow(Base):
    __tablename__ = "halt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    halted: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


DEFAULT_ACCOUNT = "default"  # one exchange account for now; claims are per account already


class ClaimRow(Base):
    __tablename__ = "claims"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    signal_id: Mapped[str] = mapped_column(ForeignKey("signals.signal_id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ClaimLockRow(Base):
    __tablename__ = "claim_locks"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


SIGNALS_TABLE, CLAIMS_TABLE = Base.metadata.tables["signals"], Base.metadata.tables["claims"]
CLAIM_LOCKS_TABLE = Base.metadata.tables["claim_locks"]
# A signal holds its symbol from its intent until it is answered with nothing open or closed: "sending"
# (orders may be out), "unknown" (not settled), or answered and open.
HOLDS_ITS_SYMBOL = or_(SIGNALS_TABLE.c.is_open.is_(True), SIGNALS_TABLE.c.state.in_(("sending", "unknown")))


def backfill_claims(conn: Connection) -> int:
    """Claim the symbols of the open signals that hold none (a journal written before claims existed,
    or by a server that doesn't know them), the oldest signal of a symbol first; ensures the default
    account's lock row. Runs at every start; the number of claims added."""
    locks, claims = CLAIM_LOCKS_TABLE, CLAIMS_TABLE
    if conn.scalar(select(locks.c.account).where(locks.c.account == DEFAULT_ACCOUNT)) is None:
        conn.execute(insert(locks).values(account=DEFAULT_ACCOUNT, changed_at=utcnow()))
    claimed = set(conn.scalars(select(claims.c.symbol).where(claims.c.account == DEFAULT_ACCOUNT)))
    holding = conn.execute(
        select(SIGNALS_TABLE.c.signal_id, SIGNALS_TABLE.c.symbol)
        .where(HOLDS_ITS_SYMBOL)
        .where(SIGNALS_TABLE.c.signal_id.not_in(select(claims.c.signal_id)))
        .order_by(SIGNALS_TABLE.c.created_at)
    ).all()
    added = []
    for signal_id, symbol in holding:
        if symbol not in claimed:
            claimed.add(symbol)
            added.append({"account": DEFAULT_ACCOUNT, "symbol": symbol, "signal_id": signal_id,
                          "created_at": utcnow()})
    if added:
        conn.execute(insert(claims), added)
        log.warning("Journal: claimed %d symbol(s) of open signals that held none", len(added))
    return len(added)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Checkpoints run off the event loop (Database._checkpoint_soon); this is only the backstop.
    cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_CHECKPOINT_PAGES}")
    cursor.close()


# PostgreSQL connections a process keeps open. All of them stay open: a pool that opened more under load
# and closed them again on return (SQLAlchemy's default overflow) made a fleet worker open a connection,
# TLS attempt and name lookup included, for most of its transactions, and PostgreSQL start a process for
# each (issue #19's profile).
POOL_SIZE = 15
# asyncpg's prepared statements kept per connection (SQLAlchemy's default: 100), both those of SQLAlchemy's
# adapter and those asyncpg keeps itself (the statements `prepared.py` sends it directly). Every account of a
# fleet worker uses the same texts (`Database.in_schema`): 52 distinct statements in a 100-account fan-out
# and the passes after it (bench/fanout.py --statements), the queue's included. Room for the rarer ones
# (the dashboard's, the kill switch's), bounded whatever the number of accounts.
STATEMENT_CACHE = 500
# The connections of a process's account journals (`Database.in_schema`), apart from its own pool: an
# account's transactions always go over the same one of them, its lane. PostgreSQL keeps what it learned
# of a table (its columns, its indexes, their statistics) in each connection that used it: a worker's 250
# accounts have ~8,500 tables, indexes and sequences, and with any connection serving any account, each
# connection learned them again for most transactions of a fan-out. bench/journal_schemas.py (250 schemas,
# a job's 3 transactions, 32 at once): PostgreSQL 3.26 ms per job with any pooled connection for any
# account (`--lanes 0`), 1.83 with 15 lanes.
ACCOUNT_LANES = 15


# The drivers whose cursor `Database.write` and `Database.column` use directly (`prepared.py`), and what
# they compiled: (dialect, driver, statement, parameter names) -> the prepared statement, or None.
DRIVERS_PREPARED = frozenset({"pysqlite", "asyncpg"})
_PREPARED: dict[tuple[str, str, Preparable, frozenset[str]], Prepared | None] = {}


@contextmanager
def _unavailable_on_failure() -> Iterator[None]:
    """A database that fails raises JournalUnavailable (the API answers 503); an IntegrityError (a key
    already there) is the caller's to interpret."""
    try:
        yield
    except IntegrityError:
        raise
    except SQLAlchemyError as exc:
        raise JournalUnavailable(
            "The trade journal cannot be written, so no signal is accepted; check the database."
        ) from exc


def _postgres_engine(url: str, pool_size: int, *, autocommit: bool = False) -> AsyncEngine:
    """A pool of `pool_size` PostgreSQL connections, all kept open; with `autocommit`, SQLAlchemy begins
    no transaction on them (an account's lane sends its own: `lanes.py`)."""
    on_asyncpg = make_url(url).get_driver_name() == "asyncpg"
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=0, pool_pre_ping=not on_asyncpg,
        connect_args=(
            {"prepared_statement_cache_size": STATEMENT_CACHE, "statement_cache_size": STATEMENT_CACHE}
            if on_asyncpg else {}
        ),
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )
    if on_asyncpg:  # another driver (psycopg's async mode) keeps SQLAlchemy's ping
        event.listen(engine.sync_engine, "checkout", _closed_is_gone)
    return engine


def _closed_is_gone(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Before a pooled asyncpg connection is handed out: one the server has closed (a restart, an
    administrator's pg_terminate_backend, the fleet's database cut-off test) is replaced by a new one.

    This stands for SQLAlchemy's pool_pre_ping, which asks the server on every checkout (BEGIN, an empty
    statement and ROLLBACK with asyncpg: three round trips before each transaction, a quarter of a fleet
    worker's journal time). A server that ends a connection says so on the socket, and asyncpg marks the
    connection closed as soon as the loop reads that. A connection cut without a word (which a ping would
    have waited on until the network gave up) fails at its first statement, as the transaction's error,
    and the pool replaces it."""
    del dbapi_connection
    if record.driver_connection.is_closed():
        raise DisconnectionError("the database closed this connection")


# Columns added to existing tables since their first release: (table, column, SQL type and default).
# `create_all` creates missing tables but never alters one, so a journal written by an older version
# gets these added at start.
ADDED_COLUMNS = (
    ("trades", "version", "INTEGER NOT NULL DEFAULT 0"),
    # accounts stored before it have none: their keys are not compared (rotating them sets it)
    ("accounts", "key_fingerprint", "VARCHAR(64)"),
)


def add_missing_columns(conn: Connection, schema: str | None = None) -> None:
    inspector = inspect(conn)
    quote = conn.dialect.identifier_preparer.quote
    for table, column, ddl in ADDED_COLUMNS:
        if not inspector.has_table(table, schema=schema):
            continue
        if column not in {c["name"] for c in inspector.get_columns(table, schema=schema)}:
            name = f"{quote(schema)}.{table}" if schema else table
            conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN {column} {ddl}")


# The tables of one account's journal (a fleet account's schema, `Database.in_schema`). A process that
# makes such a schema must know them all (`hit_server.journal.tables` imports their modules), or the
# account's journal would lack one for good; test_fleet_journal checks this list against that module.
ACCOUNT_JOURNAL_TABLES = frozenset({
    "signals", "orders", "state_changes", "events", "halt", "claims", "claim_locks", "trades",
    "trade_leases", "trade_actions",
})


def _check_account_tables() -> None:
    missing = ACCOUNT_JOURNAL_TABLES - set(Base.metadata.tables)
    if missing:
        raise RuntimeError(f"import hit_server.journal.tables before making an account's journal: "
                           f"{sorted(missing)} unknown")


def fleet_wide(table: Table) -> bool:
    """Whether `table` exists once for the whole fleet (the accounts, the fan-outs) rather than once per
    account's journal: such tables say so with `info={"fleet_wide": True}`."""
    return bool(table.info.get("fleet_wide"))


class Database:
    """The journal's database. Every transaction is one synchronous function of a connection (or an
    ORM session), run by `transaction` (or `session`) and committed when it returns.

    SQLite (the default, `sqlite:///`; an older `sqlite+aiosqlite:///` URL means the same and is run by
    the standard sqlite3 driver too): the function runs on the calling
    thread, i.e. on the event loop. A local SQLite transaction in WAL mode with synchronous=NORMAL
    commits without an fsync and takes tens of microseconds, far less than handing it to a worker
    thread and back; and since nothing awaits inside it, transactions of one process never interleave,
    so they need no lock of their own. Another process holding the write lock (a second server on the
    same file, a tool) makes a writer wait up to BUSY_TIMEOUT_S, then fail as JournalUnavailable.
    PostgreSQL (`postgresql+asyncpg://...`): the same function runs through asyncpg
    (`AsyncConnection.run_sync`), so the loop is never blocked on the network.

    Checkpoints (copying the write-ahead log into the database file, with an fsync) would otherwise
    run inside whichever commit crosses SQLite's threshold, blocking the loop for milliseconds; a
    passive checkpoint runs instead on a worker thread every CHECKPOINT_EVERY transactions, and the
    connection's own automatic checkpoint only backs it up (at a larger log size).

    A database that cannot be read or written raises `JournalUnavailable` (the API answers 503);
    an `IntegrityError` (a primary key already there) is passed on for the caller to interpret."""

    BUSY_TIMEOUT_S = 5.0
    CHECKPOINT_EVERY = 200

    def __init__(self, url: str, *, schema: str | None = None, engine: AsyncEngine | None = None,
                 pool_size: int | None = None, account_lanes: int = ACCOUNT_LANES) -> None:
        """`schema` and `engine`: see `in_schema`. `pool_size`: the PostgreSQL connections kept (POOL_SIZE
        unless told); `account_lanes`: the connections the views of `in_schema` share, apart from those."""
        if account_lanes < 1:
            raise ValueError("account_lanes: at least one connection for the accounts' journals")
        self.url = make_url(url)
        self.schema = schema
        # the search_path of this view's transactions (the schema, quoted: names may hold a `-`)
        self._search_path = None if schema is None else '"' + schema.replace('"', '""') + '"'
        self._sync: Engine | None = None
        self._async: AsyncEngine | None = None
        self._owns_engine = engine is None
        self._account_lanes = account_lanes
        self._lanes: list[AsyncEngine] = []  # made by the first `in_schema`
        self._since_checkpoint = 0
        self._checkpointing: asyncio.Future[int] | None = None
        self._conn: Connection | None = None
        if self.url.get_backend_name() == "sqlite":
            self._sync = create_engine(
                self.url.set(drivername="sqlite"),
                connect_args={"timeout": self.BUSY_TIMEOUT_S, "check_same_thread": False},
            )
            event.listen(self._sync, "connect", _sqlite_pragmas)
        else:
            self._async = engine or _postgres_engine(url, pool_size or POOL_SIZE)

    def in_schema(self, schema: str) -> Database:
        """This PostgreSQL database seen through `schema`: every journal table is read and written in that
        schema, over one connection of this database's account lanes (`_lane`, ACCOUNT_LANES), always the
        same for one schema. A fleet account's journal is such a schema
        (issue #19, `fleet/traders.py`): the whole single-account journal, its guards included, once per
        account, with not one query changed.

        Its transactions run with `schema` alone as the connection's search_path, set with the BEGIN
        when the lane's connection has another (`lanes.py`); the statements name no schema. So every account's
        statements have the same text, and a connection prepares each once for all the accounts it
        serves: with the schema written into the statements (SQLAlchemy's schema_translate_map), a
        worker's 250 accounts x ~30 statements never fitted the connections' statement caches, and
        preparing them again was the largest item of a worker's profile in a 400-account fan-out
        (py-spy; bench/README "Sessions 18 and 19" for the figures with and without). A
        statement prepared under another search_path is analysed and planned again by PostgreSQL
        itself (its plan cache checks the search_path: PREPARE's documentation), so it always reads
        the tables of the schema in force. Tables outside `schema` (the fleet-wide ones) are not
        visible in such a transaction: a statement naming one fails instead of reading the wrong one."""
        if self._async is None or self.url.get_driver_name() != "asyncpg":
            raise ValueError(
                "A journal per account needs PostgreSQL through asyncpg (DATABASE_URL=postgresql+asyncpg://...)."
            )
        url = self.url.render_as_string(hide_password=False)
        return Database(url, schema=schema, engine=self._lane(schema))

    def _lane(self, schema: str) -> AsyncEngine:
        """The one connection (a pool of one) every transaction of `schema`'s view goes over, chosen by
        the schema's name among this database's ACCOUNT_LANES (see that constant for why). Transactions
        never await inside (`transaction` runs a synchronous function), so a lane is held only while
        one runs; the accounts of a lane take turns."""
        if self.schema is not None:  # a view's lanes would be others than the database's
            raise ValueError("in_schema is asked of the database, not of an account's view")
        if not self._lanes:
            url = self.url.render_as_string(hide_password=False)
            self._lanes = [_postgres_engine(url, 1, autocommit=True) for _ in range(self._account_lanes)]
        return self._lanes[zlib.crc32(schema.encode()) % len(self._lanes)]

    def describe(self) -> str:
        """The URL without its password, for the log."""
        return self.url.render_as_string(hide_password=True)

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction (Core statements), committed when it returns."""
        with _unavailable_on_failure():
            if self._sync is not None:
                conn = self._conn if self._conn is not None else self._connect()
                with conn.begin():
                    result = work(conn)
                self._checkpoint_soon()
                return result
            assert self._async is not None  # noqa: S101 - one of the two engines always exists
            if self._search_path is not None:
                return await run_on_lane(self._async, self._search_path, work)
            async with self._async.begin() as aconn:
                return await aconn.run_sync(work)

    async def single_statement(self, work: Callable[[Connection], T]) -> T:
        """Run `work`, which runs ONE statement, as a transaction of its own: on PostgreSQL in autocommit,
        so that neither a BEGIN nor a COMMIT goes to the server (a statement alone is atomic; an account's
        view sets its search_path first when its lane's connection has another: `lanes.py`); on SQLite
        as `transaction`.

        Kept for a figure: a fleet worker writes each job's outcome so. In a transaction of its own that
        write was 7% of a worker's CPU in a 1,000-account fan-out (py-spy, bench/README "Session 20"),
        and two of its three round trips were the BEGIN and the COMMIT."""
        return await self._without_transaction(work)

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work`, which only reads, without a transaction (as `single_statement`): each of its
        statements sees the database as it is when that statement runs. For the reads of one statement,
        nearly always, that every fleet job and position monitor pass makes."""
        return await self._without_transaction(work)

    async def _without_transaction(self, work: Callable[[Connection], T]) -> T:
        if self._async is None:
            return await self.transaction(work)
        with _unavailable_on_failure():
            if self._search_path is not None:
                return await run_on_lane(self._async, self._search_path, work, alone=True)
            async with self._async.connect() as aconn:
                await aconn.execution_options(isolation_level="AUTOCOMMIT")
                return await aconn.run_sync(work)

    def _connect(self) -> Connection:
        """SQLite: the event loop's own connection, kept; the checkpoint thread takes another from the pool.

        Kept for a figure of bench/server.py (concurrency 4, target p50 <= 15 ms): a pool checkout per
        transaction (3 a signal) measured 3.35 -> 3.71 ms of server CPU per signal and p50 16.8 ->
        18.4 ms, with one of the machine's two cores busy (issue #13)."""
        assert self._sync is not None  # noqa: S101 - SQLite only
        self._conn = self._sync.connect()
        return self._conn

    def write(
        self, conn: Connection, statement: ValuesBase, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> int:
        """Run an INSERT, UPDATE or DELETE of constant shape (every value a bound parameter) inside `work`;
        the rows it changed (for many rows of parameters: as the driver says, -1 when it doesn't).

        On SQLite and asyncpg it runs straight on the transaction's DBAPI cursor (`prepared.py`: compiled
        once, values converted by the columns' own SQLAlchemy types, so the stored rows are the same as
        through `conn.execute`, which a test checks), at a third of the cost per statement on SQLite; a
        statement that doesn't fit, and other drivers, go through `conn.execute`.

        Kept for bench/server.py's p50 target (<= 15 ms at concurrency 4): with `conn.execute` alone,
        4 runs each way on a quiet machine, the median p50 went 14.1 -> 15.2 ms, 254 -> 240 signals/s,
        3.8 -> 4.1 ms of server CPU per signal (issue #13; figures in bench/README.md)."""
        rows = [params] if isinstance(params, Mapping) else params
        if not rows:  # no rows, nothing to write (SQLAlchemy would run the statement once, unbound)
            return 0
        prepared = self._prepared_for(conn, statement, rows[0])
        if prepared is None:
            return conn.execute(statement, params).rowcount
        try:
            values = [prepared.values(row) for row in rows]
        except KeyError:  # a row without a parameter the statement needs: SQLAlchemy decides
            return conn.execute(statement, params).rowcount
        return prepared.run(conn, values).changed

    def column(
        self, conn: Connection, statement: Select[Any] | TextClause, params: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """The first column of a SELECT's rows (`rows`)."""
        return [row[0] for row in self.rows(conn, statement, params)]

    def rows(
        self, conn: Connection, statement: Select[Any] | TextClause, params: Mapping[str, Any] | None = None
    ) -> list[Sequence[Any]]:
        """A SELECT's rows (each a sequence of its columns); straight on the cursor like `write` when no
        column needs a conversion (text, integers)."""
        prepared = self._prepared_for(conn, statement, params or {})
        if prepared is None:
            return list(conn.execute(statement, params))
        return prepared.run(conn, [prepared.values(params or {})]).rows

    def _prepared_for(
        self, conn: Connection, statement: Preparable, params: Mapping[str, Any]
    ) -> Prepared | None:
        """The statement compiled for these parameters (`prepared.py`), or None: SQLAlchemy runs it. One
        compilation per process for every database of a dialect (a fleet worker's accounts share them)."""
        dialect = conn.dialect
        if dialect.driver not in DRIVERS_PREPARED:
            return None
        key = (dialect.name, dialect.driver, statement, frozenset(params))
        if key not in _PREPARED:
            _PREPARED[key] = prepare(dialect, statement, key[3])
        return _PREPARED[key]

    async def session(self, work: Callable[[Session], T]) -> T:
        """Run `work` with an ORM session in one transaction, committed when it returns."""
        def in_session(conn: Connection) -> T:
            with Session(bind=conn, expire_on_commit=False) as session:
                result = work(session)
                session.flush()
                return result

        return await self.transaction(in_session)

    async def create_schema(self) -> None:
        """Create the missing tables and claim the symbols of open signals that hold none (see
        `backfill_claims`). Two processes starting together may both try a claim: the loser tries
        again and finds it made."""
        schema = self.schema
        if schema is not None:
            _check_account_tables()

        def build(conn: Connection) -> None:
            if schema is None:
                Base.metadata.create_all(conn)
            else:  # an account's journal: its own tables only, made by one process at a time
                lock = text("SELECT pg_advisory_xact_lock(hashtext(:key))")
                conn.execute(lock, {"key": f"schema {schema}"})
                conn.exec_driver_sql(
                    f"CREATE SCHEMA IF NOT EXISTS {conn.dialect.identifier_preparer.quote(schema)}"
                )
                own = [table for table in Base.metadata.sorted_tables if not fleet_wide(table)]
                Base.metadata.create_all(conn, tables=own)
            add_missing_columns(conn, schema)
            backfill_claims(conn)

        try:
            await self.transaction(build)
        except IntegrityError:
            await self.transaction(build)

    def _checkpoint_soon(self) -> None:
        self._since_checkpoint += 1
        if self._since_checkpoint < self.CHECKPOINT_EVERY:
            return
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        self._since_checkpoint = 0
        self._checkpointing = asyncio.get_running_loop().run_in_executor(None, self._checkpoint)

    def _checkpoint(self) -> int:
        """A passive checkpoint (never waits for readers or writers), on a worker thread: the number of
        log frames it copied into the database file (0 when it failed; the next one, or SQLite's own,
        will do it)."""
        assert self._sync is not None  # noqa: S101 - SQLite only
        try:
            with self._sync.connect() as conn:
                row = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        except SQLAlchemyError as exc:
            log.warning("Journal checkpoint failed: %s", type(exc).__name__)
            return 0
        _busy, _log_frames, copied = row
        return int(copied)

    async def checkpoint_done(self) -> None:
        """Wait for the background checkpoint, if one is running."""
        if self._checkpointing is not None:
            await self._checkpointing

    async def dispose(self) -> None:
        await self.checkpoint_done()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._sync is not None:
            self._sync.dispose()
        if self._async is not None and self._owns_engine:
            await self._async.dispose()
        for lane in self._lanes:
            await lane.dispose()
        self._lanes = []
