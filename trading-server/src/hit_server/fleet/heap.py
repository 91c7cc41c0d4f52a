"""A fleet worker's heap and Python's cyclic garbage collector while the worker runs jobs.

A worker keeps its accounts' objects for its whole life (their traders, journals, mirrors, streams and
models: some hundreds of thousands of objects at 250 accounts), and a full collection walks every one of
them with the event loop stopped. During a fan-out, the jobs' results surviving into the oldest
generation set one off in most workers: py-spy on the four workers of a 400-account fan-out (a later
signal) found one pass in each, 0.4-1.1 s long, a quarter of the workers' samples (bench/README,
session 24).

So while jobs run, everything that existed when the first of them began is frozen (`gc.freeze`: left out
of every collection, young and full), and handed back to the collector (`gc.unfreeze`) once none has run
for a moment. The jobs' own garbage is still collected as it comes; what waits is a cycle among the
older objects that became garbage meanwhile, until the jobs end. Freezing and unfreezing move lists, not
objects: they cost nothing whatever the heap's size. The collector's freeze is the process's: only a
process that runs jobs (a fleet worker) uses this.
"""

from __future__ import annotations

import gc


class FrozenWhileBusy:
    """`busy()` when a job begins, `idle()` once none has run for a moment (`JobQueue`)."""

    def __init__(self) -> None:
        self.frozen = False

    def busy(self) -> None:
        if not self.frozen:
            gc.freeze()
            self.frozen = True

    def idle(self) -> None:
        if self.frozen:
            gc.unfreeze()
            self.frozen = False
