"""Constant statements run straight on the DBAPI cursor of a SQLAlchemy transaction.

SQLAlchemy's execution of a statement (cache key, compiled-parameter processing, result set-up) costs
about twice what SQLite takes to run one of the journal's small writes, and a good part of a fleet
worker's journal time on PostgreSQL. A statement of constant shape (every value a bound parameter) is compiled
once here by SQLAlchemy itself, for the connection's dialect; a row's values are converted by the
columns' own SQLAlchemy types (`bind_processor`), so the stored values are those `Connection.execute`
would store. It runs on the same DBAPI connection, inside the same transaction: sqlite3's cursor, or
for PostgreSQL the cursor SQLAlchemy's asyncpg dialect gives (which begins the transaction if nothing
has yet, and keeps asyncpg's prepared statements). Only statements that fit are prepared (positional
parameters, qmark for SQLite or $n for asyncpg; an INSERT or UPDATE compiled without RETURNING, as for
many rows; for a SELECT, columns that need no conversion on the way back; a text() is taken as such a
SELECT); others get None and the caller uses SQLAlchemy. The driver's errors are raised as SQLAlchemy's
(IntegrityError for a duplicate key, OperationalError for the rest).

On a PostgreSQL connection in autocommit as SQLAlchemy sees it (an account's lane, whose transactions
`lanes.py` sends by hand, and the reads and single statements run without a transaction), SQLAlchemy's
adapter would begin nothing either: the statement then goes to asyncpg's connection itself
(`_on_asyncpg`), which keeps its own prepared statements by text, without the adapter's cursor, lock,
statement cache and status parsing around it. One lane, 2,000 UPDATEs in a transaction, six rounds each
way alternated: median 39.1 µs of CPU per statement through the adapter, 31.9 straight on asyncpg; a fleet
job runs ~15 of them, so ~0.1-0.2 ms of a worker's ~8-12 per account-signal (bench/journal_schemas.py's
pairs stay within its spread; issue #19, session 28, bench/README).

Kept for figures: bench/server.py's p50 at concurrency 4 (target <= 15 ms) is 14.1 ms with this
module and 15.2 ms without it (medians, quiet machine; issue #13, bench/README.md). On PostgreSQL,
bench/journal_schemas.py (250 account schemas, a fleet job's 3 transactions, 32 jobs at once) spends
2.88 ms of client CPU per job without it (`--plain`) and 2.20 with it (issue #19).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, NamedTuple

import asyncpg
from sqlalchemy import Connection, DateTime, Dialect, Select, TextClause
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.sql.dml import ValuesBase
from sqlalchemy.util import await_only

# the parameter styles whose compiled statements list their parameters in order (`positiontup`): SQLite's
# `?` and asyncpg's `$1`
POSITIONAL = frozenset({"qmark", "numeric_dollar"})
# asyncpg's errors that leave its connection unusable: closed or cut (its own, or the server's class 08),
# ended by an administrator, or no answer in time
CONNECTION_LOST = (
    asyncpg.PostgresConnectionError, asyncpg.exceptions.AdminShutdownError, asyncpg.InterfaceError, OSError,
    TimeoutError,
)
# a text() is taken as a SELECT whose columns need no conversion
Preparable = ValuesBase | Select[Any] | TextClause


class Ran(NamedTuple):
    rows: list[Any]  # what a SELECT returned
    changed: int  # the rows a statement run once changed or returned (many: as the driver says, -1 if not)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement's SQL, how to pick its parameters from a row in order, and the conversions of those
    that need one (by position)."""

    sql: str
    pick: Callable[[Mapping[str, Any]], Any] | None  # None: no parameters
    single: bool  # one parameter: `pick` gives it alone, not in a tuple
    convert: tuple[tuple[int, Callable[[Any], Any]], ...]
    reads: bool = False  # a SELECT: it returns rows (a write returns how many it changed)

    def values(self, row: Mapping[str, Any]) -> list[Any]:
        if self.pick is None:
            return []
        picked = self.pick(row)
        out = [picked] if self.single else list(picked)
        for index, convert in self.convert:
            out[index] = convert(out[index])
        return out

    def run(self, conn: Connection, values: list[list[Any]]) -> Ran:
        """Execute (many) on the transaction's own connection."""
        in_autocommit = getattr(conn.connection.dbapi_connection, "autocommit", False)
        if conn.dialect.driver == "asyncpg" and in_autocommit:
            return self._on_asyncpg(conn, values)
        dbapi = conn.dialect.dbapi
        assert dbapi is not None  # noqa: S101 - a connected dialect has its driver
        cursor = conn.connection.cursor()
        try:
            if len(values) == 1:
                cursor.execute(self.sql, values[0])
                return Ran(list(cursor.fetchall()) if cursor.description else [], cursor.rowcount)
            cursor.executemany(self.sql, values)
            return Ran([], cursor.rowcount)
        except dbapi.IntegrityError as exc:
            raise IntegrityError(self.sql, values, exc) from exc
        except dbapi.Error as exc:
            raise OperationalError(self.sql, values, exc) from exc
        finally:
            cursor.close()

    def _on_asyncpg(self, conn: Connection, values: list[list[Any]]) -> Ran:
        """On asyncpg's connection itself, in autocommit (SQLAlchemy's adapter would begin nothing: the
        statement belongs to the transaction a lane began by hand, or stands alone). A connection that
        failed below PostgreSQL (closed, cut) is handed to the pool to be replaced, as SQLAlchemy does
        for a disconnect."""
        driver: Any = conn.connection.driver_connection  # asyncpg's connection: checked out, never None
        try:
            if len(values) > 1:
                await_only(driver.executemany(self.sql, values))
                return Ran([], -1)
            if self.reads:
                rows = await_only(driver.fetch(self.sql, *values[0]))
                return Ran(rows, len(rows))
            status: str = await_only(driver.execute(self.sql, *values[0]))
            return Ran([], _changed(status))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(self.sql, values, exc) from exc
        except CONNECTION_LOST as exc:
            conn.invalidate(exc)
            raise OperationalError(self.sql, values, exc) from exc
        except asyncpg.PostgresError as exc:
            raise OperationalError(self.sql, values, exc) from exc


