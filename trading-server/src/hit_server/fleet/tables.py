"""The fleet-wide tables of the fan-out, beside the accounts table (both live once, in the database's
default schema; each account's journal lives in a schema of its own, `traders.py`).

fanouts       one row per signal fanned out: the signal as accepted and how many accounts it went to
fanout_jobs   one row per (signal, account): written `queued` with the fan-out, before any job is
              deferred, then the account's answer (placed, rejected, failed, ...) and its reason, written
              by the worker that traded it. What an operator reads for "N of M placed" and the failures.
egress_leases one row per egress group: the worker that is the group's active one until `expires_at`
              (PostgreSQL's clock), and what it sent from the group's IP lately (`lease.py`)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hit_server.journal.db import Base, utcnow

FLEET_WIDE = {"info": {"fleet_wide": True}}  # created once, never in an account's journal schema

QUEUED = "queued"
# a job's answer when the account's trading path raised rather than answered (after its retries)
FAILED = "failed"
# a job no worker took before its signal was too old to trade (`FanOut.expire`)
EXPIRED = "expired"
# answers after which the job is over (anything else the account's path answers is final too)
UNFINISHED = frozenset({QUEUED})


class FanoutRow(Base):
    __tablename__ = "fanouts"
    __table_args__ = FLEET_WIDE

    signal_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)  # the signal as accepted (TradeSignal JSON)
    accounts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FanoutJobRow(Base):
    __tablename__ = "fanout_jobs"
    __table_args__ = FLEET_WIDE

    signal_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    account: Mapped[str] = mapped_column(String(32), primary_key=True)
    egress_group: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), default=QUEUED, index=True)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EgressLeaseRow(Base):
    __tablename__ = "egress_leases"
    __table_args__ = FLEET_WIDE

    egress_group: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the holder's requests from the group's IP over the last 5 minutes: [[wall-clock second, count], ...]
    usage: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


FANOUTS = Base.metadata.tables["fanouts"]
FANOUT_JOBS = Base.metadata.tables["fanout_jobs"]
EGRESS_LEASES = Base.metadata.tables["egress_leases"]
