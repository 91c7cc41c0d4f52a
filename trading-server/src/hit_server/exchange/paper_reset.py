"""Ending the journal's open paper trades when the paper exchange they lived on is gone.

The paper exchange keeps its account in DATA_DIR (`blofin_sim/persist.py`), so a restart normally
finds every paper trade where it was. When the saved account is missing at start (the first start of
a version that saves it, or the file was deleted to start over), the paper exchange starts empty while
the journal may still hold open paper trades. Their positions and orders exist nowhere any more: left
open, the position monitor would take the next position on the same symbol for theirs, "restore" their
stops on it and close it (defect 7). So, before anything else runs, each is ended honestly:
- the signal is no longer open (`is_open` false), with no realised P&L and no close time, so
  `/stats` counts it neither as closed nor as open (there is no true figure to count);
- its trade row (if the monitor had made one) is "ended" with the reason;
- a state change and an event `paper_exchange_reset` say what happened.
Only trades answered in paper mode are touched (the response records the mode), never a demo or
live trade that shares the journal.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, insert, select, update

from hit_server.journal.db import Database, utcnow
from hit_server.journal.journal import EVENTS, SIGNALS, STATE_CHANGES
from hit_server.journal.trade_book import ENDED, TRADES
from hit_shared.models import TradingMode

log = logging.getLogger(__name__)

RESET_EVENT = "paper_exchange_reset"
REASON = "the paper exchange was reset (its saved state was missing at start)"


async def end_paper_trades(db: Database) -> list[str]:
    """End every open paper trade of the journal (see the module docstring); their signal_ids."""
    ended = await db.transaction(_end_open_paper_trades)
    for signal_id in ended:
        log.warning("Paper trade %s ended: %s; its P&L is not counted", signal_id, REASON)
    return ended


def _end_open_paper_trades(conn: Connection) -> list[str]:
    now = utcnow()
    rows = conn.execute(
        select(SIGNALS.c.signal_id, SIGNALS.c.symbol, SIGNALS.c.side, SIGNALS.c.response)
        .where(SIGNALS.c.is_open.is_(True))
        .order_by(SIGNALS.c.created_at)
    ).all()
    paper = [r for r in rows if isinstance(r.response, dict) and r.response.get("mode") == TradingMode.PAPER]
    for row in paper:
        # "answered": a signal whose outcome was unknown is settled too (its orders cannot be looked up
        # on an exchange that no longer holds them)
        conn.execute(
            update(SIGNALS).where(SIGNALS.c.signal_id == row.signal_id)
            .values(is_open=False, state="answered", updated_at=now)
        )
        conn.execute(
            update(TRADES).where(TRADES.c.signal_id == row.signal_id)
            .values(state=ENDED, exit_reason=REASON, closed_at=now)
        )
        conn.execute(insert(STATE_CHANGES).values(
            signal_id=row.signal_id, client_order_id=None, state=ENDED, note=REASON, at=now,
        ))
        conn.execute(insert(EVENTS).values(
            type=RESET_EVENT, signal_id=row.signal_id, symbol=row.symbol, created_at=now, data={},
            message=f"{row.symbol} {row.side}: {REASON}, so this paper trade was ended; nothing of it is "
                    "left on the exchange and its P&L is not counted",
        ))
    return [row.signal_id for row in paper]