def _changed(status: str) -> int:
    """The rows a statement changed, from PostgreSQL's status ("UPDATE 3", "INSERT 0 1"); -1 if none."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


def prepare(dialect: Dialect, statement: Preparable, keys: Iterable[str]) -> Prepared | None:
    """`statement` compiled for rows with these keys; None if it doesn't fit (see the module's notes)."""
    given = frozenset(keys)
    # as for many rows: an INSERT then returns no generated key (which nobody here reads)
    compiled = statement.compile(dialect=dialect, column_keys=sorted(given), for_executemany=True)
    names = tuple(compiled.positiontup or ())
    if dialect.paramstyle not in POSITIONAL or not set(names) <= given:
        return None
    if isinstance(statement, Select):
        if any(column.type.dialect_impl(dialect).result_processor(dialect, None) is not None
               for column in statement.selected_columns):
            return None
    elif compiled.returning or not names:
        return None
    convert = []
    for index, name in enumerate(names):
        kind = compiled.binds[name].type
        processor: Callable[[Any], Any] | None = kind.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            convert.append((index, _same_as_last(processor) if isinstance(kind, DateTime) else processor))
    pick = itemgetter(*names) if names else None
    reads = isinstance(statement, Select | TextClause)
    return Prepared(compiled.string, pick, len(names) == 1, tuple(convert), reads)


def _same_as_last(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`convert` for datetimes, remembering the last one: the rows of a transaction share one `now`
    (a datetime can't change, so the same object always converts to the same text)."""
    last: list[Any] = [None, None]

    def remembered(value: Any) -> Any:
        if value is last[0] and value is not None:
            return last[1]
        result = convert(value)
        last[0], last[1] = value, result
        return result

    return remembered
