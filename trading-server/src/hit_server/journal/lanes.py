"""How an account's journal (`Database.in_schema`) runs its transactions on its lane, the one PostgreSQL
connection (asyncpg) its transactions always go over.

A fleet worker's journal traffic is round trips: on this 2-core machine a worker's largest single cost
was writing to its sockets (py-spy, bench/README "Session 20"), and every account-signal ran 8
transactions of 3 round trips of bookkeeping each (BEGIN, the search_path, COMMIT) beside its
statements. Here a lane's connection is in autocommit as SQLAlchemy sees it (its asyncpg adapter begins
nothing), and the transaction is sent by hand:

- the schema is the connection's own search_path (`SET`, not `SET LOCAL`), so a transaction of the
  account whose schema the connection already has sends no SET at all; otherwise the SET travels in one
  message with the BEGIN (PostgreSQL's simple query protocol takes several statements);
- a statement alone (`alone`: a read of one SELECT, a write of one statement) runs with no BEGIN and no
  COMMIT, after a SET if the path isn't the account's.

What the connection's path is, is known only after a COMMIT (or a SET outside a transaction) has
succeeded, and only for that very connection: it is kept in the pool's `info` of the connection, which
SQLAlchemy clears when it replaces the connection, with the driver's connection object itself compared as
well. A transaction that failed or was cancelled forgets it (its SET was rolled back with it), so the next
one sets it again: a statement can never run under another account's schema. A transaction that was
cancelled mid-statement closes the connection (its state on the server is unknown); the pool opens a new
one. A COMMIT that PostgreSQL answers with ROLLBACK (a statement of the transaction had failed and the
work went on regardless) is an error, never taken for written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection

T = TypeVar("T")

# the key, in the pool's info of a lane's connection, of (its driver connection, the search_path it has)
PATH_KEY = "hit_search_path"


class RolledBack(Exception):
    """PostgreSQL answered a COMMIT with ROLLBACK: the transaction had failed already."""


async def run_on_lane(
    engine: AsyncEngine, search_path: str, work: Callable[[Connection], T], *, alone: bool = False
) -> T:
    """Run `work` on the lane `engine` (a pool of one asyncpg connection in autocommit) with `search_path`
    (a quoted schema name) in force: as one transaction, or with `alone` as the single statement it runs."""
    async with engine.connect() as aconn:
        raw = await aconn.get_raw_connection()
        if not getattr(raw.dbapi_connection, "autocommit", False):  # SQLAlchemy would begin its own as well
            raise RuntimeError("an account's lane must be a pool in autocommit (journal.db._postgres_engine)")
        driver = raw.driver_connection
        saved = raw.info.get(PATH_KEY)
        has_path = saved is not None and saved[0] is driver and saved[1] == search_path
        set_path = f"SET search_path TO {search_path}"
        try:
            if alone:
                if not has_path:
                    await _send(aconn, raw, set_path)
                    raw.info[PATH_KEY] = (driver, search_path)
                return await aconn.run_sync(work)
            raw.info.pop(PATH_KEY, None)  # unknown until the COMMIT has gone through
            await _send(aconn, raw, "BEGIN" if has_path else f"BEGIN; {set_path}")
            try:
                result = await aconn.run_sync(work)
            except Exception:
                with contextlib.suppress(Exception):  # a dead connection is closed by `_send`
                    await _send(aconn, raw, "ROLLBACK")
                raise
            if await _send(aconn, raw, "COMMIT") != "COMMIT":
                raise OperationalError("COMMIT", None, RolledBack("a statement had failed: nothing written"))
            raw.info[PATH_KEY] = (driver, search_path)
            return result
        except BaseException as exc:
            if not isinstance(exc, Exception):  # cancelled mid-way: what the server holds is unknown
                await _close(aconn, raw)
            raise


async def _send(aconn: AsyncConnection, raw: PoolProxiedConnection, sql: str) -> Any:
    """`sql` (no parameters: the simple protocol, several statements allowed) on the connection itself;
    PostgreSQL's status of the last one. A failure closes the connection (the pool opens a new one)
    and is raised as SQLAlchemy's OperationalError, as a statement's would be."""
    driver: Any = raw.driver_connection  # asyncpg's connection, checked out: never None here
    try:
        return await driver.execute(sql)
    except Exception as exc:
        await _close(aconn, raw)
        raise OperationalError(sql, None, exc) from exc


async def _close(aconn: AsyncConnection, raw: PoolProxiedConnection) -> None:
    """Forget the connection's path and have the pool replace the connection."""
    raw.info.pop(PATH_KEY, None)
    # invalidated already (a statement found it dead; SQLAlchemy closes one cancelled mid-statement too)
    with contextlib.suppress(Exception):
        await aconn.invalidate()
