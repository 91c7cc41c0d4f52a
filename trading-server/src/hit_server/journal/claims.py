"""Claims: the database's guard of the limits that span signals, so they hold across server processes
that share one journal (a restart overlapping the old process, a second instance, a scale-out).

A signal that will send orders claims (account, symbol) in the transaction that records its intent
(`Journal.record_intent(claim=...)`), before anything is sent. The claims table's primary key
(account, symbol) allows one open trade per symbol per account whatever the process; the account's claims
are counted against MAX_OPEN_POSITIONS in the same transaction. A claim lasts while its signal is open:
it is released in the transaction that ends the signal (`Journal.finish` with nothing open; the position
monitor closing or ending the trade, `trade_book.TradeBook.save`, through `release_claim`). A claim
whose signal is over (answered, not open) is dropped when the account's claims are next read, so a writer
that ends a signal without releasing its claim cannot block the symbol for ever. Open signals without a
claim (a journal from before claims) are claimed at start (`db.backfill_claims`).

Claims of one account are taken one transaction at a time: each claim first updates the account's row in
`claim_locks`. On PostgreSQL that row stays locked until commit, so a concurrent claimer waits and then
(READ COMMITTED: each statement reads what is committed) sees the claim made meanwhile; on SQLite the
update takes the database's write lock. So two claims can't both pass the count either.

The in-process `admission.Admission` stays in front as the fast check of concurrent signals of one
process (with the exchange's positions); the claim is the guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from hit_server.api.http_errors import JournalUnavailable
from hit_server.journal.db import CLAIM_LOCKS_TABLE, CLAIMS_TABLE, HOLDS_ITS_SYMBOL, SIGNALS_TABLE, Database

LOCK = (
    update(CLAIM_LOCKS_TABLE)
    .where(CLAIM_LOCKS_TABLE.c.account == bindparam("of_account"))
    .values(changed_at=bindparam("at"))
)
CLAIMS_OF_ACCOUNT = (
    select(CLAIMS_TABLE.c.symbol, CLAIMS_TABLE.c.signal_id, HOLDS_ITS_SYMBOL.label("holds"))
    .join(SIGNALS_TABLE, SIGNALS_TABLE.c.signal_id == CLAIMS_TABLE.c.signal_id)
    .where(CLAIMS_TABLE.c.account == bindparam("account"))
)
INSERT_CLAIM = insert(CLAIMS_TABLE)
RELEASE = delete(CLAIMS_TABLE).where(CLAIMS_TABLE.c.signal_id == bindparam("sid"))
DROP_OVER = delete(CLAIMS_TABLE).where(CLAIMS_TABLE.c.signal_id.in_(bindparam("sids", expanding=True)))


@dataclass(frozen=True)
class Claim:
    """What a signal about to send orders asks of the database."""

    account: str
    symbol: str
    max_open: int  # MAX_OPEN_POSITIONS: the account's open claims, this one included, may not pass it


class ClaimRefused(Exception):
    """The claim can't be taken: the symbol is claimed by another open signal (`symbol in claimed`),
    or the account holds `max_open` claims already. Nothing was recorded or sent; the signal is a
    rejection (the service words it as the risk engine does, seeing `claimed` as open trades)."""

    def __init__(self, symbol: str, claimed: frozenset[str]) -> None:
        super().__init__(f"{symbol}: claimed {sorted(claimed)}")
        self.symbol = symbol
        self.claimed = claimed


def take_claim(db: Database, conn: Connection, signal_id: str, claim: Claim, now: datetime) -> None:
    """Inside the intent's transaction: claim the symbol for this signal, or raise ClaimRefused."""
    _lock_account(db, conn, claim.account, now)
    claimed = set()
    over = []
    for symbol, holder, holds in conn.execute(CLAIMS_OF_ACCOUNT, {"account": claim.account}):
        if holds:
            claimed.add(symbol)
        else:
            over.append(holder)
    if over:
        conn.execute(DROP_OVER, {"sids": over})
    if claim.symbol in claimed or len(claimed) >= claim.max_open:
        raise ClaimRefused(claim.symbol, frozenset(claimed))
    try:
        db.write(conn, INSERT_CLAIM, {
            "account": claim.account, "symbol": claim.symbol, "signal_id": signal_id, "created_at": now,
        })
    except IntegrityError as exc:  # claimed without the account's lock (a start's backfill): still taken
        raise ClaimRefused(claim.symbol, frozenset({*claimed, claim.symbol})) from exc


def release_claim(conn: Connection, signal_id: str) -> None:
    """Inside the transaction that ends a signal (answered with nothing open, or its trade closed or
    ended): the symbol is free again. Nothing happens for a signal without a claim."""
    conn.execute(RELEASE, {"sid": signal_id})


def _lock_account(db: Database, conn: Connection, account: str, now: datetime) -> None:
    if db.write(conn, LOCK, {"of_account": account, "at": now}):
        return
    try:  # the account's first claim in this database (the default account's row is made at start)
        conn.execute(insert(CLAIM_LOCKS_TABLE).values(account=account, changed_at=now))
    except IntegrityError as exc:  # another process made it at this moment: this signal can be retried
        raise JournalUnavailable(
            "The trade journal was busy admitting another signal; nothing was sent. Retry shortly."
        ) from exc
