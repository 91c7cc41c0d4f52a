"""What an operator sees of the fleet at a glance (the dashboard's Fleet page): the latest fan-outs with
their progress, and each account with its open trades and realised P&L from its own journal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, Numeric, case, cast, func, select

from hit_server.accounts.models import AccountOut
from hit_server.accounts.store import AccountStore
from hit_server.fleet.journals import AccountJournals
from hit_server.fleet.tables import FANOUT_JOBS, FANOUTS
from hit_server.journal.db import SIGNALS_TABLE, Database, as_utc

FANOUTS_SHOWN = 20


@dataclass(frozen=True)
class FanoutLine:
    signal_id: str
    symbol: str
    created_at: datetime
    total: int
    placed: int
    queued: int
    other: int  # rejected or failed: their reasons are in GET /api/v1/fanouts/{signal_id}


@dataclass(frozen=True)
class AccountLine:
    account: AccountOut
    open_trades: int
    realized_pnl: Decimal


async def latest_fanouts(db: Database, limit: int = FANOUTS_SHOWN) -> list[FanoutLine]:
    jobs = FANOUT_JOBS

    def read(conn: Connection) -> list[FanoutLine]:
        counts = (
            select(
                jobs.c.signal_id,
                func.sum(case((jobs.c.status == "placed", 1), else_=0)).label("placed"),
                func.sum(case((jobs.c.status == "queued", 1), else_=0)).label("queued"),
                func.count().label("jobs"),
            )
            .group_by(jobs.c.signal_id)
            .subquery()
        )
        rows = conn.execute(
            select(FANOUTS.c.signal_id, FANOUTS.c.symbol, FANOUTS.c.created_at, FANOUTS.c.accounts,
                   counts.c.placed, counts.c.queued, counts.c.jobs)
            .outerjoin(counts, counts.c.signal_id == FANOUTS.c.signal_id)
            .order_by(FANOUTS.c.created_at.desc()).limit(limit)
        ).all()
        return [
            FanoutLine(sid, symbol, as_utc(at), total, int(placed or 0), int(queued or 0),
                       int(jobs_ or 0) - int(placed or 0) - int(queued or 0))
            for sid, symbol, at, total, placed, queued, jobs_ in rows
        ]

    return await db.transaction(read)


async def account_lines(journals: AccountJournals, store: AccountStore) -> list[AccountLine]:
    """Every stored account (not `default`: the other pages are its own) with its open trades and the
    realised P&L its journal recorded."""
    lines = []
    for account in (await store.list())[1:]:
        journal = await journals.journal_db(account.name)
        open_trades, pnl = await journal.transaction(_trades_and_pnl)
        lines.append(AccountLine(account, open_trades, pnl))
    return lines


def _trades_and_pnl(conn: Connection) -> tuple[int, Decimal]:
    signals = SIGNALS_TABLE
    open_trades, pnl = conn.execute(
        select(
            func.count().filter(signals.c.is_open.is_(True)),
            func.coalesce(func.sum(cast(signals.c.realized_pnl, Numeric)), 0),
        )
    ).one()
    return int(open_trades), Decimal(pnl)
