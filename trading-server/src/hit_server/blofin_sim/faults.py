"""Injected failures: the next N requests (optionally under a path) misbehave in a chosen way, or, in
the probabilistic mode, each request under a path misbehaves with a given probability.

A fault's `path` covers a request's path when it is that path, a folder of it (`/api/v1/trade/` or
`/api/v1/trade`: everything under it), or a prefix that ends in `-` (`/api/v1/trade/order-`: order-tpsl,
order-detail, ...); empty covers every request. So `/api/v1/trade/order` is the order endpoint alone,
not `/api/v1/trade/orders-pending` too: a fault meant for an entry is never taken by a listing that the
position monitor happens to send first.

delay       answer `seconds` late (the request is carried out)
timeout     hold `seconds` without carrying it out, then HTTP 504
http_5xx    HTTP `code` (default 503), not carried out
http_429    HTTP 429 in BloFin's envelope, not carried out
error_code  HTTP 200 with BloFin code `code`, not carried out
drop_reply  carry it out, then drop the connection without a reply

Counted faults are used first; the probabilistic mode (`RandomFaults`) applies to requests that no
counted fault took. Its draws come from a seeded generator, so a run can be repeated exactly when the
requests arrive in the same order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["delay", "timeout", "http_5xx", "http_429", "error_code", "drop_reply"]
FAULT_KINDS: tuple[str, ...] = ("delay", "timeout", "http_5xx", "http_429", "error_code", "drop_reply")


def covers(fault_path: str, path: str) -> bool:
    """Whether a fault under `fault_path` applies to a request to `path` (see the module docstring)."""
    if not path.startswith(fault_path):
        return False
    rest = path[len(fault_path):]
    return not fault_path or not rest or rest.startswith("/") or fault_path.endswith(("/", "-"))


@dataclass
class Fault:
    kind: FaultKind
    count: int = 1
    code: str = ""
    seconds: float = 0.0
    path: str = ""


@dataclass
class RandomFaults:
    """Each request under `path` fails with `probability` (0..1], in a kind drawn evenly from `kinds`.

    `code` serves `error_code` (default 103013) and `http_5xx` (a 5xx status, else 503); `seconds`
    serves `delay` and `timeout`. `injected` counts the faults handed out so far, per kind.
    """

    probability: float
    kinds: tuple[FaultKind, ...]
    code: str = ""
    seconds: float = 0.0
    path: str = ""
    seed: int = 0
    injected: dict[str, int] | None = None

    def __post_init__(self) -> None:
        if not 0 < self.probability <= 1:
            raise ValueError("probability must be in (0, 1]")
        if not self.kinds:
            raise ValueError("at least one fault kind is needed")
        if self.injected is None:
            self.injected = {}


class FaultPlan:
    def __init__(self) -> None:
        self.pending: list[Fault] = []
        self.random: RandomFaults | None = None
        self._rng = random.Random(0)  # noqa: S311 - fault injection, not cryptography

    def add(self, fault: Fault) -> None:
        self.pending.append(fault)

    def set_random(self, faults: RandomFaults | None) -> None:
        """Start (None: stop) the probabilistic mode; the generator is reseeded from `faults.seed`."""
        self.random = faults
        if faults is not None:
            self._rng = random.Random(faults.seed)  # noqa: S311 - fault injection, not cryptography

    def clear(self) -> None:
        """Drop every counted fault and stop the probabilistic mode."""
        self.pending.clear()
        self.random = None

    def take(self, path: str) -> Fault | None:
        """The first fault that applies to `path`, counted down (removed when used up); else, in the
        probabilistic mode, a drawn one-off fault or None."""
        for fault in self.pending:
            if covers(fault.path, path):
                fault.count -= 1
                if fault.count <= 0:
                    self.pending.remove(fault)
                return fault
        return self._draw(path)

    def _draw(self, path: str) -> Fault | None:
        spec = self.random
        if spec is None or not covers(spec.path, path) or self._rng.random() >= spec.probability:
            return None
        kind = self._rng.choice(spec.kinds)
        assert spec.injected is not None  # noqa: S101 - set in __post_init__
        spec.injected[kind] = spec.injected.get(kind, 0) + 1
        return Fault(kind=kind, count=1, code=spec.code, seconds=spec.seconds, path=spec.path)
