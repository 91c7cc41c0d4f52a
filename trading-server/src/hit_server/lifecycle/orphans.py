"""Reconciliation of the exchange against the journal, the direction a lifecycle pass does not cover.

A pass starts from the journal's open trades (what the journal believes open is checked on the
exchange). This looks from the exchange's side:
- a resting order carrying one of OUR clientOrderIds (journaled before it was sent) whose signal is
  answered and no longer open is an orphan: it is cancelled and logged (event "orphan_cancelled").
  A signal is journaled (with its orders, not yet open) before its first order leaves and stays
  "sending" until its answer is stored, and this sweep runs whenever it is due, alongside the signal
  path: an order of a signal still "received", "sending" or "unknown" is never an orphan (it is
  being placed, or reconciliation resolves it by lookup);
- a position on a symbol with no open trade of ours is not ours to manage: it is logged (once per
  position) and left alone. Our own positions without a stop are repaired by the pass (`stops.py`).
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from hit_server.exchange.blofin_errors import NotFound
from hit_server.journal.journal import EventRecord

if TYPE_CHECKING:
    from hit_server.lifecycle.passes import Lifecycle

log = logging.getLogger(__name__)


async def reconcile_exchange(lifecycle: Lifecycle, *, reread: bool = True) -> int:
    """Cancel our orphaned orders and report foreign positions; the number of orders cancelled.
    The account is read by REST, or with `reread=False` from the account mirror when it is live (its
    seed was just read: the monitor's first reconciliation of a fleet account)."""
    client, book, mirror = lifecycle.client, lifecycle.book, lifecycle.mirror
    seeded = mirror if not reread and mirror is not None and mirror.live else None
    pending = seeded.open_orders() if seeded is not None else await client.pending_orders()
    resting = [o for o in pending if o.client_order_id]
    owners = await book.signal_of_order([o.client_order_id for o in resting])
    events: list[EventRecord] = []
    for order in resting:
        owner = owners.get(order.client_order_id)
        if owner is None or not owner.finished:
            continue  # not ours, or its signal is open, still being carried out or unresolved
        signal_id = owner.signal_id
        with contextlib.suppress(NotFound):
            await client.cancel_order(order.inst_id, order_id=order.order_id)
            log.warning("Reconciliation: cancelled orphaned order %s of finished signal %s",
                        order.client_order_id, signal_id)
            events.append(EventRecord(
                type="orphan_cancelled", signal_id=signal_id, symbol=order.inst_id,
                message=f"{order.inst_id}: an order of a finished trade was still resting on the exchange "
                        "and has been cancelled",
                data={"client_order_id": order.client_order_id},
            ))
    if events:
        await lifecycle.journal.add_events(events)
    ours = await lifecycle.journal.open_symbols()
    positions = seeded.positions() if seeded is not None else await client.positions()
    for position in positions:
        key = position.position_id or position.inst_id
        if position.inst_id not in ours and key not in lifecycle.foreign_reported:
            lifecycle.foreign_reported.add(key)
            log.warning("Reconciliation: a position on %s is not from a signal of this server; left alone",
                        position.inst_id)
    return len(events)
