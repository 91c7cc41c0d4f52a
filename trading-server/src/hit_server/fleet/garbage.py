"""A fleet worker's full garbage collections, taken while it is quiet rather than in a fan-out.

CPython's cyclic collector walks the whole heap (a full collection) once its younger generations have been
collected `threshold2` times (10 by default) since the last full one. A worker holds a large heap (each of
its accounts' journal, streams and clients), and with the event loop stopped a full collection is all the
worker does meanwhile. Measured with `bench/fanout.py` at 1,000 accounts, 250 a worker, with the collector
timed in each worker (`gc.callbacks`): a full collection took 0.20-0.27 s of CPU; a signal's jobs made 5-6
of the ten younger collections; and the tenth fell inside every signal's fan-out, in each of the four
workers (the second signal's came 9-11 s in, as the last accounts were placed): 6.5-9% of the workers' CPU
in the signal's window (the younger collections 2% more).

So a worker that has run no job for QUIET_S collects the whole heap itself once a third of the way to
the next full collection is behind it. A fan-out then starts with most of the way left and, at 250
accounts a worker, ends before a full collection comes due. While a worker allocates without
jobs (learning leverages, its monitors' passes after a fan-out) this collects a few times as
often as CPython would (a collection of ~0.25 s every few minutes). A signal that lands during one waits
for it to end, as its jobs would for the one CPython takes in the fan-out."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

QUIET_S = 2.0  # no job for this long: the worker is between fan-outs
CHECK_S = 1.0


def younger_collections_since_full() -> int:
    """How many times the middle generation was collected since the last full collection."""
    return gc.get_count()[2]


def due_early() -> int:
    """A third of the way to the next full collection (at least one younger collection)."""
    return max(1, gc.get_threshold()[2] // 3)


async def collect_when_quiet(
    quiet_for: Callable[[], float],
    *,
    quiet_s: float = QUIET_S,
    check_s: float = CHECK_S,
    progress: Callable[[], int] = younger_collections_since_full,
    collect: Callable[[], object] = gc.collect,
) -> None:
    """Until cancelled: every `check_s`, a full collection when no job has run for `quiet_s`
    (`quiet_for()`: seconds since one last ran, 0 while one runs) and `due_early()` younger
    collections have passed since the last full one."""
    while True:
        await asyncio.sleep(check_s)
        if quiet_for() < quiet_s or progress() < due_early():
            continue
        began = time.process_time()
        collect()
        log.debug("Fleet: a full garbage collection between fan-outs took %.0f ms of CPU",
                  (time.process_time() - began) * 1000)
