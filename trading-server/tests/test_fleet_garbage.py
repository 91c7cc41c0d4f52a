"""A fleet worker's full garbage collections between fan-outs (`fleet/garbage.py`): taken only while
no job runs, once enough of the way to CPython's own is behind, and on the real collector they free what
only a full collection can."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable
from typing import Any

import pytest

from hit_server.fleet.garbage import collect_when_quiet, due_early


class Probe:
    """`collect_when_quiet`'s view of a worker: how quiet it is and how far the collector has come; counts
    what it was asked."""

    def __init__(self, *, quiet: float, progress: int) -> None:
        self.quiet = quiet
        self.progress = progress
        self.asked = 0  # how many checks looked at the quiet
        self.collections = 0

    def quiet_for(self) -> float:
        self.asked += 1
        return self.quiet

    def how_far(self) -> int:
        return self.progress

    def collect(self) -> None:
        self.collections += 1
        self.progress = 0  # a full collection starts the count again, as CPython's does


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 - polls what the collector's task changes
            await asyncio.sleep(0.005)


async def run_with(probe: Probe, checks: int) -> None:
    """Run the collector until it has made `checks` more checks, then stop it."""
    target = probe.asked + checks
    task = asyncio.create_task(collect_when_quiet(
        probe.quiet_for, quiet_s=2.0, check_s=0.001, progress=probe.how_far, collect=probe.collect))
    try:
        await until(lambda: probe.asked >= target)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_no_collection_while_jobs_run_or_lately_ran() -> None:
    probe = Probe(quiet=0.0, progress=due_early() + 5)
    await run_with(probe, 20)
    probe.quiet = 1.9  # a job ended 1.9 s ago: a fan-out may still be handing out its jobs
    await run_with(probe, 20)
    assert probe.collections == 0


async def test_no_collection_before_it_is_due() -> None:
    probe = Probe(quiet=60.0, progress=due_early() - 1)
    await run_with(probe, 20)
    assert probe.collections == 0


async def test_one_collection_once_quiet_and_due_then_none_until_due_again() -> None:
    probe = Probe(quiet=60.0, progress=due_early())
    await run_with(probe, 20)
    assert probe.collections == 1  # the count starts again: no second one on the next checks
    probe.progress = due_early()
    await run_with(probe, 20)
    assert probe.collections == 2


async def test_the_real_collector_frees_a_cycle_only_a_full_collection_reaches() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a reference cycle: reference counting never frees it

    full: list[int] = []

    def seen(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info["generation"] == 2:
            full.append(1)

    gc.collect()
    node = Node()
    gone = weakref.ref(node)
    gc.callbacks.append(seen)
    try:
        gc.collect(1)  # the cycle (still referenced) moves into the oldest generation
        del node
        while gc.get_count()[2] < due_early():  # the younger collections CPython counts towards a full one
            gc.collect(1)
        assert gone() is not None, "a younger collection freed a cycle of the oldest generation"
        full.clear()
        task = asyncio.create_task(collect_when_quiet(lambda: 60.0, check_s=0.001))
        try:
            await until(lambda: gone() is None)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        gc.callbacks.remove(seen)
    assert full, "freed by a full collection"
