"""One active worker per egress group: a lease in PostgreSQL (issue #19).

BloFin counts requests per IP address (500 a minute, 1,500 in 5 minutes, or the IP is suspended) and
binds each key to its IP addresses. An egress group is one such address: its accounts' requests all
leave from it, so one process sends them, and its rate limiter sees every request of that IP. That
process is the group's active worker: it holds the group's lease, renews it every RENEW_S, takes the
group's jobs and follows the group's accounts (their monitors). Other workers of the group wait as
standbys and take over once the lease has expired (a dead or cut-off active one): the jobs it left
`doing` are handed back to the queue (`worker.py`), the accounts' journals resume them.

Never two senders at once: the lease runs TTL_S on PostgreSQL's clock from the holder's last renewal;
the holder stops sending (its process exits) when it has not renewed for TTL_S - SAFETY_S on its own
clock, measured from before the renewal was sent, so it is gone before anyone may take over. The holder
writes what it sent from the IP lately with each renewal; the next holder counts those requests in its
own windows, so a takeover never restarts the IP's budget from zero. What a holder sent after its last
renewal is unrecorded: a holder that died (or lost the database) may have sent until TTL_S - SAFETY_S
after it. The next holder takes that span as spent to the full of the limits (`unrecorded_until`,
`RateLimiter.assume_ip_sent_all_it_could`): a fan-out on a loaded machine whose workers lost their
leases reached 1,461 of BloFin's 1,500 in 5 minutes on one IP without it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from datetime import timedelta

from sqlalchemy import Connection, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from hit_server.fleet.tables import EGRESS_LEASES
from hit_server.journal.db import Database

log = logging.getLogger(__name__)

TTL_S = 15.0
RENEW_S = 2.0
SAFETY_S = 3.0  # the holder gives up this long before its lease could be taken


def holder_name() -> str:
    """This process, as the lease names it: host, process id and a random tag (a restarted process
    with the same pid is another holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


Usage = dict[int, int]  # requests per wall-clock second


class EgressLease:
    def __init__(self, db: Database, group: str, holder: str | None = None) -> None:
        self.db = db
        self.group = group
        self.holder = holder or holder_name()
        # set by `acquire`: the wall-clock time (epoch seconds) until which the previous holder may have
        # sent from the IP without recording it (it neither renewed nor released at the end); else None
        self.unrecorded_until: float | None = None

    async def acquire(self) -> Usage | None:
        """Take the lease if it is free, expired or ours: the previous holder's recent usage of the IP;
        None while another holds it."""
        ttl = timedelta(seconds=TTL_S)
        leases = EGRESS_LEASES

        def take(conn: Connection) -> Usage | None:
            before = conn.execute(
                select(leases.c.holder, leases.c.expires_at, leases.c.updated_at)
                .where(leases.c.egress_group == self.group).with_for_update()
            ).first()
            new = pg_insert(leases).values(
                egress_group=self.group, holder=self.holder, expires_at=func.now() + ttl, usage=[],
                updated_at=func.now(),
            )
            statement = new.on_conflict_do_update(
                index_elements=[leases.c.egress_group],
                set_={"holder": self.holder, "expires_at": func.now() + ttl, "updated_at": func.now()},
                where=or_(leases.c.expires_at < func.now(), leases.c.holder == self.holder),
            ).returning(leases.c.usage)
            row = conn.execute(statement).first()
            if row is None:
                return None
            self.unrecorded_until = None
            if before is not None and before.holder != self.holder and before.expires_at > before.updated_at:
                # expired, not released: it may have sent until it gave up, TTL_S - SAFETY_S after its
                # last renewal (its own clock started before that renewal was written)
                self.unrecorded_until = before.updated_at.timestamp() + TTL_S - SAFETY_S
            return {int(second): int(count) for second, count in row[0] or []}

        return await self.db.transaction(take)

    async def renew(self, usage: Usage) -> bool:
        """Extend the lease by TTL_S and record `usage`; False if it is no longer ours."""
        ttl = timedelta(seconds=TTL_S)
        leases = EGRESS_LEASES
        rows = [[second, count] for second, count in sorted(usage.items())]

        def extend(conn: Connection) -> int:
            statement = (
                update(leases)
                .where(leases.c.egress_group == self.group).where(leases.c.holder == self.holder)
                .values(expires_at=func.now() + ttl, usage=rows, updated_at=func.now())
            )
            return conn.execute(statement).rowcount

        return await self.db.transaction(extend) == 1

    async def release(self, usage: Usage) -> None:
        """Give the lease up now (a clean stop): a standby takes over at once, knowing `usage`."""
        leases = EGRESS_LEASES
        rows = [[second, count] for second, count in sorted(usage.items())]

        def end(conn: Connection) -> None:
            conn.execute(
                update(leases)
                .where(leases.c.egress_group == self.group).where(leases.c.holder == self.holder)
                .values(expires_at=func.now() - timedelta(seconds=1), usage=rows, updated_at=func.now())
            )

        await self.db.transaction(end)

    async def holder_now(self) -> str | None:
        """Who holds the group's lease now (None: nobody, or it expired)."""

        leases = EGRESS_LEASES

        def read(conn: Connection) -> str | None:
            holder: str | None = conn.scalar(
                select(leases.c.holder)
                .where(leases.c.egress_group == self.group).where(leases.c.expires_at >= func.now())
            )
            return holder

        return await self.db.transaction(read)
