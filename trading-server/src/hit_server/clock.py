"""The server's wall clock: every moment the server stores or compares is read here.

The journal's timestamps, a signal's age, an entry's timeout and the grace before an unresolved signal
is looked up all come from `utcnow()`. Reading the time in one place lets the whole-system simulation
(`hit_server.simulation`) run the server on virtual time, where an hour passes in a fraction of a
second: it points `utcnow` at its virtual clock with `use_source` for the length of a run.
(Intervals the event loop waits, like timeouts and polling, follow the loop's own clock.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


def _real_time() -> datetime:
    return datetime.now(UTC)


_source: Callable[[], datetime] = _real_time


def utcnow() -> datetime:
    """Now, in UTC."""
    return _source()


def use_source(source: Callable[[], datetime] | None) -> None:
    """Read the time from `source` from now on (None: the real clock again). For simulations only."""
    global _source  # one clock for the process, replaced only by a simulation
    _source = source or _real_time
