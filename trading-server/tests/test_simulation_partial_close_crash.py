"""A whole-system regression found by the simulation (seed 7, with its crash one request later): a
process dies in the middle of a trader's partial close, after cancelling the targets on the exchange and
before journaling it or placing the new ones. The retried close must still split the targets over what
is left: it took each already-cancelled target for one that had filled, re-placed none, and the position
was left without targets (invariant (d)). The crash lands on each of the requests around that moment."""

from __future__ import annotations

import copy

import pytest

from hit_server.simulation.driver import run_steps

STEPS = [
    {"op": "signal", "id": "sim-7-12", "process": 1, "wait": 0.0, "body": {
        "side": "long", "symbol": "BTC-USDT", "entries": [], "stop_loss": "57537.8",
        "take_profits": ["60200.0", "62609.0", "63432.6"], "leverage": 3}},
    {"op": "resend", "id": "sim-7-11", "process": 0, "wait": 0.056},
    {"op": "crash", "process": 0, "after_calls": 11, "when": "before", "wait": 0.974},
    {"op": "action", "kind": "close", "symbol": "BTC-USDT", "id": "sim-7-14", "key": "key-7-5", "process": 0,
     "args": {"fraction": "0.333"}, "wait": 0.796},
]


@pytest.mark.parametrize("after_calls", [10, 11, 12, 13])
def test_a_partial_close_cut_by_a_crash_leaves_the_rest_covered_by_targets(after_calls: int) -> None:
    steps = copy.deepcopy(STEPS)
    steps[2]["after_calls"] = after_calls
    result = run_steps(steps)
    assert result.signals > 0 and result.crashes == 1
    assert result.ok, result.violations
